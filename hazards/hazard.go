package hazards

import (
	"fmt"
	"strings"
	"time"

	"github.com/safebpf/safebpf/probe"
)

// ID is a hazard's stable identifier, e.g. "nmi-user-read-deadlock".
type ID string

// Verdict is a three-valued answer: is this kernel affected by a hazard?
type Verdict string

// The verdicts. Unknown is never treated as safe by the planner.
const (
	Affected    Verdict = "affected"
	NotAffected Verdict = "not-affected"
	Unknown     Verdict = "unknown"
)

// Action is what a hazard calls for when a kernel is affected.
type Action string

// The actions a hazard may call for.
const (
	// ActionDowngrade moves to a safer mechanism (fentry→kprobe, hardware→software perf event).
	ActionDowngrade Action = "downgrade"
	// ActionAvoid avoids the mechanism if any other works, else refuses.
	ActionAvoid Action = "avoid"
	// ActionRefuse refuses the mechanism unless forced.
	ActionRefuse Action = "refuse"
	// ActionCap caps kretprobe maxactive (or prefers fexit when safe).
	ActionCap Action = "cap"
	// ActionPace serialises and spaces registrations.
	ActionPace Action = "pace"
	// ActionWarn only reports.
	ActionWarn Action = "warn"
)

// Reference is a source for a fact in a hazard entry: an upstream commit
// (12+ hex digits and its subject), a link, or both.
type Reference struct {
	Commit  string `yaml:"commit,omitempty" json:"commit,omitempty"`
	Subject string `yaml:"subject,omitempty" json:"subject,omitempty"`
	Link    string `yaml:"link,omitempty" json:"link,omitempty"`
	// Note says what the reference establishes ("introduced", "fixed in 6.4", "stable 6.1.36").
	Note string `yaml:"note,omitempty" json:"note,omitempty"`
}

// DistroRange states a verdict for a distribution's own builds, where the
// upstream version does not tell (backports).
type DistroRange struct {
	// Distro is the os-release ID ("ubuntu", "rhel", "centos", "amzn", "debian").
	Distro string `yaml:"distro" json:"distro"`
	// Upstream is a version constraint over the upstream version ("~> 6.8.0").
	Upstream string `yaml:"upstream,omitempty" json:"upstream,omitempty"`
	// Build is a constraint over the distro build number: Ubuntu ABI
	// (">= 86"), RHEL build (">= 362"), Debian package revision.
	Build string `yaml:"build,omitempty" json:"build,omitempty"`
	// Verdict applies when both constraints hold.
	Verdict Verdict `yaml:"verdict" json:"verdict"`
	// Reason cites the source for this distro fact.
	Reason string `yaml:"reason,omitempty" json:"reason,omitempty"`
}

// ConfigCondition requires a kernel config flag.
type ConfigCondition struct {
	Name string `yaml:"name" json:"name"`
	// UnknownMeansSet treats an unreadable config as if the flag were set.
	UnknownMeansSet bool `yaml:"unknown_means_set,omitempty" json:"unknown_means_set,omitempty"`
}

// Severity says what a hazard does to a machine when it strikes. It sets
// the default of OnUnknown.
type Severity string

// The severities.
const (
	// SeverityLockup: the machine or a task hangs (deadlock, hard lockup).
	SeverityLockup Severity = "lockup"
	// SeverityCrash: the kernel oopses or panics, or a traced process is
	// killed.
	SeverityCrash Severity = "crash"
	// SeverityFunctional: programs load or attach but do not do what they
	// should (refused tail calls, missed events).
	SeverityFunctional Severity = "functional"
	// SeverityPerformance: contention, stalls or dropped events under
	// load; the machine keeps working.
	SeverityPerformance Severity = "performance"
)

// OnUnknown is what an Unknown verdict does to a plan.
type OnUnknown string

// The on_unknown choices.
const (
	// OnUnknownRefuse treats an unknown verdict exactly as affected: the
	// hazard's action applies (downgrade, avoid and refuse block the
	// mechanism, so the planner moves to a safe alternative when one
	// exists and refuses unless forced otherwise; cap and pace apply
	// their settings; warn warns).
	OnUnknownRefuse OnUnknown = "refuse"
	// OnUnknownWarn attaches as planned and reports the unknown verdict
	// as a warning step; the mechanism stays usable.
	OnUnknownWarn OnUnknown = "warn"
	// OnUnknownAllow attaches as planned without a step; the finding,
	// with its unknown verdict and reason, stays in Decision.Findings.
	OnUnknownAllow OnUnknown = "allow"
)

// Evidence is one fact about the running kernel whose holding or not
// settles the verdict, beating configs and version numbers. Exactly one of
// SelfTest, Call, Symbol and BTF is set. Evidence is weighed in the order
// of trust selftest > call > symbol > btf (catalog order within a kind);
// the first conclusive answer with a verdict wins.
type Evidence struct {
	// SelfTest names a live self-test ("uretprobe-seccomp-kill"); the fact
	// holds when the self-test saw the bug.
	SelfTest string `yaml:"selftest,omitempty" json:"selftest,omitempty"`
	// Call is "function -> callee": the function's machine code (read
	// from /proc/kcore) contains a direct call to the callee.
	Call string `yaml:"call,omitempty" json:"call,omitempty"`
	// Symbol is a name in /proc/kallsyms, matched exactly.
	Symbol string `yaml:"symbol,omitempty" json:"symbol,omitempty"`
	// BTF is a member path in the kernel's BTF ("bpf_map.owner.attach_func_proto").
	BTF string `yaml:"btf,omitempty" json:"btf,omitempty"`
	// Data marks a data symbol (Symbol only): its absence counts only when
	// kallsyms lists data symbols (CONFIG_KALLSYMS_ALL).
	Data bool `yaml:"data,omitempty" json:"data,omitempty"`
	// Arch limits the evidence to these GOARCH names (machine code is
	// per-arch); empty means all. Elsewhere the evidence is skipped.
	Arch []string `yaml:"arch,omitempty" json:"arch,omitempty"`
	// Present and Absent are the verdicts when the fact holds and when it
	// does not; empty means "no conclusion", and the next evidence (or
	// rule) decides.
	Present Verdict `yaml:"present,omitempty" json:"present,omitempty"`
	Absent  Verdict `yaml:"absent,omitempty" json:"absent,omitempty"`
}

// Fact returns the fact the evidence asks about.
func (e Evidence) Fact() probe.Fact {
	switch {
	case e.SelfTest != "":
		return probe.Fact{Kind: probe.FactSelfTest, Name: e.SelfTest}
	case e.Call != "":
		fn, callee, _ := strings.Cut(e.Call, "->")
		return probe.Fact{Kind: probe.FactCall, Name: strings.TrimSpace(fn) + "->" + strings.TrimSpace(callee)}
	case e.BTF != "":
		return probe.Fact{Kind: probe.FactBTF, Name: e.BTF}
	}
	return probe.Fact{Kind: probe.FactSymbol, Name: e.Symbol, Data: e.Data}
}

// Requires lists the conditions about the attachment and the machine that
// must hold for the hazard to apply at all.
type Requires struct {
	// ReadsUserMemory: the program reads user memory through
	// bpf_probe_read_user*, the legacy bpf_probe_read*, or
	// bpf_copy_from_user* (copy_from_user_nofault in the kernel).
	ReadsUserMemory bool `yaml:"reads_user_memory,omitempty" json:"reads_user_memory,omitempty"`
	// UserStacks: the program walks user stacks (bpf_get_stack,
	// bpf_get_stackid, bpf_get_task_stack with BPF_F_USER_STACK;
	// copy_from_user_nmi in the kernel on x86).
	UserStacks bool `yaml:"user_stacks,omitempty" json:"user_stacks,omitempty"`
	// TailCalls: the program makes tail calls (bpf_tail_call).
	TailCalls bool `yaml:"tail_calls,omitempty" json:"tail_calls,omitempty"`
	// Context names the execution context: "interrupt" (the program runs
	// in hard-IRQ or NMI context, as probe.Mechanism.InterruptContext
	// answers for the mechanism and the attachment's targets: always for
	// perf events; maybe for programs on kernel functions and events,
	// which makes an affected verdict unknown; never for uprobes and for
	// programs on syscall entry points) or "nmi" (only
	// perf-event-hardware).
	Context string `yaml:"context,omitempty" json:"context,omitempty"`
	// MinCPUs: the hazard matters from this many possible CPUs on.
	MinCPUs int `yaml:"min_cpus,omitempty" json:"min_cpus,omitempty"`
	// Seccomp: the traced process runs under a seccomp filter.
	Seccomp bool `yaml:"seccomp,omitempty" json:"seccomp,omitempty"`
	// Preemptible: the kernel was built with CONFIG_PREEMPTION (read from
	// /proc/version, else the config); without it there is no Tasks RCU.
	// Weighed after the evidence, with the config conditions.
	Preemptible bool `yaml:"preemptible,omitempty" json:"preemptible,omitempty"`
}

// Params are the tunables an action uses.
type Params struct {
	// MaxActive is the kretprobe maxactive to set when capping;
	// MaxActiveCeiling its upper bound (0: MaxActiveLimit, the kernel's).
	MaxActive        int `yaml:"maxactive,omitempty" json:"maxactive,omitempty"`
	MaxActiveCeiling int `yaml:"maxactive_ceiling,omitempty" json:"maxactive_ceiling,omitempty"`
	// PaceInterval spaces uprobe registrations; PaceConcurrency bounds them (1 = serialised).
	PaceInterval    Duration `yaml:"interval,omitempty" json:"interval,omitempty"`
	PaceConcurrency int      `yaml:"concurrency,omitempty" json:"concurrency,omitempty"`
	// PaceBatch is how many symbols a paced uprobe_multi link registers at
	// a time: each batch is one registration, PaceInterval apart. Zero
	// means the planner's default (fallback.DefaultPaceBatch).
	PaceBatch int `yaml:"batch,omitempty" json:"batch,omitempty"`
}

// Duration is a time.Duration written as "50ms" in YAML and JSON.
type Duration time.Duration

// Hazard is one catalog entry. The built-in catalog and a policy file's
// user rules share this schema.
type Hazard struct {
	ID         ID          `yaml:"id" json:"id"`
	Title      string      `yaml:"title" json:"title"`
	Summary    string      `yaml:"summary" json:"summary"`
	References []Reference `yaml:"references" json:"references"`

	// Severity is what the bug does (lockup, crash, functional,
	// performance). It sets the default of OnUnknown. Every built-in
	// hazard has one; a user rule without one counts as a lockup.
	Severity Severity `yaml:"severity,omitempty" json:"severity,omitempty"`
	// OnUnknown is what an Unknown verdict does (refuse, warn, allow).
	// Empty means the severity's default: refuse for lockup, crash and
	// performance (for those, treating unknown as affected only applies
	// their cap or pace settings), warn for functional.
	OnUnknown OnUnknown `yaml:"on_unknown,omitempty" json:"on_unknown,omitempty"`

	// Mechanisms the hazard concerns.
	Mechanisms []probe.Mechanism `yaml:"mechanisms" json:"mechanisms"`
	// Arch limits the hazard to these GOARCH names; empty means all.
	Arch []string `yaml:"arch,omitempty" json:"arch,omitempty"`
	// Affected lists go-version constraints over the upstream version; a
	// kernel matching any of them is affected ("~> 5.19.0", ">= 6.1, < 6.1.36").
	Affected []string `yaml:"affected,omitempty" json:"affected,omitempty"`
	// Unknown lists constraints over the upstream version where no source
	// says whether the kernel is affected (a release the bug may predate,
	// a backport window whose sublevel is unverified). A kernel matching
	// any of them is unknown; they win over Affected.
	Unknown []string `yaml:"unknown,omitempty" json:"unknown,omitempty"`
	// FixedIn lists the releases that carry the fix ("6.1.36", "6.4"),
	// for messages: a refusal names the kernels to move to.
	FixedIn []string `yaml:"fixed_in,omitempty" json:"fixed_in,omitempty"`
	// Distros are per-distro verdicts that beat the upstream ranges.
	Distros []DistroRange `yaml:"distros,omitempty" json:"distros,omitempty"`
	// Config flags that must be set.
	Config []ConfigCondition `yaml:"config,omitempty" json:"config,omitempty"`
	// Evidence about the running kernel that beats configs and versions.
	Evidence []Evidence `yaml:"evidence,omitempty" json:"evidence,omitempty"`
	Requires Requires   `yaml:"requires,omitempty" json:"requires,omitempty"`

	Action Action `yaml:"action" json:"action"`
	Params Params `yaml:"params,omitempty" json:"params,omitempty"`
}

// EffectiveOnUnknown returns OnUnknown, or the default of the hazard's
// severity: refuse for lockup, crash, performance and an unset severity,
// warn for functional.
func (h *Hazard) EffectiveOnUnknown() OnUnknown {
	if h.OnUnknown != "" {
		return h.OnUnknown
	}
	if h.Severity == SeverityFunctional {
		return OnUnknownWarn
	}
	return OnUnknownRefuse
}

// Attachment describes what is being attached, for conditions that depend
// on the program and its context rather than on the kernel.
type Attachment struct {
	// Mechanism being evaluated.
	Mechanism probe.Mechanism
	// ReadsUserMemory is true when the program reads user memory through
	// bpf_probe_read_user*, bpf_probe_read* or bpf_copy_from_user*, or
	// when that could not be determined.
	ReadsUserMemory bool
	// ReadsUserStacks is true when the program walks user stacks
	// (BPF_F_USER_STACK), or when its stack flags could not be determined.
	ReadsUserStacks bool
	// TailCalls is true when the program makes tail calls, or when that
	// could not be determined.
	TailCalls bool
	// Seccomp is true when the traced process may run under seccomp (unknown counts as true).
	Seccomp bool
	// AttachTo lists what the program attaches to, as the kernel names
	// it: functions ("__x64_sys_getpid"), a tracepoint as "group/name", a
	// raw or BTF tracepoint's event ("sys_enter"). Empty means unknown.
	// With the mechanism it decides whether the program may run in
	// interrupt context (probe.Mechanism.InterruptContext): on syscall
	// entry points it never does.
	AttachTo []string
}

// Finding is a hazard's verdict for one kernel and attachment.
type Finding struct {
	ID      ID      `json:"id"`
	Verdict Verdict `json:"verdict"`
	// Reason is one line naming the rule and the evidence. Its text is not
	// a stable interface.
	Reason string `json:"reason"`
	Action Action `json:"action"`
	// OnUnknown is what an unknown verdict does (the hazard's effective
	// on_unknown, after policy overrides).
	OnUnknown OnUnknown `json:"on_unknown,omitempty"`
	// Mechanism is the mechanism the finding was evaluated for.
	Mechanism probe.Mechanism `json:"mechanism"`
	// Hazard is the catalog entry (after policy overrides).
	Hazard *Hazard `json:"-"`
}

// String returns the duration in time.Duration notation ("10ms").
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes the duration as "10ms".
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads a time.ParseDuration string ("10ms", "1s"). Negative
// durations are rejected.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("parse duration %q: want a duration such as \"10ms\"", b)
	}
	if v < 0 {
		return fmt.Errorf("parse duration %q: must not be negative", b)
	}
	*d = Duration(v)
	return nil
}
