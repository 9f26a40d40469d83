package loader

import (
	"testing"

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
