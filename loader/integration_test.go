package loader

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/google/go-cmp/cmp"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/internal/perf"
	"github.com/safebpf/safebpf/internal/testutil"
	"github.com/safebpf/safebpf/internal/tracefs"
	"github.com/safebpf/safebpf/probe"
)

// TestUprobeUretprobeHits attaches a uprobe and a uretprobe on a binary the
// test builds, runs it, and counts the hits through a map.
func TestUprobeUretprobeHits(t *testing.T) {
	l := newHostLoader(t, nil)
	bin := buildTarget(t)
	const calls = 7
	cs := spec(
		counterProg("on_enter", "uprobe/"+bin.Path+":"+bin.Symbol, ebpf.Kprobe, 0, 0),
		counterProg("on_return", "uretprobe", ebpf.Kprobe, 1, 0),
	)
	c, err := l.LoadAndAttach(cs, &CollectionOptions{
		// The target runs without seccomp: uretprobes are fine even where
		// uretprobe-seccomp-kill applies.
		Uprobes: map[string]UprobeTarget{
			"on_enter":  {NoSeccomp: true},
			"on_return": {Binary: bin.Path, Symbol: bin.Symbol, NoSeccomp: true},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, name := range []string{"on_enter", "on_return"} {
		if !c.Links[name].Attached() {
			t.Fatalf("%s not attached", name)
		}
	}
	if got, want := len(c.Decisions), 2; got != want {
		t.Fatalf("got %d decisions, want %d: %+v", got, want, c.Decisions)
	}
	d, _ := c.Decision("on_return")
	if d.Chosen != probe.Uretprobe {
		t.Errorf("on_return chose %q, want uretprobe", d.Chosen)
	}
	for _, d := range c.Decisions {
		// Kernels before 6.14 stall on uprobe registration: paced.
		if paced := d.Settings.Pacing != nil; paced != affected(d, "uprobe-mmap-lock-stall") {
			t.Errorf("%s: paced %v, but uprobe-mmap-lock-stall affected is %v", Explain(d), paced, !paced)
		}
	}
	runTarget(t, bin, calls)
	if got := readCount(t, c.Maps["counts"], 0); got != calls {
		t.Errorf("uprobe hits = %d, want %d", got, calls)
	}
	if got := readCount(t, c.Maps["counts"], 1); got != calls {
		t.Errorf("uretprobe hits = %d, want %d", got, calls)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestPerAttachUprobe uses the per-attachment API.
func TestPerAttachUprobe(t *testing.T) {
	l := newHostLoader(t, nil)
	bin := buildTarget(t)
	cs := spec(counterProg("p", "uprobe", ebpf.Kprobe, 2, 0))
	coll, err := ebpf.NewCollection(cs)
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	ex, err := l.OpenExecutable(bin.Path)
	if err != nil {
		t.Fatal(err)
	}
	lk, err := ex.Uprobe(bin.Symbol, coll.Programs["p"], nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	if d := lk.Decision(); d.Chosen != probe.Uprobe || d.Requested != probe.Uprobe {
		t.Errorf("decision %s, want uprobe as requested", Explain(d))
	}
	// Before 5.15 a perf-event uprobe has no BPF link to describe.
	if _, err := lk.Info(); err != nil && !errors.Is(err, ErrNotSupported) {
		t.Errorf("Info through the embedded link.Link: %v", err)
	}
	runTarget(t, bin, 3)
	if got := readCount(t, coll.Maps["counts"], 2); got != 3 {
		t.Errorf("hits = %d, want 3", got)
	}
	// cilium/ebpf's own *link.Executable is accepted too.
	cex, err := link.OpenExecutable(bin.Path)
	if err != nil {
		t.Fatal(err)
	}
	lk2, err := l.Uprobe(cex, bin.Symbol, coll.Programs["p"], nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lk2.Close()
	runTarget(t, bin, 2)
	if got := readCount(t, coll.Maps["counts"], 2); got != 3+2*2 {
		t.Errorf("hits with two uprobes = %d, want %d", got, 3+2*2)
	}
}

// TestTracepointSyscall attaches to the getpid syscall tracepoint and
// counts this process's calls.
func TestTracepointSyscall(t *testing.T) {
	l := newHostLoader(t, nil)
	mountTracefs(t)
	if _, err := os.Stat("/sys/kernel/tracing/events/syscalls/sys_enter_getpid"); err != nil {
		t.Skipf("kernel lacks the syscalls/sys_enter_getpid tracepoint (CONFIG_FTRACE_SYSCALLS): %v", err)
	}
	cs := spec(counterProg("tp", "tracepoint/syscalls/sys_enter_getpid", ebpf.TracePoint, 3, os.Getpid()))
	c, err := l.LoadAndAttach(cs, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const calls = 25
	for range calls {
		syscallGetpid()
	}
	if got := readCount(t, c.Maps["counts"], 3); got < calls {
		t.Errorf("tracepoint hits = %d, want >= %d", got, calls)
	}
	if d := c.Decisions[0]; d.Chosen != probe.Tracepoint {
		t.Errorf("chose %q, want tracepoint", d.Chosen)
	}
}

// TestPerfHardwareToSoftware asks for a hardware perf event with a program
// that reads user memory; where hardware events are unavailable (or the NMI
// deadlock applies) it must land on software cpu-clock and sample.
func TestPerfHardwareToSoftware(t *testing.T) {
	l := newHostLoader(t, nil)
	k := l.Kernel()
	if !k.Support(probe.PerfEventSoftware).Yes() {
		t.Skipf("kernel lacks software perf events: %s", k.Support(probe.PerfEventSoftware).Reason)
	}
	// The program reads user memory (bpf_probe_read_user) so that the NMI
	// hazard concerns it.
	cs := spec(readerProg("sample", "perf_event", ebpf.PerfEvent, 4))
	c, err := l.LoadAndAttach(cs, &CollectionOptions{
		PerfEvents: map[string]PerfEventOptions{"sample": {Hardware: true, Frequency: 199}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	d := c.Decisions[0]
	if !c.Plans[0].ReadsUserMemory {
		t.Errorf("scan missed bpf_probe_read_user: %+v", c.Plans[0])
	}
	if k.Support(probe.PerfEventHardware).No() || affected(d, "nmi-user-read-deadlock") {
		want := fallback.PerfEvent{Hardware: false, Frequency: 199}
		if d.Chosen != probe.PerfEventSoftware || d.Settings.PerfEvent == nil {
			t.Fatalf("chose %s, want perf-event-software", Explain(d))
		}
		if diff := cmp.Diff(want, *d.Settings.PerfEvent); diff != "" {
			t.Errorf("perf event settings (-want +got):\n%s", diff)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && readCount(t, c.Maps["counts"], 4) == 0 {
		spin(50 * time.Millisecond)
	}
	if got := readCount(t, c.Maps["counts"], 4); got == 0 {
		t.Errorf("no samples counted on %s", d.Chosen)
	}
}

// TestFentryKprobeRefused: with neither fentry nor kprobes, the pair ends in
// the typed refusal and nothing is loaded.
func TestFentryKprobeRefused(t *testing.T) {
	l := newHostLoader(t, nil)
	k := l.Kernel()
	if !k.Support(probe.Fentry).No() || !k.Support(probe.Kprobe).No() {
		t.Skipf("kernel has fentry (%s) or kprobes (%s): the refusal needs both missing",
			k.Support(probe.Fentry).Reason, k.Support(probe.Kprobe).Reason)
	}
	before := kernelFDs(t)
	cs := spec(
		counterProg("fe", "fentry/do_unlinkat", ebpf.Tracing, 0, 0),
		counterProg("kp", "kprobe/do_unlinkat", ebpf.Kprobe, 0, 0),
	)
	c, err := l.LoadAndAttach(cs, nil)
	if err == nil {
		c.Close()
		t.Fatal("LoadAndAttach succeeded, want a refusal")
	}
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("error %v does not match ErrRefused", err)
	}
	var re *fallback.RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("error %v is not a *fallback.RefusedError", err)
	}
	if re.Requested != probe.Fentry {
		t.Errorf("refusal requested %q, want fentry", re.Requested)
	}
	if diff := cmp.Diff(before, kernelFDs(t)); diff != "" {
		t.Errorf("kernel fds changed by a refused call (-before +after):\n%s", diff)
	}
	// A refusal for missing mechanisms only matches what cilium/ebpf's
	// own error matches here.
	if !errors.Is(err, ErrNotSupported) {
		t.Errorf("refusal %v does not match ErrNotSupported", err)
	}
	// The same through the per-attachment API, with a kprobe program
	// (which loads here).
	coll, err := ebpf.NewCollection(spec(counterProg("kp", "kprobe/do_unlinkat", ebpf.Kprobe, 0, 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	_, err = l.Kprobe("do_unlinkat", coll.Programs["kp"], nil)
	if !errors.Is(err, ErrRefused) || !errors.Is(err, ErrNotSupported) {
		t.Errorf("Kprobe: got %v, want ErrRefused and ErrNotSupported", err)
	}
	// Ground truth: whatever sentinel cilium/ebpf's own call matches on
	// this kernel, safebpf's refusal matches too.
	_, ciliumErr := link.Kprobe("do_unlinkat", coll.Programs["kp"], nil)
	if ciliumErr == nil {
		t.Fatal("cilium/ebpf attached a kprobe on a kernel said to lack kprobes")
	}
	for _, sentinel := range []error{ErrNotSupported, os.ErrNotExist} {
		if errors.Is(ciliumErr, sentinel) && !errors.Is(err, sentinel) {
			t.Errorf("cilium/ebpf's error (%v) matches %v, safebpf's (%v) does not", ciliumErr, sentinel, err)
		}
	}
}

// TestRollback injects a failure at every step of LoadAndAttach and checks
// that the process holds exactly the BPF and perf fds it held before.
func TestRollback(t *testing.T) {
	l := newHostLoader(t, nil)
	mountTracefs(t)
	bin := buildTarget(t)
	cs := spec(
		counterProg("up", "uprobe/"+bin.Path+":"+bin.Symbol, ebpf.Kprobe, 0, 0),
		counterProg("uret", "uretprobe/"+bin.Path+":"+bin.Symbol, ebpf.Kprobe, 1, 0),
		counterProg("tp", "tracepoint/sched/sched_process_exec", ebpf.TracePoint, 2, 0),
		counterProg("perf", "perf_event", ebpf.PerfEvent, 3, 0),
		// Not attached: loaded and must be freed too.
		&ebpf.ProgramSpec{Name: "sock", Type: ebpf.SocketFilter, SectionName: "socket", License: "GPL",
			Instructions: asmReturn0("sock")},
	)
	copts := &CollectionOptions{
		PerfEvents: map[string]PerfEventOptions{"perf": {Frequency: 10}},
		Uprobes:    map[string]UprobeTarget{"uret": {NoSeccomp: true}},
	}

	// Warm up caches (feature probes, kernel BTF) so they do not count.
	c, err := l.LoadAndAttach(cs, copts)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()

	steps := []string{"load"}
	for _, p := range []string{"perf", "tp", "uret", "up"} {
		steps = append(steps, "attach:"+p, "attached:"+p)
	}
	steps = append(steps, "perf-open", "perf-attach:0", "uprobe:"+bin.Symbol)
	if cpus, err := perf.OnlineCPUs(); err == nil && len(cpus) > 1 {
		// Fail on the second CPU, after the first one attached.
		steps = append(steps, fmt.Sprintf("perf-attach:%d", cpus[1]))
	}
	for _, step := range steps {
		t.Run(step, func(t *testing.T) {
			injected := fmt.Errorf("injected failure at %s", step)
			hit := false
			l.hook = func(s string) error {
				if s == step && !hit {
					hit = true
					return injected
				}
				return nil
			}
			defer func() { l.hook = nil }()
			before := kernelFDs(t)
			c, err := l.LoadAndAttach(cs, copts)
			if err == nil {
				c.Close()
				t.Fatalf("no error with a failure injected at %s (hook hit: %v)", step, hit)
			}
			if !errors.Is(err, injected) {
				t.Fatalf("error %v does not wrap the injected failure", err)
			}
			if diff := cmp.Diff(before, kernelFDs(t)); diff != "" {
				t.Errorf("kernel fds leaked after failing at %s (-before +after):\n%s", step, diff)
			}
		})
	}
}

// TestModes checks audit (loaded, nothing attached) and warn (attached as
// requested).
func TestModes(t *testing.T) {
	bin := buildTarget(t)
	cs := spec(counterProg("up", "uprobe/"+bin.Path+":"+bin.Symbol, ebpf.Kprobe, 0, 0))

	t.Run("audit", func(t *testing.T) {
		l := newHostLoader(t, &Options{Mode: hazards.Audit})
		before := kernelFDs(t)
		c, err := l.LoadAndAttach(cs, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Programs) != 1 || len(c.Maps) != 1 || len(c.Links) != 0 || len(c.Decisions) != 1 {
			t.Errorf("audit loaded %d programs, %d maps, %d links, %d decisions; want 1, 1, 0, 1",
				len(c.Programs), len(c.Maps), len(c.Links), len(c.Decisions))
		}
		// Nothing attached: running the target counts nothing.
		runTarget(t, bin, 3)
		if got := readCount(t, c.Maps["counts"], 0); got != 0 {
			t.Errorf("audit mode counted %d hits: something was attached", got)
		}
		c.Close()
		if diff := cmp.Diff(before, kernelFDs(t)); diff != "" {
			t.Errorf("audit left kernel objects after Close (-before +after):\n%s", diff)
		}
		if c.Decisions[0].Mode != hazards.Audit {
			t.Errorf("decision mode %q, want audit", c.Decisions[0].Mode)
		}
		// Audit of a refused pair is not an error.
		if k := l.Kernel(); k.Support(probe.Fentry).No() && k.Support(probe.Kprobe).No() {
			c, err := l.LoadAndAttach(spec(
				counterProg("fe", "fentry/do_unlinkat", ebpf.Tracing, 0, 0),
				counterProg("kp", "kprobe/do_unlinkat", ebpf.Kprobe, 0, 0)), nil)
			if err != nil {
				t.Fatalf("audit of a refused pair: %v", err)
			}
			if c.Decisions[0].Chosen != "" || c.Plans[0].Refusal == "" {
				t.Errorf("audit plan of a refused pair: %+v", c.Plans)
			}
		}
	})
	t.Run("warn", func(t *testing.T) {
		l := newHostLoader(t, &Options{Mode: hazards.Warn})
		c, err := l.LoadAndAttach(cs, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if !c.Links["up"].Attached() || c.Decisions[0].Mode != hazards.Warn {
			t.Errorf("warn mode: attached %v, decision %+v", c.Links["up"].Attached(), c.Decisions[0])
		}
	})
}

// TestConcurrentUse shares one Loader between goroutines (run with -race).
func TestConcurrentUse(t *testing.T) {
	l := newHostLoader(t, nil)
	bin := buildTarget(t)
	cs := spec(counterProg("up", "uprobe/"+bin.Path+":"+bin.Symbol, ebpf.Kprobe, 0, 0))
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				c, err := l.LoadAndAttach(cs, nil)
				if err != nil {
					errs <- err
					return
				}
				if err := c.Close(); err != nil {
					errs <- err
				}
				if _, err := PlanSpec(cs, l.Kernel(), nil); err != nil {
					errs <- err
				}
			}
			_ = i
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestUprobePacing asserts a policy affected by uprobe-mmap-lock-stall (by
// a kernel assertion, so it runs on any kernel) spaces registrations.
func TestUprobePacing(t *testing.T) {
	const interval = 150 * time.Millisecond
	pol := &hazards.Policy{
		APIVersion: "safebpf/v1",
		Kernels:    []hazards.KernelAssertion{{Release: ".*", Affected: []hazards.ID{"uprobe-mmap-lock-stall"}, Reason: "test"}},
		Uprobes:    hazards.UprobePacing{Interval: hazards.Duration(interval), Concurrency: 1},
	}
	l := newHostLoader(t, &Options{Policy: pol})
	bin := buildTarget(t)
	cs := spec(counterProg("p", "uprobe", ebpf.Kprobe, 0, 0))
	coll, err := ebpf.NewCollection(cs)
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	ex, err := l.OpenExecutable(bin.Path)
	if err != nil {
		t.Fatal(err)
	}
	const n = 4
	start := time.Now()
	var wg sync.WaitGroup
	links := make([]*Link, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			links[i], errs[i] = ex.Uprobe(bin.Symbol, coll.Programs["p"], nil)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		defer links[i].Close()
		p := links[i].Decision().Settings.Pacing
		if p == nil || p.Interval != interval {
			t.Fatalf("decision %s has pacing %+v, want interval %s", Explain(links[i].Decision()), p, interval)
		}
	}
	if min := (n - 1) * interval; elapsed < min {
		t.Errorf("%d paced registrations took %s, want >= %s", n, elapsed, min)
	}
	runTarget(t, bin, 2)
	if got := readCount(t, coll.Maps["counts"], 0); got != 2*n {
		t.Errorf("hits = %d, want %d", got, 2*n)
	}
}

func affected(d fallback.Decision, id hazards.ID) bool {
	for _, f := range d.Findings {
		if f.ID == id && f.Verdict == hazards.Affected {
			return true
		}
	}
	return false
}

func spin(d time.Duration) {
	end := time.Now().Add(d)
	x := 0
	for time.Now().Before(end) {
		x++
	}
	_ = x
}

// TestPerAttachEvents covers Tracepoint, AttachRawTracepoint and
// AttachPerfEvent through the per-attachment API.
func TestPerAttachEvents(t *testing.T) {
	l := newHostLoader(t, nil)
	mountTracefs(t)
	pid := os.Getpid()
	perfSpec := readerProg("pe", "perf_event", ebpf.PerfEvent, 2)
	cs := spec(
		counterProg("tp", "tracepoint/syscalls/sys_enter_getpid", ebpf.TracePoint, 0, pid),
		counterProg("raw", "raw_tp/sys_enter", ebpf.RawTracepoint, 1, pid),
		perfSpec,
	)
	coll, err := ebpf.NewCollection(cs)
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()

	tp, err := l.Tracepoint("syscalls", "sys_enter_getpid", coll.Programs["tp"], nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()
	raw, err := l.AttachRawTracepoint(link.RawTracepointOptions{Name: "sys_enter", Program: coll.Programs["raw"]})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	pe, err := l.AttachPerfEvent(coll.Programs["pe"], PerfEventOptions{Hardware: true, Period: 10_000_000}, &Extra{Spec: perfSpec})
	if err != nil {
		t.Fatal(err)
	}
	defer pe.Close()

	if got := []probe.Mechanism{tp.Decision().Chosen, raw.Decision().Chosen}; got[0] != probe.Tracepoint || got[1] != probe.RawTracepoint {
		t.Errorf("chose %v, want [tracepoint raw-tracepoint]", got)
	}
	if k := l.Kernel(); k.Support(probe.PerfEventHardware).No() && pe.Decision().Chosen != probe.PerfEventSoftware {
		t.Errorf("hardware unavailable: got %s, want perf-event-software", Explain(pe.Decision()))
	}
	for range 20 {
		syscallGetpid()
	}
	// cpu-clock counts nanoseconds: a 10ms period, about 100 samples a
	// second per CPU (gentle enough for emulated guests).
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && readCount(t, coll.Maps["counts"], 2) == 0 {
		spin(50 * time.Millisecond)
	}
	if got := readCount(t, coll.Maps["counts"], 0); got < 20 {
		t.Errorf("tracepoint hits = %d, want >= 20", got)
	}
	if got := readCount(t, coll.Maps["counts"], 1); got < 20 {
		t.Errorf("raw tracepoint hits = %d, want >= 20", got)
	}
	if got := readCount(t, coll.Maps["counts"], 2); got == 0 {
		t.Errorf("no perf samples on %s", pe.Decision().Chosen)
	}
	for _, lk := range []*Link{tp, raw, pe} {
		if err := lk.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if err := lk.Close(); err != nil {
			t.Errorf("second close: %v", err)
		}
	}
}

// TestStaleTracefsCleanup: New removes tracefs events left by a dead
// safebpf process (group "safebpf_<pidns>_<pid>_<start>_<n>", owner
// holding no liveness lock).
func TestStaleTracefsCleanup(t *testing.T) {
	testutil.RequirePrivileged(t)
	mountTracefs(t)
	bin := buildTarget(t)
	fs, err := tracefs.Find()
	if err != nil {
		t.Skipf("tracefs: %v", err)
	}
	dead := exec.Command(bin.Path)
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	self, err := tracefs.Self()
	if err != nil {
		t.Fatal(err)
	}
	owner := self
	owner.PID, owner.Start = dead.Process.Pid, self.Start+1
	ev, err := fs.Uprobe(bin.Path, 0x1000, &tracefs.UprobeOptions{Owner: &owner})
	if errors.Is(err, ErrNotSupported) {
		t.Skipf("kernel lacks uprobe_events: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ev.Close() })
	events := func() string {
		b, err := os.ReadFile(filepath.Join(fs.Path(), "uprobe_events"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if !strings.Contains(events(), ev.Group+"/"+ev.Name) {
		t.Fatalf("stale event %s/%s not created:\n%s", ev.Group, ev.Name, events())
	}
	newHostLoader(t, nil)
	if got := events(); strings.Contains(got, ev.Group+"/"+ev.Name) {
		t.Errorf("New left the dead process's event %s/%s:\n%s", ev.Group, ev.Name, got)
	}
}
