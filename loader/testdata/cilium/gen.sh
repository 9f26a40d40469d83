#!/bin/sh
# Compiles cilium/ebpf's examples (the version go.mod requires, from the
# module cache) into this directory for ciliumexamples_test.go. The
# outputs are not committed (derived from cilium/ebpf's code).
set -eu
cd "$(dirname "$0")"
version=$(awk '$1 == "github.com/cilium/ebpf" { print $2 }' ../../../go.mod)
src="$(go env GOMODCACHE)/github.com/cilium/ebpf@${version}/examples"
for ex in kprobe kprobe_percpu tracepoint_in_c uretprobe fentry ringbuffer; do
	c=$(ls "$src/$ex"/*.c)
	clang -O2 -g -Wall -target bpf -D__TARGET_ARCH_x86 -I"$src/headers" -c "$c" -o "$ex.o"
	llvm-strip -g "$ex.o"
done
echo "$version" > VERSION
