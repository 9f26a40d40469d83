#!/usr/bin/env bash
# kernel-matrix.sh runs the integration tests inside QEMU guests booted with
# Debian's 5.10, 6.1 and 6.12 kernels (internal/vmtest TestKernelMatrix) and
# prints the kernel × test table, then runs the hazard lab
# (TestHazardLab, docs/hazard-lab.md) on the same kernels and on the lab
# kernel, and prints the lab table. It provisions qemu and the kernels first
# (scripts/provision-kernels.sh; needs root and apt access on a fresh
# machine) and builds the lab kernel (scripts/build-lab-kernel.sh, cached).
# Extra arguments go to `go test`.
#
# Environment (see internal/vmtest/matrix_test.go and lab_test.go for all of it):
#   SAFEBPF_VM_KERNELS=debian-6.1,...   run a subset (lab-6.1 is the lab kernel)
#   SAFEBPF_VM_RUN=Regexp                -test.run inside the guests
#   SAFEBPF_VM_UPDATE_FIXTURES=1         rewrite testdata/kernels/*.json
#   SAFEBPF_VM_WORKDIR=DIR               initramfs, console logs, matrix.txt, lab.txt
#   SAFEBPF_VM_BENCH=Regexp              run these benchmarks in the guests (-test.bench), print results
#   SAFEBPF_VM_BENCHTIME=3x              their -test.benchtime
#   SAFEBPF_SKIP_LAB=1                   only the matrix: no lab kernel, no lab
#   SAFEBPF_LAB_SCENARIOS=1,3            run a subset of the lab's scenarios
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/provision-kernels.sh
# The guests have no clang: compile cilium/ebpf's examples (from the module
# cache, never committed) now, so the loader's test binary embeds them and
# the guests run the example ports (loader/ciliumexamples_test.go).
go mod download github.com/cilium/ebpf
sh loader/testdata/cilium/gen.sh
run='^TestKernelMatrix$'
if [ "${SAFEBPF_SKIP_LAB:-}" != 1 ]; then
	scripts/build-lab-kernel.sh
	export SAFEBPF_VM_LAB=1
	run='^(TestKernelMatrix|TestHazardLab)$'
fi
export SAFEBPF_VM_MATRIX=1 SAFEBPF_VM_PROVISION=0
exec go test -v -count=1 -timeout 150m -run "$run" ./internal/vmtest "$@"
