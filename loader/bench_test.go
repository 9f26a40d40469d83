package loader

import (
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/safebpf/safebpf/internal/perf"
)

// The benchmarks compare safebpf with plain cilium/ebpf doing the same
// work in the same process. Each round runs both sides once, alternating
// which goes first, so that drift in the machine's load (the CPU here is
// shared) hits both alike; each benchmark reports, besides Go's own
// numbers for the pair:
//
//	cilium-ns/op, safebpf-ns/op      median time of one side per round
//	safebpf/cilium                   median of the per-round ratios
//	cilium-allocs/op, safebpf-allocs/op   heap allocations per round
//
// docs/performance.md records a full run and how to repeat it. With
// -short the bulk benchmarks use fewer targets: scripts/test runs every
// benchmark once that way (-benchtime=1x) to check that they work, not
// how fast.

// side is one half of a comparison: run does the work once and returns
// the part of its time that counts (the attach phase of a load and
// attach, say), or 0 to count all of it.
type side func(b *testing.B) time.Duration

// rounds collects one side's measurements.
type rounds struct {
	d      []time.Duration
	allocs uint64
	// timeOnly: allocations were not counted for these rounds.
	timeOnly bool
}

// heapAllocs returns the process's cumulative heap allocations, exactly
// (runtime/metrics counts them per span refill, too coarsely for a few
// dozen allocations). It stops the world: call it outside timed regions.
func heapAllocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

func (r *rounds) run(b *testing.B, s side) {
	a := heapAllocs()
	start := time.Now()
	counted := s(b)
	total := time.Since(start)
	r.allocs += heapAllocs() - a
	if counted == 0 {
		counted = total
	}
	r.d = append(r.d, counted)
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// versus runs cilium and safebpf alternately, one round per iteration,
// and reports the metrics described above. It returns the median ratio
// safebpf/cilium.
func versus(b *testing.B, cilium, safebpf side) float64 {
	b.Helper()
	rs := interleave(b, cilium, safebpf)
	return report(b, "cilium", rs[0], "safebpf", rs[1])
}

// interleave runs the sides once each per iteration, rotating which goes
// first, and returns their measurements in order.
func interleave(b *testing.B, sides ...side) []*rounds {
	b.Helper()
	rs := make([]*rounds, len(sides))
	for i := range rs {
		rs[i] = &rounds{}
	}
	round := 0
	for b.Loop() {
		for j := range sides {
			k := (j + round) % len(sides)
			rs[k].run(b, sides[k])
		}
		round++
	}
	return rs
}

// report reports two sides' medians and allocations (as report does for
// each side) and the median of the per-round ratios second/first.
func report(b *testing.B, firstName string, first *rounds, secondName string, second *rounds) float64 {
	reportSide(b, firstName, first)
	reportSide(b, secondName, second)
	return reportRatio(b, secondName+"/"+firstName, second, first)
}

func reportSide(b *testing.B, name string, r *rounds) {
	if len(r.d) == 0 {
		return
	}
	b.ReportMetric(float64(median(r.d).Nanoseconds()), name+"-ns/op")
	if !r.timeOnly {
		b.ReportMetric(float64(r.allocs)/float64(len(r.d)), name+"-allocs/op")
	}
}

// reportRatio reports, as unit, the median of the per-round ratios
// num/den and returns it.
func reportRatio(b *testing.B, unit string, num, den *rounds) float64 {
	n := len(den.d)
	if n == 0 || len(num.d) != n {
		return 0
	}
	ratios := make([]float64, n)
	for i := range n {
		ratios[i] = float64(num.d[i]) / float64(den.d[i])
	}
	slices.Sort(ratios)
	ratio := ratios[n/2]
	b.ReportMetric(ratio, unit)
	return ratio
}

// paddedInsns is counterInsns(key) after n additions to R7: a program of
// about n instructions that verifies quickly.
func paddedInsns(name string, key int32, n int) asm.Instructions {
	insns := asm.Instructions{asm.Mov.Imm(asm.R7, 0).WithSymbol(name)}
	for i := range n {
		insns = append(insns, asm.Add.Imm(asm.R7, int32(i)))
	}
	body := counterInsns("", key, 0)
	body[0] = body[0].WithSymbol("")
	return append(insns, body...)
}

// tracepointSpec has n tracepoint programs of about insns instructions
// each on syscalls/sys_enter_getppid.
func tracepointSpec(n, insns int) *ebpf.CollectionSpec {
	var progs []*ebpf.ProgramSpec
	for i := range n {
		name := fmt.Sprintf("tp%d", i)
		progs = append(progs, &ebpf.ProgramSpec{
			Name: name, Type: ebpf.TracePoint, SectionName: "tracepoint/syscalls/sys_enter_getppid", License: "GPL",
			Instructions: paddedInsns(name, int32(i%8), insns),
		})
	}
	return spec(progs...)
}

// perfSpec has n perf_event programs of about insns instructions.
func perfSpec(n, insns int) (*ebpf.CollectionSpec, map[string]PerfEventOptions) {
	var progs []*ebpf.ProgramSpec
	events := map[string]PerfEventOptions{}
	for i := range n {
		name := fmt.Sprintf("pe%d", i)
		progs = append(progs, &ebpf.ProgramSpec{
			Name: name, Type: ebpf.PerfEvent, SectionName: "perf_event", License: "GPL",
			Instructions: paddedInsns(name, int32(i%8), insns),
		})
		events[name] = PerfEventOptions{Frequency: 99}
	}
	return spec(progs...), events
}

// ciliumPerfEvent is what a cilium/ebpf user writes to sample on the
// software cpu-clock: one perf event per online CPU, each given the
// program through a BPF perf link (the ioctl before 5.15), then enabled.
type ciliumPerfEvent struct {
	fds   []int
	links []link.Link
}

func openCiliumPerfEvent(b *testing.B, prog *ebpf.Program, cpus []int) *ciliumPerfEvent {
	attr := unix.PerfEventAttr{
		Type: unix.PERF_TYPE_SOFTWARE, Config: unix.PERF_COUNT_SW_CPU_CLOCK,
		Sample: 99, Bits: unix.PerfBitDisabled | unix.PerfBitFreq,
	}
	pe := &ciliumPerfEvent{}
	for _, cpu := range cpus {
		fd, err := unix.PerfEventOpen(&attr, -1, cpu, -1, unix.PERF_FLAG_FD_CLOEXEC)
		if err != nil {
			b.Fatalf("perf_event_open on cpu %d: %v", cpu, err)
		}
		pe.fds = append(pe.fds, fd)
		lk, err := link.AttachRawLink(link.RawLinkOptions{Target: fd, Program: prog, Attach: ebpf.AttachPerfEvent})
		if err != nil {
			if err := unix.IoctlSetInt(fd, unix.PERF_EVENT_IOC_SET_BPF, prog.FD()); err != nil {
				b.Fatalf("attach perf event on cpu %d: %v", cpu, err)
			}
		} else {
			pe.links = append(pe.links, lk)
		}
		if err := unix.IoctlSetInt(fd, unix.PERF_EVENT_IOC_ENABLE, 0); err != nil {
			b.Fatalf("enable perf event on cpu %d: %v", cpu, err)
		}
	}
	return pe
}

func (pe *ciliumPerfEvent) Close() {
	for _, lk := range pe.links {
		lk.Close()
	}
	for _, fd := range pe.fds {
		unix.Close(fd)
	}
}

func onlineCPUs(b *testing.B) []int {
	cpus, err := perf.OnlineCPUs()
	if err != nil {
		b.Fatal(err)
	}
	return cpus
}

// attachPhase times LoadAndAttach without the load of the collection,
// which is cilium/ebpf's own work on both sides: the time from the "load"
// step to the first attach is taken out.
type attachPhase struct {
	loadStart, loadEnd time.Time
}

func (ph *attachPhase) hook(step string) error {
	switch {
	case step == "load":
		ph.loadStart = time.Now()
	case ph.loadEnd.IsZero() && len(step) > 7 && step[:7] == "attach:":
		ph.loadEnd = time.Now()
	}
	return nil
}

func (ph *attachPhase) take() time.Duration {
	d := ph.loadEnd.Sub(ph.loadStart)
	*ph = attachPhase{}
	return d
}

// BenchmarkLoadAndAttach: the attach phase of LoadAndAttach (analysis,
// planning, telemetry and the attaches, without the collection's load)
// against cilium/ebpf attaching the same programs one by one, for 40
// tracepoint programs of 2,000 instructions and for 4 software
// perf_event programs. The whole call (load included) is reported too.
func BenchmarkLoadAndAttach(b *testing.B) {
	mountTracefs(b)
	b.Run("tracepoints", func(b *testing.B) {
		l := newHostLoader(b, nil)
		cs := tracepointSpec(40, 2000)
		benchLoadAndAttach(b, l, cs, nil, func(b *testing.B, coll *ebpf.Collection) []closer {
			var out []closer
			for name, p := range coll.Programs {
				lk, err := link.Tracepoint("syscalls", "sys_enter_getppid", p, nil)
				if err != nil {
					b.Fatalf("%s: %v", name, err)
				}
				out = append(out, linkCloser{lk})
			}
			return out
		})
	})
	b.Run("perf-events", func(b *testing.B) {
		l := newHostLoader(b, nil)
		cs, events := perfSpec(4, 2000)
		cpus := onlineCPUs(b)
		benchLoadAndAttach(b, l, cs, &CollectionOptions{PerfEvents: events}, func(b *testing.B, coll *ebpf.Collection) []closer {
			var out []closer
			for _, p := range coll.Programs {
				out = append(out, openCiliumPerfEvent(b, p, cpus))
			}
			return out
		})
	})
}

// closer is anything the cilium side closes.
type closer interface{ Close() }

type linkCloser struct{ link.Link }

func (l linkCloser) Close() { l.Link.Close() }

func benchLoadAndAttach(b *testing.B, l *Loader, cs *ebpf.CollectionSpec, opts *CollectionOptions, attach func(*testing.B, *ebpf.Collection) []closer) {
	var ph attachPhase
	l.hook = ph.hook
	defer func() { l.hook = nil }()
	var cw, sw rounds                                        // load and attach, as the call returns
	ca, sa := rounds{timeOnly: true}, rounds{timeOnly: true} // attach only: without the collection's load
	cilium := func() {
		a := heapAllocs()
		start := time.Now()
		coll, err := ebpf.NewCollection(cs)
		if err != nil {
			b.Fatal(err)
		}
		loaded := time.Now()
		closers := attach(b, coll)
		attached := time.Now()
		cw.allocs += heapAllocs() - a
		cw.d = append(cw.d, attached.Sub(start))
		ca.d = append(ca.d, attached.Sub(loaded))
		for _, c := range closers {
			c.Close()
		}
		coll.Close()
	}
	safebpf := func() {
		a := heapAllocs()
		start := time.Now()
		c, err := l.LoadAndAttach(cs, opts)
		if err != nil {
			b.Fatal(err)
		}
		attached := time.Now()
		sw.allocs += heapAllocs() - a
		sw.d = append(sw.d, attached.Sub(start))
		sa.d = append(sa.d, attached.Sub(start)-ph.take())
		c.Close()
	}
	i := 0
	for b.Loop() {
		if i%2 == 0 {
			cilium()
			safebpf()
		} else {
			safebpf()
			cilium()
		}
		i++
	}
	// The target: the whole call against cilium/ebpf's load and
	// attaches (close excluded). Attach only: what is left without the
	// collection's load, safebpf's own work included.
	report(b, "cilium", &cw, "safebpf", &sw)
	reportSide(b, "attach-only:cilium", &ca)
	reportSide(b, "attach-only:safebpf", &sa)
	reportRatio(b, "attach-only:safebpf/cilium", &sa, &ca)
}

// perAttachProgram loads one program of type typ (counting into slot 0)
// with plain cilium/ebpf, as an agent that migrated only its attach calls
// has it.
func perAttachProgram(b *testing.B, typ ebpf.ProgramType, section string) *ebpf.Program {
	coll, err := ebpf.NewCollection(spec(counterProg("p", section, typ, 0, 0)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { coll.Close() })
	return coll.Programs["p"]
}

// attachOnly times attach, then closes what it returned: the
// per-attachment benchmarks compare the attach calls, since closing is
// the same cilium/ebpf call on both sides and dominated by the kernel
// (detaching from a tracepoint waits for an RCU grace period, whose
// length varies far more than the attach costs).
func attachOnly(b *testing.B, attach func() (interface{ Close() error }, error)) time.Duration {
	start := time.Now()
	lk, err := attach()
	d := time.Since(start)
	if err != nil {
		b.Fatal(err)
	}
	lk.Close()
	return d
}

// keep attaches a second program to the same event for the length of the
// benchmark, so that each attach measured is one more program on an
// event already enabled.
func keep(b *testing.B, attach func() (link.Link, error)) {
	b.Helper()
	lk, err := attach()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { lk.Close() })
}

// eventBenchmarks runs one per-attachment comparison on an event in two
// states. "enabled": another program stays attached, so each attach is
// one more program on an enabled event (the kernel's part is smallest:
// this shows safebpf's own cost most harshly). "idle": each attach is the
// event's only program, so it enables the event (a static key flipped and
// kernel text patched; for syscall events every task flagged), as an
// agent's attach usually is; after each close the benchmark waits, out
// of the timed region, for the kernel to finish retiring the event
// (tracepoint_add_func otherwise waits for an RCU grace period on the
// next attach, which would be timed on whichever side came second).
func eventBenchmarks(b *testing.B, l *Loader, other *ebpf.Program, cilium, safebpf func() (interface{ Close() error }, error), keeper func(*ebpf.Program) (link.Link, error)) {
	b.Run("enabled", func(b *testing.B) {
		keep(b, func() (link.Link, error) { return keeper(other) })
		o := ownTimeOn(b, l)
		versus(b, func(b *testing.B) time.Duration {
			return attachOnly(b, cilium)
		}, func(b *testing.B) time.Duration {
			return o.attach(b, safebpf)
		})
		o.report(b)
	})
	b.Run("idle", func(b *testing.B) {
		settle := func(d time.Duration) time.Duration {
			time.Sleep(50 * time.Millisecond)
			return d
		}
		o := ownTimeOn(b, l)
		versus(b, func(b *testing.B) time.Duration {
			return settle(attachOnly(b, cilium))
		}, func(b *testing.B) time.Duration {
			return settle(o.attach(b, safebpf))
		})
		o.report(b)
	})
}

// ownTime splits a safebpf attach into the kernel's part (attachInto:
// the cilium/ebpf calls, or safebpf's equivalent of them) and the rest,
// safebpf's own work, through the Loader's "kernel" steps. Install it on
// the Loader; report adds the own time's median as safebpf-own-ns/op.
type ownTime struct {
	start, done time.Time
	own         []time.Duration
}

func (o *ownTime) hook(step string) error {
	switch step {
	case "kernel":
		o.start = time.Now()
	case "kernel-done":
		o.done = time.Now()
	}
	return nil
}

// ownTimeOn installs a new ownTime on l for the rest of the benchmark.
func ownTimeOn(b *testing.B, l *Loader) *ownTime {
	o := &ownTime{}
	l.hook = o.hook
	b.Cleanup(func() { l.hook = nil })
	return o
}

// attach times one safebpf attach and records its own time.
func (o *ownTime) attach(b *testing.B, attach func() (interface{ Close() error }, error)) time.Duration {
	o.start, o.done = time.Time{}, time.Time{}
	d := attachOnly(b, attach)
	if !o.start.IsZero() && !o.done.IsZero() {
		o.own = append(o.own, d-o.done.Sub(o.start))
	}
	return d
}

func (o *ownTime) report(b *testing.B) {
	if len(o.own) > 0 {
		b.ReportMetric(float64(median(o.own).Nanoseconds()), "safebpf-own-ns/op")
	}
}

// BenchmarkAttachTracepoint: Loader.Tracepoint against link.Tracepoint,
// on a program loaded by cilium/ebpf (see eventBenchmarks).
func BenchmarkAttachTracepoint(b *testing.B) {
	l := newHostLoader(b, nil)
	mountTracefs(b)
	prog := perAttachProgram(b, ebpf.TracePoint, "tracepoint/syscalls/sys_enter_getppid")
	eventBenchmarks(b, l, perAttachProgram(b, ebpf.TracePoint, "tracepoint/syscalls/sys_enter_getppid"),
		func() (interface{ Close() error }, error) {
			return link.Tracepoint("syscalls", "sys_enter_getppid", prog, nil)
		},
		func() (interface{ Close() error }, error) {
			return l.Tracepoint("syscalls", "sys_enter_getppid", prog, nil)
		},
		func(p *ebpf.Program) (link.Link, error) {
			return link.Tracepoint("syscalls", "sys_enter_getppid", p, nil)
		})
}

// BenchmarkAttachRawTracepoint: Loader.AttachRawTracepoint against
// link.AttachRawTracepoint (see eventBenchmarks).
func BenchmarkAttachRawTracepoint(b *testing.B) {
	l := newHostLoader(b, nil)
	prog := perAttachProgram(b, ebpf.RawTracepoint, "raw_tracepoint/sys_enter")
	eventBenchmarks(b, l, perAttachProgram(b, ebpf.RawTracepoint, "raw_tracepoint/sys_enter"),
		func() (interface{ Close() error }, error) {
			return link.AttachRawTracepoint(link.RawTracepointOptions{Name: "sys_enter", Program: prog})
		},
		func() (interface{ Close() error }, error) {
			return l.AttachRawTracepoint(link.RawTracepointOptions{Name: "sys_enter", Program: prog})
		},
		func(p *ebpf.Program) (link.Link, error) {
			return link.AttachRawTracepoint(link.RawTracepointOptions{Name: "sys_enter", Program: p})
		})
}

// BenchmarkAttachPerfEvent: Loader.AttachPerfEvent on the software
// cpu-clock at 99 Hz on every online CPU, against the cilium/ebpf code
// that does the same (perf_event_open per CPU, a BPF perf link each);
// attach only, as attachOnly says.
func BenchmarkAttachPerfEvent(b *testing.B) {
	l := newHostLoader(b, nil)
	prog := perAttachProgram(b, ebpf.PerfEvent, "perf_event")
	cpus := onlineCPUs(b)
	o := ownTimeOn(b, l)
	versus(b, func(b *testing.B) time.Duration {
		start := time.Now()
		pe := openCiliumPerfEvent(b, prog, cpus)
		d := time.Since(start)
		pe.Close()
		return d
	}, func(b *testing.B) time.Duration {
		return o.attach(b, func() (interface{ Close() error }, error) {
			return l.AttachPerfEvent(prog, PerfEventOptions{Frequency: 99})
		})
	})
	o.report(b)
}
