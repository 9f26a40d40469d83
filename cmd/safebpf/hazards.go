package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/safebpf/safebpf/hazards"
)

// hazardsOpts are the flags of `safebpf hazards`.
type hazardsOpts struct {
	out    outputOpts
	pol    policyOpts
	export bool
}

func (a *app) hazardsCommand() *cobra.Command {
	o := &hazardsOpts{}
	c := &cobra.Command{
		Use:   "hazards [ID]",
		Short: "list the hazard catalog, or explain one hazard",
		Long: `Without ID, lists the hazard catalog (id, action, title) and its version.
With ID, explains one hazard: summary, severity, what an unknown verdict
does, affected and unknown ranges, fixed releases, distro notes,
conditions, evidence, parameters and references. An unknown ID is an error
that lists the known IDs. The catalog is the built-in one, or a newer
catalog file SAFEBPF_CATALOG or the policy's catalog key names. A policy
(--policy or SAFEBPF_POLICY) is applied first: its rules and overrides
show.

--export prints the catalog listed as a catalog document ({"apiVersion",
"version", "rules": [...]}): the file format SAFEBPF_CATALOG and a policy's
catalog key load.`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageErr("want at most one hazard ID, got %d arguments", len(args))
			}
			return nil
		},
		ValidArgsFunction: func(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var ids []cobra.Completion
			for _, id := range hazards.ValidIDs() {
				ids = append(ids, string(id))
			}
			return ids, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(c *cobra.Command, args []string) error { return a.hazards(c, o, args) },
	}
	addPolicy(c, &o.pol, false)
	addOutput(c, &o.out)
	c.Flags().BoolVar(&o.export, "export", false,
		"print the catalog as a catalog document, the format SAFEBPF_CATALOG loads")
	return c
}

// catalogSource says which catalog the policy applies to.
func catalogSource(rp *resolvedPolicy) string {
	if path := os.Getenv(hazards.EnvCatalog); path != "" {
		return "the catalog from " + hazards.EnvCatalog + " (" + path + ")"
	}
	if rp.file != nil && rp.file.Catalog != "" {
		return "the catalog from " + rp.file.Catalog + " (the policy's catalog key)"
	}
	return "the built-in catalog"
}

// hazardsReport is the JSON form of `safebpf hazards`.
type hazardsReport struct {
	SchemaVersion int              `json:"schema_version"`
	Catalog       catalogJSON      `json:"catalog"`
	Policy        *policyJSON      `json:"policy,omitempty"`
	Hazards       []hazards.Hazard `json:"hazards"`
}

func (a *app) hazards(c *cobra.Command, o *hazardsOpts, args []string) error {
	p, asJSON, err := a.output(&o.out)
	if err != nil {
		return err
	}
	rp, err := a.resolvePolicy(c, &o.pol)
	if err != nil {
		return err
	}
	cat := rp.cat
	if o.export {
		if len(args) > 0 || asJSON || p.wide {
			return usageErr("--export prints the whole catalog: drop the hazard ID and the output flags")
		}
		return writeJSON(a.stdout, cat)
	}
	if len(args) == 0 {
		hs := cat.Hazards()
		info := catalogInfo(rp.base)
		if asJSON {
			r := hazardsReport{SchemaVersion: schemaVersion, Catalog: info, Hazards: hs}
			if rp.file != nil {
				pj := rp.json()
				r.Policy = &pj
			}
			return writeJSON(a.stdout, r)
		}
		head := fmt.Sprintf("%s in %s (%s)", plural(len(hs), "hazard", "hazards", "no hazards"), catalogSource(rp), info.describe())
		if rp.file != nil {
			head = fmt.Sprintf("%s in %s (%s) with the policy from %s applied", plural(len(hs), "hazard", "hazards", "no hazards"), catalogSource(rp), info.describe(), rp.policySource.Value)
		}
		p.para("", head+"; 'safebpf hazards ID' explains one.")
		p.blank()
		t := &table{header: []string{"ID", "ACTION", "TITLE"}, wrap: true}
		if p.wide {
			t.header = []string{"ID", "ACTION", "MECHANISMS", "AFFECTED", "TITLE"}
		}
		for _, h := range hs {
			action := string(h.Action)
			if cat.Disabled(h.ID) {
				action = "disabled"
			}
			if p.wide {
				var ms []string
				for _, m := range h.Mechanisms {
					ms = append(ms, string(m))
				}
				t.add(plain(string(h.ID)), plain(action), plain(strings.Join(ms, ",")), plain(hazards.RangeText(h.Affected...)), plain(h.Title))
			} else {
				t.add(plain(string(h.ID)), plain(action), plain(h.Title))
			}
		}
		t.write(p, "")
		return p.err
	}
	h, found := cat.Lookup(hazards.ID(args[0]))
	if !found {
		var ids []string
		for _, id := range cat.IDs() {
			ids = append(ids, string(id))
		}
		return usageErr("unknown hazard ID %q (known: %s)", args[0], strings.Join(ids, ", "))
	}
	if asJSON {
		// The hazard's own fields, as before, with the schema version.
		b, err := json.Marshal(h)
		if err != nil {
			return err
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return err
		}
		m["schema_version"] = schemaVersion
		m["disabled"] = cat.Disabled(h.ID)
		return writeJSON(a.stdout, m)
	}
	explain(p, h, cat.Disabled(h.ID))
	return p.err
}

// explain prints one hazard for a person.
func explain(p *printer, h *hazards.Hazard, disabled bool) {
	p.para("", fmt.Sprintf("%s: %s", h.ID, h.Title))
	if disabled {
		p.line("(disabled by the policy)")
	}
	p.blank()
	p.para("", strings.TrimSpace(h.Summary))
	p.blank()
	var ms []string
	for _, m := range h.Mechanisms {
		ms = append(ms, string(m))
	}
	field := func(name, value string) {
		for i, l := range wrap(escape(value), "", p.limit()-13) {
			if i == 0 {
				p.write(fmt.Sprintf("%-12s %s\n", name+":", l))
			} else {
				p.write(strings.Repeat(" ", 13) + l + "\n")
			}
		}
	}
	field("Action", string(h.Action))
	if h.Severity != "" {
		field("Severity", string(h.Severity))
	}
	field("On unknown", string(h.EffectiveOnUnknown()))
	field("Mechanisms", strings.Join(ms, ", "))
	if len(h.Arch) > 0 {
		field("Arch", strings.Join(h.Arch, ", "))
	}
	if len(h.Affected) > 0 {
		field("Affected", hazards.RangeText(h.Affected...)+" (upstream versions)")
	}
	if len(h.Unknown) > 0 {
		field("Unknown", hazards.RangeText(h.Unknown...)+" (no source decides)")
	}
	if len(h.FixedIn) > 0 {
		field("Fixed in", strings.Join(h.FixedIn, ", "))
	}
	for _, d := range h.Distros {
		var cond []string
		if d.Upstream != "" {
			cond = append(cond, "upstream "+hazards.RangeText(d.Upstream))
		}
		if d.Build != "" {
			cond = append(cond, "build "+hazards.RangeText(d.Build))
		}
		line := fmt.Sprintf("%s %s → %s", d.Distro, strings.Join(cond, ", "), d.Verdict)
		if d.Reason != "" {
			line += " (" + strings.TrimSpace(d.Reason) + ")"
		}
		field("Distro", line)
	}
	for _, cf := range h.Config {
		s := cf.Name + " must be set"
		if cf.UnknownMeansSet {
			s += " (an unreadable config counts as set)"
		}
		field("Config", s)
	}
	for _, e := range h.Evidence {
		var parts []string
		if e.Present != "" {
			parts = append(parts, "holds → "+string(e.Present))
		}
		if e.Absent != "" {
			a := "does not → " + string(e.Absent)
			if e.Data {
				a += " (data symbol: only when kallsyms lists data symbols)"
			}
			parts = append(parts, a)
		}
		on := ""
		if len(e.Arch) > 0 {
			on = " (on " + strings.Join(e.Arch, ", ") + ")"
		}
		field("Evidence", fmt.Sprintf("%s%s: %s", e.Fact(), on, strings.Join(parts, "; ")))
	}
	r := h.Requires
	var req []string
	if r.ReadsUserMemory {
		req = append(req, "the program reads user memory")
	}
	if r.UserStacks {
		req = append(req, "the program takes user stacks")
	}
	if r.TailCalls {
		req = append(req, "the program makes tail calls")
	}
	if r.Context != "" {
		req = append(req, "runs in "+r.Context+" context")
	}
	if r.Preemptible {
		req = append(req, "the kernel is built preemptible (CONFIG_PREEMPTION)")
	}
	if r.MinCPUs > 0 {
		req = append(req, fmt.Sprintf("at least %d possible CPUs", r.MinCPUs))
	}
	if r.Seccomp {
		req = append(req, "the traced process runs under seccomp")
	}
	if len(req) > 0 {
		field("Requires", strings.Join(req, "; "))
	}
	pr := h.Params
	var params []string
	if pr.MaxActive > 0 {
		params = append(params, fmt.Sprintf("maxactive %d", pr.MaxActive))
	}
	if pr.MaxActiveCeiling > 0 {
		params = append(params, fmt.Sprintf("maxactive ceiling %d", pr.MaxActiveCeiling))
	}
	if pr.PaceInterval > 0 {
		params = append(params, "pace interval "+pr.PaceInterval.String())
	}
	if pr.PaceConcurrency > 0 {
		params = append(params, fmt.Sprintf("pace concurrency %d", pr.PaceConcurrency))
	}
	if len(params) > 0 {
		field("Parameters", strings.Join(params, ", "))
	}
	field("Force with", fmt.Sprintf("SAFEBPF_FORCE=%s, -safebpf-force=%s (agents) or --force %s", h.ID, h.ID, h.ID))
	if len(h.References) > 0 {
		p.blank()
		p.line("References:")
	}
	elided := false
	for _, ref := range h.References {
		if ref.Commit != "" {
			head := ref.Commit
			if ref.Subject != "" {
				head += fmt.Sprintf(" %q", ref.Subject)
			}
			p.para("  - ", head)
		}
		if ref.Link != "" {
			indent := "  - "
			if ref.Commit != "" {
				indent = "    "
			}
			link := escape(ref.Link)
			if !p.wide && columns(indent+link) > width {
				link, elided = elide(link, width-columns(indent)), true
			}
			p.write(indent + link + "\n")
		}
		if ref.Note != "" {
			p.para("    ", strings.TrimSpace(ref.Note))
		}
	}
	if elided {
		p.blank()
		p.line("Long links are shortened; -o wide prints them whole.")
	}
}
