package loader

import (
	"context"
	"testing"

	"github.com/cilium/ebpf"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/loader/internal/telemetry"
	"github.com/safebpf/safebpf/probe"
)

// TestAttachmentsTracksEveryMechanism: every attached Link counts towards
// safebpf.attachments.active, whatever its mechanism, with the hazard
// that drove its decision; Close stops counting it.
func TestAttachmentsTracksEveryMechanism(t *testing.T) {
	k := describe(t, probe.Description{Release: "6.1.30", CPUs: 4})
	p := newAttachments(k)
	if !p.recursion || p.linkMissed {
		t.Errorf("6.1.30: recursion misses %v, link-info misses %v; want true, false (5.12+, 6.7+)", p.recursion, p.linkMissed)
	}
	links := map[probe.Mechanism]*Link{}
	for _, m := range probe.Mechanisms() {
		lk := &Link{decision: fallback.Decision{Chosen: m, Target: "f_" + string(m)}}
		links[m] = lk
		p.add(lk, nil)
	}
	links[probe.Kretprobe].decision.Steps = []fallback.Step{{From: probe.Kretprobe, To: probe.Kretprobe, Action: fallback.Cap, Hazard: "kretprobe-contention"}}
	p.add(nil, nil)
	got := p.collect()
	if len(got) != len(probe.Mechanisms()) {
		t.Fatalf("collect() = %d attachments, want %d", len(got), len(probe.Mechanisms()))
	}
	for _, a := range got {
		want := ""
		if a.Mechanism == probe.Kretprobe {
			want = "kretprobe-contention"
		}
		if string(a.Hazard) != want {
			t.Errorf("%s: hazard %q, want %q", a.Mechanism, a.Hazard, want)
		}
		// None of these Links holds a kernel object: no count is
		// readable, and none is made up.
		if len(a.Misses) != 0 {
			t.Errorf("%s: misses %v for a link without kernel objects", a.Mechanism, a.Misses)
		}
	}
	p.remove(links[probe.Kprobe])
	p.remove(nil)
	if n := len(p.collect()); n != len(probe.Mechanisms())-1 {
		t.Errorf("after remove: %d attachments, want %d", n, len(probe.Mechanisms())-1)
	}
	var nilSet *attachments
	nilSet.add(links[probe.Kretprobe], nil)
	nilSet.remove(links[probe.Kretprobe])
	if got := nilSet.collect(); got != nil {
		t.Errorf("nil set collect() = %v", got)
	}
	var _ func() []telemetry.Attachment = p.collect // the RegisterAttachments callback shape
	if old := newAttachments(describe(t, probe.Description{Release: "5.10.0", CPUs: 4})); old.recursion {
		t.Error("5.10: recursion misses reported; the kernel has none before 5.12")
	}
}

// TestAttachmentsObservedOnHost attaches a tracepoint program for real
// and reads the two observable metrics: the attachment counts in
// safebpf.attachments.active until its Link is closed, and its
// recursion misses are the kernel's own bpf_prog_info count (read here
// with cilium/ebpf), for a program type without a kprobe counter.
func TestAttachmentsObservedOnHost(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	l := newHostLoader(t, &Options{MeterProvider: mp})
	mountTracefs(t)
	if !newAttachments(l.kernel.current()).recursion {
		t.Skipf("kernel %s reports no recursion misses (5.12+)", l.kernel.current().Release)
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "tp_getpid", Type: ebpf.TracePoint, License: "GPL",
		Instructions: asmReturn0("tp_getpid")})
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	lk, err := l.Tracepoint("syscalls", "sys_enter_getpid", prog, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	// A second program whose caller closes it right after the attach, as
	// many agents do (the link holds the program): its misses are still
	// read, through the program the link names (or the clone taken at
	// attach on kernels before BPF perf links).
	gone, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "tp_getpid_gone", Type: ebpf.TracePoint, License: "GPL",
		Instructions: asmReturn0("tp_getpid_gone")})
	if err != nil {
		t.Fatal(err)
	}
	lkGone, err := l.Tracepoint("syscalls", "sys_enter_getpid", gone, nil)
	gone.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer lkGone.Close()
	syscallGetpid()

	collect := func() (active, recursion map[string]int64) {
		t.Helper()
		active, recursion = map[string]int64{}, map[string]int64{}
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				switch m.Name {
				case telemetry.MetricActive:
					for _, dp := range m.Data.(metricdata.Gauge[int64]).DataPoints {
						c, _ := dp.Attributes.Value(telemetry.AttrChosen)
						h, _ := dp.Attributes.Value(telemetry.AttrHazardID)
						active[c.AsString()+"/"+h.AsString()] += dp.Value
					}
				case telemetry.MetricMissed:
					for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
						k, _ := dp.Attributes.Value(telemetry.AttrMissKind)
						c, _ := dp.Attributes.Value(telemetry.AttrChosen)
						if k.AsString() == string(telemetry.MissRecursion) {
							recursion[c.AsString()] += dp.Value
						}
					}
				}
			}
		}
		return active, recursion
	}
	active, recursion := collect()
	st, err := prog.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if active["tracepoint/none"] != 2 {
		t.Errorf("safebpf.attachments.active = %v, want tracepoint/none = 2", active)
	}
	goneID, err := lkGone.Info()
	if err != nil {
		t.Fatal(err)
	}
	reopened, err := ebpf.NewProgramFromID(goneID.Program)
	if err != nil {
		t.Fatal(err)
	}
	defer reopened.Close()
	stGone, err := reopened.Stats()
	if err != nil {
		t.Fatal(err)
	}
	got, ok := recursion["tracepoint"]
	if want := st.RecursionMisses + stGone.RecursionMisses; !ok || uint64(got) != want {
		t.Errorf("recursion misses %v (reported: %v), want the kernel's %d for both programs (%d of them for the one its caller closed)",
			got, ok, want, stGone.RecursionMisses)
	}
	// Per attachment, as the collector sees them: each one has its
	// recursion count, the one whose program its caller closed included.
	var withRecursion int
	for _, at := range l.active.collect() {
		for _, m := range at.Misses {
			if m.Kind == telemetry.MissRecursion {
				withRecursion++
			}
		}
	}
	if withRecursion != 2 {
		t.Errorf("%d of 2 attachments report recursion misses; the one whose program its caller closed must too", withRecursion)
	}
	if err := lkGone.Close(); err != nil {
		t.Fatal(err)
	}
	if err := lk.Close(); err != nil {
		t.Fatal(err)
	}
	if active, _ := collect(); active["tracepoint/none"] != 0 {
		t.Errorf("after Close: safebpf.attachments.active = %v, want no tracepoint", active)
	}
}
