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

	// UretprobeMulti is a uprobe_multi link of return probes
	// (BPF_TRACE_UPROBE_MULTI with BPF_F_UPROBE_MULTI_RETURN): the
	// "uretprobe.multi/" section. Needs kernel 6.6+.
	UretprobeMulti Mechanism = "uretprobe-multi"
	// TpBTF is a BTF-typed raw tracepoint ("tp_btf/" section,
	// BPF_PROG_TYPE_TRACING with BPF_TRACE_RAW_TP). It attaches like a raw
	// tracepoint (bpf_probe_register), not through a BPF trampoline.
	// Needs kernel 5.5+ and kernel BTF.
	TpBTF Mechanism = "tp-btf"
	// FmodRet is a BPF trampoline program that may change a function's
	// return value ("fmod_ret/" section, BPF_MODIFY_RETURN). Needs 5.7+.
	FmodRet Mechanism = "fmod-ret"
	// LSM is a BPF LSM program ("lsm/" section), attached to a bpf_lsm_*
	// hook through a BPF trampoline. Needs 5.7+, CONFIG_BPF_LSM and "bpf"
	// in the active LSM list.
	LSM Mechanism = "lsm"
	// Iter is a BPF iterator ("iter/" section): it runs when user space
	// reads it, never from a kernel hook. Needs 5.8+.
	Iter Mechanism = "iter"
)

var allMechanisms = []Mechanism{
	Fentry, Fexit, Kprobe, Kretprobe, KprobeMulti, KretprobeMulti,
	Tracepoint, RawTracepoint, Uprobe, Uretprobe, UprobeMulti,
	PerfEventHardware, PerfEventSoftware,
	UretprobeMulti, TpBTF, FmodRet, LSM, Iter,
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
	case Kprobe, Kretprobe, KprobeMulti, KretprobeMulti, Fentry, Fexit, FmodRet, LSM,
		Tracepoint, RawTracepoint, TpBTF:
		return true
	}
	return false
}

// Trampoline reports whether m attaches through a BPF trampoline (fentry,
// fexit, fmod_ret, LSM), whose detach waits for RCU tasks.
func (m Mechanism) Trampoline() bool {
	return m == Fentry || m == Fexit || m == FmodRet || m == LSM
}

// Return reports whether m runs at a function's return (kretprobe, fexit,
// uretprobe and their multi forms, fmod_ret): such a program sees the
// return value, and must never be replaced by an entry probe.
func (m Mechanism) Return() bool {
	switch m {
	case Kretprobe, KretprobeMulti, Fexit, FmodRet, Uretprobe, UretprobeMulti:
		return true
	}
	return false
}

// Occurrence is a three-valued "does it happen": always, maybe (it depends
// on what the program is attached to), never.
type Occurrence string

// The occurrences.
const (
	Always Occurrence = "always"
	Maybe  Occurrence = "maybe"
	Never  Occurrence = "never"
)

// InterruptContext says whether a program attached with m runs in hard-IRQ
// or NMI context, where it can interrupt a CPU that holds a lock taken with
// interrupts enabled:
//
//   - Always: perf_event programs. A hardware event's overflow handler is
//     an NMI on x86; the software cpu-clock event's runs from an hrtimer in
//     hard-IRQ context.
//   - Maybe: programs on kernel functions and events (kprobes and their
//     multi forms, fentry, fexit, fmod_ret, LSM hooks, tracepoints, raw and
//     BTF tracepoints), which run in whatever context the traced code runs
//     in, interrupts included.
//   - Never: uprobes and their multi forms (they fire in the traced task,
//     in process context) and iterators (they run in the reader's read()).
func (m Mechanism) InterruptContext() Occurrence {
	if o, ok := interruptContexts[m]; ok {
		return o
	}
	return Maybe
}

var interruptContexts = map[Mechanism]Occurrence{
	PerfEventHardware: Always, PerfEventSoftware: Always,
	Kprobe: Maybe, Kretprobe: Maybe, KprobeMulti: Maybe, KretprobeMulti: Maybe,
	Fentry: Maybe, Fexit: Maybe, FmodRet: Maybe, LSM: Maybe,
	Tracepoint: Maybe, RawTracepoint: Maybe, TpBTF: Maybe,
	Uprobe: Never, Uretprobe: Never, UprobeMulti: Never, UretprobeMulti: Never, Iter: Never,
}
