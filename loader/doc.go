// Package loader is safebpf's drop-in way to load and attach BPF programs
// with github.com/cilium/ebpf on kernels that have known hazards.
//
// A [Loader] detects the running kernel (or takes a described one in
// [Options]: New only its identity, then, once each, the mechanisms a
// request may be planned onto and the facts their hazards ask, when a
// request first needs them), consults the hazard catalog and the operator's policy, and for
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
// takes an *ebpf.CollectionSpec and attaches every tracing program of it;
// [Collection.Assign] then fills the bpf2go objects. Each program is
// classified from what cilium/ebpf parsed — ProgramSpec.Type, AttachType,
// Flags and AttachTo, and the section prefix only where cilium/ebpf gives
// several sections the same type (kprobe/ and kretprobe/, kprobe/ and
// uprobe/) — and attached with its own mechanism, or the call fails naming
// its section; docs/sections.md lists every section cilium/ebpf parses.
// AttachTo is the target: a caller may retarget a placeholder program
// before loading. Targets are resolved as libbpf resolves them (syscall
// wrappers, kprobe.multi and uprobe.multi globs, "FUNC+OFFSET"); a target
// that does not exist matches os.ErrNotExist.
//
// Programs that trace the same thing through different mechanisms are
// alternatives: the entry of a function (fentry/F, kprobe/F), its return
// (fexit/F, kretprobe/F), one fexit/F against the pair kprobe/F +
// kretprobe/F, and one tracepoint (tp_btf/E, raw_tp/E, tracepoint/G/E).
// [CollectionOptions.Groups] names further groups, whose alternatives may
// be sets of programs. One alternative per group attaches: the first (in
// order of preference) the planner does not refuse; the others are
// deleted from a copy of the spec before loading, so the verifier never
// sees a program that cannot load here, and an alternative the kernel
// will not load gives way to the next. A multi program is also offered as
// single probes where the kernel has no multi links. An optional program
// or group ([CollectionOptions.Optional], a "?" section) that is refused,
// missing or fails to attach is skipped with its Decision while the rest
// attaches.
//
// Per attachment, migrating from cilium/ebpf's link package is a rename:
// [Loader.Kprobe], [Loader.Kretprobe], [Loader.KprobeMulti],
// [Loader.KretprobeMulti], [Loader.AttachTracing], [Loader.AttachLSM],
// [Loader.AttachIter], [Loader.Tracepoint], [Loader.AttachRawTracepoint],
// the uprobe methods of [Executable] (from [Loader.OpenExecutable]) or
// [Loader.Uprobe] on cilium/ebpf's *link.Executable, and
// [Loader.AttachPerfEvent]. They take cilium/ebpf's own option types and
// return a [*Link], which implements link.Link and carries its Decision
// ([*Iter] for iterators). An optional trailing [*Extra] carries program
// variants for other mechanisms, the program's spec, KeepMechanism and
// NoSeccomp.
//
// # Many targets
//
// One program attached to many functions or symbols is planned as one
// request with the real count of targets: [Loader.KprobeBatch],
// [Loader.KretprobeBatch], [Executable.UprobeBatch] and
// [Executable.UretprobeBatch] take a program as a loop over link.Kprobe
// (or Executable.Uprobe) would, and [CollectionOptions.Batches] gives a
// kprobe or uprobe program many targets in LoadAndAttach. Where the kernel
// has multi links (kprobe_multi 5.18+, uprobe_multi 6.6+) and they are
// safe, the targets go through one (the program is loaded again for it,
// from its spec, when the Loader loaded it), else through one link per
// target. A multi link the kernel will not create falls back: targets
// that do not exist fail the call naming them, or are left out when the
// batch's targets are optional ([BatchOptions].Optional, [Batch].Optional;
// [Link.Skipped] lists them); for anything else, one single link per
// target, planned again for the single mechanism. It is all or nothing
// unless the targets are optional, and the Decision says each step. Each
// target keeps its cookie. On kernels with uprobe-mmap-lock-stall a
// uprobe_multi link registers its targets in paced batches.
//
// A refusal matches [ErrRefused] and, when the only obstacle was a
// mechanism the kernel lacks, the sentinel cilium/ebpf's own call matches
// on that kernel (ErrNotSupported, os.ErrNotExist). Its error, span and
// refusal counter name the program refused, never its neighbours, and its
// log record has reached the Logger when the call returns.
//
// # Program behaviour
//
// Some hazards depend on what a program does. The loader scans each
// program's instructions, including bpf-to-bpf subprograms, for helpers that
// read user memory (bpf_probe_read_user and _str, legacy bpf_probe_read and
// _str, bpf_copy_from_user and _task, bpf_get_stack/bpf_get_stackid/
// bpf_get_task_stack with BPF_F_USER_STACK or a flag it cannot resolve).
// Unknown means "reads". Per-attachment calls scan the spec in [Extra.Spec],
// or the one the Loader kept when LoadAndAttach loaded the program; other
// programs count as reading (the kernel's dump of a loaded program hides
// helper IDs).
//
// # Modes
//
// Enforce (the default) applies decisions. Warn attaches as requested and
// records what enforce would have done (Decision.WouldChoose). Audit
// attaches nothing: LoadAndAttach loads the maps and programs (so an agent
// runs) and returns a Collection without links, and the per-attachment
// calls return a Link with only a Decision (Link.Attached reports false).
//
// # Guarantees
//
// On any failure, everything the call created — programs, maps, perf
// events, links, tracefs events — is closed before it returns. A Loader is
// safe for concurrent use. Uprobe pacing is Loader-wide: on kernels with
// uprobe-mmap-lock-stall, registrations through one Loader are serialised
// and spaced by the policy's interval. Kretprobes with maxactive are created
// through tracefs in a group naming the owning process, unique across PID
// namespaces ("safebpf_<pidns>_<pid>_<start>_<n>"); New removes such events
// whose owner is provably dead, in any PID namespace (docs/security.md).
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
