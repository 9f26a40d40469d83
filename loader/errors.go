package loader

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/safebpf/safebpf/fallback"
)

// Sentinel errors, shared by value with the packages that define them so
// that errors.Is matches whichever name the caller imported.
var (
	// ErrRefused is matched by every refusal: the planner found no safe
	// mechanism and the blocking hazard was not forced. errors.As to a
	// *fallback.RefusedError gives the hazard and the force ID.
	ErrRefused = fallback.ErrRefused
	// ErrNotSupported is cilium/ebpf's sentinel for a missing kernel feature.
	ErrNotSupported = ebpf.ErrNotSupported
	// ErrClosed is returned by a Loader used after Close.
	ErrClosed = errors.New("loader closed")

	errInvalidInput = errors.New("invalid input")
)

// AttachError reports a failure after planning: loading the collection, or
// attaching one program with the mechanism the planner chose. Its message is
// one sentence naming what was requested, what was decided and why, and the
// kernel's answer.
type AttachError struct {
	// Program is the program's name in the CollectionSpec; empty for the
	// per-attachment calls.
	Program string
	// Op is the step that failed ("load collection", "attach", "open perf event").
	Op string
	// Decision is the planner's decision the step was carrying out.
	Decision fallback.Decision
	// Err is the underlying error (kernel or cilium/ebpf).
	Err error
}

// Error returns the one-sentence description; its text is not stable.
func (e *AttachError) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	if e.Program != "" {
		fmt.Fprintf(&b, " program %q", e.Program)
	}
	if d := e.Decision; d.Requested != "" {
		fmt.Fprintf(&b, " (%s)", Explain(d))
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

// Unwrap returns the underlying error.
func (e *AttachError) Unwrap() error { return e.Err }

// ErrorType is a stable, low-cardinality name for telemetry.
func (e *AttachError) ErrorType() string {
	if errors.Is(e.Err, ErrNotSupported) {
		return "not_supported"
	}
	return "attach_failed"
}

// Explain summarises a decision in one clause: what was requested, what was
// chosen and which hazard or missing feature drove each step. Its text is
// not a stable interface.
func Explain(d fallback.Decision) string {
	var b strings.Builder
	fmt.Fprintf(&b, "requested %s", d.Requested)
	if d.Target != "" {
		fmt.Fprintf(&b, " on %s", d.Target)
	}
	switch {
	case d.Chosen == "":
		b.WriteString(", refused")
	case d.Chosen == d.Requested && len(d.Steps) == 0:
		fmt.Fprintf(&b, ", attached as %s", d.Chosen)
	default:
		fmt.Fprintf(&b, ", chose %s (%s)", d.Chosen, d.Action)
	}
	var why []string
	for _, s := range d.Steps {
		w := string(s.Action)
		switch {
		case s.Hazard != "":
			w += " for hazard " + string(s.Hazard)
		case s.Missing != "":
			w += " because " + string(s.Missing) + " is unavailable"
		}
		if s.Forced {
			w += " (forced)"
		}
		why = append(why, w)
	}
	if len(why) > 0 {
		fmt.Fprintf(&b, ": %s", strings.Join(why, "; "))
	}
	if st := d.Settings; st.MaxActive > 0 || st.Pacing != nil || st.PerfEvent != nil {
		var s []string
		if st.MaxActive > 0 {
			s = append(s, fmt.Sprintf("maxactive %d", st.MaxActive))
		}
		if st.Pacing != nil {
			s = append(s, fmt.Sprintf("paced every %s", st.Pacing.Interval))
		}
		if p := st.PerfEvent; p != nil {
			kind := "software cpu-clock"
			if p.Hardware {
				kind = "hardware cycles"
			}
			if p.Frequency != 0 {
				s = append(s, fmt.Sprintf("%s at %d Hz", kind, p.Frequency))
			} else {
				s = append(s, fmt.Sprintf("%s every %d events", kind, p.Period))
			}
		}
		fmt.Fprintf(&b, " [%s]", strings.Join(s, ", "))
	}
	if d.WouldAction != "" {
		if d.WouldChoose != "" {
			fmt.Fprintf(&b, "; enforce would %s to %s", d.WouldAction, d.WouldChoose)
		} else {
			fmt.Fprintf(&b, "; enforce would %s", d.WouldAction)
		}
	}
	if d.Mode != "" && d.Mode != "enforce" {
		fmt.Fprintf(&b, " in %s mode", d.Mode)
	}
	return b.String()
}
