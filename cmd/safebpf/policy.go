package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/internal/boundedio"
	"github.com/safebpf/safebpf/loader"
)

func (a *app) policyCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "policy",
		Short: "validate a policy file",
		Args: func(c *cobra.Command, args []string) error {
			return usageErr("want 'policy validate FILE'")
		},
		RunE: func(*cobra.Command, []string) error { return usageErr("want 'policy validate FILE'") },
	}
	var out outputOpts
	v := &cobra.Command{
		Use:   "validate FILE",
		Short: "check a policy file",
		Long: `Parses and checks a policy file (YAML or JSON, apiVersion safebpf/v1) with
the same code an agent's loader and 'check --policy' use: unknown keys,
wrong types, unknown hazard IDs, bad version constraints and duplicate rule
IDs are errors naming the file, line and key; a file whose apiVersion this
release does not read (a newer release's, safebpf/v2) is an error naming
the versions it reads. As root, a file writable by group or others is
refused. Then applies it to the built-in catalog. Exits 0 when valid, 1
when invalid, 2 on usage errors and unreadable files.`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErr("want exactly one FILE, got %d", len(args))
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error { return a.validatePolicy(c, &out, args[0]) },
	}
	addOutput(v, &out)
	c.AddCommand(v)
	return c
}

// policyReport is the JSON form of `safebpf policy validate`.
type policyReport struct {
	SchemaVersion int    `json:"schema_version"`
	File          string `json:"file"`
	Valid         bool   `json:"valid"`
	// Error is set when the file is invalid.
	Error *policyErrorJSON `json:"error,omitempty"`
	// The rest is set when the file is valid.
	APIVersion      string       `json:"api_version,omitempty"`
	Mode            hazards.Mode `json:"mode,omitempty"`
	Force           []hazards.ID `json:"force,omitempty"`
	Overrides       int          `json:"overrides"`
	Assertions      int          `json:"kernel_assertions"`
	Rules           int          `json:"rules"`
	CatalogHazards  int          `json:"catalog_hazards,omitempty"`
	DisabledHazards []hazards.ID `json:"disabled_hazards,omitempty"`
}

type policyErrorJSON struct {
	Message string `json:"message"`
	Line    int    `json:"line,omitempty"`
	Key     string `json:"key,omitempty"`
}

func (a *app) validatePolicy(c *cobra.Command, o *outputOpts, path string) error {
	p, asJSON, err := a.output(o)
	if err != nil {
		return err
	}
	// Unreadable (missing, a FIFO, a device) is an input error, exit 2;
	// checked without blocking before the policy loader opens it (which
	// bounds the size).
	f, err := boundedio.Open(path, "policy")
	if err != nil {
		return usageErr("%w", err)
	}
	f.Close()
	r := policyReport{SchemaVersion: schemaVersion, File: path}
	pol, err := hazards.LoadPolicy(path)
	var cat *hazards.Catalog
	if err == nil {
		// The catalog in effect, as a Loader would build it: the one
		// SAFEBPF_CATALOG or its own catalog key names, else the
		// built-in one, with the policy applied.
		var in loader.InEffect
		if in, err = (&loader.Options{Policy: pol}).InEffect(); err == nil {
			cat = in.Catalog
		}
	}
	if err != nil {
		if !errors.Is(err, hazards.ErrInvalidPolicy) {
			return usageErr("%w", err)
		}
		r.Error = &policyErrorJSON{Message: err.Error()}
		var pe *hazards.PolicyError
		if errors.As(err, &pe) {
			r.Error.Line, r.Error.Key = pe.Line, pe.Key
		}
		if asJSON {
			if err := writeJSON(a.stdout, r); err != nil {
				return err
			}
			return errRefusals
		}
		return failed(err)
	}
	r.Valid = true
	r.APIVersion, r.Mode, r.Force = pol.APIVersion, pol.EffectiveMode(), pol.Force
	r.Overrides, r.Assertions, r.Rules = len(pol.Hazards), len(pol.Kernels), len(pol.Rules)
	r.CatalogHazards = len(cat.Hazards())
	for _, id := range cat.IDs() {
		if cat.Disabled(id) {
			r.DisabledHazards = append(r.DisabledHazards, id)
		}
	}
	if asJSON {
		return writeJSON(a.stdout, r)
	}
	p.para("", path+": valid")
	p.field("apiVersion", r.APIVersion)
	p.field("mode", string(r.Mode))
	force := "none"
	if len(r.Force) > 0 {
		force = joinIDs(r.Force)
	}
	p.field("force", force)
	p.field("contents", fmt.Sprintf("%s, %s, %s", plural(r.Overrides, "override", "overrides", "no overrides"),
		plural(r.Assertions, "kernel assertion", "kernel assertions", "no kernel assertions"), plural(r.Rules, "rule", "rules", "no rules")))
	disabled := ""
	if len(r.DisabledHazards) > 0 {
		disabled = "; disabled: " + joinIDs(r.DisabledHazards)
	}
	p.field("catalog", fmt.Sprintf("%d hazards with it applied%s", r.CatalogHazards, disabled))
	return p.err
}
