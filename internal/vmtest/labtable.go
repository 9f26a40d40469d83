package vmtest

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/safebpf/safebpf/internal/vmtest/vmproto"
)

// LabRow is one scenario on one kernel: the naive mechanism and safebpf's
// decision side by side, with the lab's verdict.
type LabRow struct {
	// Scenario is "1 fentry", "1 fexit", "2", "3", "4" or "5".
	Scenario, Kernel string
	// Naive and Safebpf state each arm's outcome with its numbers.
	Naive, Safebpf string
	// Notes are witnesses, controls and extra arms shown beside the row.
	Notes []string
	// Verdict says whether the hazard reproduced and what safebpf did.
	Verdict string
	// Problems are violated expectations of the lab itself: an arm that
	// could not run, a control that failed, a hazard that did not behave
	// as the kernel's evidence says. Findings are outcomes where safebpf's
	// decision did not avoid a hazard that reproduced. Both fail the lab.
	Problems, Findings []string
}

// LabRows turns the results into rows, scenario by scenario.
func LabRows(results []*LabResult) []LabRow {
	var rows []LabRow
	for _, sc := range []string{"1", "2", "3", "4", "5"} {
		for _, r := range results {
			switch sc {
			case "1":
				for _, side := range []string{"fentry", "fexit"} {
					if row, ok := s1Row(r, side); ok {
						rows = append(rows, row)
					}
				}
			case "2":
				if row, ok := s2Row(r); ok {
					rows = append(rows, row)
				}
			case "3":
				if row, ok := s3Row(r); ok {
					rows = append(rows, row)
				}
			case "4":
				if row, ok := s4Row(r); ok {
					rows = append(rows, row)
				}
			case "5":
				if row, ok := s5Row(r); ok {
					rows = append(rows, row)
				}
			}
		}
	}
	return rows
}

// arm returns the summary of a record for a cell, or why it is missing.
func arm(rec vmproto.LabRecord, ok bool) string {
	if !ok {
		return "(not run)"
	}
	s := rec.Summary
	if rec.Decision != "" && rec.Safebpf && !strings.Contains(s, rec.Decision) {
		s += " — decision: " + rec.Decision
	}
	return s
}

// errored adds a problem for records that could not run.
func errored(row *LabRow, recs ...vmproto.LabRecord) {
	for _, r := range recs {
		if r.Outcome == "error" {
			row.Problems = append(row.Problems, fmt.Sprintf("scenario %s arm %s could not run: %s", r.Scenario, r.Arm, r.Error))
		}
	}
}

func evidenceWith(rec vmproto.LabRecord, prefix string) []string {
	var out []string
	for _, e := range rec.Evidence {
		if strings.HasPrefix(e, prefix) {
			out = append(out, e)
		}
	}
	return out
}

func hasEvidence(rec vmproto.LabRecord, line string) bool {
	for _, e := range rec.Evidence {
		if e == line {
			return true
		}
	}
	return false
}

func s1Row(r *LabResult, side string) (LabRow, bool) {
	n, okN := r.Record("1", "naive-"+side)
	s, okS := r.Record("1", "safebpf-"+side)
	if !okN && !okS {
		return LabRow{}, false
	}
	row := LabRow{Scenario: "1 " + side, Kernel: r.Kernel, Naive: arm(n, okN), Safebpf: arm(s, okS)}
	w := n
	if !okN {
		w = s
	}
	row.Notes = evidenceWith(w, "kallsyms ")
	for _, e := range n.Evidence {
		if strings.Contains(e, "state D") || strings.Contains(e, "zap_pid_ns_processes") {
			row.Notes = append(row.Notes, e)
		}
	}
	errored(&row, n, s)
	if !okN || !okS {
		row.Problems = append(row.Problems, "an arm did not report")
		return row, true
	}
	expectHang := hasEvidence(w, "kallsyms tasks_rcu_exit_srcu: present")
	switch {
	case n.Outcome == "hang" && expectHang:
		row.Verdict = "reproduced (tasks_rcu_exit_srcu present)"
	case n.Outcome == "exited" && !expectHang:
		row.Verdict = "no hang, as tasks_rcu_exit_srcu's absence says"
	case n.Outcome == "hang":
		row.Verdict = "HANG although tasks_rcu_exit_srcu is absent"
		row.Problems = append(row.Problems, fmt.Sprintf("naive %s hung on %s although tasks_rcu_exit_srcu is absent: the evidence rule is wrong here", side, r.Kernel))
	case n.Outcome == "exited":
		row.Verdict = "NOT reproduced although tasks_rcu_exit_srcu is present"
		row.Problems = append(row.Problems, fmt.Sprintf("naive %s did not hang on %s although tasks_rcu_exit_srcu is present", side, r.Kernel))
	}
	switch s.Outcome {
	case "exited":
		row.Verdict += "; safebpf's decision exits"
	case "refused":
		row.Verdict += "; safebpf refused"
	case "hang":
		row.Verdict += "; safebpf's decision HANGS"
		row.Findings = append(row.Findings, fmt.Sprintf("scenario 1 %s on %s: safebpf's decision (%s) hung", side, r.Kernel, s.Decision))
	}
	return row, true
}

func s2Row(r *LabResult) (LabRow, bool) {
	n, okN := r.Record("2", "naive")
	s, okS := r.Record("2", "safebpf")
	m, okM := r.Record("2", "safebpf-maxactive")
	k, okK := r.Record("2", "safebpf-kretprobe")
	if !okN && !okS && !okM {
		return LabRow{}, false
	}
	row := LabRow{Scenario: "2", Kernel: r.Kernel, Naive: arm(n, okN), Safebpf: arm(s, okS)}
	if okK {
		// The same kretprobe through safebpf without an fexit variant:
		// what a plain kretprobe user gets.
		row.Notes = append(row.Notes, "safebpf without an fexit variant: "+k.Summary+" — decision: "+k.Decision)
		if k.Outcome == "missed" {
			row.Findings = append(row.Findings, fmt.Sprintf("scenario 2 on %s: safebpf's decision without an fexit variant (%s) missed %.0f of %.0f returns",
				r.Kernel, k.Decision, k.Numbers["missed"], k.Numbers["entries"]))
		}
		errored(&row, k)
	}
	if okM {
		row.Notes = append(row.Notes, "metric check, maxactive 16 asked through safebpf: "+m.Summary)
	}
	if c := n.Numbers["possible_cpus"]; c > 0 {
		row.Notes = append(row.Notes, fmt.Sprintf("%.0f possible CPUs (2 online)", c))
	}
	errored(&row, n, s, m)
	if !okN || !okS || !okM {
		row.Problems = append(row.Problems, "an arm did not report")
		return row, true
	}
	if n.Outcome != "error" && n.Numbers["missed"] <= 0 {
		row.Problems = append(row.Problems, fmt.Sprintf("the naive kretprobe missed no returns with %.0f readers blocked: scenario 2 did not reproduce on %s", n.Numbers["sleepers"], r.Kernel))
	}
	for _, rec := range []vmproto.LabRecord{m, s, k} {
		if rec.Arm == "" || rec.Outcome == "error" || !strings.HasPrefix(rec.Mechanism, "kretprobe") {
			continue // fexit has no missed counter
		}
		got, ok := rec.Numbers["metric_missed"]
		switch {
		case !ok:
			row.Problems = append(row.Problems, fmt.Sprintf("arm %s: safebpf.probe.missed reported no series for %s", rec.Arm, rec.Mechanism))
		case got != rec.Numbers["missed"]:
			row.Problems = append(row.Problems, fmt.Sprintf("arm %s: safebpf.probe.missed says %.0f, the BPF counters %.0f", rec.Arm, got, rec.Numbers["missed"]))
		}
	}
	if m.Outcome != "error" && m.Numbers["missed"] <= 0 {
		row.Problems = append(row.Problems, "the maxactive-16 arm missed no returns: the metric check proves nothing")
	}
	switch {
	case n.Outcome == "missed" && s.Outcome == "none-missed":
		row.Verdict = "reproduced; safebpf's decision missed none"
	case n.Outcome == "missed" && s.Outcome == "missed":
		row.Verdict = "reproduced; safebpf's decision ALSO misses returns"
		row.Findings = append(row.Findings, fmt.Sprintf("scenario 2 on %s: safebpf's decision (%s) missed %.0f of %.0f returns",
			r.Kernel, s.Decision, s.Numbers["missed"], s.Numbers["entries"]))
	default:
		row.Verdict = fmt.Sprintf("naive %s, safebpf %s", n.Outcome, s.Outcome)
	}
	return row, true
}

func s3Row(r *LabResult) (LabRow, bool) {
	n, okN := r.Record("3", "naive")
	s, okS := r.Record("3", "safebpf")
	var others []vmproto.LabRecord
	for _, rec := range r.Records {
		if rec.Scenario == "3" && rec.Arm != "naive" && rec.Arm != "safebpf" {
			others = append(others, rec)
		}
	}
	if !okN && !okS && len(others) == 0 {
		return LabRow{}, false
	}
	row := LabRow{Scenario: "3", Kernel: r.Kernel, Naive: arm(n, okN), Safebpf: arm(s, okS), Verdict: "measured (see the scenario 3 table)"}
	for _, o := range others {
		row.Notes = append(row.Notes, o.Arm+": "+o.Summary)
	}
	errored(&row, append(others, n, s)...)
	return row, true
}

func s4Row(r *LabResult) (LabRow, bool) {
	n, okN := r.Record("4", "naive")
	s, okS := r.Record("4", "safebpf")
	f, okF := r.Record("4", "filter")
	if !okN && !okS && !okF {
		return LabRow{}, false
	}
	row := LabRow{Scenario: "4", Kernel: r.Kernel, Naive: arm(n, okN), Safebpf: arm(s, okS)}
	d, okD := r.Record("4", "naive-deny")
	row.Notes = append(evidenceWith(n, "kallsyms "), "control: "+arm(f, okF), "filter killing on 335: "+arm(d, okD))
	row.Notes = append(row.Notes, evidenceWith(n, "self-test: ")...)
	errored(&row, n, s, f, d)
	if !okN || !okS || !okF || !okD {
		row.Problems = append(row.Problems, "an arm did not report")
		return row, true
	}
	if f.Outcome != "killed" {
		row.Problems = append(row.Problems, "control: the seccomp filter did not end a direct syscall 335, so surviving the uretprobe proves nothing")
	}
	syscall := hasEvidence(n, "kallsyms __x64_sys_uretprobe: present")
	switch n.Outcome {
	case "survived":
		switch {
		case !syscall:
			row.Verdict = "survives: no uretprobe syscall on this kernel (__x64_sys_uretprobe absent; returns trap through int3, which seccomp does not see)"
		case f.Numbers["signal"] == 4: // SIGILL
			row.Verdict = "survives: syscall 335 exists but passes the filter (cf6cb56ef244; the control got SIGILL from sys_uretprobe, not SIGSYS from the filter)"
		default:
			row.Verdict = "survives although the filter blocks 335 (unexplained)"
			row.Problems = append(row.Problems, "the victim survived a uretprobe although the uretprobe syscall exists and the filter kills on 335")
		}
	case "killed":
		row.Verdict = "reproduced: the victim was killed"
	}
	if d.Outcome == "killed" && n.Outcome == "survived" {
		row.Verdict += "; killed under the filter that kills on 335"
	}
	switch s.Outcome {
	case "refused":
		if n.Outcome == "survived" {
			row.Verdict += "; safebpf refuses although the kernel is safe (an over-refusal: the catalog or its witness is wrong here)"
		} else {
			row.Verdict += "; safebpf refused"
		}
	case "survived":
		row.Verdict += "; safebpf's decision survives"
	case "killed":
		row.Verdict += "; safebpf's decision is KILLED"
		row.Findings = append(row.Findings, fmt.Sprintf("scenario 4 on %s: safebpf's decision (%s) let the victim be killed", r.Kernel, s.Decision))
	}
	return row, true
}

func s5Row(r *LabResult) (LabRow, bool) {
	n, okN := r.Record("5", "repro")
	s, okS := r.Record("5", "safebpf")
	w, okW := r.Record("5", "witness")
	if !okN && !okS && !okW {
		return LabRow{}, false
	}
	row := LabRow{Scenario: "5", Kernel: r.Kernel, Naive: arm(n, okN), Safebpf: arm(s, okS)}
	row.Notes = append(row.Notes, "witness: "+arm(w, okW))
	row.Notes = append(row.Notes, evidenceWith(n, "stack destination")...)
	row.Notes = append(row.Notes, evidenceWith(n, "map value destination")...)
	for _, e := range evidenceWith(n, "kmsg: ") {
		if len(row.Notes) < 14 {
			row.Notes = append(row.Notes, e)
		}
	}
	errored(&row, n, s, w)
	if !okN || !okS || !okW {
		row.Problems = append(row.Problems, "an arm did not report")
		return row, true
	}
	want := "fixed"
	if r.Kind == "lab" {
		want = "affected"
	}
	if w.Outcome != want {
		row.Problems = append(row.Problems, fmt.Sprintf("the machine-code witness says %s on %s, want %s", w.Outcome, r.Kernel, want))
	}
	switch {
	case n.Outcome == "lockup":
		row.Verdict = "reproduced: lockup"
		if w.Outcome == "fixed" {
			row.Problems = append(row.Problems, "lockup on a kernel whose copy_from_user_nofault has the fix")
		}
	case n.Outcome == "no-lockup" && w.Outcome == "affected":
		row.Verdict = fmt.Sprintf("NOT reproduced in %.0f s (%.0f IRQ-context reads)", n.Numbers["elapsed_s"], n.Numbers["program_runs"])
	case n.Outcome == "no-lockup":
		row.Verdict = "control: no lockup on the fixed kernel"
	}
	switch s.Outcome {
	case "refused":
		row.Verdict += "; safebpf refuses the profiler"
	case "attached":
		if w.Outcome == "affected" {
			row.Verdict += "; safebpf ATTACHES the profiler on an affected kernel"
			row.Findings = append(row.Findings, fmt.Sprintf("scenario 5 on %s: the machine code says affected, safebpf attached the profiler (%s)", r.Kernel, s.Decision))
		} else {
			row.Verdict += "; safebpf attaches (fixed)"
		}
	}
	return row, true
}

// WriteLabTable writes the rows as a Markdown table, then the notes of
// each row, then the scenario-3 measurements.
func WriteLabTable(w io.Writer, results []*LabResult, rows []LabRow) error {
	esc := func(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "|", "\\|"), "\n", " ") }
	var b strings.Builder
	b.WriteString("| scenario | kernel | naive mechanism → outcome | safebpf's decision → outcome | verdict |\n|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", r.Scenario, r.Kernel, esc(r.Naive), esc(r.Safebpf), esc(r.Verdict))
	}
	b.WriteString("\nNotes per row (witnesses, controls, extra arms):\n\n")
	for _, r := range rows {
		if len(r.Notes) == 0 {
			continue
		}
		fmt.Fprintf(&b, "- %s on %s:\n", r.Scenario, r.Kernel)
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "  - %s\n", esc(n))
		}
	}
	b.WriteString("\nScenario 3, uprobe registration stall (victim fork+mmap latency in ms, p50/p99/max):\n\n")
	b.WriteString("| kernel | arm | mechanism | attach ms | detach ms | while attaching | while detaching | baseline |\n|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		var recs []vmproto.LabRecord
		for _, rec := range r.Records {
			if rec.Scenario == "3" {
				recs = append(recs, rec)
			}
		}
		sort.SliceStable(recs, func(i, j int) bool { return s3Order(recs[i].Arm) < s3Order(recs[j].Arm) })
		for _, rec := range recs {
			if rec.Outcome != "measured" {
				fmt.Fprintf(&b, "| %s | %s | %s | | | | | |\n", r.Kernel, rec.Arm, esc(rec.Summary))
				continue
			}
			tri := func(p string) string {
				if rec.Numbers[p+"_iters"] == 0 {
					return "-"
				}
				return fmt.Sprintf("%s/%s/%s (%.0f)", fmtNum(rec.Numbers[p+"_p50_ms"]), fmtNum(rec.Numbers[p+"_p99_ms"]), fmtNum(rec.Numbers[p+"_max_ms"]), rec.Numbers[p+"_iters"])
			}
			det := fmtNum(rec.Numbers["detach_ms"])
			if c := rec.Numbers["close_parallel"]; c > 1 {
				det += fmt.Sprintf(" (%.0f closers)", c)
			}
			if rec.Arm == "baseline" {
				fmt.Fprintf(&b, "| %s | baseline | none | | | | | %s |\n", r.Kernel, tri("baseline"))
				continue
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", r.Kernel, rec.Arm, esc(rec.Mechanism),
				fmtNum(rec.Numbers["attach_ms"]), det, tri("attach"), tri("detach"), tri("baseline"))
		}
	}
	b.WriteString("\n(iterations in parentheses)\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func s3Order(arm string) int {
	for i, a := range []string{"baseline", "naive", "paced-1ms", "paced-10ms", "safebpf", "multi", "multi-50"} {
		if a == arm {
			return i
		}
	}
	return 99
}

func fmtNum(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v < 10:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}
