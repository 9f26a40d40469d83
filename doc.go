// Package safebpf is a drop-in layer over github.com/cilium/ebpf that
// attaches tracing programs only in ways that are safe on the running kernel.
//
// Production eBPF agents keep hitting bugs in the kernel's tracing machinery
// itself: BPF trampoline detach deadlocking against an exiting PID-namespace
// init, bpf_probe_read_user from NMI perf events deadlocking on 5.19–6.3,
// INT3 text-patching races on x86 5.3–5.5, kretprobe instance pools that
// contend on many-core machines, uprobe registration stalling processes on
// mmap_lock. safebpf learns precisely which kernel it runs on, consults a
// sourced catalog of those hazards, and transparently picks the safest
// mechanism that works — fentry→kprobe, hardware→software perf event,
// kretprobe→fexit, capped maxactive, paced uprobes — refusing only when
// nothing safe is left, unless the operator forces it. Every decision is
// reported through OpenTelemetry and log/slog.
//
// # Where to start
//
//   - Package [github.com/safebpf/safebpf/loader] is the entry point for
//     agents: loader.New, then LoadAndAttach for a bpf2go CollectionSpec, or
//     the per-attachment helpers that mirror cilium/ebpf's link package.
//   - Package [github.com/safebpf/safebpf/probe] says what the running kernel
//     is: its trusted upstream version and where it came from, distro build,
//     config, evidence symbols and which mechanisms are available.
//   - Package [github.com/safebpf/safebpf/hazards] holds the catalog of kernel
//     hazards, their sources, and the policy file schema.
//   - Package [github.com/safebpf/safebpf/fallback] is the pure planner that
//     turns a kernel, the catalog and a request into a Decision.
//   - The safebpf command (cmd/safebpf) shows an operator what safebpf would
//     decide on a machine, on a described kernel, or for an ELF object.
//
// Dependencies point one way: probe ← hazards ← fallback ← loader ← cmd,
// examples. Only probe (through internal/kernel) reads the host; everything
// to its right is pure logic over a probe.Kernel value.
package safebpf
