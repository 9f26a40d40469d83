package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/loader"
	"github.com/safebpf/safebpf/probe"
)

// outputOpts are the output flags every command has.
type outputOpts struct {
	json   bool
	format string
}

func addOutput(c *cobra.Command, o *outputOpts) {
	c.Flags().BoolVar(&o.json, "json", false, `print one JSON document (with "schema_version")`)
	c.Flags().StringVarP(&o.format, "output", "o", "", "output format: wide (full text, no 80-column limit) or json")
	_ = c.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]cobra.Completion{"wide", "json"}, cobra.ShellCompDirectiveNoFileComp))
}

// printer returns the human printer, or nil when the output is JSON.
func (a *app) output(o *outputOpts) (p *printer, asJSON bool, err error) {
	switch o.format {
	case "":
	case "json":
		return nil, true, nil
	case "wide":
		if o.json {
			return nil, false, usageErr("--json and -o wide exclude each other")
		}
		return &printer{w: a.stdout, color: a.color, wide: true}, false, nil
	default:
		return nil, false, usageErr("-o %q: want wide or json", o.format)
	}
	if o.json {
		return nil, true, nil
	}
	return &printer{w: a.stdout, color: a.color}, false, nil
}

// assumption is what probe, check and plan assume about the program, one
// statement for all three, changed by the same flags.
type assumption struct {
	// ReadsUserMemory: the program reads user memory with the probe-read
	// or copy-from-user helpers.
	ReadsUserMemory bool `json:"reads_user_memory"`
	// UserStacks: the program takes user stacks (BPF_F_USER_STACK).
	UserStacks bool `json:"user_stacks"`
	// TailCalls: the program makes tail calls.
	TailCalls bool `json:"tail_calls"`
	// Alternatives: the program has every variant a fallback needs
	// (fentry and kprobe, fexit and kretprobe, multi and single links).
	Alternatives bool `json:"alternatives"`
	// Seccomp: the traced processes may run under seccomp.
	Seccomp bool `json:"seccomp"`
	// AttachTo lists what the program attaches to, as the kernel names it
	// (check --attach-to; hazards.Attachment.AttachTo); empty when not
	// said, which leaves the execution context unknown.
	AttachTo []string `json:"attach_to,omitempty"`
	// Text says it in words.
	Text string `json:"text"`
	// fromObject: plan reads ReadsUserMemory, UserStacks, TailCalls and
	// Alternatives from the ELF object.
	fromObject bool
}

func addAssumption(c *cobra.Command, a *assumption) {
	c.Flags().BoolVar(&a.ReadsUserMemory, "reads-user-memory", true,
		"assume the program reads user memory with bpf_probe_read_user* or bpf_copy_from_user* (--reads-user-memory=false: it does not)")
	c.Flags().BoolVar(&a.UserStacks, "user-stacks", true,
		"assume the program takes user stacks, bpf_get_stack* with BPF_F_USER_STACK (--user-stacks=false: it does not)")
	c.Flags().BoolVar(&a.TailCalls, "tail-calls", true,
		"assume the program makes tail calls (--tail-calls=false: it does not)")
	c.Flags().BoolVar(&a.Alternatives, "alternatives", true,
		"assume the program has every variant a fallback needs (fentry and kprobe, fexit and kretprobe)")
	c.Flags().BoolVar(&a.Seccomp, "seccomp", true,
		"assume the traced processes may run under seccomp (--seccomp=false: they never do)")
}

// text states the assumption in one sentence.
func (a assumption) text() string {
	var parts []string
	either := func(on bool, yes, no string) string {
		if on {
			return yes
		}
		return no
	}
	if a.fromObject {
		parts = append(parts, "reads user memory, takes user stacks, makes tail calls and has the variants as its object's code shows")
	} else {
		parts = append(parts,
			either(a.ReadsUserMemory, "reads user memory", "does not read user memory"),
			either(a.UserStacks, "takes user stacks", "takes no user stacks"),
			either(a.TailCalls, "makes tail calls", "makes no tail calls"),
			either(a.Alternatives, "has every variant a fallback needs", "has no variant for another mechanism"))
	}
	if a.Seccomp {
		parts = append(parts, "traces processes that may run under seccomp")
	} else {
		parts = append(parts, "traces no process that runs under seccomp")
	}
	if len(a.AttachTo) > 0 {
		parts = append(parts, "attaches to "+strings.Join(a.AttachTo, ", "))
	}
	last := len(parts) - 1
	s := "Assuming the program " + strings.Join(parts[:last], ", ") + " and " + parts[last]
	if a.fromObject {
		return s + " (the loader's default unless the agent says otherwise per uprobe)."
	}
	return s + " (--reads-user-memory, --user-stacks, --tail-calls, --alternatives and --seccomp change this)."
}

func (a *assumption) finish() { a.Text = a.text() }

// attachment is the program the assumption describes, attached with m.
func (a assumption) attachment(m probe.Mechanism) hazards.Attachment {
	return hazards.Attachment{Mechanism: m, ReadsUserMemory: a.ReadsUserMemory, ReadsUserStacks: a.UserStacks, TailCalls: a.TailCalls, Seccomp: a.Seccomp, AttachTo: a.AttachTo}
}

// policyOpts are the policy flags of probe, check and plan.
type policyOpts struct {
	policy, force, mode string
}

func addPolicy(c *cobra.Command, p *policyOpts, withForce bool) {
	c.Flags().StringVar(&p.policy, "policy", "", "apply a policy file first (env SAFEBPF_POLICY)")
	if !withForce {
		return
	}
	c.Flags().StringVar(&p.force, "force", "", `comma-separated hazard IDs to force past, or "all" (env SAFEBPF_FORCE)`)
	c.Flags().StringVar(&p.mode, "mode", "", "enforce, warn or audit (default: the policy's, else enforce)")
	_ = c.RegisterFlagCompletionFunc("mode", cobra.FixedCompletions([]cobra.Completion{"enforce", "warn", "audit"}, cobra.ShellCompDirectiveNoFileComp))
	_ = c.RegisterFlagCompletionFunc("force", func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		ids := []cobra.Completion{string(hazards.ForceAll)}
		for _, id := range hazards.ValidIDs() {
			ids = append(ids, string(id))
		}
		return ids, cobra.ShellCompDirectiveNoFileComp
	})
}

// resolvedPolicy is the policy in effect for one command.
type resolvedPolicy struct {
	// base is the catalog the policy applies to: the built-in one, or the
	// file SAFEBPF_CATALOG or the policy's catalog key names.
	base *hazards.Catalog
	// cat is the catalog in effect: the built-in one, or the file
	// SAFEBPF_CATALOG or the policy's catalog key names, with the policy
	// applied (loader.Options.InEffect).
	cat *hazards.Catalog
	// file is the policy file's content, nil without one.
	file *hazards.Policy
	// eff is what the planner gets: the file's, with --mode and the known
	// force IDs merged.
	eff hazards.Policy
	// source says where the policy and the force list came from.
	policySource, forceSource loader.Setting
	// ignored are force IDs this release does not know.
	ignored []hazards.ID
}

// sourceName names where a setting came from in messages: the flag or the
// environment variable.
func sourceName(s loader.Setting, flag string) string {
	if s.Source == "flag" {
		return flag
	}
	return s.Source
}

// resolvePolicy resolves the policy flags and SAFEBPF_POLICY/SAFEBPF_FORCE
// with loader.Flags, as an agent would. Unknown but well-formed force IDs
// are warned about and ignored.
func (a *app) resolvePolicy(c *cobra.Command, p *policyOpts) (*resolvedPolicy, error) {
	force, policy, _ := (&loader.Flags{Force: p.force, Policy: p.policy}).Settings()
	rp := &resolvedPolicy{policySource: policy, forceSource: force}
	if policy.Value != "" {
		pol, err := hazards.LoadPolicy(policy.Value)
		if err != nil {
			return nil, usageErr("load policy from %s: %w", sourceName(policy, "--policy"), err)
		}
		rp.file = pol
	}
	if p.mode != "" && !hazards.Mode(p.mode).Valid() {
		return nil, usageErr("--mode %q: want enforce, warn or audit", p.mode)
	}
	base, err := hazards.CatalogFor(rp.file)
	if err != nil {
		return nil, usageErr("%w", err)
	}
	ids, err := base.ParseForce(force.Value, hazards.FromOperator)
	if err != nil {
		return nil, usageErr("%s: %w", sourceName(force, "--force"), err)
	}
	// The catalog and policy in effect, as a Loader given the same
	// options would build them: the policy applied to the catalog once.
	in, err := (&loader.Options{Catalog: base, Policy: rp.file, Force: ids.IDs, Mode: hazards.Mode(p.mode)}).InEffect()
	if err != nil {
		return nil, usageErr("apply policy from %s: %w", sourceName(policy, "--policy"), err)
	}
	rp.base, rp.cat, rp.eff, rp.ignored = base, in.Catalog, in.Policy, in.IgnoredForce
	if len(rp.ignored) > 0 {
		var known []string
		for _, id := range rp.cat.IDs() {
			known = append(known, string(id))
		}
		a.warn(c, "%s: %s unknown to this release (a newer one's?) and forces nothing; known: %s",
			sourceName(force, "--force"), quoteIDs(rp.ignored), strings.Join(known, ", "))
	}
	return rp, nil
}

func quoteIDs(ids []hazards.ID) string {
	q := make([]string, len(ids))
	for i, id := range ids {
		q[i] = fmt.Sprintf("%q", id)
	}
	if len(q) == 1 {
		return "hazard ID " + q[0] + " is"
	}
	return "hazard IDs " + strings.Join(q, ", ") + " are"
}

// policyJSON says which policy was in effect.
type policyJSON struct {
	// Source is where the policy came from: "--policy" or
	// "SAFEBPF_POLICY"; empty without a policy.
	Source string       `json:"source,omitempty"`
	Path   string       `json:"path,omitempty"`
	Mode   hazards.Mode `json:"mode"`
	Force  []hazards.ID `json:"force,omitempty"`
	// Ignored lists force IDs this release does not know.
	Ignored []hazards.ID `json:"ignored_force,omitempty"`
}

func (rp *resolvedPolicy) json() policyJSON {
	return policyJSON{
		Source: sourceName(rp.policySource, "--policy"), Path: rp.policySource.Value,
		Mode: rp.eff.EffectiveMode(), Force: rp.eff.Force, Ignored: rp.ignored,
	}
}

// requestOpts are check's attachment flags; probe uses the defaults.
type requestOpts struct {
	pinned    bool
	targets   int
	maxActive int
	frequency uint64
}

var defaultRequest = requestOpts{targets: 1, frequency: 99}

// planned is one mechanism evaluated and planned on one kernel.
type planned struct {
	mech     probe.Mechanism
	findings []hazards.Finding
	d        fallback.Decision
	err      error
}

// planMechanisms evaluates and plans each mechanism of mechs on k under
// the assumption. An error that is not a refusal is an input error.
func planMechanisms(k *probe.Kernel, rp *resolvedPolicy, mechs []probe.Mechanism, as assumption, ro requestOpts) ([]planned, error) {
	out := make([]planned, 0, len(mechs))
	for _, m := range mechs {
		req := fallback.Request{
			Mechanism:       m,
			Pinned:          ro.pinned,
			ReadsUserMemory: as.ReadsUserMemory,
			ReadsUserStacks: as.UserStacks,
			TailCalls:       as.TailCalls,
			Seccomp:         as.Seccomp,
			AttachTo:        as.AttachTo,
			Targets:         ro.targets,
			MaxActive:       ro.maxActive,
		}
		if as.Alternatives {
			req.Alternatives = fallback.Counterparts(m)
		}
		if m == probe.PerfEventHardware || m == probe.PerfEventSoftware {
			req.PerfEvent = &fallback.PerfEvent{Hardware: m == probe.PerfEventHardware, Frequency: ro.frequency}
		}
		d, err := fallback.Plan(k, rp.cat, req, &rp.eff)
		if err != nil && d.Action != fallback.Refuse {
			return nil, usageErr("plan %s: %w", m, err)
		}
		out = append(out, planned{
			mech:     m,
			findings: rp.cat.Evaluate(k, as.attachment(m)),
			d:        d,
			err:      err,
		})
	}
	return out, nil
}

// summary is the one-line answer first in every report.
type summary struct {
	Text string `json:"text"`
	// Hazards lists the hazards whose verdict is affected or unknown for
	// some mechanism planned.
	Hazards []hazards.ID `json:"hazards_applying"`
	// Moves lists the mechanisms changed ("fentry → kprobe").
	Moves []string `json:"moves"`
	// Refusals counts decisions refused because of a hazard; Unavailable
	// those refused only because the mechanism is missing.
	Refusals    int `json:"refusals"`
	Unavailable int `json:"unavailable"`

	// short is Text made to fit one line.
	short string
}

// applies reports whether a finding's hazard applies (affected, or
// unknown, which the planner never treats as safe).
func applies(f hazards.Finding) bool { return f.Verdict != hazards.NotAffected }

// refusedForHazard reports whether err refuses because of a hazard rather
// than only because a mechanism is missing.
func refusedForHazard(err error) bool {
	var re *fallback.RefusedError
	return errors.As(err, &re) && len(re.Blockers) > 0
}

func summarize(ps []planned, where string) summary {
	s := summary{Hazards: []hazards.ID{}, Moves: []string{}}
	for _, p := range ps {
		for _, f := range append(slices.Clone(p.findings), p.d.Findings...) {
			if applies(f) && !slices.Contains(s.Hazards, f.ID) {
				s.Hazards = append(s.Hazards, f.ID)
			}
		}
		switch {
		case p.d.Action == fallback.Refuse && refusedForHazard(p.err):
			s.Refusals++
		case p.d.Action == fallback.Refuse:
			s.Unavailable++
		case p.d.Chosen != "" && p.d.Chosen != p.d.Requested:
			s.Moves = append(s.Moves, string(p.d.Requested)+" → "+string(p.d.Chosen))
		}
	}
	text := func(where string, listMoves bool) string {
		var parts []string
		switch n := len(s.Hazards); n {
		case 0:
			parts = append(parts, "no hazard applies")
		case 1:
			parts = append(parts, "1 hazard applies")
		default:
			parts = append(parts, fmt.Sprintf("%d hazards apply", n))
		}
		if where != "" {
			parts[0] += " " + where
		}
		switch {
		case len(s.Moves) == 0:
		case listMoves:
			parts = append(parts, strings.Join(s.Moves, ", "))
		default:
			parts = append(parts, plural(len(s.Moves), "mechanism moves", "mechanisms move", ""))
		}
		parts = append(parts, plural(s.Refusals, "refusal", "refusals", "no refusals"))
		if s.Unavailable > 0 {
			parts = append(parts, fmt.Sprintf("%d unavailable", s.Unavailable))
		}
		return strings.Join(parts, "; ")
	}
	s.Text = text(where, true)
	// The human form fits one line: moves counted, then the place dropped.
	s.short = s.Text
	for _, alt := range []string{text(where, false), text("", false)} {
		if columns(escape(s.short)) <= width {
			break
		}
		s.short = alt
	}
	return s
}

func plural(n int, one, many, none string) string {
	switch n {
	case 0:
		return none
	case 1:
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// anyRefused reports whether a decision refused.
func anyRefused(ps []planned) bool {
	for _, p := range ps {
		if p.d.Action == fallback.Refuse {
			return true
		}
	}
	return false
}
