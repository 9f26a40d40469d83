package main

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/loader"
	"github.com/safebpf/safebpf/probe"
)

// supportJSON is a mechanism's availability: true, false or null.
type supportJSON struct {
	Available *bool  `json:"available"`
	Reason    string `json:"reason"`
}

func mechanismsJSON(k *probe.Kernel) map[string]supportJSON {
	out := map[string]supportJSON{}
	for _, m := range probe.Mechanisms() {
		s := k.Support(m)
		out[string(m)] = supportJSON{Available: s.Available, Reason: s.Reason}
	}
	return out
}

// findingJSON is one hazard verdict for one mechanism. Effect is what the
// verdict makes safebpf do: the hazard's action when it applies
// (affected, or unknown, which is never treated as safe), "none" when
// not.
type findingJSON struct {
	ID        hazards.ID      `json:"id"`
	Mechanism probe.Mechanism `json:"mechanism"`
	Verdict   hazards.Verdict `json:"verdict"`
	Action    hazards.Action  `json:"action"`
	Effect    string          `json:"effect"`
	Reason    string          `json:"reason"`
}

// reasonText is a finding's reason without the hazard ID it starts with.
func reasonText(f hazards.Finding) string {
	return strings.TrimPrefix(f.Reason, string(f.ID)+": ")
}

func effect(f hazards.Finding) string {
	if !applies(f) {
		return "none"
	}
	return string(f.Action)
}

func findingsJSON(ps []planned) []findingJSON {
	out := []findingJSON{}
	for _, p := range ps {
		for _, f := range p.findings {
			out = append(out, findingJSON{ID: f.ID, Mechanism: f.Mechanism, Verdict: f.Verdict, Action: f.Action, Effect: effect(f), Reason: f.Reason})
		}
	}
	return out
}

// decisionJSON is a Decision without its findings (reported separately),
// plus the refusal message.
type decisionJSON struct {
	Requested     probe.Mechanism    `json:"requested"`
	Chosen        probe.Mechanism    `json:"chosen"`
	Action        fallback.Action    `json:"action"`
	Settings      fallback.Settings  `json:"settings"`
	Steps         []fallback.Step    `json:"steps"`
	Forced        []hazards.ID       `json:"forced,omitempty"`
	Mode          hazards.Mode       `json:"mode"`
	WouldChoose   probe.Mechanism    `json:"would_choose,omitempty"`
	WouldAction   fallback.Action    `json:"would_action,omitempty"`
	WouldSettings *fallback.Settings `json:"would_settings,omitempty"`
	Error         string             `json:"error,omitempty"`
	ErrorType     string             `json:"error_type,omitempty"`
}

func toDecisionJSON(d fallback.Decision, err error) decisionJSON {
	j := decisionJSON{
		Requested: d.Requested, Chosen: d.Chosen, Action: d.Action, Settings: d.Settings,
		Steps: d.Steps, Forced: d.Forced, Mode: d.Mode,
		WouldChoose: d.WouldChoose, WouldAction: d.WouldAction, WouldSettings: d.WouldSettings,
	}
	if j.Steps == nil {
		j.Steps = []fallback.Step{}
	}
	if err != nil {
		j.Error = err.Error()
		var re *fallback.RefusedError
		if errors.As(err, &re) {
			j.ErrorType = re.ErrorType()
		}
	}
	return j
}

func decisionsJSON(ps []planned) []decisionJSON {
	out := make([]decisionJSON, 0, len(ps))
	for _, p := range ps {
		out = append(out, toDecisionJSON(p.d, p.err))
	}
	return out
}

func supportCell(s probe.Support) cell {
	switch {
	case s.Yes():
		return cell{"yes", green}
	case s.No():
		return cell{"no", red}
	}
	return cell{"undecided", yellow}
}

func verdictCell(v hazards.Verdict) cell {
	switch v {
	case hazards.Affected:
		return cell{string(v), red}
	case hazards.NotAffected:
		return cell{string(v), green}
	}
	return cell{string(v), yellow}
}

// decisionCell says in a few words what the planner decided.
func decisionCell(d fallback.Decision, err error) cell {
	s := d.Settings
	switch {
	case d.Action == fallback.Refuse:
		var re *fallback.RefusedError
		if errors.As(err, &re) && len(re.Blockers) > 0 {
			return cell{"refuse: " + joinIDs(re.Hazards()), red}
		}
		if errors.As(err, &re) && len(re.Missing) > 0 && re.Missing[0].Undecided {
			return cell{"refuse: undecided", red}
		}
		return cell{"refuse: unavailable", red}
	case d.Action == fallback.Warn:
		var ids []hazards.ID
		for _, st := range d.Steps {
			if st.Hazard != "" && !slices.Contains(ids, st.Hazard) {
				ids = append(ids, st.Hazard)
			}
		}
		text := "warn: " + joinIDs(ids)
		if len(d.Forced) > 0 {
			text += " (forced)"
		}
		if d.WouldAction != "" {
			text = "warn; enforce: " + string(d.WouldAction)
			if d.WouldChoose != "" && d.WouldChoose != d.Requested {
				text += " → " + string(d.WouldChoose)
			}
		}
		return cell{text, yellow}
	case d.Chosen != d.Requested:
		text := "→ " + string(d.Chosen)
		if s.MaxActive > 0 {
			text += fmt.Sprintf(", maxactive %d", s.MaxActive)
		}
		return cell{text, yellow}
	case d.Action == fallback.Cap:
		return cell{fmt.Sprintf("cap maxactive %d", s.MaxActive), yellow}
	case d.Action == fallback.Pace && s.Pacing != nil:
		return cell{fmt.Sprintf("pace %s apart, %d at a time", s.Pacing.Interval, s.Pacing.Concurrency), yellow}
	case d.Action == fallback.Allow && s.Multi:
		return cell{"allow (multi link)", green}
	}
	return cell{string(d.Action), green}
}

func joinIDs(ids []hazards.ID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = string(id)
	}
	return strings.Join(s, ", ")
}

// writeObservations prints what the live witnesses (machine code, BTF,
// self-tests) said about the catalog's facts: counted, and with -o wide
// each with its witness.
func writeObservations(p *printer, k *probe.Kernel) {
	if len(k.Observations) == 0 {
		return
	}
	keys := slices.Sorted(maps.Keys(k.Observations))
	var holds, not, unknown int
	for _, key := range keys {
		o := k.Observations[key]
		state := "unknown"
		switch {
		case !o.Known():
			unknown++
		case *o.Holds:
			holds++
			state = "holds"
		default:
			not++
			state = "does not hold"
		}
		if p.wide {
			p.field("evidence", fmt.Sprintf("%s: %s (%s)", key, state, o.Witness))
		}
	}
	if !p.wide {
		p.field("evidence", fmt.Sprintf("%d facts observed: %d hold, %d do not, %d unknown", len(keys), holds, not, unknown))
	}
}

// sourceText says in words where the trusted version came from.
var sourceText = map[probe.VersionSource]string{
	probe.SourceVersionSignature: "from /proc/version_signature",
	probe.SourceDebian:           "from the Debian package in /proc/version",
	probe.SourceRelease:          "from the release",
	probe.SourceVDSO:             "from the vDSO",
	probe.SourceReleasePartial:   "sublevel unknown",
	probe.SourceOverride:         "set by the operator",
	probe.SourceNone:             "unknown",
}

// writeKernel prints the kernel's identity.
func writeKernel(p *printer, k *probe.Kernel) {
	version := "unknown"
	if k.Version != nil {
		version = k.Version.String()
	}
	src := sourceText[k.VersionSource]
	if src == "" {
		src = string(k.VersionSource)
	}
	p.line("Kernel")
	p.field("release", k.Release)
	p.field("upstream version", fmt.Sprintf("%s (%s)", version, src))
	if k.VersionNote != "" && p.wide {
		p.field("version note", k.VersionNote)
	}
	distro := k.Distro.ID
	if distro == "" {
		distro = "unknown"
	}
	if k.Distro.VersionID != "" {
		distro += " " + k.Distro.VersionID
	}
	p.field("distro", distro)
	cpus := "unknown"
	if k.CPUs > 0 {
		cpus = fmt.Sprint(k.CPUs)
	}
	arch := k.Arch
	if arch == "" {
		arch = "unknown"
	}
	p.field("arch, CPUs", arch+", "+cpus)
	if k.Config != nil {
		p.field("config", fmt.Sprintf("%d flags from %s", len(k.Config), k.ConfigSource))
	} else {
		p.field("config", "unknown")
	}
	if pr := k.Preemption; pr.Known() {
		text := pr.Model
		if text == "" {
			text = map[bool]string{true: "preemptible", false: "not preemptible"}[*pr.Preemptible]
		}
		if p.wide && pr.Witness != "" {
			text += " (" + pr.Witness + ")"
		}
		p.field("preemption", text)
	} else {
		p.field("preemption", "unknown")
	}
	if k.Kallsyms.Readable {
		var present []string
		for sym, ok := range k.Kallsyms.Symbols {
			if ok {
				present = append(present, sym)
			}
		}
		slices.Sort(present)
		data := "without data symbols"
		if k.Kallsyms.DataSymbols {
			data = "with data symbols"
		}
		text := fmt.Sprintf("readable (%s), %d of %d evidence symbols", data, len(present), len(k.Kallsyms.Symbols))
		if p.wide {
			text += ": " + orNone(present)
		}
		p.field("kallsyms", text)
	} else {
		p.field("kallsyms", "unknown")
	}
	writeObservations(p, k)
	if k.BTF || k.Tracefs != "" {
		p.field("BTF, tracefs", yesNo(k.BTF)+", "+orNone([]string{k.Tracefs}))
	}
	if len(k.Notes) > 0 {
		if p.wide {
			for _, n := range k.Notes {
				p.field("note", n)
			}
		} else {
			p.field("notes", plural(len(k.Notes), "file could not be read", "files could not be read", "")+" (-o wide)")
		}
	}
}

func orNone(ss []string) string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// writeMechanisms prints one row per mechanism: availability and the
// planner's decision; -o wide adds why.
func writeMechanisms(p *printer, k *probe.Kernel, ps []planned) {
	p.blank()
	p.line("Mechanisms")
	t := &table{header: []string{"MECHANISM", "AVAILABLE", "DECISION"}}
	if p.wide {
		t.header = append(t.header, "AVAILABILITY", "WHY")
	}
	for _, pl := range ps {
		s := k.Support(pl.mech)
		row := []cell{plain(string(pl.mech)), supportCell(s), decisionCell(pl.d, pl.err)}
		if p.wide {
			row = append(row, plain(s.Reason), plain(loader.Explain(pl.d)))
		}
		t.add(row...)
	}
	t.write(p, "  ")
}

// writeHazards prints the hazards that apply (one row per hazard, with
// the mechanisms it concerns) or, with -o wide, every verdict.
func writeHazards(p *printer, ps []planned, total int) {
	p.blank()
	if p.wide {
		p.line("Hazard verdicts")
		t := &table{header: []string{"HAZARD", "MECHANISM", "VERDICT", "EFFECT", "REASON"}}
		n := 0
		for _, pl := range ps {
			for _, f := range pl.findings {
				n++
				t.add(plain(string(f.ID)), plain(string(f.Mechanism)), verdictCell(f.Verdict), plain(effect(f)), plain(reasonText(f)))
			}
		}
		if n == 0 {
			p.line("  (no hazard in the catalog concerns these mechanisms)")
			return
		}
		t.write(p, "  ")
		return
	}
	type row struct {
		id      hazards.ID
		verdict hazards.Verdict
		effect  string
		mechs   []string
	}
	var rows []*row
	for _, pl := range ps {
		for _, f := range pl.findings {
			if !applies(f) {
				continue
			}
			i := slices.IndexFunc(rows, func(r *row) bool { return r.id == f.ID && r.verdict == f.Verdict })
			if i < 0 {
				rows = append(rows, &row{id: f.ID, verdict: f.Verdict, effect: effect(f)})
				i = len(rows) - 1
			}
			rows[i].mechs = append(rows[i].mechs, string(f.Mechanism))
		}
	}
	if len(rows) == 0 {
		p.line("Hazards that apply: none (%d verdicts; -o wide lists them)", total)
		return
	}
	p.line("Hazards that apply")
	t := &table{header: []string{"HAZARD", "VERDICT", "EFFECT", "MECHANISMS"}, wrap: true}
	for _, r := range rows {
		t.add(plain(string(r.id)), verdictCell(r.verdict), plain(r.effect), plain(strings.Join(r.mechs, ", ")))
	}
	t.write(p, "  ")
}

// countFindings counts the verdicts in ps.
func countFindings(ps []planned) int {
	n := 0
	for _, pl := range ps {
		n += len(pl.findings)
	}
	return n
}

// writeDecisionDetail prints one decision with its steps and reasons, in
// the words of fallback.Decision (Headline, Step.String, Notes), the
// steps numbered.
func writeDecisionDetail(p *printer, d fallback.Decision, err error) {
	p.line("  %s, mode %s", d.Headline(), d.Mode)
	for i, s := range d.Steps {
		p.hang(fmt.Sprintf("    %d. ", i+1), s.String())
	}
	for _, n := range d.Notes() {
		p.hang("    ", n)
	}
	var re *fallback.RefusedError
	if errors.As(err, &re) && !p.wide {
		// The kernels that carry the fixes (issue 9): the way out that is
		// not forcing.
		seen := map[hazards.ID]bool{}
		for _, b := range re.Blockers {
			if len(b.FixedIn) > 0 && !seen[b.Hazard] {
				seen[b.Hazard] = true
				p.hang("    ", fmt.Sprintf("%s is fixed in %s", b.Hazard, strings.Join(b.FixedIn, ", ")))
			}
		}
	}
	switch {
	case err == nil:
	case !p.wide && errors.As(err, &re) && re.ForceHint != "":
		// The hint names the agent's flag and variable; an operator at
		// this command looks for its own.
		p.hang("    ", re.ForceHint+"; this command shows the decision forced with --force "+blockerIDs(re))
	case !p.wide && errors.As(err, &re):
	default:
		p.hang("    error: ", err.Error())
	}
}

// writeHead prints the summary line and the assumption.
func writeHead(p *printer, s summary, as assumption) {
	p.line("%s", s.short)
	p.para("", as.Text)
	p.blank()
}

// blockerIDs lists the hazards that block a refusal, comma-separated, as
// --force takes them.
func blockerIDs(re *fallback.RefusedError) string {
	var ids []string
	for _, b := range re.Blockers {
		if id := string(b.Hazard); !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return strings.Join(ids, ",")
}
