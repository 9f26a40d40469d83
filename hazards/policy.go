package hazards

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/safebpf/safebpf/internal/trust"
	"github.com/safebpf/safebpf/probe"
)

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
	// OnUnknown replaces the hazard's on_unknown: what an unknown verdict
	// does (refuse, warn, allow; see OnUnknown).
	OnUnknown OnUnknown `yaml:"on_unknown,omitempty" json:"on_unknown,omitempty"`
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

// Bounds on policy and catalog values. Values beyond them are typing
// mistakes or attacks, never useful settings: a registration interval of
// 2000000h would stall every uprobe attach for centuries.
const (
	// MaxPaceInterval bounds uprobes.interval and params.interval: the
	// pause between two uprobe registrations.
	MaxPaceInterval = Duration(10 * time.Second)
	// MaxPaceConcurrency bounds uprobes.concurrency and params.concurrency:
	// how many uprobe registrations may run at once.
	MaxPaceConcurrency = 1024
	// MaxPaceBatch bounds uprobes.batch and params.batch: the symbols a
	// paced uprobe_multi link registers at a time.
	MaxPaceBatch = 1 << 20
	// MaxMinCPUs bounds min_cpus: no kernel has more possible CPUs than
	// probe.MaxCPUs.
	MaxMinCPUs = probe.MaxCPUs
)

// checkPacing validates an interval, a concurrency and a batch size
// found at path.
func checkPacing(interval Duration, concurrency, batch int, path string, ck *checker) error {
	if batch < 0 || batch > MaxPaceBatch {
		return ck.errf(joinKey(path, "batch"), "batch %d out of range: at least 0, at most %d", batch, MaxPaceBatch)
	}
	if interval < 0 || interval > MaxPaceInterval {
		return ck.errf(joinKey(path, "interval"), "interval %s out of range: at least 0, at most %s", interval, MaxPaceInterval)
	}
	if concurrency < 0 || concurrency > MaxPaceConcurrency {
		return ck.errf(joinKey(path, "concurrency"), "concurrency %d out of range: at least 0, at most %d", concurrency, MaxPaceConcurrency)
	}
	return nil
}

// UprobePacing configures uprobe registration pacing.
type UprobePacing struct {
	Interval    Duration `yaml:"interval,omitempty" json:"interval,omitempty"`
	Concurrency int      `yaml:"concurrency,omitempty" json:"concurrency,omitempty"`
	// Batch is how many symbols a paced uprobe_multi link registers at a
	// time (each batch one registration, Interval apart). Zero means the
	// hazard's parameter.
	Batch int `yaml:"batch,omitempty" json:"batch,omitempty"`
}

// Policy is a parsed policy file: the operator's edits to the catalog.
type Policy struct {
	APIVersion string `yaml:"apiVersion" json:"apiVersion"`
	// Catalog names a catalog file that replaces the built-in catalog (a
	// newer catalog, loaded without rebuilding the agent; relative paths
	// are relative to the policy file, and LoadPolicy makes them
	// absolute). Only LoadPolicy reads it; ParsePolicy rejects a policy
	// that sets it. SAFEBPF_CATALOG wins over it. CatalogFor loads it.
	Catalog string            `yaml:"catalog,omitempty" json:"catalog,omitempty"`
	Mode    Mode              `yaml:"mode,omitempty" json:"mode,omitempty"`
	Force   []ID              `yaml:"force,omitempty" json:"force,omitempty"`
	Hazards map[ID]Override   `yaml:"hazards,omitempty" json:"hazards,omitempty"`
	Kernels []KernelAssertion `yaml:"kernels,omitempty" json:"kernels,omitempty"`
	Rules   []Hazard          `yaml:"rules,omitempty" json:"rules,omitempty"`
	Uprobes UprobePacing      `yaml:"uprobes,omitempty" json:"uprobes,omitempty"`
}

// ParsePolicy parses and validates a policy file (YAML; JSON is accepted as
// YAML). name is the file name used in error messages. The policy is checked
// against the built-in catalog: hazard IDs in force, hazards and kernels
// must name a built-in hazard or one of the policy's own rules. A policy
// that names a catalog file is an error here, because ParsePolicy does no
// I/O: read such a policy with LoadPolicy. Every error is a *PolicyError
// (errors.Is(err, ErrInvalidPolicy)) carrying the line and the key path.
func ParsePolicy(name string, data []byte) (*Policy, error) {
	var p Policy
	lines, err := decodeDocument(name, data, &p)
	if err != nil {
		return nil, err
	}
	ck := &checker{file: name, lines: lines}
	if p.Catalog != "" {
		return nil, ck.errf("catalog", "a policy that names a catalog file must be read with LoadPolicy (ParsePolicy reads no files)")
	}
	if _, err := validatePolicy(&p, ck, Builtin()); err != nil {
		return nil, err
	}
	return &p, nil
}

// ErrUntrustedFile is matched by the error LoadPolicy returns for a file
// that someone other than root or the process's own user could have
// written while the process is privileged. That error matches
// ErrInvalidPolicy too. It is the same value as the sentinel of the
// internal trust checks.
var ErrUntrustedFile = trust.ErrUntrusted

// EnvCatalog is the environment variable that names a catalog file to use
// instead of the built-in one (and instead of a policy's catalog key).
const EnvCatalog = "SAFEBPF_CATALOG"

// LoadPolicy reads and parses the policy file at path, and validates it
// against its base catalog: the catalog file SAFEBPF_CATALOG names, else
// the one the policy's catalog key names (relative to the policy's
// directory), else the built-in catalog.
//
// Anyone who can edit the policy (or a catalog file) can force hazards
// past every check or declare kernels fixed, so while the process is
// privileged (effective uid 0, or CAP_SYS_ADMIN, CAP_PERFMON or CAP_BPF
// effective) LoadPolicy refuses, with an error matching [ErrUntrustedFile]
// that names the offending path and the fix, a file unless the file, every
// symbolic link followed to it and every directory above it are owned by
// root or the effective uid and not writable by group or others (a sticky
// world-writable directory such as /tmp is refused too). It reads only a
// regular file (a FIFO or a device fails at once, without blocking) of at
// most 1 MiB. Catalog files get the same checks. docs/security.md
// describes the trust model.
func LoadPolicy(path string) (*Policy, error) {
	return loadPolicy(path, trust.Current())
}

func loadPolicy(path string, tp trust.Process) (*Policy, error) {
	data, err := readTrusted(tp, path, "policy")
	if err != nil {
		return nil, err
	}
	var p Policy
	lines, err := decodeDocument(path, data, &p)
	if err != nil {
		return nil, err
	}
	ck := &checker{file: path, lines: lines}
	if p.Catalog != "" && !filepath.IsAbs(p.Catalog) {
		p.Catalog = filepath.Join(filepath.Dir(path), p.Catalog)
	}
	base := Builtin()
	switch env := os.Getenv(EnvCatalog); {
	case env != "":
		c, err := loadCatalog(env, tp)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvCatalog, err)
		}
		base = c
	case p.Catalog != "":
		c, err := loadCatalog(p.Catalog, tp)
		if err != nil {
			return nil, &PolicyError{File: path, Line: lineOf(lines, "catalog"), Key: "catalog", Msg: err.Error(), Err: err}
		}
		base = c
	}
	if _, err := validatePolicy(&p, ck, base); err != nil {
		return nil, err
	}
	return &p, nil
}

// LoadCatalog reads a catalog file (the document ParseCatalog reads,
// YAML or JSON: what `safebpf hazards --export` prints) through the same
// trust checks as LoadPolicy, and parses it as strictly as the built-in
// catalog.
func LoadCatalog(path string) (*Catalog, error) {
	return loadCatalog(path, trust.Current())
}

func loadCatalog(path string, tp trust.Process) (*Catalog, error) {
	data, err := readTrusted(tp, path, "catalog")
	if err != nil {
		return nil, err
	}
	return ParseCatalog(path, data)
}

// CatalogFor returns the catalog a policy applies to: the catalog file
// SAFEBPF_CATALOG names, else the one the policy's catalog key names, else
// the built-in catalog. A nil policy names none. Files are read (and
// checked) on every call: call it once, when setting up.
func CatalogFor(p *Policy) (*Catalog, error) {
	if path := os.Getenv(EnvCatalog); path != "" {
		c, err := LoadCatalog(path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvCatalog, err)
		}
		return c, nil
	}
	if p != nil && p.Catalog != "" {
		c, err := LoadCatalog(p.Catalog)
		if err != nil {
			return nil, fmt.Errorf("the policy's catalog key: %w", err)
		}
		return c, nil
	}
	return Builtin(), nil
}

// readTrusted reads a policy or catalog file (what) for p: a regular file
// of at most maxDocument bytes that p may trust. Use it for every file that
// can change what the loader attaches, so the checks are the same.
func readTrusted(p trust.Process, path, what string) ([]byte, error) {
	data, err := p.ReadFile(path, maxDocument, what)
	if errors.Is(err, trust.ErrUntrusted) {
		err = &untrustedError{err}
	}
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", what, err)
	}
	return data, nil
}

// untrustedError is a trust refusal. It matches ErrInvalidPolicy as well
// as ErrUntrustedFile: a file that cannot be trusted is as unusable as one
// that does not parse, and callers that handled the earlier permission
// refusal as ErrInvalidPolicy keep working.
type untrustedError struct{ err error }

func (e *untrustedError) Error() string        { return e.err.Error() }
func (e *untrustedError) Unwrap() error        { return e.err }
func (e *untrustedError) Is(target error) bool { return target == ErrInvalidPolicy }

// WithPolicy returns a new catalog with p applied to c: p's user rules are
// appended, per-hazard overrides edit entries (disable, action, params,
// min_cpus), and p's kernel assertions take precedence over every other
// rule for the releases they match. p is validated against c first. A nil p
// returns c unchanged.
func (c *Catalog) WithPolicy(p *Policy) (*Catalog, error) {
	if p == nil {
		return c, nil
	}
	if c == nil {
		c = &Catalog{}
	}
	cp, err := validatePolicy(p, &checker{}, c)
	if err != nil {
		return nil, err
	}
	n := &Catalog{
		version:    c.version,
		hazards:    make([]Hazard, 0, len(c.hazards)+len(p.Rules)),
		rules:      make([]compiledRule, 0, len(c.hazards)+len(p.Rules)),
		assertions: append(append([]assertion(nil), cp.assertions...), c.assertions...),
		withPolicy: true,
	}
	n.hazards = append(append(n.hazards, c.hazards...), p.Rules...)
	n.rules = append(append(n.rules, c.rules...), cp.rules...)
	for i := range n.hazards {
		h := &n.hazards[i]
		o, ok := p.Hazards[h.ID]
		if !ok {
			continue
		}
		if o.Disable {
			n.rules[i].disabledBy = "override"
		}
		if o.Action != "" {
			h.Action = o.Action
		}
		h.Params = mergeParams(h.Params, o.Params)
		if o.MinCPUs > 0 {
			h.Requires.MinCPUs = o.MinCPUs
		}
		if o.OnUnknown != "" {
			h.OnUnknown = o.OnUnknown
		}
	}
	return n, nil
}

// WithPolicyApplied reports whether c was made by WithPolicy: it is the
// catalog in effect under some policy, whose edits must not be applied
// again.
func (c *Catalog) WithPolicyApplied() bool { return c != nil && c.withPolicy }

// EditsCatalog reports whether p edits the catalog it is applied to:
// overrides, kernel assertions or rules. A policy that only sets the
// mode, the force list or uprobe pacing does not: the planner reads
// those from the policy itself. A nil p edits nothing.
func (p *Policy) EditsCatalog() bool {
	return p != nil && (len(p.Hazards) > 0 || len(p.Kernels) > 0 || len(p.Rules) > 0)
}

// mergeParams replaces the fields of base that over sets.
func mergeParams(base, over Params) Params {
	if over.MaxActive != 0 {
		base.MaxActive = over.MaxActive
	}
	if over.MaxActiveCeiling != 0 {
		base.MaxActiveCeiling = over.MaxActiveCeiling
	}
	if base.MaxActiveCeiling > 0 && base.MaxActive > base.MaxActiveCeiling {
		base.MaxActive = base.MaxActiveCeiling
	}
	if over.PaceInterval != 0 {
		base.PaceInterval = over.PaceInterval
	}
	if over.PaceBatch != 0 {
		base.PaceBatch = over.PaceBatch
	}
	if over.PaceConcurrency != 0 {
		base.PaceConcurrency = over.PaceConcurrency
	}
	return base
}

// Forces reports whether the policy forces hazard id (listed, or "all").
// A nil policy forces nothing.
func (p *Policy) Forces(id ID) bool {
	if p == nil {
		return false
	}
	return slices.Contains(p.Force, id) || slices.Contains(p.Force, ForceAll)
}

// EffectiveMode returns the policy's mode, Enforce when unset or p is nil.
func (p *Policy) EffectiveMode() Mode {
	if p == nil || p.Mode == "" {
		return Enforce
	}
	return p.Mode
}
