package loader

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/loader/internal/telemetry"
	"github.com/safebpf/safebpf/probe"
)

func TestMissedProbesTracksKprobeFamily(t *testing.T) {
	p := newMissedProbes()
	links := map[probe.Mechanism]*Link{}
	for _, m := range probe.Mechanisms() {
		lk := &Link{decision: fallback.Decision{Chosen: m, Target: "f_" + string(m)}}
		links[m] = lk
		p.add(lk)
	}
	p.add(nil)
	var got []probe.Mechanism
	for _, m := range probe.Mechanisms() {
		if _, ok := p.links[links[m]]; ok {
			got = append(got, m)
		}
	}
	want := []probe.Mechanism{probe.Kprobe, probe.Kretprobe, probe.KprobeMulti, probe.KretprobeMulti}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tracked mechanisms (-want +got):\n%s", diff)
	}
	p.remove(links[probe.Kprobe])
	p.remove(nil)
	if _, ok := p.links[links[probe.Kprobe]]; ok || len(p.links) != 3 {
		t.Errorf("after remove: %d links tracked, want 3 without the kprobe", len(p.links))
	}
	// None of these Links holds a kernel object: nothing is readable, and
	// collect reports nothing rather than a made-up zero.
	if got := p.collect(); len(got) != 0 {
		t.Errorf("collect() = %v, want nothing for links without kernel objects", got)
	}
	var nilSet *missedProbes
	nilSet.add(links[probe.Kretprobe])
	nilSet.remove(links[probe.Kretprobe])
	if got := nilSet.collect(); got != nil {
		t.Errorf("nil set collect() = %v", got)
	}
	var _ func() []telemetry.Missed = p.collect // the RegisterMissed callback shape
}
