// Package loader is safebpf's drop-in way to load and attach BPF programs
// with github.com/cilium/ebpf on kernels that have known hazards.
//
// A [Loader] detects the running kernel once (or takes a described one in
// [Options]), consults the hazard catalog and the operator's policy, and for
// every attach request asks the planner (package fallback) for the safest
// mechanism that works: it may downgrade (fentry→kprobe, fexit→kretprobe,
// hardware→software perf event), upgrade (kprobe→fentry where kprobes are
// missing), cap kretprobe maxactive, pace uprobe registrations, or refuse
// with an error matching [ErrRefused]. Every decision is reported through
// OpenTelemetry (the providers in Options) and slog.
//
// # Two ways in
//
// Collection level, for agents built with bpf2go: [Loader.LoadAndAttach]
// takes an *ebpf.CollectionSpec. Programs that target the same kernel
// function with different mechanisms are alternatives — "fentry/do_unlinkat"
// beside "kprobe/do_unlinkat", "fexit/vfs_read" beside "kretprobe/vfs_read"
// — and [CollectionOptions.Groups] names further groups. One program per
// group is chosen; the others are deleted from a copy of the spec before
// loading, so the verifier never sees a program that cannot load here. Every
// chosen program with an attach point in its section name is attached:
//
//	kprobe/SYM  kretprobe/SYM  fentry/SYM  fexit/SYM  kprobe.multi/SYM
//	uprobe//path/to/bin:SYM  uretprobe//path:SYM  uprobe (target in options)
//	tracepoint/GROUP/NAME  tp/GROUP/NAME  raw_tp/NAME  raw_tracepoint/NAME  tp_btf/NAME
//	perf_event (event in CollectionOptions.PerfEvents)
//
// Per attachment, mirroring cilium/ebpf's link package so that migrating is
// a rename: [Loader.Kprobe], [Loader.Kretprobe], [Loader.AttachTracing],
// [Loader.Tracepoint], [Loader.AttachRawTracepoint], [Executable.Uprobe] and
// [Executable.Uretprobe] (from [Loader.OpenExecutable]), and
// [Loader.AttachPerfEvent]. Each returns a [*Link], which implements
// link.Link and carries its Decision. Option structs may carry the other
// variant of a program (KprobeOptions.Fentry, TracingOptions.Kprobe) so a
// single call can switch mechanism too.
//
// # Program behaviour
//
// Some hazards depend on what a program does. The loader scans each
// program's instructions, including bpf-to-bpf subprograms, for helpers that
// read user memory (bpf_probe_read_user and _str, legacy bpf_probe_read and
// _str, bpf_copy_from_user and _task, bpf_get_stack/bpf_get_stackid/
// bpf_get_task_stack with BPF_F_USER_STACK or a flag it cannot resolve).
// Unknown means "reads". Per-attachment calls have no instructions to scan
// (the kernel's dump of a loaded program hides helper IDs), so they count as
// reading unless [PerfEventOptions.Spec] is given.
//
// # Modes
//
// Enforce (the default) applies decisions. Warn attaches as requested and
// records what enforce would have done (Decision.WouldChoose). Audit
// attaches nothing: LoadAndAttach returns a Collection holding only Plans
// and Decisions, and the per-attachment calls return a Link with only a
// Decision (Link.Attached reports false).
//
// # Guarantees
//
// On any failure, everything the call created — programs, maps, perf
// events, links, tracefs events — is closed before it returns. A Loader is
// safe for concurrent use. Uprobe pacing is Loader-wide: on kernels with
// uprobe-mmap-lock-stall, registrations through one Loader are serialised
// and spaced by the policy's interval. Kretprobes with maxactive are created
// through tracefs in a group naming the owning process ("safebpf_<pid>_<n>");
// New removes such events left by dead processes.
//
// Errors name what was requested, what was decided and why, in one
// sentence: a refusal is a *fallback.RefusedError (hazard, kernel range,
// force ID), a later failure an [*AttachError] carrying the Decision. The
// text of errors and of [Explain] is not a stable interface; use errors.Is
// and errors.As.
//
// [PlanSpec] runs the analysis and the planner without loading anything,
// for `safebpf plan OBJECT.o`.
package loader
