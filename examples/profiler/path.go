//go:build linux && (386 || amd64)

package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/loader"
)

// The two deadlocks a sampling program that touches user memory can hit
// in NMI or IRQ context, each with its own kernel path and fix.
const (
	userStackHazard = hazards.ID("nmi-user-stack-deadlock")
	userReadHazard  = hazards.ID("nmi-user-read-deadlock")
)

// writePath says which user-memory path the attached program takes and
// how each of the two deadlocks was judged on this kernel, from the
// loader's scan of the program and the decision's findings.
func writePath(w io.Writer, p loader.ProgramPlan) {
	fmt.Fprintf(w, "User memory: %s.\n", traits(p))
	if p.Decision == nil {
		return
	}
	for _, id := range []hazards.ID{userStackHazard, userReadHazard} {
		for _, f := range p.Decision.Findings {
			if f.ID == id {
				fmt.Fprintf(w, "  %s: %s: %s\n", id, f.Verdict, strings.TrimPrefix(f.Reason, string(id)+": "))
				break
			}
		}
	}
}

// traits describes what the scan found: user stacks, probe reads, or both.
func traits(p loader.ProgramPlan) string {
	switch {
	case p.ReadsUserStacks && !p.ReadsUserMemory:
		return fmt.Sprintf("%s takes user stacks and reads no other user memory, so the user-stack path "+
			"(copy_from_user_nmi, fixed in 6.0 and 5.19.14) applies and the probe-read path does not", p.Program)
	case p.ReadsUserStacks:
		return fmt.Sprintf("%s takes user stacks and reads user memory: both paths apply", p.Program)
	case p.ReadsUserMemory:
		return fmt.Sprintf("%s reads user memory through bpf_probe_read_user: the probe-read path applies", p.Program)
	}
	return fmt.Sprintf("%s reads no user memory", p.Program)
}

// writeRefusalPath says, after a refusal, which user-memory deadlock blocked
// the program and which kernels carry its fix.
func writeRefusalPath(w io.Writer, err error) {
	var re *fallback.RefusedError
	if !errors.As(err, &re) {
		return
	}
	for _, b := range re.Blockers {
		var path string
		switch b.Hazard {
		case userStackHazard:
			path = "the user-stack path (copy_from_user_nmi)"
		case userReadHazard:
			path = "the probe-read path (copy_from_user_nofault)"
		default:
			continue
		}
		fixed := "no fixed release is known"
		if len(b.FixedIn) > 0 {
			fixed = "kernels with the fix: " + strings.Join(b.FixedIn, ", ")
		}
		fmt.Fprintf(w, "User memory: %s deadlocks on this kernel when %s interrupts a vmap_area_lock holder (%s); %s.\n",
			path, b.Mechanism, b.Hazard, fixed)
	}
}
