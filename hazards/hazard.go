package hazards

import (
	"fmt"
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

// Evidence is a kallsyms symbol whose presence or absence settles the
// verdict, beating version numbers.
type Evidence struct {
	Symbol string `yaml:"symbol" json:"symbol"`
	// Data marks a data symbol: its absence counts only when kallsyms lists
	// data symbols (CONFIG_KALLSYMS_ALL).
	Data bool `yaml:"data,omitempty" json:"data,omitempty"`
	// Present and Absent are the verdicts each case implies; empty means "no conclusion".
	Present Verdict `yaml:"present,omitempty" json:"present,omitempty"`
	Absent  Verdict `yaml:"absent,omitempty" json:"absent,omitempty"`
}

// Requires lists the conditions about the attachment and the machine that
// must hold for the hazard to apply at all.
type Requires struct {
	// ReadsUserMemory: the program calls a helper that reads user memory.
	ReadsUserMemory bool `yaml:"reads_user_memory,omitempty" json:"reads_user_memory,omitempty"`
	// Context names the execution context ("nmi").
	Context string `yaml:"context,omitempty" json:"context,omitempty"`
	// MinCPUs: the hazard matters from this many possible CPUs on.
	MinCPUs int `yaml:"min_cpus,omitempty" json:"min_cpus,omitempty"`
	// Seccomp: the traced process runs under a seccomp filter.
	Seccomp bool `yaml:"seccomp,omitempty" json:"seccomp,omitempty"`
}

// Params are the tunables an action uses.
type Params struct {
	// MaxActive is the kretprobe maxactive to set when capping; MaxActiveCeiling its upper bound (kernel max 4096).
	MaxActive        int `yaml:"maxactive,omitempty" json:"maxactive,omitempty"`
	MaxActiveCeiling int `yaml:"maxactive_ceiling,omitempty" json:"maxactive_ceiling,omitempty"`
	// PaceInterval spaces uprobe registrations; PaceConcurrency bounds them (1 = serialised).
	PaceInterval    Duration `yaml:"interval,omitempty" json:"interval,omitempty"`
	PaceConcurrency int      `yaml:"concurrency,omitempty" json:"concurrency,omitempty"`
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

	// Mechanisms the hazard concerns.
	Mechanisms []probe.Mechanism `yaml:"mechanisms" json:"mechanisms"`
	// Arch limits the hazard to these GOARCH names; empty means all.
	Arch []string `yaml:"arch,omitempty" json:"arch,omitempty"`
	// Affected lists go-version constraints over the upstream version; a
	// kernel matching any of them is affected ("~> 5.19.0", ">= 6.1, < 6.1.36").
	Affected []string `yaml:"affected,omitempty" json:"affected,omitempty"`
	// Distros are per-distro verdicts that beat the upstream ranges.
	Distros []DistroRange `yaml:"distros,omitempty" json:"distros,omitempty"`
	// Config flags that must be set.
	Config []ConfigCondition `yaml:"config,omitempty" json:"config,omitempty"`
	// Evidence symbols that beat version numbers.
	Evidence []Evidence `yaml:"evidence,omitempty" json:"evidence,omitempty"`
	Requires Requires   `yaml:"requires,omitempty" json:"requires,omitempty"`

	Action Action `yaml:"action" json:"action"`
	Params Params `yaml:"params,omitempty" json:"params,omitempty"`
}

// Attachment describes what is being attached, for conditions that depend
// on the program and its context rather than on the kernel.
type Attachment struct {
	// Mechanism being evaluated.
	Mechanism probe.Mechanism
	// ReadsUserMemory is true when the program reads user memory, or when
	// that could not be determined.
	ReadsUserMemory bool
	// Seccomp is true when the traced process may run under seccomp (unknown counts as true).
	Seccomp bool
}

// Finding is a hazard's verdict for one kernel and attachment.
type Finding struct {
	ID      ID      `json:"id"`
	Verdict Verdict `json:"verdict"`
	// Reason is one line naming the rule and the evidence. Its text is not
	// a stable interface.
	Reason string `json:"reason"`
	Action Action `json:"action"`
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
