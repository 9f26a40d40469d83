package hazards

// Mode says what the loader does with its decisions.
type Mode string

// The modes of a policy.
const (
	// Enforce applies decisions (the default).
	Enforce Mode = "enforce"
	// Warn attaches as requested and records what enforce would have done.
	Warn Mode = "warn"
	// Audit attaches nothing and returns the plan.
	Audit Mode = "audit"
)

// ForceAll, spelled exactly so, forces every hazard.
const ForceAll ID = "all"

// Override is an operator's edit of one built-in hazard.
type Override struct {
	Disable bool   `yaml:"disable,omitempty" json:"disable,omitempty"`
	Action  Action `yaml:"action,omitempty" json:"action,omitempty"`
	Params  Params `yaml:"params,omitempty" json:"params,omitempty"`
	// MinCPUs replaces Requires.MinCPUs (e.g. the CPU count from which kretprobe contention counts).
	MinCPUs int `yaml:"min_cpus,omitempty" json:"min_cpus,omitempty"`
}

// KernelAssertion is an operator's statement about the fleet's kernels:
// releases matching Release (a regular expression over uname -r) carry the
// fix for the listed hazards, or are known affected.
type KernelAssertion struct {
	Release  string `yaml:"release" json:"release"`
	Fixed    []ID   `yaml:"fixed,omitempty" json:"fixed,omitempty"`
	Affected []ID   `yaml:"affected,omitempty" json:"affected,omitempty"`
	Reason   string `yaml:"reason,omitempty" json:"reason,omitempty"`
}

// UprobePacing configures uprobe registration pacing.
type UprobePacing struct {
	Interval    Duration `yaml:"interval,omitempty" json:"interval,omitempty"`
	Concurrency int      `yaml:"concurrency,omitempty" json:"concurrency,omitempty"`
}

// Policy is a parsed policy file: the operator's edits to the catalog.
type Policy struct {
	APIVersion string            `yaml:"apiVersion" json:"apiVersion"`
	Mode       Mode              `yaml:"mode,omitempty" json:"mode,omitempty"`
	Force      []ID              `yaml:"force,omitempty" json:"force,omitempty"`
	Hazards    map[ID]Override   `yaml:"hazards,omitempty" json:"hazards,omitempty"`
	Kernels    []KernelAssertion `yaml:"kernels,omitempty" json:"kernels,omitempty"`
	Rules      []Hazard          `yaml:"rules,omitempty" json:"rules,omitempty"`
	Uprobes    UprobePacing      `yaml:"uprobes,omitempty" json:"uprobes,omitempty"`
}
