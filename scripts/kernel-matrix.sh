#!/usr/bin/env bash
# kernel-matrix.sh runs the integration tests inside QEMU guests booted with
# Debian's 5.10, 6.1 and 6.12 kernels (internal/vmtest TestKernelMatrix) and
# prints the kernel × test table. It provisions qemu and the kernels first
# (scripts/provision-kernels.sh; needs root and apt access on a fresh
# machine). Extra arguments go to `go test`.
#
# Environment (see internal/vmtest/matrix_test.go for all of it):
#   SAFEBPF_VM_KERNELS=debian-6.1,...   run a subset
#   SAFEBPF_VM_RUN=Regexp                -test.run inside the guests
#   SAFEBPF_VM_UPDATE_FIXTURES=1         rewrite testdata/kernels/*.json
#   SAFEBPF_VM_WORKDIR=DIR               initramfs, console logs, matrix.txt
#   SAFEBPF_VM_BENCH=Regexp              run these benchmarks in the guests (-test.bench), print results
#   SAFEBPF_VM_BENCHTIME=3x              their -test.benchtime
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/provision-kernels.sh
# The guests have no clang: compile cilium/ebpf's examples (from the module
# cache, never committed) now, so the loader's test binary embeds them and
# the guests run the example ports (loader/ciliumexamples_test.go).
go mod download github.com/cilium/ebpf
sh loader/testdata/cilium/gen.sh
export SAFEBPF_VM_MATRIX=1 SAFEBPF_VM_PROVISION=0
exec go test -v -count=1 -timeout 80m -run '^TestKernelMatrix$' ./internal/vmtest "$@"
