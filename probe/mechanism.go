package probe

import (
	"fmt"
	"strings"
)

// Mechanism is a way of attaching a BPF program to the kernel or to a
// process. Its string form is the wire format used in JSON, policy files and
// on the command line, so the constants below never change spelling.
type Mechanism string

// The mechanisms safebpf knows, named as in docs/architecture.md.
const (
	Fentry            Mechanism = "fentry"
	Fexit             Mechanism = "fexit"
	Kprobe            Mechanism = "kprobe"
	Kretprobe         Mechanism = "kretprobe"
	KprobeMulti       Mechanism = "kprobe-multi"
	KretprobeMulti    Mechanism = "kretprobe-multi"
	Tracepoint        Mechanism = "tracepoint"
	RawTracepoint     Mechanism = "raw-tracepoint"
	Uprobe            Mechanism = "uprobe"
	Uretprobe         Mechanism = "uretprobe"
	UprobeMulti       Mechanism = "uprobe-multi"
	PerfEventHardware Mechanism = "perf-event-hardware"
	PerfEventSoftware Mechanism = "perf-event-software"
)

var allMechanisms = []Mechanism{
	Fentry, Fexit, Kprobe, Kretprobe, KprobeMulti, KretprobeMulti,
	Tracepoint, RawTracepoint, Uprobe, Uretprobe, UprobeMulti,
	PerfEventHardware, PerfEventSoftware,
}

// Mechanisms returns every known mechanism in a stable order.
func Mechanisms() []Mechanism {
	return append([]Mechanism(nil), allMechanisms...)
}

// ParseMechanism returns the mechanism spelled s, or an error listing the
// known names.
func ParseMechanism(s string) (Mechanism, error) {
	for _, m := range allMechanisms {
		if string(m) == s {
			return m, nil
		}
	}
	names := make([]string, len(allMechanisms))
	for i, m := range allMechanisms {
		names[i] = string(m)
	}
	return "", fmt.Errorf("unknown mechanism %q: want one of %s", s, strings.Join(names, ", "))
}

// Valid reports whether m is one of the known mechanisms.
func (m Mechanism) Valid() bool {
	_, err := ParseMechanism(string(m))
	return err == nil
}

// UnmarshalText accepts only known mechanism names.
func (m *Mechanism) UnmarshalText(b []byte) error {
	v, err := ParseMechanism(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// PatchesKernelText reports whether attaching m rewrites kernel text (INT3
// or ftrace patching): kprobes, trampolines, tracepoint static keys.
func (m Mechanism) PatchesKernelText() bool {
	switch m {
	case Kprobe, Kretprobe, KprobeMulti, KretprobeMulti, Fentry, Fexit, Tracepoint, RawTracepoint:
		return true
	}
	return false
}

// Trampoline reports whether m is a BPF trampoline (fentry/fexit).
func (m Mechanism) Trampoline() bool { return m == Fentry || m == Fexit }
