package loader

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/internal/tracefs"
	"github.com/safebpf/safebpf/probe"
)

// These tests assert the Decision the running kernel gets and then count
// real hits. They skip, naming the capability, where the kernel lacks it
// (the host here has neither fentry nor kprobes); the QEMU matrix runs them
// on Debian 5.10, 6.1 and 6.12.

// unlinkN creates and removes n files, calling do_unlinkat n times.
func unlinkN(tb testing.TB, n int) {
	tb.Helper()
	dir := tb.TempDir()
	for i := range n {
		p := filepath.Join(dir, fmt.Sprint(i))
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			tb.Fatal(err)
		}
		if err := os.Remove(p); err != nil {
			tb.Fatal(err)
		}
	}
}

func stepHazards(d fallback.Decision) []hazards.ID {
	var ids []hazards.ID
	for _, s := range d.Steps {
		if s.Hazard != "" {
			ids = append(ids, s.Hazard)
		}
	}
	return ids
}

func hasHazard(d fallback.Decision, id hazards.ID) bool {
	for _, h := range stepHazards(d) {
		if h == id {
			return true
		}
	}
	return false
}

// TestEntryAlternatives: fentry/do_unlinkat beside kprobe/do_unlinkat.
// fentry where it is safe (6.12), kprobe where fentry-zap-pid-ns-deadlock
// applies (Debian 5.10 and 6.1) or fentry is missing.
func TestEntryAlternatives(t *testing.T) {
	l := newHostLoader(t, nil)
	k := l.Kernel()
	if !k.Support(probe.Fentry).Yes() && !k.Support(probe.Kprobe).Yes() {
		t.Skipf("kernel has neither fentry (%s) nor kprobes (%s)", k.Support(probe.Fentry).Reason, k.Support(probe.Kprobe).Reason)
	}
	pid := os.Getpid()
	cs := spec(
		counterProg("fe", "fentry/do_unlinkat", ebpf.Tracing, 0, pid),
		counterProg("kp", "kprobe/do_unlinkat", ebpf.Kprobe, 0, pid),
	)
	c, err := l.LoadAndAttach(cs, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	d := c.Decisions[0]
	t.Logf("kernel %s: %s", k.Release, Explain(d))
	switch {
	case affected(d, "fentry-zap-pid-ns-deadlock") && k.Support(probe.Kprobe).Yes():
		if d.Chosen != probe.Kprobe || !hasHazard(d, "fentry-zap-pid-ns-deadlock") {
			t.Errorf("fentry-zap-pid-ns-deadlock applies: got %s, want kprobe for that hazard", Explain(d))
		}
	case k.Support(probe.Fentry).Yes() && !affected(d, "fentry-zap-pid-ns-deadlock"):
		if d.Chosen != probe.Fentry {
			t.Errorf("fentry is available and safe: got %s, want fentry", Explain(d))
		}
	default:
		if d.Chosen != probe.Kprobe {
			t.Errorf("fentry unavailable: got %s, want kprobe", Explain(d))
		}
	}
	if _, ok := c.Programs[map[probe.Mechanism]string{probe.Fentry: "kp", probe.Kprobe: "fe"}[d.Chosen]]; ok {
		t.Error("the unchosen alternative was loaded")
	}
	unlinkN(t, 10)
	if got := readCount(t, c.Maps["counts"], 0); got < 10 {
		t.Errorf("%s hits = %d, want >= 10", d.Chosen, got)
	}
}

// TestExitAlternativesMaxActive: fexit/do_unlinkat beside
// kretprobe/do_unlinkat with a requested maxactive. A kretprobe with
// maxactive goes through tracefs in a group naming this process.
func TestExitAlternativesMaxActive(t *testing.T) {
	l := newHostLoader(t, nil)
	k := l.Kernel()
	if !k.Support(probe.Fexit).Yes() && !k.Support(probe.Kretprobe).Yes() {
		t.Skipf("kernel has neither fexit (%s) nor kretprobes (%s)", k.Support(probe.Fexit).Reason, k.Support(probe.Kretprobe).Reason)
	}
	pid := os.Getpid()
	cs := spec(
		counterProg("fx", "fexit/do_unlinkat", ebpf.Tracing, 1, pid),
		counterProg("kr", "kretprobe/do_unlinkat", ebpf.Kprobe, 1, pid),
	)
	c, err := l.LoadAndAttach(cs, &CollectionOptions{KretprobeMaxActive: 32})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	d := c.Decisions[0]
	t.Logf("kernel %s: %s", k.Release, Explain(d))
	if affected(d, "fentry-zap-pid-ns-deadlock") && k.Support(probe.Kretprobe).Yes() && d.Chosen != probe.Kretprobe {
		t.Errorf("fentry-zap-pid-ns-deadlock applies: got %s, want kretprobe", Explain(d))
	}
	if d.Chosen == probe.Kretprobe && d.Settings.MaxActive > 0 {
		assertTracefsGroup(t, l, true)
	}
	unlinkN(t, 10)
	if got := readCount(t, c.Maps["counts"], 1); got < 10 {
		t.Errorf("%s hits = %d, want >= 10", d.Chosen, got)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if d.Chosen == probe.Kretprobe && d.Settings.MaxActive > 0 {
		assertTracefsGroup(t, l, false)
	}
}

// TestKretprobeMaxActivePerAttach uses Loader.Kretprobe with maxactive.
func TestKretprobeMaxActivePerAttach(t *testing.T) {
	l := newHostLoader(t, nil)
	k := l.Kernel()
	if !k.Support(probe.Kretprobe).Yes() {
		t.Skipf("kernel lacks kretprobes: %s", k.Support(probe.Kretprobe).Reason)
	}
	coll, err := ebpf.NewCollection(spec(counterProg("kr", "kretprobe/do_unlinkat", ebpf.Kprobe, 2, os.Getpid())))
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	lk, err := l.Kretprobe("do_unlinkat", coll.Programs["kr"], &link.KprobeOptions{RetprobeMaxActive: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	d := lk.Decision()
	t.Logf("kernel %s: %s", k.Release, Explain(d))
	if d.Chosen != probe.Kretprobe || d.Settings.MaxActive == 0 || d.Settings.MaxActive > 16 {
		t.Fatalf("got %s, want kretprobe with 0 < maxactive <= 16", Explain(d))
	}
	assertTracefsGroup(t, l, true)
	unlinkN(t, 5)
	if got := readCount(t, coll.Maps["counts"], 2); got < 5 {
		t.Errorf("hits = %d, want >= 5", got)
	}
	if err := lk.Close(); err != nil {
		t.Fatal(err)
	}
	assertTracefsGroup(t, l, false)
}

// assertTracefsGroup checks whether kprobe_events lists a group owned by
// this process ("safebpf_<pidns>_<pid>_<start>_").
func assertTracefsGroup(tb testing.TB, l *Loader, want bool) {
	tb.Helper()
	fs, err := l.tracefsFS()
	if err != nil {
		tb.Fatalf("find tracefs: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(fs.Path(), "kprobe_events"))
	if err != nil {
		tb.Fatal(err)
	}
	self, err := tracefs.Self()
	if err != nil {
		tb.Fatal(err)
	}
	prefix := fmt.Sprintf(":safebpf_%d_%d_%d_", self.PIDNS, self.PID, self.Start)
	if got := strings.Contains(string(b), prefix); got != want {
		tb.Errorf("kprobe_events has a %q group: %v, want %v:\n%s", prefix, got, want, b)
	}
}

// TestKprobePerAttachWithFentry: Loader.Kprobe with the fentry variant in
// its options keeps the kprobe where kprobes work and moves up to fentry
// where they do not.
func TestKprobePerAttachWithFentry(t *testing.T) {
	l := newHostLoader(t, nil)
	k := l.Kernel()
	if !k.Support(probe.Kprobe).Yes() && !k.Support(probe.Fentry).Yes() {
		t.Skipf("kernel has neither kprobes (%s) nor fentry (%s)", k.Support(probe.Kprobe).Reason, k.Support(probe.Fentry).Reason)
	}
	pid := os.Getpid()
	kpColl, err := ebpf.NewCollection(spec(counterProg("kp", "kprobe/do_unlinkat", ebpf.Kprobe, 3, pid)))
	if err != nil {
		t.Fatal(err)
	}
	defer kpColl.Close()
	var fe *ebpf.Program
	if k.Support(probe.Fentry).Yes() {
		feColl, err := ebpf.NewCollectionWithOptions(spec(counterProg("fe", "fentry/do_unlinkat", ebpf.Tracing, 3, pid)),
			ebpf.CollectionOptions{MapReplacements: map[string]*ebpf.Map{"counts": kpColl.Maps["counts"]}})
		if err != nil {
			t.Fatal(err)
		}
		defer feColl.Close()
		fe = feColl.Programs["fe"]
	}
	var extra *Extra
	if fe != nil {
		extra = &Extra{Variants: map[probe.Mechanism]*ebpf.Program{probe.Fentry: fe}}
	}
	lk, err := l.Kprobe("do_unlinkat", kpColl.Programs["kp"], nil, extra)
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	d := lk.Decision()
	t.Logf("kernel %s: %s", k.Release, Explain(d))
	want := probe.Kprobe
	if !k.Support(probe.Kprobe).Yes() {
		want = probe.Fentry
	}
	if d.Chosen != want {
		t.Errorf("got %s, want %s", Explain(d), want)
	}
	unlinkN(t, 10)
	if got := readCount(t, kpColl.Maps["counts"], 3); got < 10 {
		t.Errorf("%s hits = %d, want >= 10", d.Chosen, got)
	}
}
