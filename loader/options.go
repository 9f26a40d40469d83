package loader

import (
	"fmt"
	"slices"

	"github.com/cilium/ebpf"

	"github.com/safebpf/safebpf/probe"
)

// CollectionOptions configures LoadAndAttach. A nil *CollectionOptions
// selects every default.
type CollectionOptions struct {
	// Collection is passed to ebpf.NewCollectionWithOptions. The zero value
	// is cilium/ebpf's default.
	Collection ebpf.CollectionOptions
	// Groups lists explicit groups of alternative programs, by program name;
	// one program of each group is attached, the others are removed from the
	// spec before loading. Programs not in any group are grouped
	// automatically by section name (fentry/X with kprobe/X, fexit/X with
	// kretprobe/X). Empty means automatic grouping only.
	Groups [][]string
	// Pinned lists programs whose mechanism must not change: hazards then
	// only refuse or warn. Empty means every program may be moved.
	Pinned []string
	// Uprobes gives, per program name, the binary and symbol of programs in
	// a plain "uprobe" or "uretprobe" section, and extra options for every
	// uprobe program (PID, offset, cookie). Sections of the form
	// "uprobe//path/to/bin:symbol" need no entry.
	Uprobes map[string]UprobeTarget
	// PerfEvents gives, per program name, the perf event a program in a
	// "perf_event" section attaches to. Such a program without an entry
	// makes LoadAndAttach fail.
	PerfEvents map[string]PerfEventOptions
	// KretprobeMaxActive is the maxactive requested for kretprobe programs.
	// Zero means the kernel default (or what a hazard's cap sets).
	KretprobeMaxActive int
}

// UprobeTarget says where a uprobe program attaches.
type UprobeTarget struct {
	// Binary is the path of the executable or library. Empty means the one
	// in the section name.
	Binary string
	// Symbol is the function symbol. Empty means the one in the section name.
	Symbol string
	// Options are passed to the uprobe (PID, offset, address, cookie).
	// Nil means defaults.
	Options *UprobeOptions
}

func (o *CollectionOptions) pinned(name string) bool {
	return o != nil && slices.Contains(o.Pinned, name)
}

func (o *CollectionOptions) uprobe(name string) (UprobeTarget, bool) {
	if o == nil || o.Uprobes == nil {
		return UprobeTarget{}, false
	}
	t, ok := o.Uprobes[name]
	return t, ok
}

// seccomp reports whether the traced processes of a uprobe program may run
// under seccomp (unknown counts as yes).
func (o *CollectionOptions) seccomp(name string) bool {
	t, ok := o.uprobe(name)
	return !ok || t.Options == nil || !t.Options.NoSeccomp
}

func (o *CollectionOptions) maxActive() int {
	if o == nil {
		return 0
	}
	return o.KretprobeMaxActive
}

// fillTarget completes the attach point of a section that carries no
// target from the options.
func (o *CollectionOptions) fillTarget(pi *progInfo) error {
	switch pi.ap.mech {
	case probe.PerfEventHardware, probe.PerfEventSoftware:
		var ev PerfEventOptions
		ok := false
		if o != nil && o.PerfEvents != nil {
			ev, ok = o.PerfEvents[pi.name]
		}
		if !ok {
			return fmt.Errorf("attach program %q in section %q: no perf event given (set CollectionOptions.PerfEvents[%q]): %w",
				pi.name, pi.section, pi.name, errInvalidInput)
		}
		if ev.Hardware {
			pi.ap.mech = probe.PerfEventHardware
			pi.ap.target = "hardware-cycles"
		} else {
			pi.ap.mech = probe.PerfEventSoftware
			pi.ap.target = "software-cpu-clock"
		}
		return nil
	default: // uprobes
		t, _ := o.uprobe(pi.name)
		if t.Binary != "" {
			pi.ap.path = t.Binary
		}
		if t.Symbol != "" {
			pi.ap.symbol = t.Symbol
		}
		if pi.ap.path == "" || pi.ap.symbol == "" {
			return fmt.Errorf("attach program %q in section %q: no binary and symbol given (set CollectionOptions.Uprobes[%q]): %w",
				pi.name, pi.section, pi.name, errInvalidInput)
		}
		pi.ap.target = pi.ap.path + ":" + pi.ap.symbol
		return nil
	}
}

func (o *CollectionOptions) perfEvent(name string) PerfEventOptions {
	if o == nil || o.PerfEvents == nil {
		return PerfEventOptions{}
	}
	return o.PerfEvents[name]
}

// KprobeOptions configures Kprobe and Kretprobe. A nil *KprobeOptions
// selects every default. The fields shared with cilium/ebpf's
// link.KprobeOptions mean the same.
type KprobeOptions struct {
	// Cookie is readable with bpf_get_attach_cookie(). Needs kernel 5.15+.
	Cookie uint64
	// Offset of the probe from the symbol. Zero means the entry.
	Offset uint64
	// RetprobeMaxActive is the kretprobe maxactive the caller asks for.
	// Zero means the kernel default; a hazard cap may set or lower it.
	RetprobeMaxActive int
	// Fentry is the fentry variant of the program (for Kprobe) or the fexit
	// variant (for Kretprobe), loaded with AttachTo set to the symbol. Nil
	// means the request cannot be moved to a trampoline.
	Fentry *ebpf.Program
	// Pinned forbids changing the mechanism: hazards only refuse or warn.
	Pinned bool
}

func (o *KprobeOptions) get() KprobeOptions {
	if o == nil {
		return KprobeOptions{}
	}
	return *o
}

// TracingOptions configures AttachTracing. The fields shared with
// cilium/ebpf's link.TracingOptions mean the same.
type TracingOptions struct {
	// Program is an fentry or fexit program.
	Program *ebpf.Program
	// AttachType is ebpf.AttachTraceFEntry or ebpf.AttachTraceFExit. Zero
	// means fentry.
	AttachType ebpf.AttachType
	// Cookie is readable with bpf_get_attach_cookie().
	Cookie uint64
	// Symbol is the kernel function Program is loaded for. Needed only
	// when Kprobe is set, to attach the variant.
	Symbol string
	// Kprobe is the kprobe variant (for fentry) or kretprobe variant (for
	// fexit) of Program. Nil means the request cannot be moved off the
	// trampoline.
	Kprobe *ebpf.Program
	// RetprobeMaxActive is the maxactive for a kretprobe variant. Zero means
	// the kernel default.
	RetprobeMaxActive int
	// Pinned forbids changing the mechanism.
	Pinned bool
}

// TracepointOptions configures Tracepoint. A nil *TracepointOptions selects
// every default.
type TracepointOptions struct {
	// Cookie is readable with bpf_get_attach_cookie(). Needs kernel 5.15+.
	Cookie uint64
}

// RawTracepointOptions configures AttachRawTracepoint, as in cilium/ebpf.
type RawTracepointOptions struct {
	// Name is the tracepoint name ("sched_switch").
	Name string
	// Program is a raw tracepoint program.
	Program *ebpf.Program
}

// UprobeOptions configures Uprobe and Uretprobe. A nil *UprobeOptions
// selects every default. The fields mean the same as in cilium/ebpf's
// link.UprobeOptions.
type UprobeOptions struct {
	// Address of the symbol; zero means look it up in the executable.
	Address uint64
	// Offset from the symbol's address.
	Offset uint64
	// PID limits the probe to one process; zero means every process.
	PID int
	// RefCtrOffset is the offset of an SDT semaphore; zero means none.
	RefCtrOffset uint64
	// Cookie is readable with bpf_get_attach_cookie(). Needs kernel 5.15+.
	Cookie uint64
	// NoSeccomp states that the traced processes run without a seccomp
	// filter. False means unknown, which counts as seccomp: on kernels with
	// uretprobe-seccomp-kill a uretprobe is then refused.
	NoSeccomp bool
	// Pinned forbids changing the mechanism.
	Pinned bool
}

// PerfEventOptions says which perf event a perf_event program samples on.
type PerfEventOptions struct {
	// Hardware asks for the CPU-cycles hardware event (an NMI on x86).
	// False asks for the software cpu-clock event. A hardware request may
	// be moved to cpu-clock with the same frequency or period when hardware
	// events are unavailable or hazardous for the program.
	Hardware bool
	// Frequency samples this many times a second. Exactly one of Frequency
	// and Period must be non-zero.
	Frequency uint64
	// Period samples every Period events (cycles, or nanoseconds of
	// cpu-clock).
	Period uint64
	// CPUs lists the CPUs to sample on. Empty means every online CPU.
	CPUs []int
	// Spec is the program's spec, scanned for helpers that read user memory
	// (AttachPerfEvent only; LoadAndAttach scans its own spec). Nil means
	// unknown, which counts as reading user memory.
	Spec *ebpf.ProgramSpec
	// Pinned forbids moving a hardware request to software.
	Pinned bool
}

func (p PerfEventOptions) validate() error {
	if (p.Frequency == 0) == (p.Period == 0) {
		return fmt.Errorf("perf event: want exactly one of Frequency (%d) and Period (%d): %w", p.Frequency, p.Period, errInvalidInput)
	}
	return nil
}
