// Package explain prints safebpf decisions in plain words. The example
// agents use it to say, at start, which mechanism each program got and why.
//
// The text is meant for people; do not parse it (use the JSON form of
// fallback.Decision for scripts).
package explain

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/loader"
	"github.com/safebpf/safebpf/probe"
)

// Decision describes d: its headline, then one indented line per planner
// step and note (fallback.Decision.Headline, Details). Lines end in "\n".
func Decision(d fallback.Decision) string {
	var b strings.Builder
	b.WriteString(d.Headline())
	b.WriteString("\n")
	for _, line := range d.Details() {
		b.WriteString("    ")
		b.WriteString(line)
		b.WriteString("\n")
	}
	return b.String()
}

// Fprint writes a header naming the kernel (when kernel is not empty) and
// every decision.
func Fprint(w io.Writer, kernel string, ds []fallback.Decision) error {
	var b strings.Builder
	if kernel != "" {
		fmt.Fprintf(&b, "safebpf decisions on kernel %s:\n", kernel)
	} else {
		b.WriteString("safebpf decisions:\n")
	}
	if len(ds) == 0 {
		b.WriteString("  (none)\n")
	}
	for _, d := range ds {
		for _, line := range strings.SplitAfter(Decision(d), "\n") {
			if line != "" {
				b.WriteString("  " + line)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Failure writes what safebpf decided when attaching failed or was
// refused, and returns an error for the caller to report and exit on: a
// *ReportedError wrapping err when it wrote something, else err. A refusal
// is the library working as intended: nothing safe remained on this kernel.
func Failure(w io.Writer, kernel string, err error) error {
	var b strings.Builder
	on := ""
	if kernel != "" {
		on = " on kernel " + kernel
	}
	var refusals []*fallback.RefusedError
	var attach *loader.AttachError
	walk(err, func(e error) {
		if r, ok := e.(*fallback.RefusedError); ok {
			refusals = append(refusals, r)
		}
	})
	switch {
	case len(refusals) > 0:
		fmt.Fprintf(&b, "safebpf refused to attach%s:\n", on)
		for _, r := range refusals {
			target := r.Target
			if target == "" {
				target = "(unnamed)"
			}
			fmt.Fprintf(&b, "  %s: %s refused\n", target, r.Requested)
			for _, s := range r.Tried {
				fmt.Fprintf(&b, "    %s\n", s)
			}
			if r.ForceHint != "" {
				fmt.Fprintf(&b, "    to attach anyway: %s\n", r.ForceHint)
			}
		}
	case errors.As(err, &attach) && attach.Decision.Requested != "":
		fmt.Fprintf(&b, "safebpf decided%s:\n", on)
		for _, line := range strings.SplitAfter(Decision(attach.Decision), "\n") {
			if line != "" {
				b.WriteString("  " + line)
			}
		}
		fmt.Fprintf(&b, "  but the kernel said: %v\n", attach.Err)
	}
	if b.Len() == 0 {
		return err
	}
	if _, werr := io.WriteString(w, b.String()); werr != nil {
		return errors.Join(err, werr)
	}
	return &ReportedError{Err: err}
}

// ReportedError is an error whose details Failure has already written.
// Its message is short so that a command does not print them twice.
type ReportedError struct {
	Err error
}

// Error implements error: the explanation already printed.
func (e *ReportedError) Error() string {
	if errors.Is(e.Err, fallback.ErrRefused) {
		return "refused to attach (reasons above)"
	}
	return "attach failed (reasons above)"
}

// Unwrap returns the error Failure reported.
func (e *ReportedError) Unwrap() error { return e.Err }

// walk calls fn on err and every error it wraps, depth first.
func walk(err error, fn func(error)) {
	if err == nil {
		return
	}
	fn(err)
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		walk(u.Unwrap(), fn)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			walk(e, fn)
		}
	}
}

// Kernel names k in one short phrase: the release, the upstream version
// safebpf trusted and the distribution, as far as they are known.
func Kernel(k *probe.Kernel) string {
	if k == nil {
		return ""
	}
	var extra []string
	if k.Version != nil {
		extra = append(extra, fmt.Sprintf("upstream %s from %s", k.Version, k.VersionSource))
	} else {
		extra = append(extra, "upstream version unknown")
	}
	if k.Distro.ID != "" {
		d := k.Distro.ID
		if k.Distro.VersionID != "" {
			d += " " + k.Distro.VersionID
		}
		extra = append(extra, d)
	}
	if k.Arch != "" {
		extra = append(extra, k.Arch)
	}
	return fmt.Sprintf("%s (%s)", k.Release, strings.Join(extra, ", "))
}
