package loader

import (
	"fmt"
	"slices"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/safebpf/safebpf/probe"
)

// CollectionOptions configures LoadAndAttach. A nil *CollectionOptions
// selects every default.
type CollectionOptions struct {
	// Collection is passed to ebpf.NewCollectionWithOptions. The zero value
	// is cilium/ebpf's default.
	Collection ebpf.CollectionOptions
	// Groups lists explicit groups of alternatives, by program name: at
	// most one alternative of each group attaches, the first (in the
	// caller's order) the planner does not refuse; the others are removed
	// from the spec before loading. Programs not in any group are grouped
	// automatically (see the package documentation). Empty means
	// automatic grouping only.
	Groups []Group
	// KeepMechanism lists programs whose mechanism must not change: a
	// hazard then only refuses or warns, and no variant stands in for the
	// program. Empty means every program may be moved.
	KeepMechanism []string
	// Optional lists programs that may be left out: when a program listed
	// here (or its whole group of alternatives) is refused, its target is
	// missing, or its attach fails, it is skipped with its Decision and
	// the rest attaches. A group is optional when any of its programs is
	// listed, and so is a program whose section name starts with "?"
	// (libbpf's mark for programs not loaded by default). Empty means
	// every refusal fails LoadAndAttach.
	Optional []string
	// Manual lists tracing programs the caller attaches itself (with the
	// per-attachment calls): they are loaded and never attached. Empty
	// means LoadAndAttach attaches every tracing program.
	Manual []string
	// Uprobes gives, per program name, the binary and symbol of uprobe
	// programs whose section does not name both ("uprobe",
	// "uretprobe/readline"), and options for any uprobe program.
	// Sections of the form "uprobe//path/to/bin:symbol" need no entry.
	Uprobes map[string]UprobeTarget
	// PerfEvents gives, per program name, the perf event a program in a
	// "perf_event" section attaches to. Such a program without an entry
	// makes LoadAndAttach fail.
	PerfEvents map[string]PerfEventOptions
	// Batches attaches, per program name, a kprobe, kretprobe, uprobe or
	// uretprobe program (or a multi one) to many targets, in place of its
	// section's own: kernel functions, or symbols of the binary (the
	// section's, or the one Uprobes gives). LoadAndAttach plans each
	// program's targets as one batch: one multi link where the kernel has
	// one and it is safe (kprobe_multi 5.18+, uprobe_multi 6.6+; a
	// single-probe program is then loaded for it), else one link per
	// target. Targets that do not exist fail the call before anything is
	// loaded, unless the batch is Optional. Empty means every program
	// attaches where its section says.
	Batches map[string]Batch
	// KretprobeMaxActive is the maxactive requested for kretprobe programs.
	// Zero means the kernel default (or what a hazard's cap sets).
	KretprobeMaxActive int
}

// Group is a set of alternatives: ways of tracing the same thing, in order
// of preference. Each alternative is one program, or several programs
// attached together (a kprobe and its kretprobe standing in for one
// fexit). At most one alternative attaches.
type Group struct {
	// Alternatives lists the alternatives by program name.
	Alternatives [][]string
	// Optional: when every alternative is refused or its target is
	// missing, the group is skipped and the rest attaches.
	Optional bool
}

// Alternatives returns a group whose alternatives are the named programs,
// one program each, in order of preference.
func Alternatives(programs ...string) Group {
	g := Group{}
	for _, p := range programs {
		g.Alternatives = append(g.Alternatives, []string{p})
	}
	return g
}

// Batch is the targets of one program (CollectionOptions.Batches).
type Batch struct {
	// Symbols are the kernel functions (kprobe and kretprobe programs, as
	// link.Kprobe takes them) or function symbols of the binary (uprobe and
	// uretprobe programs). At least one.
	Symbols []string
	// Cookies holds one BPF cookie per symbol, read with
	// bpf_get_attach_cookie (single links need kernel 5.15+). Nil means
	// none.
	Cookies []uint64
	// Optional lets targets that do not exist or cannot be attached be
	// left out (Link.Skipped, and a step of the Decision); false means all
	// or nothing.
	Optional bool
}

// UprobeTarget says where a uprobe program attaches.
type UprobeTarget struct {
	// Binary is the path of the executable or library. Empty means the one
	// in the section name.
	Binary string
	// Symbol is the function symbol. Empty means the one in the section name.
	Symbol string
	// Options are passed to cilium/ebpf (PID, offset, address, cookie).
	// Nil means defaults.
	Options *link.UprobeOptions
	// NoSeccomp states that the traced processes run without a seccomp
	// filter. False means unknown, which counts as seccomp: on kernels with
	// uretprobe-seccomp-kill a uretprobe is then refused.
	NoSeccomp bool
}

func (o *CollectionOptions) has(list func(*CollectionOptions) []string, name string) bool {
	return o != nil && slices.Contains(list(o), name)
}

func (o *CollectionOptions) keep(name string) bool {
	return o.has(func(o *CollectionOptions) []string { return o.KeepMechanism }, name)
}

func (o *CollectionOptions) optional(name string) bool {
	return o.has(func(o *CollectionOptions) []string { return o.Optional }, name)
}

func (o *CollectionOptions) manual(name string) bool {
	return o.has(func(o *CollectionOptions) []string { return o.Manual }, name)
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
	return !ok || !t.NoSeccomp
}

func (o *CollectionOptions) batch(name string) (Batch, bool) {
	if o == nil || o.Batches == nil {
		return Batch{}, false
	}
	b, ok := o.Batches[name]
	return b, ok
}

func (o *CollectionOptions) maxActive() int {
	if o == nil {
		return 0
	}
	return o.KretprobeMaxActive
}

func (o *CollectionOptions) groups() []Group {
	if o == nil {
		return nil
	}
	return o.Groups
}

func (o *CollectionOptions) collection() ebpf.CollectionOptions {
	if o == nil {
		return ebpf.CollectionOptions{}
	}
	return o.Collection
}

func (o *CollectionOptions) perfEvent(name string) (PerfEventOptions, bool) {
	if o == nil || o.PerfEvents == nil {
		return PerfEventOptions{}, false
	}
	ev, ok := o.PerfEvents[name]
	return ev, ok
}

// fillTarget completes, from the options, the attach point of a section
// that does not name its target, and replaces it with the program's
// batch.
func (o *CollectionOptions) fillTarget(pi *progInfo) error {
	b, ok := o.batch(pi.name)
	if !ok {
		return o.fillSectionTarget(pi)
	}
	ap := &pi.class.ap
	switch ap.mech {
	case probe.Kprobe, probe.Kretprobe, probe.KprobeMulti, probe.KretprobeMulti:
		if ap.offset != 0 || ap.syscall != "" {
			return fmt.Errorf("attach program %q in section %q: CollectionOptions.Batches gives its functions, but its section names an offset or a syscall: %w", pi.name, pi.section(), errInvalidInput)
		}
		ap.needsTarget = ""
	case probe.Uprobe, probe.Uretprobe, probe.UprobeMulti, probe.UretprobeMulti:
		if t, _ := o.uprobe(pi.name); t.Binary != "" {
			ap.path = t.Binary
		}
		if ap.path == "" {
			return fmt.Errorf("attach program %q in section %q: CollectionOptions.Batches gives its symbols, but no binary (name it in the section or in CollectionOptions.Uprobes[%q].Binary): %w", pi.name, pi.section(), pi.name, errInvalidInput)
		}
		if ap.offset != 0 {
			return fmt.Errorf("attach program %q in section %q: CollectionOptions.Batches gives its symbols, but its section names an offset: %w", pi.name, pi.section(), errInvalidInput)
		}
		ap.needsTarget = ""
	default:
		return fmt.Errorf("attach program %q in section %q: CollectionOptions.Batches is for kprobe and uprobe programs, not %s: %w", pi.name, pi.section(), ap.mech, errInvalidInput)
	}
	if err := validateBatch(ap.mech, b.Symbols, &BatchOptions{Cookies: b.Cookies}); err != nil {
		return fmt.Errorf("attach program %q: CollectionOptions.Batches: %w", pi.name, err)
	}
	ap.symbols, ap.cookies, ap.addrs = slices.Clone(b.Symbols), slices.Clone(b.Cookies), nil
	ap.symbol, ap.glob, ap.batch = "", false, true
	if len(b.Symbols) == 1 {
		ap.symbol = b.Symbols[0]
	}
	ap.target = describeTargets(b.Symbols, 0)
	if ap.path != "" {
		ap.target = ap.path + ":" + ap.target
	}
	pi.optionalTargets = b.Optional
	return nil
}

// fillSectionTarget completes, from the options, the attach point of a
// section that does not name its target.
func (o *CollectionOptions) fillSectionTarget(pi *progInfo) error {
	ap := &pi.class.ap
	switch ap.mech {
	case probe.PerfEventHardware, probe.PerfEventSoftware:
		ev, ok := o.perfEvent(pi.name)
		if !ok {
			return fmt.Errorf("attach program %q in section %q: no perf event given (set CollectionOptions.PerfEvents[%q]): %w",
				pi.name, pi.section(), pi.name, errInvalidInput)
		}
		if err := ev.validate(); err != nil {
			return fmt.Errorf("attach program %q: %w", pi.name, err)
		}
		ap.mech, ap.target = ev.mechanism(), ev.name()
		ap.needsTarget = ""
		return nil
	case probe.Uprobe, probe.Uretprobe, probe.UprobeMulti, probe.UretprobeMulti:
		t, _ := o.uprobe(pi.name)
		if t.Binary != "" {
			ap.path = t.Binary
		}
		if t.Symbol != "" {
			ap.symbol = t.Symbol
			ap.glob = (ap.mech == probe.UprobeMulti || ap.mech == probe.UretprobeMulti) && containsGlob(t.Symbol)
		}
		if ap.path == "" || ap.symbol == "" {
			if ap.needsTarget == "" {
				return nil
			}
			return fmt.Errorf("attach program %q in section %q: no binary and symbol given (set CollectionOptions.Uprobes[%q], or list it in CollectionOptions.Manual): %w",
				pi.name, pi.section(), pi.name, errInvalidInput)
		}
		ap.target = ap.path + ":" + ap.symbol
		ap.needsTarget = ""
		return nil
	}
	if ap.needsTarget != "" {
		return fmt.Errorf("attach program %q in section %q: no %s to attach to (set ProgramSpec.AttachTo, or list it in CollectionOptions.Manual): %w",
			pi.name, pi.section(), ap.needsTarget, errInvalidInput)
	}
	return nil
}

func containsGlob(s string) bool {
	for _, c := range s {
		if c == '*' || c == '?' {
			return true
		}
	}
	return false
}

// Extra holds what safebpf adds to a per-attachment call beyond
// cilium/ebpf's own options; pass it as the optional last argument. A nil
// *Extra means none of it.
type Extra struct {
	// Variants are the same program built for other mechanisms, by
	// mechanism: the fentry variant of a kprobe program (loaded with
	// AttachTo set to the symbol), the kretprobe variant of an fexit
	// program, the tp_btf variant of a raw tracepoint program. The planner
	// may move the request to any of them. Nil means the request stays on
	// its mechanism or is refused.
	Variants map[probe.Mechanism]*ebpf.Program
	// Spec is the program's spec: its instructions are scanned for helpers
	// that read user memory, and its AttachType and AttachTo say what a
	// tracing program is and where its variants attach. Nil means the
	// spec the Loader kept when it loaded the program (LoadAndAttach),
	// else unknown: the program counts as reading user memory.
	Spec *ebpf.ProgramSpec
	// KeepMechanism forbids moving the request to another mechanism:
	// hazards then only refuse or warn.
	KeepMechanism bool
	// NoSeccomp states that the processes a uprobe traces run without a
	// seccomp filter. False means unknown, which counts as seccomp: on
	// kernels with uretprobe-seccomp-kill a uretprobe is then refused.
	NoSeccomp bool
}

func extraOf(extra []*Extra) (Extra, error) {
	switch len(extra) {
	case 0:
		return Extra{}, nil
	case 1:
		if extra[0] == nil {
			return Extra{}, nil
		}
		return *extra[0], nil
	}
	return Extra{}, fmt.Errorf("got %d *Extra arguments, want at most one: %w", len(extra), errInvalidInput)
}

// PerfEventOptions says which perf event a perf_event program samples on.
//
// The event is the CPU-cycles hardware event when Hardware is set, the
// event named by Type and Config when either is non-zero (as in
// perf_event_attr: unix.PERF_TYPE_HARDWARE with
// unix.PERF_COUNT_HW_CACHE_MISSES, unix.PERF_TYPE_SOFTWARE with
// unix.PERF_COUNT_SW_TASK_CLOCK, PERF_TYPE_HW_CACHE, PERF_TYPE_RAW, or a
// PMU's dynamic type), and otherwise the software cpu-clock event.
//
// Only the CPU-cycles hardware event may be moved, to the software
// cpu-clock event with the same frequency or period, when hardware events
// are unavailable; every other event is kept as asked (refused if the
// kernel cannot give it). A hazard (nmi-user-read-deadlock,
// nmi-user-stack-deadlock) is no reason to move: it refuses the software
// event too, since cpu-clock runs in hard IRQ.
type PerfEventOptions struct {
	// Hardware asks for the CPU-cycles hardware event (an NMI on x86).
	Hardware bool
	// Type and Config select any other event. Both zero means Hardware
	// decides.
	Type   uint32
	Config uint64
	// Frequency samples this many times a second. Exactly one of Frequency
	// and Period must be non-zero.
	Frequency uint64
	// Period samples every Period events (cycles, or nanoseconds of
	// cpu-clock).
	Period uint64
	// CPUs lists the CPUs to sample on. Empty means every online CPU.
	CPUs []int
	// KeepMechanism forbids moving a CPU-cycles request to cpu-clock.
	KeepMechanism bool
}

func (p PerfEventOptions) custom() bool { return p.Type != 0 || p.Config != 0 }

func (p PerfEventOptions) validate() error {
	if (p.Frequency == 0) == (p.Period == 0) {
		return fmt.Errorf("perf event: want exactly one of Frequency (%d) and Period (%d): %w", p.Frequency, p.Period, errInvalidInput)
	}
	if p.custom() && p.Hardware {
		return fmt.Errorf("perf event: Hardware asks for CPU cycles, Type %d and Config %d for another event: set one of them: %w", p.Type, p.Config, errInvalidInput)
	}
	switch p.Type {
	case unix.PERF_TYPE_TRACEPOINT:
		return fmt.Errorf("perf event: type PERF_TYPE_TRACEPOINT: attach tracepoints with Loader.Tracepoint: %w", errInvalidInput)
	case unix.PERF_TYPE_BREAKPOINT:
		return fmt.Errorf("perf event: type PERF_TYPE_BREAKPOINT is not a sampling event safebpf attaches: %w", errInvalidInput)
	}
	return nil
}

// eventType returns the perf_event_attr type and config of the event.
func (p PerfEventOptions) eventType() (uint32, uint64) {
	switch {
	case p.custom():
		return p.Type, p.Config
	case p.Hardware:
		return unix.PERF_TYPE_HARDWARE, unix.PERF_COUNT_HW_CPU_CYCLES
	}
	return unix.PERF_TYPE_SOFTWARE, unix.PERF_COUNT_SW_CPU_CLOCK
}

// mechanism is the mechanism of the event: software events are
// perf-event-software; every other event uses the PMU (an NMI on x86).
func (p PerfEventOptions) mechanism() probe.Mechanism {
	if t, _ := p.eventType(); t == unix.PERF_TYPE_SOFTWARE {
		return probe.PerfEventSoftware
	}
	return probe.PerfEventHardware
}

// movable reports whether the planner may move the event to cpu-clock:
// only CPU cycles, which cpu-clock approximates.
func (p PerfEventOptions) movable() bool {
	t, c := p.eventType()
	return !p.KeepMechanism && t == unix.PERF_TYPE_HARDWARE && c == unix.PERF_COUNT_HW_CPU_CYCLES
}

// name names the event for decisions and messages.
func (p PerfEventOptions) name() string {
	t, c := p.eventType()
	switch t {
	case unix.PERF_TYPE_HARDWARE:
		if n, ok := hardwareNames[c]; ok {
			return "hardware-" + n
		}
		return fmt.Sprintf("hardware-%#x", c)
	case unix.PERF_TYPE_SOFTWARE:
		if n, ok := softwareNames[c]; ok {
			return "software-" + n
		}
		return fmt.Sprintf("software-%#x", c)
	case unix.PERF_TYPE_HW_CACHE:
		return fmt.Sprintf("hw-cache-%#x", c)
	case unix.PERF_TYPE_RAW:
		return fmt.Sprintf("raw-%#x", c)
	}
	return fmt.Sprintf("pmu-%d-%#x", t, c)
}

var hardwareNames = map[uint64]string{
	unix.PERF_COUNT_HW_CPU_CYCLES:              "cycles",
	unix.PERF_COUNT_HW_INSTRUCTIONS:            "instructions",
	unix.PERF_COUNT_HW_CACHE_REFERENCES:        "cache-references",
	unix.PERF_COUNT_HW_CACHE_MISSES:            "cache-misses",
	unix.PERF_COUNT_HW_BRANCH_INSTRUCTIONS:     "branch-instructions",
	unix.PERF_COUNT_HW_BRANCH_MISSES:           "branch-misses",
	unix.PERF_COUNT_HW_BUS_CYCLES:              "bus-cycles",
	unix.PERF_COUNT_HW_STALLED_CYCLES_FRONTEND: "stalled-cycles-frontend",
	unix.PERF_COUNT_HW_STALLED_CYCLES_BACKEND:  "stalled-cycles-backend",
	unix.PERF_COUNT_HW_REF_CPU_CYCLES:          "ref-cycles",
}

var softwareNames = map[uint64]string{
	unix.PERF_COUNT_SW_CPU_CLOCK:        "cpu-clock",
	unix.PERF_COUNT_SW_TASK_CLOCK:       "task-clock",
	unix.PERF_COUNT_SW_PAGE_FAULTS:      "page-faults",
	unix.PERF_COUNT_SW_CONTEXT_SWITCHES: "context-switches",
	unix.PERF_COUNT_SW_CPU_MIGRATIONS:   "cpu-migrations",
	unix.PERF_COUNT_SW_PAGE_FAULTS_MIN:  "minor-faults",
	unix.PERF_COUNT_SW_PAGE_FAULTS_MAJ:  "major-faults",
}
