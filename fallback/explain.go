package fallback

import (
	"fmt"
	"strings"
	"time"

	"github.com/safebpf/safebpf/hazards"
)

// This file is the one place a Decision is put into words: loader.Explain
// and AttachError, the safebpf command's reports, the example agents and
// the telemetry log record all use these methods (the command lays them
// out in a table or with numbered steps, but the words come from here).
// The text is for people: do not parse it (use the JSON form), and do
// not depend on it staying the same.

// String describes d on one line: its headline, then its steps and
// notes, separated by "; ". Example:
// "do_sys_openat2: fentry → kprobe (downgrade): fentry → kprobe:
// fentry-zap-pid-ns-deadlock: kernel 6.1.76 has tasks_rcu_exit_srcu".
func (d Decision) String() string {
	details := d.Details()
	if len(details) == 0 {
		return d.Headline()
	}
	return d.Headline() + ": " + strings.Join(details, "; ")
}

// Headline says what was requested and what was decided, e.g.
// "do_sys_openat2: fentry → kprobe (downgrade)", "readline: uretprobe (as
// requested)", "vfs_read: fexit refused". The target is left out when
// the Decision has none.
func (d Decision) Headline() string {
	var b strings.Builder
	if d.Target != "" {
		b.WriteString(d.Target)
		b.WriteString(": ")
	}
	switch {
	case d.Action == Refuse || d.Chosen == "":
		fmt.Fprintf(&b, "%s refused", d.Requested)
	case d.Chosen == d.Requested:
		fmt.Fprintf(&b, "%s (%s)", d.Chosen, actionWords(d.Action))
	default:
		fmt.Fprintf(&b, "%s → %s (%s)", d.Requested, d.Chosen, actionWords(d.Action))
	}
	return b.String()
}

// Details returns one line per planner step (Step.String), then Notes.
func (d Decision) Details() []string {
	out := make([]string, 0, len(d.Steps)+3)
	for _, s := range d.Steps {
		out = append(out, s.String())
	}
	return append(out, d.Notes()...)
}

// Notes returns what a Decision says beyond its steps, one line each: the
// settings ("settings: kretprobe maxactive 64"), the hazards forced past,
// and in warn mode what enforce would have done.
func (d Decision) Notes() []string {
	var out []string
	if s := d.Settings.String(); s != "" {
		out = append(out, "settings: "+s)
	}
	if len(d.Forced) > 0 {
		ids := make([]string, len(d.Forced))
		for i, id := range d.Forced {
			ids[i] = string(id)
		}
		out = append(out, "forced past: "+strings.Join(ids, ", "))
	}
	if d.Mode == hazards.Warn && (d.WouldAction != "" || d.WouldChoose != "") {
		would := string(d.WouldChoose)
		if would == "" {
			would = "refuse"
		}
		out = append(out, fmt.Sprintf("warn mode: enforce would have chosen %s (%s)", would, d.WouldAction))
	}
	return out
}

// String describes one planner step, e.g. "fentry → kprobe:
// fentry-zap-pid-ns-deadlock: <reason>", "kretprobe refused: kretprobe
// unavailable: no CONFIG_KPROBES", "kretprobe kept (cap): <reason>".
func (s Step) String() string {
	var head string
	switch {
	case s.Action == Refuse || s.To == "":
		head = fmt.Sprintf("%s refused", s.From)
	case s.To == s.From:
		head = fmt.Sprintf("%s kept (%s)", s.From, s.Action)
	default:
		head = fmt.Sprintf("%s → %s", s.From, s.To)
	}
	var why []string
	if s.Hazard != "" {
		why = append(why, string(s.Hazard))
	}
	if s.Missing != "" {
		why = append(why, fmt.Sprintf("%s unavailable", s.Missing))
	}
	if s.Forced {
		why = append(why, "forced")
	}
	if s.Reason != "" {
		// Reasons often start with the hazard ID already.
		if s.Hazard != "" && strings.HasPrefix(s.Reason, string(s.Hazard)) && len(why) > 0 && why[0] == string(s.Hazard) {
			why = why[1:]
		}
		why = append(why, s.Reason)
	}
	if len(why) == 0 {
		return head
	}
	return head + ": " + strings.Join(why, ": ")
}

// String describes the chosen mechanism's parameters, or "" when there
// are none, e.g. "kretprobe maxactive 64; perf event software cpu-clock
// at 99 Hz".
func (s Settings) String() string {
	var parts []string
	if s.MaxActive > 0 {
		parts = append(parts, fmt.Sprintf("kretprobe maxactive %d", s.MaxActive))
	}
	if pe := s.PerfEvent; pe != nil {
		kind := "software cpu-clock"
		if pe.Hardware {
			kind = "hardware cycles"
		}
		switch {
		case pe.Frequency > 0:
			parts = append(parts, fmt.Sprintf("perf event %s at %d Hz", kind, pe.Frequency))
		case pe.Period > 0:
			parts = append(parts, fmt.Sprintf("perf event %s every %d events", kind, pe.Period))
		default:
			parts = append(parts, "perf event "+kind)
		}
	}
	if p := s.Pacing; p != nil {
		n := "one at a time"
		if p.Concurrency > 1 {
			n = fmt.Sprintf("%d at a time", p.Concurrency)
		}
		parts = append(parts, fmt.Sprintf("uprobe registrations paced %s, %s apart", n, p.Interval.Round(time.Microsecond)))
	}
	if s.Multi {
		parts = append(parts, "batched into one multi link")
	}
	return strings.Join(parts, "; ")
}

func actionWords(a Action) string {
	switch a {
	case Allow:
		return "as requested"
	case "":
		return "no action recorded"
	}
	return string(a)
}
