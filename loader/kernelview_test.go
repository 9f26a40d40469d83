package loader

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/internal/testutil"
	"github.com/safebpf/safebpf/probe"
)

var selfTestFact = probe.Fact{Kind: probe.FactSelfTest, Name: "uretprobe-seccomp-kill"}

// fakeDetection answers a kernelView's detections like a kernel where
// every mechanism is available and every fact holds, and records what it
// was asked.
type fakeDetection struct {
	calls [][]probe.Fact
	mechs [][]probe.Mechanism
}

func (f *fakeDetection) detect(_ context.Context, mechs []probe.Mechanism, facts []probe.Fact) (*probe.Kernel, error) {
	f.calls = append(f.calls, facts)
	f.mechs = append(f.mechs, mechs)
	k := &probe.Kernel{Mechanisms: map[probe.Mechanism]probe.Support{}, Observations: map[string]probe.Observation{},
		Kallsyms: probe.Kallsyms{Readable: true, DataSymbols: true, Symbols: map[string]bool{}}}
	for _, m := range mechs {
		k.Mechanisms[m] = probe.Supported("fake probe")
	}
	for _, f := range facts {
		if f.Kind == probe.FactSymbol {
			k.Kallsyms.Symbols[f.Name] = true
			continue
		}
		k.Observations[f.Key()] = probe.Observed(true, "fake witness: "+f.String()+" holds")
	}
	return k, nil
}

func findingOf(d fallback.Decision, id hazards.ID) (hazards.Finding, bool) {
	i := slices.IndexFunc(d.Findings, func(f hazards.Finding) bool { return f.ID == id })
	if i < 0 {
		return hazards.Finding{}, false
	}
	return d.Findings[i], true
}

// TestKernelViewObservesOnFirstRequest: the start-up kernel has no facts;
// the first request whose mechanism's hazard depends on a self-test gets
// the verdict the self-test gives, not the version ranges' — here the two
// disagree (6.18 is outside uretprobe-seccomp-kill's ranges, the fake
// self-test says the helper was killed), so a plan made without looking
// would allow what the witness refuses. Each fact is looked for once,
// and only the facts of the mechanisms a request may be planned onto.
func TestKernelViewObservesOnFirstRequest(t *testing.T) {
	start := &probe.Kernel{Release: "6.18.1", Version: &probe.Version{Major: 6, Minor: 18, Patch: 1, PatchKnown: true},
		VersionSource: probe.SourceRelease, Arch: "amd64", CPUs: 4}
	cat := hazards.Builtin()
	pol := &hazards.Policy{Mode: hazards.Enforce}
	fake := &fakeDetection{}
	view := newKernelView(start.Clone(), cat, fake.detect)
	pl := newPlanner(view, cat, pol)
	if o := view.current().Observe(selfTestFact); o.Known() {
		t.Fatalf("start-up kernel already observed %s: %+v", selfTestFact, o)
	}

	// Planned on the start-up kernel as it is (with uretprobes available),
	// the ranges decide: allowed.
	asIs := start.Clone()
	asIs.Mechanisms = map[probe.Mechanism]probe.Support{probe.Uretprobe: probe.Supported("test")}
	blind, err := newPlanner(newKernelView(asIs, cat, nil), cat, pol).plan(fallback.Request{Mechanism: probe.Uretprobe, Target: "f", Seccomp: true})
	if err != nil {
		t.Fatalf("planned without the self-test: %v, want allowed by the ranges (else this test proves nothing)", err)
	}
	if f, ok := findingOf(blind, "uretprobe-seccomp-kill"); !ok || f.Verdict != hazards.NotAffected {
		t.Fatalf("without the self-test: finding %+v, want not-affected from the ranges", f)
	}

	// A uprobe's hazards need no self-test: not run for it.
	if _, err := pl.plan(fallback.Request{Mechanism: probe.Uprobe, Target: "f", Seccomp: true}); err != nil {
		t.Fatal(err)
	}
	if len(fake.calls) != 1 || slices.Contains(fake.calls[0], selfTestFact) || !slices.Contains(fake.mechs[0], probe.Uprobe) {
		t.Fatalf("uprobe request asked %v for %v, want uprobe probed and no self-test", fake.calls, fake.mechs)
	}

	d, err := pl.plan(fallback.Request{Mechanism: probe.Uretprobe, Target: "f", Seccomp: true})
	if !errors.Is(err, fallback.ErrRefused) {
		t.Fatalf("first uretprobe request: %v, %+v; want refused on the self-test's verdict", err, d)
	}
	f, ok := findingOf(d, "uretprobe-seccomp-kill")
	if !ok || f.Verdict != hazards.Affected || !strings.Contains(f.Reason, "fake witness: selftest uretprobe-seccomp-kill holds") {
		t.Fatalf("finding %+v: want affected, with the self-test's witness", f)
	}
	if len(fake.calls) != 2 || !slices.Contains(fake.calls[1], selfTestFact) || !slices.Contains(fake.mechs[1], probe.Uretprobe) {
		t.Fatalf("detections %v for %v: want a second one, for the uretprobe and its self-test", fake.calls, fake.mechs)
	}
	for _, m := range fake.mechs[1] {
		if m == probe.Uprobe {
			t.Errorf("uprobe probed twice")
		}
	}

	// Looked for once: another target, another shape of request on the
	// same mechanisms, ask nothing more.
	if _, err := pl.plan(fallback.Request{Mechanism: probe.Uretprobe, Target: "g", Seccomp: false}); err != nil {
		t.Fatal(err)
	}
	if len(fake.calls) != 2 {
		t.Errorf("%d detections after a request on mechanisms already looked at, want 2", len(fake.calls))
	}

	// A complete kernel, on demand: every mechanism, every fact.
	k, err := view.complete(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range probe.Mechanisms() {
		if !k.Support(m).Known() {
			t.Errorf("complete kernel: %s %+v", m, k.Support(m))
		}
	}
	for _, f := range cat.Facts() {
		if !k.Observe(f).Known() {
			t.Errorf("complete kernel: %s %+v", f, k.Observe(f))
		}
	}
	if k.Release != start.Release {
		t.Errorf("merged kernel release %q, want the start-up identity %q", k.Release, start.Release)
	}
}

// TestFirstRequestRunsSelfTest: on this host, a Loader made by New has
// not run the uretprobe-seccomp self-test; the first uretprobe attach
// runs it, and its Decision carries the self-test's witness, not the
// version ranges' verdict.
func TestFirstRequestRunsSelfTest(t *testing.T) {
	testutil.RequirePrivileged(t)
	l, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if o := l.kernel.current().Observe(selfTestFact); o.Known() || !strings.Contains(o.Witness, "not looked for") {
		t.Fatalf("after New: %s %+v, want not looked for", selfTestFact, o)
	}
	if s := l.kernel.current().Support(probe.Uretprobe); s.Known() {
		t.Fatalf("after New: uretprobe %+v, want not probed", s)
	}
	libc, _ := testutil.LibcSymbol(t, "getpid")
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "ret0", Type: ebpf.Kprobe, License: "GPL", Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}})
	if err != nil {
		testutil.SkipIfNotSupported(t, "kprobe programs", err)
		t.Fatal(err)
	}
	defer prog.Close()
	ex, err := l.OpenExecutable(libc)
	if err != nil {
		t.Fatal(err)
	}
	lk, err := ex.Uretprobe("getpid", prog, nil)
	var reason string // the uretprobe-seccomp-kill finding's
	var r *fallback.RefusedError
	switch {
	case err == nil:
		defer lk.Close()
		f, ok := findingOf(lk.Decision(), "uretprobe-seccomp-kill")
		if !ok {
			t.Fatalf("decision has no uretprobe-seccomp-kill finding: %+v", lk.Decision().Findings)
		}
		reason = f.Reason
		t.Logf("attached: %s", Explain(lk.Decision()))
	case errors.As(err, &r):
		i := slices.IndexFunc(r.Blockers, func(b fallback.Blocker) bool { return b.Hazard == "uretprobe-seccomp-kill" })
		if i < 0 {
			t.Fatalf("refused, but not for uretprobe-seccomp-kill: %v", err)
		}
		reason = r.Blockers[i].Reason
		t.Logf("refused: %v", err)
	default:
		testutil.SkipIfNotSupported(t, "uretprobes", err)
		t.Fatal(err)
	}
	k := l.kernel.current()
	o := k.Observe(selfTestFact)
	t.Logf("kernel %s: %s: %+v", k.Release, selfTestFact, o)
	if !k.Support(probe.Uretprobe).Known() {
		t.Errorf("uretprobe still not probed after a uretprobe request")
	}
	if !o.Known() {
		// The self-test could not run here; it says why.
		t.Skipf("self-test inconclusive on this kernel: %s", o.Witness)
	}
	if !strings.Contains(reason, o.Witness) {
		t.Errorf("finding %q does not carry the self-test's witness %q", reason, o.Witness)
	}
}

// TestKernelViewConcurrentRequests: requests planned at once from many
// goroutines each get their mechanisms looked for exactly once, and every
// plan sees them (run with -race).
func TestKernelViewConcurrentRequests(t *testing.T) {
	cat := hazards.Builtin()
	fake := &fakeDetection{}
	view := newKernelView(&probe.Kernel{Release: "6.18.1", Version: &probe.Version{Major: 6, Minor: 18, Patch: 1, PatchKnown: true}, Arch: "amd64", CPUs: 4},
		cat, fake.detect)
	pl := newPlanner(view, cat, &hazards.Policy{Mode: hazards.Enforce})
	mechs := []probe.Mechanism{probe.Uprobe, probe.Tracepoint, probe.RawTracepoint, probe.PerfEventSoftware, probe.Iter}
	var wg sync.WaitGroup
	errs := make(chan error, 8*len(mechs))
	for i := 0; i < 8; i++ {
		for _, m := range mechs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req := fallback.Request{Mechanism: m, Target: fmt.Sprint("t", i)}
				if m == probe.PerfEventSoftware {
					req.PerfEvent = &fallback.PerfEvent{Frequency: 99}
				}
				if d, err := pl.plan(req); err != nil || d.Chosen != m {
					errs <- fmt.Errorf("%s: %+v, %v", m, d, err)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	probed := map[probe.Mechanism]int{}
	for _, ms := range fake.mechs {
		for _, m := range ms {
			probed[m]++
		}
	}
	for _, m := range mechs {
		if probed[m] != 1 {
			t.Errorf("%s probed %d times, want once", m, probed[m])
		}
	}
}
