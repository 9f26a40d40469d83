// Package tracefs creates and removes kprobe, kretprobe and uprobe trace
// events through the kernel's tracefs text interface (kprobe_events,
// uprobe_events), reads their event IDs, cleans up events left behind by
// dead processes, and reads kretprobe miss counts from kprobe_profile.
//
// # Why not cilium/ebpf
//
// cilium/ebpf creates kretprobes through the perf PMU, which cannot set
// maxactive, and falls back to tracefs with random group names. safebpf needs
// an explicit maxactive (kretprobe contention caps) and groups that name the
// owning process, so that events leaked by a crashed agent can be found and
// removed by the next one.
//
// # Naming
//
// Every event this package creates lives in its own group named
//
//	safebpf_<pid>_<n>
//
// where pid is the owning process (decimal) and n is a per-process counter.
// The event name is the sanitised symbol (every character outside
// [A-Za-z0-9_] becomes '_'), truncated so that the whole name stays below
// the kernel's 64-byte limit, followed by "_<pid>_<n>". The event name is
// therefore unique on the host too, which matters because kprobe_profile
// lists events by name only, without their group.
//
// # Errors
//
// A symbol or file the kernel cannot probe yields an error matching
// [os.ErrNotExist]; a kernel without kprobe_events (CONFIG_KPROBE_EVENTS
// unset) or uprobe_events yields an error matching [ebpf.ErrNotSupported];
// a tracefs that is not mounted yields [ErrNotMounted].
package tracefs
