// Package perf opens perf events with perf_event_open(2) and attaches BPF
// programs to them: per-CPU sampling events (hardware cpu-cycles or
// software cpu-clock) for perf_event programs, and tracepoint-type events
// for tracefs trace events (tracepoints, and kprobes/uprobes created through
// kprobe_events/uprobe_events).
//
// # Attaching
//
// [Attach] prefers a BPF perf link (BPF_LINK_CREATE with BPF_PERF_EVENT,
// kernel 5.15+, commit b89fbfbb854c) and falls back to the
// PERF_EVENT_IOC_SET_BPF ioctl on older kernels. Events are opened disabled
// and enabled only once the program is attached, so no sample is taken
// without it.
//
// # Errors
//
// A hardware event the CPU or hypervisor does not provide (ENOENT,
// EOPNOTSUPP) yields an error matching [ebpf.ErrNotSupported] and the
// errno, so callers can fall back to the software cpu-clock event.
package perf
