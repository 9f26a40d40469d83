package loader

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/safebpf/safebpf/hazards"
)

// Command-line flag names and environment variables of the operator's
// override. Flags beat the environment. These are the only place the
// variables are read: an agent reads them through Flags (RegisterFlags,
// then Apply), and so does the safebpf command.
const (
	// FlagForce takes comma-separated hazard IDs to force past, or "all".
	FlagForce = "safebpf-force"
	// FlagPolicy takes the path of a policy file.
	FlagPolicy = "safebpf-policy"
	// FlagHostRoot takes the directory the host's root is mounted at in a
	// container (Options.HostRoot).
	FlagHostRoot = "safebpf-host-root"
	// EnvForce is the environment counterpart of FlagForce.
	EnvForce = "SAFEBPF_FORCE"
	// EnvPolicy is the environment counterpart of FlagPolicy.
	EnvPolicy = "SAFEBPF_POLICY"
	// EnvHostRoot is the environment counterpart of FlagHostRoot.
	EnvHostRoot = "SAFEBPF_HOST_ROOT"
)

// FlagSet is the part of a flag set RegisterFlags needs. It is satisfied
// by *flag.FlagSet and by pflag's *FlagSet.
type FlagSet interface {
	StringVar(p *string, name, value, usage string)
}

// Flags holds the operator's override as given on the command line. Create
// it with RegisterFlags, parse the flag set, then call Apply; a program
// with flags of its own names (the safebpf command's --force) sets the
// fields itself. A nil *Flags reads only the environment.
type Flags struct {
	// Force, Policy and HostRoot are the values given on the command line.
	// Empty means not given: the environment variable (EnvForce,
	// EnvPolicy, EnvHostRoot) counts instead.
	Force, Policy, HostRoot string

	// registered is set by RegisterFlags: messages then name the flags.
	registered bool
}

// RegisterFlags registers -safebpf-force, -safebpf-policy and
// -safebpf-host-root on fs and returns the Flags they fill in when fs is
// parsed.
func RegisterFlags(fs FlagSet) *Flags {
	f := &Flags{registered: true}
	fs.StringVar(&f.Force, FlagForce, "",
		`comma-separated hazard IDs to attach past despite the hazard, or "all" (env `+EnvForce+`)`)
	fs.StringVar(&f.Policy, FlagPolicy, "",
		"path of a safebpf policy file (env "+EnvPolicy+")")
	fs.StringVar(&f.HostRoot, FlagHostRoot, "",
		"where the host's / is mounted when running in a container, e.g. /host (env "+EnvHostRoot+")")
	return f
}

// Setting is one override as resolved: its value and where it came from.
type Setting struct {
	// Value is the value in effect; empty when neither the flag nor the
	// environment variable gives one.
	Value string `json:"value,omitempty"`
	// Source is "-safebpf-force" (the flag, named as registered; "flag"
	// when the program set Flags itself), "SAFEBPF_FORCE" (the
	// environment), or empty when unset.
	Source string `json:"source,omitempty"`
}

// setting returns the value in effect and where it came from: the flag
// when set, else the environment variable.
func (f *Flags) setting(flagValue, flagName, env string) Setting {
	if f != nil && flagValue != "" {
		if !f.registered {
			return Setting{flagValue, "flag"}
		}
		return Setting{flagValue, "-" + flagName}
	}
	if v := os.Getenv(env); v != "" {
		return Setting{v, env}
	}
	return Setting{}
}

// Settings returns the force list, policy path and host root in effect
// and where each came from. It reads the environment for each flag left
// empty; an empty flag cannot override a set environment variable (unset
// the variable instead).
func (f *Flags) Settings() (force, policy, hostRoot Setting) {
	var ff, fp, fh string
	if f != nil {
		ff, fp, fh = f.Force, f.Policy, f.HostRoot
	}
	return f.setting(ff, FlagForce, EnvForce),
		f.setting(fp, FlagPolicy, EnvPolicy),
		f.setting(fh, FlagHostRoot, EnvHostRoot)
}

// Resolve reads the flags and, for each flag left empty, its environment
// variable. It loads the policy file (nil when none is given) with
// hazards.LoadPolicy and parses the force list with
// hazards.Catalog.ParseForce (cat nil means hazards.Builtin()): every
// well-formed ID is returned, known or not (New ignores, with a warning,
// those the catalog in effect does not know; see hazards.FromOperator).
// The host root is not read: see Settings and Apply.
func (f *Flags) Resolve(cat *hazards.Catalog) ([]hazards.ID, *hazards.Policy, error) {
	force, policy, _ := f.Settings()
	var pol *hazards.Policy
	if policy.Value != "" {
		p, err := hazards.LoadPolicy(policy.Value)
		if err != nil {
			return nil, nil, fmt.Errorf("load policy from %s: %w", policy.Source, err)
		}
		pol = p
	}
	ids, err := parseForce(force, cat)
	if err != nil {
		return nil, nil, err
	}
	return ids, pol, nil
}

// Apply merges the operator's override into o: the policy file, when one is
// given, replaces o.Policy; the forced IDs are added to o.Force; and the
// host root, when one is given, replaces o.HostRoot. A well-formed force
// ID the catalog does not know is kept: New logs it and ignores it (see
// Options.Force). On error, o is unchanged.
func (f *Flags) Apply(o *Options) error {
	if o == nil {
		return fmt.Errorf("apply safebpf flags: nil *Options: %w", errInvalidInput)
	}
	force, policy, hostRoot := f.Settings()
	pol := o.Policy
	if policy.Value != "" {
		p, err := hazards.LoadPolicy(policy.Value)
		if err != nil {
			return fmt.Errorf("load policy from %s: %w", policy.Source, err)
		}
		pol = p
	}
	ids, err := parseForce(force, o.Catalog)
	if err != nil {
		return err
	}
	o.Policy = pol
	seen := map[hazards.ID]bool{}
	for _, id := range o.Force {
		seen[id] = true
	}
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			o.Force = append(o.Force, id)
		}
	}
	if hostRoot.Value != "" {
		o.HostRoot = hostRoot.Value
	}
	return nil
}

// ForceFromEnv parses SAFEBPF_FORCE as Flags.Resolve parses the force
// list. It returns nil when the variable is unset or empty.
func ForceFromEnv(cat *hazards.Catalog) ([]hazards.ID, error) {
	return parseForce(Setting{Value: os.Getenv(EnvForce), Source: EnvForce}, cat)
}

// parseForce parses the force list in s, naming where it came from in
// errors: every well-formed ID, known to cat or not.
func parseForce(s Setting, cat *hazards.Catalog) ([]hazards.ID, error) {
	f, err := cat.ParseForce(s.Value, hazards.FromOperator)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", s.Source, err)
	}
	return f.IDs, nil
}

// warnUnknownForce logs the force IDs this release does not know, which
// New ignores. With a nil logger it logs to slog.Default(): an override
// that does nothing must be findable.
func warnUnknownForce(s *startLog, logger *slog.Logger, unknown, known []hazards.ID) {
	if len(unknown) == 0 {
		return
	}
	if logger == nil {
		logger = slog.Default()
	}
	// Through the start-up log: a blocked handler must not stall New.
	s.add(logger.Handler(), slog.LevelWarn, "safebpf: ignoring force IDs this release does not know (a newer release's?): they force nothing",
		slog.Any("ids", unknown), slog.Any("known", known))
}
