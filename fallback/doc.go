// Package fallback is the planner: given what a kernel is ([probe.Kernel]),
// the hazards known about it ([hazards.Catalog]), one attach [Request] and
// the operator's [hazards.Policy], [Plan] picks the mechanism to attach
// with and its [Settings], and explains every move in ordered [Step]s.
//
// The package is pure: no I/O, no cilium/ebpf, no telemetry. The loader
// records the Decisions it returns.
//
// # Three-valued inputs
//
// A mechanism is usable only when the kernel conclusively supports it
// ([probe.Support.Yes]) and no finding blocks it. An undecided probe counts
// as "not available". A hazard whose verdict is [hazards.Unknown] acts as
// its on_unknown says (the finding's OnUnknown, see hazards' "Unknown
// verdicts"): refuse (the default for lockups, crashes and performance
// hazards) counts it as affected and the step's reason says so ("verdict
// unknown …, treated as not safe"); warn keeps the mechanism and adds a
// Warn step; allow keeps the mechanism without a step (the finding stays in
// Decision.Findings). Unknown is never silently treated as safe.
//
// # Actions of hazards
//
// For the mechanism being considered, each finding that is affected or
// unknown acts according to its action:
//
//   - downgrade, avoid, refuse: the mechanism is blocked; the planner
//     follows an edge away from it (below) or refuses.
//   - cap (kretprobe-contention): on kretprobe, the planner first prefers
//     fexit when the request has an fexit variant and fexit is available and
//     safe (an Upgrade step); otherwise it sets Settings.MaxActive to the
//     requested maxactive, else the hazard's params.maxactive (a policy
//     override wins), else the kernel default max(10, 2*CPUs), never above
//     params.maxactive_ceiling and never above [hazards.MaxActiveLimit].
//     On any other mechanism a cap finding is reported as a warning.
//   - pace (uprobe-mmap-lock-stall): Settings.Pacing from the policy's
//     uprobes section, else the hazard's params, else [DefaultPaceInterval]
//     and [DefaultPaceConcurrency]. A registration is one uprobe, or one
//     batch of a uprobe_multi link's symbols: multi links are registered
//     Pacing.Batch symbols at a time (uprobes.batch, the params' batch,
//     else [DefaultPaceBatch]), each batch a paced registration.
//   - warn, or an action the planner does not know: a Warn step only.
//
// # Edges
//
// When the current mechanism is blocked or unavailable (each only when the
// request is not pinned):
//
//	fentry → kprobe, fexit → kretprobe                 downgrade, needs the variant in Request.Alternatives
//	kprobe → fentry, kretprobe → fexit                 upgrade, needs the variant
//	perf-event-hardware → perf-event-software          downgrade, no variant, same frequency/period;
//	                                                   only when hardware events are unavailable (the
//	                                                   cpu-clock event runs in hard IRQ and shares the
//	                                                   user-read deadlocks, so it is no remedy for a hazard)
//	kprobe-multi → kprobe, kretprobe-multi → kretprobe,
//	uprobe-multi → uprobe, uretprobe-multi → uretprobe downgrade, needs the single variant
//	tp-btf → raw-tracepoint → tracepoint               downgrade, needs the variant
//
// fmod-ret, lsm and iter have no edges: a blocking hazard refuses them.
// Every target of an edge is assessed like the request itself, so an
// upgrade never lands on a hazard (kretprobe → fexit is not taken where
// fexit-sleeping-detach-crash applies).
//
// The planner takes the first candidate that is usable. If none is, it
// still steps to the first candidate, so the chain of mechanisms tried is
// visible, and refuses there (e.g. fentry blocked by x86-text-poke-race →
// kprobe also blocked → refusal). A mechanism is never visited twice.
//
// When the current mechanism is usable and the request is not pinned:
// kretprobe with an acting kretprobe-contention finding upgrades to fexit
// (see cap above), and a kprobe, kretprobe, uprobe or uretprobe request with
// Request.Targets ≥ 2 upgrades to kprobe-multi, kretprobe-multi,
// uprobe-multi or uretprobe-multi (Settings.Multi) when the request carries
// the program in its multi form (Request.Alternatives: a multi link takes
// a program loaded for it) and the multi mechanism is available and safe.
// When it does not, a step with Action allow says why the targets were not
// batched (no multi form, the multi mechanism missing, or the hazard that
// blocks it): one link per target. Batching steps are the only steps that
// may name neither a hazard nor a missing mechanism: they are improvements,
// not escapes.
//
// Decision.Action is the first mechanism-changing action (downgrade or
// upgrade), else the first of cap, pace or warn that applied, else allow;
// refuse when nothing remains.
//
// # Pinned requests
//
// A pinned request ([Request.Pinned]) is never moved to another mechanism:
// a blocking hazard or a missing mechanism refuses it. Cap and pace still
// apply, because they change settings, not the mechanism, and make the
// requested attachment safer; warnings are reported as usual.
//
// # Force
//
// A hazard listed in the policy's force list (or every hazard, with the
// exact ID "all") is treated as not affecting the chosen mechanism: it
// neither blocks, caps nor paces. It is reported as a Warn step with Forced
// set and listed in Decision.Forced.
//
// # Modes
//
// Enforce (the default) and audit plan the same way; in audit mode the
// loader attaches nothing. In warn mode Plan never refuses: Chosen is the
// requested mechanism with the requested settings and Action is Warn (allow
// when enforce would have allowed), while Steps, WouldChoose, WouldAction
// and WouldSettings show what enforce would have done.
//
// # Refusals
//
// A refusal returns the complete Decision (Action refuse, no Chosen) and a
// *[RefusedError] that matches [ErrRefused], names every blocking hazard
// with its verdict reason, affected ranges and the releases that fix it,
// every missing mechanism, the steps tried, and the flag and environment
// variable that force it. The
// text of reasons and error messages is for people and is not a stable
// interface.
package fallback
