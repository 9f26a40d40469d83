package vmtest

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// Column is one kernel's results for the table: its name and the steps
// (test binaries) that ran in its guest.
type Column struct {
	Kernel string
	Steps  []*Step
	// Note replaces every missing cell ("not booted", "crashed").
	Note string
}

// Columns turns matrix results into table columns.
func Columns(rs []*Result) []Column {
	var cols []Column
	for _, r := range rs {
		c := Column{Kernel: r.Kernel.Name}
		switch b := r.Last(); {
		case r.Err != nil || b == nil:
			c.Note = "error"
		default:
			c.Steps = b.Console.Steps
			switch {
			case b.Console.Crashed():
				c.Note = "crashed"
			case b.TimedOut:
				c.Note = "timeout"
			default:
				c.Note = "not run"
			}
		}
		cols = append(cols, c)
	}
	return cols
}

// TableOptions configures [WriteTable].
type TableOptions struct {
	// AllSubtests keeps subtest rows that passed on every kernel; by default
	// only subtests that failed or skipped somewhere get a row (their
	// parent's row covers the rest).
	AllSubtests bool
}

// WriteTable prints the matrix: one row per test ("pkg TestName"), one
// column per kernel, cells PASS, FAIL or SKIP with a numbered note giving the
// reason. Rows are sorted by package, then in the order the first kernel
// reported them. A step that ended without any test result (a crash, or a
// binary that could not start) gets a row of its own.
func WriteTable(w io.Writer, cols []Column, o TableOptions) error {
	rows := map[string]map[string]cell{}
	var order []string
	add := func(row, kernel string, c cell) {
		if rows[row] == nil {
			rows[row] = map[string]cell{}
			order = append(order, row)
		}
		rows[row][kernel] = c
	}
	for _, col := range cols {
		for _, s := range col.Steps {
			if len(s.Tests) == 0 || (s.Ended && s.ExitCode != 0 && !anyFailed(s)) {
				oc, reason := Pass, ""
				if s.Failed() {
					oc, reason = Fail, fmt.Sprintf("exit=%d %s", s.ExitCode, s.Note)
					if !s.Ended {
						reason = "did not finish"
					}
				}
				add(s.Name+" (binary)", col.Kernel, cell{oc, strings.TrimSpace(reason)})
			}
			for _, t := range s.Tests {
				add(s.Name+" "+t.Name, col.Kernel, cell{t.Outcome, t.Reason})
			}
		}
	}
	if !o.AllSubtests {
		kept := order[:0]
		for _, row := range order {
			_, test, _ := strings.Cut(row, " ")
			if strings.Contains(test, "/") && allPass(rows[row]) {
				continue
			}
			kept = append(kept, row)
		}
		order = kept
	}
	sort.SliceStable(order, func(i, j int) bool {
		pi, _, _ := strings.Cut(order[i], " ")
		pj, _, _ := strings.Cut(order[j], " ")
		return pi < pj
	})

	var notes []string
	noteIDs := map[string]int{}
	noteFor := func(reason string) int {
		if id, ok := noteIDs[reason]; ok {
			return id
		}
		notes = append(notes, reason)
		noteIDs[reason] = len(notes)
		return len(notes)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "TEST")
	for _, c := range cols {
		fmt.Fprint(tw, "\t"+c.Kernel)
	}
	fmt.Fprintln(tw)
	for _, row := range order {
		fmt.Fprint(tw, row)
		for _, col := range cols {
			c, ok := rows[row][col.Kernel]
			text := "-"
			switch {
			case !ok:
				if col.Note != "" {
					text = "- (" + col.Note + ")"
				}
			case c.outcome == Pass:
				text = "PASS"
			default:
				text = strings.ToUpper(string(c.outcome))
				if c.reason != "" {
					text += fmt.Sprintf(" [%d]", noteFor(c.reason))
				}
			}
			fmt.Fprint(tw, "\t"+text)
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for i, n := range notes {
		if _, err := fmt.Fprintf(w, "[%d] %s\n", i+1, n); err != nil {
			return err
		}
	}
	return nil
}

func anyFailed(s *Step) bool {
	for _, t := range s.Tests {
		if t.Outcome == Fail {
			return true
		}
	}
	return false
}

type cell struct {
	outcome Outcome
	reason  string
}

func allPass(cells map[string]cell) bool {
	for _, c := range cells {
		if c.outcome != Pass {
			return false
		}
	}
	return true
}
