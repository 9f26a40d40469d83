package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/probe"
)

// ANSI colours, used only on terminals.
const (
	red    = "\x1b[31m"
	green  = "\x1b[32m"
	yellow = "\x1b[33m"
	bold   = "\x1b[1m"
	reset  = "\x1b[0m"
)

// cell is one table cell with an optional colour.
type cell struct {
	text  string
	color string
}

// table prints aligned columns; colour codes are added after padding so
// they never break the alignment.
type table struct {
	header []string
	rows   [][]cell
}

func (t *table) add(cells ...cell) { t.rows = append(t.rows, cells) }

func plain(s string) cell { return cell{text: s} }

func (t *table) write(w io.Writer, color bool, indent string) {
	widths := make([]int, len(t.header))
	for i, h := range t.header {
		widths[i] = utf8.RuneCountInString(h)
	}
	for _, r := range t.rows {
		for i, c := range r {
			if i < len(widths) && i < len(r)-1 {
				widths[i] = max(widths[i], utf8.RuneCountInString(c.text))
			}
		}
	}
	line := func(cells []cell, head bool) {
		var b strings.Builder
		b.WriteString(indent)
		for i, c := range cells {
			text := c.text
			if i < len(cells)-1 {
				text += strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c.text)+2)
			}
			switch {
			case color && head:
				b.WriteString(bold + strings.TrimRight(text, " ") + reset + text[len(strings.TrimRight(text, " ")):])
			case color && c.color != "":
				trimmed := strings.TrimRight(text, " ")
				b.WriteString(c.color + trimmed + reset + text[len(trimmed):])
			default:
				b.WriteString(text)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	hc := make([]cell, len(t.header))
	for i, h := range t.header {
		hc[i] = plain(h)
	}
	line(hc, true)
	for _, r := range t.rows {
		line(r, false)
	}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

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

// findingJSON is one hazard verdict for one mechanism.
type findingJSON struct {
	ID        hazards.ID      `json:"id"`
	Mechanism probe.Mechanism `json:"mechanism"`
	Verdict   hazards.Verdict `json:"verdict"`
	Action    hazards.Action  `json:"action"`
	Reason    string          `json:"reason"`
}

func findingsJSON(fs []hazards.Finding) []findingJSON {
	out := make([]findingJSON, 0, len(fs))
	for _, f := range fs {
		out = append(out, findingJSON{ID: f.ID, Mechanism: f.Mechanism, Verdict: f.Verdict, Action: f.Action, Reason: f.Reason})
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
		if re, ok := err.(*fallback.RefusedError); ok {
			j.ErrorType = re.ErrorType()
		}
	}
	return j
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

func actionCell(a fallback.Action) cell {
	switch a {
	case fallback.Allow:
		return cell{string(a), green}
	case fallback.Refuse:
		return cell{string(a), red}
	}
	return cell{string(a), yellow}
}

// writeKernel prints the kernel's identity.
func writeKernel(w io.Writer, k *probe.Kernel) {
	version := "unknown"
	if k.Version != nil {
		version = k.Version.String()
	}
	fmt.Fprintf(w, "Kernel\n")
	fmt.Fprintf(w, "  release           %s\n", k.Release)
	fmt.Fprintf(w, "  upstream version  %s (source: %s)\n", version, k.VersionSource)
	if k.VersionNote != "" {
		fmt.Fprintf(w, "  version note      %s\n", k.VersionNote)
	}
	distro := k.Distro.ID
	if distro == "" {
		distro = "unknown"
	}
	if k.Distro.VersionID != "" {
		distro += " " + k.Distro.VersionID
	}
	fmt.Fprintf(w, "  distro            %s\n", distro)
	cpus := "unknown"
	if k.CPUs > 0 {
		cpus = fmt.Sprint(k.CPUs)
	}
	fmt.Fprintf(w, "  arch, CPUs        %s, %s\n", k.Arch, cpus)
	if k.Config != nil {
		fmt.Fprintf(w, "  config            %d flags from %s\n", len(k.Config), k.ConfigSource)
	} else {
		fmt.Fprintf(w, "  config            unknown\n")
	}
	if k.Kallsyms.Readable {
		var present []string
		for _, sym := range probe.EvidenceSymbols() {
			if ok, known := k.Symbol(sym); ok && known {
				present = append(present, sym)
			}
		}
		data := "without data symbols"
		if k.Kallsyms.DataSymbols {
			data = "with data symbols"
		}
		fmt.Fprintf(w, "  kallsyms          readable (%s); evidence present: %s\n", data, orNone(present))
	} else {
		fmt.Fprintf(w, "  kallsyms          unknown\n")
	}
	if k.BTF || k.Tracefs != "" {
		fmt.Fprintf(w, "  BTF, tracefs      %s, %s\n", yesNo(k.BTF), orNone([]string{k.Tracefs}))
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

func writeMechanisms(w io.Writer, color bool, k *probe.Kernel) {
	fmt.Fprintf(w, "\nMechanisms\n")
	t := &table{header: []string{"MECHANISM", "AVAILABLE", "REASON"}}
	for _, m := range probe.Mechanisms() {
		s := k.Support(m)
		t.add(plain(string(m)), supportCell(s), plain(s.Reason))
	}
	t.write(w, color, "  ")
}

func writeFindings(w io.Writer, color bool, title string, fs []hazards.Finding) {
	fmt.Fprintf(w, "\n%s\n", title)
	if len(fs) == 0 {
		fmt.Fprintln(w, "  (no hazard in the catalog concerns this mechanism)")
		return
	}
	t := &table{header: []string{"HAZARD", "MECHANISM", "VERDICT", "ACTION", "REASON"}}
	for _, f := range fs {
		t.add(plain(string(f.ID)), plain(string(f.Mechanism)), verdictCell(f.Verdict), plain(string(f.Action)), plain(f.Reason))
	}
	t.write(w, color, "  ")
}

func writeDecision(w io.Writer, color bool, d fallback.Decision, err error) {
	ac := actionCell(d.Action)
	chosen := string(d.Chosen)
	if chosen == "" {
		chosen = "nothing"
	}
	label := ac.text
	if color {
		label = ac.color + ac.text + reset
	}
	fmt.Fprintf(w, "  %s → %s (%s, mode %s)\n", d.Requested, chosen, label, d.Mode)
	if d.WouldAction != "" {
		would := string(d.WouldChoose)
		if would == "" {
			would = "nothing"
		}
		fmt.Fprintf(w, "    enforce mode would: %s → %s\n", d.WouldAction, would)
	}
	if s := settingsText(d.Settings); s != "" {
		fmt.Fprintf(w, "    settings: %s\n", s)
	}
	for i, s := range d.Steps {
		to := string(s.To)
		if to == "" {
			to = "(refused)"
		}
		cause := string(s.Hazard)
		if s.Missing != "" {
			cause = "missing " + string(s.Missing)
		}
		if s.Forced {
			cause += ", forced"
		}
		if cause != "" {
			cause = " [" + cause + "]"
		}
		fmt.Fprintf(w, "    %d. %s %s → %s%s: %s\n", i+1, s.Action, s.From, to, cause, s.Reason)
	}
	if err != nil {
		fmt.Fprintf(w, "    error: %v\n", err)
	}
}

func settingsText(s fallback.Settings) string {
	var parts []string
	if s.MaxActive > 0 {
		parts = append(parts, fmt.Sprintf("maxactive=%d", s.MaxActive))
	}
	if pe := s.PerfEvent; pe != nil {
		kind := "software cpu-clock"
		if pe.Hardware {
			kind = "hardware cycles"
		}
		switch {
		case pe.Frequency > 0:
			kind += fmt.Sprintf(" at %d Hz", pe.Frequency)
		case pe.Period > 0:
			kind += fmt.Sprintf(" every %d events", pe.Period)
		}
		parts = append(parts, "perf event "+kind)
	}
	if p := s.Pacing; p != nil {
		parts = append(parts, fmt.Sprintf("uprobe registrations %s apart, %d at a time", p.Interval, p.Concurrency))
	}
	if s.Multi {
		parts = append(parts, "multi link")
	}
	return strings.Join(parts, "; ")
}
