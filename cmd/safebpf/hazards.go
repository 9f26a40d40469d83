package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/safebpf/safebpf/hazards"
)

const hazardsUsage = `usage: safebpf hazards [--json] [--policy FILE] [ID]

Without ID, lists the hazard catalog (id, action, mechanisms, title). With
ID, explains one hazard: summary, affected ranges, distro notes, conditions,
evidence symbols, parameters and references. An unknown ID is an error that
lists the known IDs.

Flags:
  --json         print the catalog (a list) or the hazard as JSON
  --policy FILE  apply a policy file first (its rules and overrides show)`

func (c *cli) hazards(args []string) int {
	fs := newFlagSet("hazards")
	asJSON := fs.Bool("json", false, "")
	policyFile := fs.String("policy", "", "")
	pos, code, ok := c.parse(fs, hazardsUsage, args)
	if !ok {
		return code
	}
	if len(pos) > 1 {
		return c.usageErr("hazards", fmt.Errorf("want at most one hazard ID, got %d arguments", len(pos)))
	}
	cat, _, code, ok := c.catalog("hazards", *policyFile)
	if !ok {
		return code
	}
	if len(pos) == 0 {
		hs := cat.Hazards()
		if *asJSON {
			if err := writeJSON(c.stdout, hs); err != nil {
				c.errLine("hazards", err)
				return exitRefused
			}
			return exitOK
		}
		t := &table{header: []string{"ID", "ACTION", "MECHANISMS", "TITLE"}}
		for _, h := range hs {
			var ms []string
			for _, m := range h.Mechanisms {
				ms = append(ms, string(m))
			}
			t.add(plain(string(h.ID)), plain(string(h.Action)), plain(strings.Join(ms, ",")), plain(h.Title))
		}
		t.write(c.stdout, c.color, "")
		return exitOK
	}
	h, found := cat.Lookup(hazards.ID(pos[0]))
	if !found {
		var ids []string
		for _, id := range cat.IDs() {
			ids = append(ids, string(id))
		}
		return c.usageErr("hazards", fmt.Errorf("unknown hazard ID %q (known: %s)", pos[0], strings.Join(ids, ", ")))
	}
	if *asJSON {
		if err := writeJSON(c.stdout, h); err != nil {
			c.errLine("hazards", err)
			return exitRefused
		}
		return exitOK
	}
	explain(c.stdout, h, cat.Disabled(h.ID))
	return exitOK
}

// explain prints one hazard for a person.
func explain(w io.Writer, h *hazards.Hazard, disabled bool) {
	fmt.Fprintf(w, "%s: %s\n", h.ID, h.Title)
	if disabled {
		fmt.Fprintf(w, "(disabled by the policy)\n")
	}
	fmt.Fprintf(w, "\n%s\n\n", wrap(strings.TrimSpace(h.Summary), 76, ""))
	var ms []string
	for _, m := range h.Mechanisms {
		ms = append(ms, string(m))
	}
	fmt.Fprintf(w, "Action:      %s\n", h.Action)
	fmt.Fprintf(w, "Mechanisms:  %s\n", strings.Join(ms, ", "))
	if len(h.Arch) > 0 {
		fmt.Fprintf(w, "Arch:        %s\n", strings.Join(h.Arch, ", "))
	}
	if len(h.Affected) > 0 {
		fmt.Fprintf(w, "Affected:    %s (upstream versions)\n", strings.Join(h.Affected, "  or  "))
	}
	for _, d := range h.Distros {
		var cond []string
		if d.Upstream != "" {
			cond = append(cond, "upstream "+d.Upstream)
		}
		if d.Build != "" {
			cond = append(cond, "build "+d.Build)
		}
		line := fmt.Sprintf("Distro:      %s %s → %s", d.Distro, strings.Join(cond, ", "), d.Verdict)
		if d.Reason != "" {
			line += " (" + d.Reason + ")"
		}
		fmt.Fprintln(w, line)
	}
	for _, cf := range h.Config {
		s := "Config:      " + cf.Name + " must be set"
		if cf.UnknownMeansSet {
			s += " (an unreadable config counts as set)"
		}
		fmt.Fprintln(w, s)
	}
	for _, e := range h.Evidence {
		var parts []string
		if e.Present != "" {
			parts = append(parts, "present → "+string(e.Present))
		}
		if e.Absent != "" {
			a := "absent → " + string(e.Absent)
			if e.Data {
				a += " (data symbol: only when kallsyms lists data symbols)"
			}
			parts = append(parts, a)
		}
		fmt.Fprintf(w, "Evidence:    %s in kallsyms: %s\n", e.Symbol, strings.Join(parts, "; "))
	}
	r := h.Requires
	var req []string
	if r.ReadsUserMemory {
		req = append(req, "the program reads user memory")
	}
	if r.Context != "" {
		req = append(req, "runs in "+r.Context+" context")
	}
	if r.MinCPUs > 0 {
		req = append(req, fmt.Sprintf("at least %d possible CPUs", r.MinCPUs))
	}
	if r.Seccomp {
		req = append(req, "the traced process runs under seccomp")
	}
	if len(req) > 0 {
		fmt.Fprintf(w, "Requires:    %s\n", strings.Join(req, "; "))
	}
	p := h.Params
	var params []string
	if p.MaxActive > 0 {
		params = append(params, fmt.Sprintf("maxactive %d", p.MaxActive))
	}
	if p.MaxActiveCeiling > 0 {
		params = append(params, fmt.Sprintf("maxactive ceiling %d", p.MaxActiveCeiling))
	}
	if p.PaceInterval > 0 {
		params = append(params, "pace interval "+p.PaceInterval.String())
	}
	if p.PaceConcurrency > 0 {
		params = append(params, fmt.Sprintf("pace concurrency %d", p.PaceConcurrency))
	}
	if len(params) > 0 {
		fmt.Fprintf(w, "Parameters:  %s\n", strings.Join(params, ", "))
	}
	fmt.Fprintf(w, "Force with:  -safebpf-force=%s or SAFEBPF_FORCE=%s\n", h.ID, h.ID)
	if len(h.References) > 0 {
		fmt.Fprintf(w, "\nReferences:\n")
	}
	for _, ref := range h.References {
		var head []string
		if ref.Commit != "" {
			c := ref.Commit
			if ref.Subject != "" {
				c += fmt.Sprintf(" %q", ref.Subject)
			}
			head = append(head, c)
		}
		if ref.Link != "" {
			head = append(head, ref.Link)
		}
		fmt.Fprintf(w, "  - %s\n", strings.Join(head, " "))
		if ref.Note != "" {
			fmt.Fprintf(w, "%s\n", wrap(strings.TrimSpace(ref.Note), 72, "    "))
		}
	}
}

// wrap folds text into lines of at most width runes (words longer than
// width stay whole), each prefixed by indent.
func wrap(text string, width int, indent string) string {
	var lines []string
	var cur strings.Builder
	for _, word := range strings.Fields(text) {
		if cur.Len() > 0 && cur.Len()+1+len(word) > width {
			lines = append(lines, indent+cur.String())
			cur.Reset()
		}
		if cur.Len() > 0 {
			cur.WriteByte(' ')
		}
		cur.WriteString(word)
	}
	if cur.Len() > 0 {
		lines = append(lines, indent+cur.String())
	}
	return strings.Join(lines, "\n")
}
