package loader

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/probe"
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

// ErrorType is a stable, low-cardinality name for telemetry: the
// refusal's own type ("refused.<hazard>", "refused.unavailable"),
// "not_found" for a missing target, "not_supported", or "attach_failed".
func (e *AttachError) ErrorType() string {
	var r *fallback.RefusedError
	switch {
	case errors.As(e.Err, &r):
		return r.ErrorType()
	case errors.Is(e.Err, os.ErrNotExist):
		return "not_found"
	case errors.Is(e.Err, ErrNotSupported):
		return "not_supported"
	}
	return "attach_failed"
}

// refusal is a request the loader did not carry out because nothing safe
// and available was left (a *fallback.RefusedError) or because its target
// does not exist. It matches ErrRefused, and the sentinel cilium/ebpf's
// own call would have matched on this kernel: ErrNotSupported when every
// obstacle was a mechanism the kernel lacks (no hazard), os.ErrNotExist
// (through the wrapped error) when the target is missing.
type refusal struct{ err error }

func newRefusal(err error) error {
	if err == nil {
		return nil
	}
	return &refusal{err: err}
}

func (e *refusal) Error() string { return e.err.Error() }
func (e *refusal) Unwrap() error { return e.err }

// Is matches ErrRefused always. When the planner refused only for
// mechanisms the kernel conclusively lacks (no hazard), it matches what
// cilium/ebpf's own call fails with on such a kernel: ErrNotSupported,
// and for kprobes, uprobes and tracepoints also os.ErrNotExist (without
// their perf PMU cilium/ebpf falls back to tracefs and finds no
// kprobe_events, uprobe_events or event directory).
func (e *refusal) Is(target error) bool {
	switch target {
	case ErrRefused:
		return true
	case ErrNotSupported, os.ErrNotExist:
		var r *fallback.RefusedError
		if !errors.As(e.err, &r) || len(r.Blockers) > 0 || len(r.Missing) == 0 {
			return false
		}
		tracefsBacked := false
		for _, m := range r.Missing {
			if m.Undecided {
				return false
			}
			switch m.Mechanism {
			case probe.Kprobe, probe.Kretprobe, probe.Uprobe, probe.Uretprobe, probe.Tracepoint:
				tracefsBacked = true
			}
		}
		return target == ErrNotSupported || tracefsBacked
	}
	return false
}

// ErrorType delegates to the refusal's type.
func (e *refusal) ErrorType() string {
	var r *fallback.RefusedError
	if errors.As(e.err, &r) {
		return r.ErrorType()
	}
	if errors.Is(e.err, os.ErrNotExist) {
		return "refused.not_found"
	}
	return "refused"
}

// rolledBack is the outcome recorded for a program that was planned, or
// attached, and then rolled back because another program of the same
// call failed: the failure belongs to that program, not to this one.
type rolledBack struct{ cause string }

func (e *rolledBack) Error() string {
	return fmt.Sprintf("not attached: rolled back because %s failed", e.cause)
}

// ErrorType is "rolled_back".
func (e *rolledBack) ErrorType() string { return "rolled_back" }

// Explain describes a decision on one line: what was requested, what was
// chosen, and each step with the hazard or missing feature that drove
// it. It is fallback.Decision.String, the one rendering of a Decision
// (the safebpf command, the example agents and the log records use the
// same words). Its text is not a stable interface.
func Explain(d fallback.Decision) string { return d.String() }
