package fallback

import (
	"fmt"
	"strings"

	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/probe"
)

// Blocker is one hazard that removed a mechanism from a plan.
type Blocker struct {
	Hazard    hazards.ID      `json:"hazard"`
	Title     string          `json:"title,omitempty"`
	Mechanism probe.Mechanism `json:"mechanism"`
	Verdict   hazards.Verdict `json:"verdict"`
	Action    hazards.Action  `json:"action"`
	// Reason is the finding's reason (its text is not a stable interface).
	Reason string `json:"reason"`
	// Ranges are the hazard's affected upstream version constraints.
	Ranges []string `json:"ranges,omitempty"`
	// FixedIn are the releases that carry the fix (the hazard's fixed_in).
	FixedIn []string `json:"fixed_in,omitempty"`
}

// MissingMechanism is a mechanism a plan could not use because the kernel
// lacks it, or because its availability could not be decided.
type MissingMechanism struct {
	Mechanism probe.Mechanism `json:"mechanism"`
	Reason    string          `json:"reason"`
	Undecided bool            `json:"undecided,omitempty"`
}

// RefusedError reports a request for which no safe, available mechanism
// remains. It matches [ErrRefused] with errors.Is; use errors.As to read
// the hazards and the way to force them.
type RefusedError struct {
	// Requested is the mechanism the caller asked for; Target what it was
	// to be attached to (may be empty).
	Requested probe.Mechanism
	Target    string
	// Kernel describes the kernel for messages ("kernel 5.4.0-150-generic (upstream 5.4.268)").
	Kernel string
	// Blockers lists every hazard that removed a mechanism along the way,
	// in the order met; Missing every mechanism that was unavailable.
	Blockers []Blocker
	Missing  []MissingMechanism
	// Tried are the plan's steps, the last one being the refusal.
	Tried []Step
	// Why says why the last mechanism could not be left (e.g. "the request
	// is pinned to fentry", "the request has no kprobe variant of the
	// program"); empty when no edge leads away from it.
	Why string
	// ForceHint says how to force the blocking hazards, empty when forcing
	// cannot help (only missing mechanisms).
	ForceHint string
}

// Error is one sentence: what was requested, what was tried, which hazard
// (with its affected ranges) or missing feature blocked it, and how to force.
func (e *RefusedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "attach %s", e.Requested)
	if e.Target != "" {
		fmt.Fprintf(&b, " to %q", e.Target)
	}
	b.WriteString(" refused")
	if e.Kernel != "" {
		fmt.Fprintf(&b, " on %s", e.Kernel)
	}
	var tried []string
	for _, s := range e.Tried {
		tried = append(tried, string(s.From))
	}
	fmt.Fprintf(&b, ": tried %s", strings.Join(tried, " then "))

	var parts []string
	for _, g := range groupBlockers(e.Blockers) {
		s := fmt.Sprintf("%s blocks %s", g.id, strings.Join(g.mechs, " and "))
		var detail []string
		if g.verdict == hazards.Unknown {
			detail = append(detail, "verdict unknown, treated as not safe")
		}
		if len(g.ranges) > 0 {
			detail = append(detail, "affected "+hazards.RangeText(g.ranges...))
		}
		if len(g.fixedIn) > 0 {
			detail = append(detail, "fixed in "+strings.Join(g.fixedIn, ", "))
		}
		if g.reason != "" {
			detail = append(detail, g.reason)
		}
		if len(detail) > 0 {
			s += " (" + strings.Join(detail, "; ") + ")"
		}
		parts = append(parts, s)
	}
	for _, m := range e.Missing {
		s := string(m.Mechanism) + " is not available"
		if m.Undecided {
			s = string(m.Mechanism) + " availability is undecided"
		}
		if m.Reason != "" {
			s += " (" + m.Reason + ")"
		}
		parts = append(parts, s)
	}
	if len(parts) > 0 {
		b.WriteString(", but ")
		b.WriteString(strings.Join(parts, ", and "))
	}
	if e.Why != "" {
		b.WriteString(", and " + e.Why)
	}
	if e.ForceHint != "" {
		b.WriteString("; " + e.ForceHint)
	} else if len(e.Missing) > 0 && len(e.Blockers) == 0 {
		b.WriteString("; no force can help: provide a program variant for another mechanism or run on a kernel that has it")
	}
	return b.String()
}

// Is makes errors.Is(err, ErrRefused) true.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// ErrorType is a bounded label for telemetry: "refused.<hazard>" for the
// first blocking hazard, or "refused.unavailable" when only missing
// mechanisms blocked the request.
func (e *RefusedError) ErrorType() string {
	if len(e.Blockers) > 0 {
		return "refused." + string(e.Blockers[0].Hazard)
	}
	return "refused.unavailable"
}

// Hazards returns the IDs of the blocking hazards, without duplicates.
func (e *RefusedError) Hazards() []hazards.ID {
	var ids []hazards.ID
	for _, b := range e.Blockers {
		ids = appendUnique(ids, b.Hazard)
	}
	return ids
}

type blockerGroup struct {
	id      hazards.ID
	mechs   []string
	ranges  []string
	fixedIn []string
	reason  string
	verdict hazards.Verdict
}

func groupBlockers(bs []Blocker) []*blockerGroup {
	var out []*blockerGroup
	idx := map[hazards.ID]*blockerGroup{}
	for _, b := range bs {
		g, ok := idx[b.Hazard]
		if !ok {
			g = &blockerGroup{id: b.Hazard, ranges: b.Ranges, fixedIn: b.FixedIn, reason: b.Reason, verdict: b.Verdict}
			idx[b.Hazard] = g
			out = append(out, g)
		}
		g.mechs = append(g.mechs, string(b.Mechanism))
	}
	return out
}

// forceHint names the flag and environment variable that force every
// blocking hazard.
func forceHint(bs []Blocker) string {
	var ids []string
	seen := map[hazards.ID]bool{}
	for _, b := range bs {
		if !seen[b.Hazard] {
			seen[b.Hazard] = true
			ids = append(ids, string(b.Hazard))
		}
	}
	if len(ids) == 0 {
		return ""
	}
	list := strings.Join(ids, ",")
	return fmt.Sprintf("to attach anyway, set -safebpf-force=%s or SAFEBPF_FORCE=%s", list, list)
}
