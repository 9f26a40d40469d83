// Package vmtest runs this module's integration tests inside QEMU guests
// booted with real distribution kernels (the kernel matrix).
//
// The host kernel this project is developed on lacks kprobes, fentry and
// hardware perf events, so the fallbacks that matter most can only be proven
// on other kernels. For each kernel provisioned by
// scripts/provision-kernels.sh (Debian's 5.10, 6.1 and 6.12 cloud kernels),
// the harness:
//
//  1. builds static test binaries on the host (go test -c, CGO_ENABLED=0),
//     the safebpf CLI and a small PID-1 program (./guestinit);
//  2. packs them, the packages' testdata directories, the kernel's config
//     (as /boot/config-RELEASE) and a plan into a gzip newc initramfs; no 9p
//     or virtio is needed, which Debian's kernels only build as modules;
//  3. boots qemu-system-x86_64 with TCG (nested KVM hangs here) and reads the
//     serial console: PID 1 mounts proc, sysfs, devtmpfs, tracefs, debugfs
//     and bpffs before any cilium/ebpf code runs, runs each test binary as a
//     child with -test.v, brackets its output and exit status with markers
//     (see [Console]), runs `safebpf probe --json`, and powers off;
//  4. parses the console into per-test results, detects a kernel Oops or
//     panic (reported with its lines, and the boot retried once) and ends a
//     hung guest at a timeout with the console tail.
//
// The host-side entry point is TestKernelMatrix, gated by
// SAFEBPF_VM_MATRIX=1 because it takes minutes; it fails when any guest test
// fails and prints a kernel × test table. With SAFEBPF_VM_UPDATE_FIXTURES=1
// it rewrites testdata/kernels/debian-*.json from the guests' probe output.
//
// The console protocol and the table format are for this harness only; do
// not depend on them being stable.
package vmtest
