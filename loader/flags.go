package loader

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/safebpf/safebpf/hazards"
)

// Command-line flag names and environment variables of the operator's
// override. Flags beat the environment.
const (
	// FlagForce takes comma-separated hazard IDs to force past, or "all".
	FlagForce = "safebpf-force"
	// FlagPolicy takes the path of a policy file.
	FlagPolicy = "safebpf-policy"
	// EnvForce is the environment counterpart of FlagForce.
	EnvForce = "SAFEBPF_FORCE"
	// EnvPolicy is the environment counterpart of FlagPolicy.
	EnvPolicy = "SAFEBPF_POLICY"
)

// FlagSet is the part of a flag set RegisterFlags needs. It is satisfied
// by *flag.FlagSet and by pflag's *FlagSet.
type FlagSet interface {
	StringVar(p *string, name, value, usage string)
}

// Flags holds the operator's override as given on the command line. Create
// it with RegisterFlags, parse the flag set, then call Apply. A nil *Flags
// reads only the environment.
type Flags struct {
	force  string
	policy string
}

// RegisterFlags registers -safebpf-force and -safebpf-policy on fs and
// returns the Flags they fill in when fs is parsed.
func RegisterFlags(fs FlagSet) *Flags {
	f := &Flags{}
	fs.StringVar(&f.force, FlagForce, "",
		`comma-separated hazard IDs to attach past despite the hazard, or "all" (env `+EnvForce+`)`)
	fs.StringVar(&f.policy, FlagPolicy, "",
		"path of a safebpf policy file (env "+EnvPolicy+")")
	return f
}

// source returns the value in effect and where it came from, for error
// messages: the flag when set, else the environment variable.
func (f *Flags) source(flagValue, flagName, env string) (value, source string) {
	if f != nil && flagValue != "" {
		return flagValue, "-" + flagName
	}
	if v := os.Getenv(env); v != "" {
		return v, env
	}
	return "", ""
}

func (f *Flags) values() (force, forceSrc, policy, policySrc string) {
	var ff, fp string
	if f != nil {
		ff, fp = f.force, f.policy
	}
	force, forceSrc = f.source(ff, FlagForce, EnvForce)
	policy, policySrc = f.source(fp, FlagPolicy, EnvPolicy)
	return force, forceSrc, policy, policySrc
}

// Resolve reads the flags and, for each flag left empty, its environment
// variable. It loads the policy file (nil when none is given) with
// hazards.LoadPolicy and validates the force IDs against cat (nil means
// hazards.Builtin()) and the policy's rules. An empty flag cannot override
// a set environment variable: unset the variable instead.
func (f *Flags) Resolve(cat *hazards.Catalog) ([]hazards.ID, *hazards.Policy, error) {
	force, forceSrc, path, policySrc := f.values()
	var pol *hazards.Policy
	if path != "" {
		p, err := hazards.LoadPolicy(path)
		if err != nil {
			return nil, nil, fmt.Errorf("load policy from %s: %w", policySrc, err)
		}
		pol = p
	}
	ids, err := ParseForce(force, cat, pol)
	if err != nil {
		return nil, nil, fmt.Errorf("parse %s: %w", forceSrc, err)
	}
	return ids, pol, nil
}

// Apply merges the operator's override into o: the policy file, when one is
// given, replaces o.Policy, and the forced IDs are added to o.Force. Force
// IDs are checked against o.Catalog (nil: hazards.Builtin()) and the rules
// of the policy in effect.
func (f *Flags) Apply(o *Options) error {
	if o == nil {
		return fmt.Errorf("apply safebpf flags: nil *Options: %w", errInvalidInput)
	}
	force, forceSrc, path, policySrc := f.values()
	pol := o.Policy
	if path != "" {
		p, err := hazards.LoadPolicy(path)
		if err != nil {
			return fmt.Errorf("load policy from %s: %w", policySrc, err)
		}
		pol = p
	}
	ids, err := ParseForce(force, o.Catalog, pol)
	if err != nil {
		return fmt.Errorf("parse %s: %w", forceSrc, err)
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
	return nil
}

// ForceFromEnv parses SAFEBPF_FORCE against cat (nil: hazards.Builtin())
// and the rules of pol (may be nil). It returns nil when the variable is
// unset or empty.
func ForceFromEnv(cat *hazards.Catalog, pol *hazards.Policy) ([]hazards.ID, error) {
	v := os.Getenv(EnvForce)
	ids, err := ParseForce(v, cat, pol)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", EnvForce, err)
	}
	return ids, nil
}

// ParseForce parses a comma-separated list of hazard IDs. Spaces around
// IDs and empty items are ignored, and duplicates are dropped. Each ID must
// name a hazard of cat (nil means hazards.Builtin()) or a rule of pol (may
// be nil), or be hazards.ForceAll spelled exactly "all". An unknown ID is a
// *hazards.UnknownIDError listing the known IDs (errors.Is
// hazards.ErrUnknownHazard); "ALL" and other spellings of "all" get a hint.
func ParseForce(s string, cat *hazards.Catalog, pol *hazards.Policy) ([]hazards.ID, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	if cat == nil {
		cat = hazards.Builtin()
	}
	known := cat.IDs()
	if pol != nil {
		for _, h := range pol.Rules {
			known = append(known, h.ID)
		}
	}
	var ids []hazards.ID
	for _, item := range strings.Split(s, ",") {
		id := hazards.ID(strings.TrimSpace(item))
		if id == "" || slices.Contains(ids, id) {
			continue
		}
		if id != hazards.ForceAll && !slices.Contains(known, id) {
			return nil, &hazards.UnknownIDError{ID: id, Known: known}
		}
		ids = append(ids, id)
	}
	return ids, nil
}
