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
//	safebpf_<pidns>_<pid>_<start>_<n>
//
// where pidns is the inode number of the owner's PID namespace
// (/proc/self/ns/pid), pid its pid there, start its start time in clock
// ticks since boot (/proc/self/stat field 22, in the initial time
// namespace's terms) and n a per-process counter: see [Owner]. The name is
// unique on the host for the owner's lifetime, so agents in different PID
// namespaces (two containers each running as PID 1) never collide, and a
// restarted agent never meets its predecessor's names. The event name is
// the sanitised symbol (every character outside [A-Za-z0-9_] becomes '_'),
// truncated so that the whole name stays below the kernel's 64-byte limit
// (MAX_EVENT_NAME_LEN), followed by the same "_<pidns>_<pid>_<start>_<n>":
// kprobe_profile lists events by name only, without their group. Groups of
// older versions, "safebpf_<pid>_<n>", are still recognised.
//
// # Stale events
//
// An agent killed with SIGKILL leaves its events behind. [FS.CleanupStale]
// removes an event only when its owner is provably dead, judged from any
// PID namespace:
//
//   - Liveness lock. Before its first event, an owner takes a shared
//     open-file-description lock (F_OFD_SETLK) on one byte of the tracefs
//     file [TokenFile], at an offset derived from its identity, and holds
//     it until it exits; the kernel drops it when the process dies,
//     SIGKILL included. tracefs has a single superblock, so the lock is
//     seen through every mount, in every container. An owner whose byte no
//     one locks is dead, unless /proc shows it running in this namespace.
//   - /proc, when the lock cannot be checked: in this PID namespace an
//     owner whose pid is gone or belongs to a process with another start
//     time is dead; in a namespace below this one (visible whole) likewise;
//     from the initial namespace, which sees every process, an owner whose
//     namespace has no process left is dead. /proc must be this namespace's
//     own and without hidepid, or nothing is judged.
//   - Legacy names carry no namespace: they are removed only by an agent
//     in the initial PID namespace, when no process anywhere has the pid.
//
// Everything else is kept and reported ([Cleanup.Kept]) with the reason.
// Events still used by a perf event or BPF link cannot be removed (EBUSY)
// and are reported as removal failures.
//
// # Input
//
// Symbols and paths are checked before anything is written: an events file
// takes one command per line, splits arguments at whitespace and treats
// '#' as a comment, so a newline in a symbol would add or delete another
// tool's event. See [FS.Kprobe] and [FS.Uprobe].
//
// # Errors
//
// A symbol or file the kernel cannot probe yields an error matching
// [os.ErrNotExist]; a kernel without kprobe_events (CONFIG_KPROBE_EVENTS
// unset) or uprobe_events yields an error matching [ebpf.ErrNotSupported];
// a tracefs that is not mounted yields [ErrNotMounted].
package tracefs
