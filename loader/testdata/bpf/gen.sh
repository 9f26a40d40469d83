#!/bin/sh
# Compiles the loader's test objects. The committed .o files are what the
# tests load (guests have no clang); TestBPFObjectsUpToDate recompiles
# them with this same command and fails when one is stale. Needs clang,
# llvm-strip and libbpf-dev (scripts/install-deps).
set -eu
cd "$(dirname "$0")"
for c in *.c; do
	o="${c%.c}.o"
	clang -O2 -g -Wall -Werror -target bpf -D__TARGET_ARCH_x86 -fdebug-prefix-map="$(pwd)"=. \
		-I/usr/include/x86_64-linux-gnu -c "$c" -o "$o"
	llvm-strip -g "$o"
done
