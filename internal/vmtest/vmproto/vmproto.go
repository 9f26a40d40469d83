// Package vmproto is the contract between the kernel-matrix harness on the
// host (package vmtest) and its PID-1 program in the guest (guestinit): the
// plan the host packs into the initramfs and the markers the guest prints on
// the serial console. It has no dependencies so the guest binary stays small.
package vmproto

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// PlanPath is where the host puts the plan inside the initramfs.
const PlanPath = "/vmtest/plan.json"

// Plan is what the guest runs, in order.
type Plan struct {
	// Kernel names the kernel under test ("debian-6.1"); it is exported to
	// every step as SAFEBPF_VM_KERNEL.
	Kernel string `json:"kernel"`
	// Env holds extra KEY=VALUE pairs for every step.
	Env []string `json:"env,omitempty"`
	// Steps run one after another, each as a child of PID 1.
	Steps []Step `json:"steps"`
}

// Step is one program the guest runs.
type Step struct {
	// Name identifies the step on the console ("loader.test").
	Name string `json:"name"`
	// Path is the program; Args its arguments (without argv[0]).
	Path string   `json:"path"`
	Args []string `json:"args,omitempty"`
	// Dir is the working directory; empty means "/".
	Dir string `json:"dir,omitempty"`
	// Timeout kills the step after this long; zero means no limit.
	Timeout time.Duration `json:"timeout,omitempty"`
	// Data makes the guest print the step's stdout as base64 DATA lines
	// instead of streaming it, so kernel messages on the console cannot
	// corrupt it (used for `safebpf probe --json`).
	Data bool `json:"data,omitempty"`
}

// Console markers. Every marker line starts with Prefix.
const (
	Prefix      = "=== VMTEST "
	KernelTag   = "KERNEL"      // KERNEL <uname -r>
	VersionTag  = "PROCVERSION" // PROCVERSION <first line of /proc/version>
	CPUsTag     = "CPUS"        // CPUS <online CPUs>
	BeginTag    = "BEGIN"       // BEGIN <step>
	EndTag      = "END"         // END <step> exit=<code> [<note>]
	DataTag     = "DATA"        // DATA <step> <base64 chunk>
	ErrorTag    = "ERROR"       // ERROR <message>: a problem in PID 1 itself
	DoneTag     = "DONE"        // DONE: every step ran; the guest powers off next
	DataLineLen = 76            // base64 characters per DATA line
)

// Begin formats the line that opens a step's output.
func Begin(step string) string { return Prefix + BeginTag + " " + step }

// End formats the line that closes a step's output. Code is the exit status,
// or -1 when the step did not exit normally (then note says why).
func End(step string, code int, note string) string {
	s := fmt.Sprintf("%s%s %s exit=%d", Prefix, EndTag, step, code)
	if note != "" {
		s += " " + note
	}
	return s
}

// ParseEnd parses the fields after "END ": step name, exit code and note.
func ParseEnd(rest string) (step string, code int, note string, err error) {
	step, tail, ok := strings.Cut(rest, " ")
	if !ok || !strings.HasPrefix(tail, "exit=") {
		return "", 0, "", fmt.Errorf("parse end marker %q: want <step> exit=<code>", rest)
	}
	num, note, _ := strings.Cut(strings.TrimPrefix(tail, "exit="), " ")
	code, err = strconv.Atoi(num)
	if err != nil {
		return "", 0, "", fmt.Errorf("parse end marker %q: %w", rest, err)
	}
	return step, code, note, nil
}

// LabTag marks a hazard-lab record on the console:
// "=== VMTEST LAB <JSON of LabRecord>" (see docs/hazard-lab.md).
const LabTag = "LAB"

// LabRecord is the outcome of one arm of a hazard-lab scenario in a guest
// (or on the host): the naive mechanism, safebpf's decision, or a witness.
type LabRecord struct {
	// Scenario is "1" to "5" (docs/hazard-lab.md).
	Scenario string `json:"scenario"`
	// Arm names what ran: "naive-fentry", "safebpf-fentry", "witness", ...
	Arm string `json:"arm"`
	// Safebpf is set when the arm attached through package loader.
	Safebpf bool `json:"safebpf,omitempty"`
	// Mechanism is what was attached ("fentry", "kretprobe maxactive=512"),
	// empty when nothing was (refused, failed).
	Mechanism string `json:"mechanism,omitempty"`
	// Decision is safebpf's decision in one line, for safebpf arms.
	Decision string `json:"decision,omitempty"`
	// Outcome is one word: hang, exited, missed, none-missed, survived,
	// killed, refused, lockup, no-lockup, affected, fixed, measured, error.
	Outcome string `json:"outcome"`
	// Summary states the outcome with its numbers, for the table.
	Summary string `json:"summary"`
	// Numbers holds the measurements by name ("exit_ms", "missed").
	Numbers map[string]float64 `json:"numbers,omitempty"`
	// Evidence lists what backs the outcome: kallsyms witnesses, stacks,
	// wchan, machine code, counters.
	Evidence []string `json:"evidence,omitempty"`
	// Error is set when the arm could not run as designed.
	Error string `json:"error,omitempty"`
}
