package loader

import (
	"sync"

	"github.com/cilium/ebpf/link"

	"github.com/safebpf/safebpf/internal/tracefs"
	"github.com/safebpf/safebpf/loader/internal/telemetry"
	"github.com/safebpf/safebpf/probe"
)

// missedProbes is the set of attached kprobe-family Links whose missed-hit
// counts feed safebpf.probe.missed. Wiring (loader core):
//
//	l.missed = newMissedProbes()
//	recorder.RegisterMissed(l.missed.collect) // *telemetry.Recorder
//	l.missed.add(lk)                          // after a successful attach
//	l.missed.remove(lk)                       // in Link.Close
//
// collect runs on the metric reader's goroutine at each collection, never
// on an attach path.
type missedProbes struct {
	mu    sync.Mutex
	links map[*Link]struct{}
}

func newMissedProbes() *missedProbes {
	return &missedProbes{links: map[*Link]struct{}{}}
}

// missedMechanism reports whether m has a kernel missed-hit counter.
func missedMechanism(m probe.Mechanism) bool {
	switch m {
	case probe.Kprobe, probe.Kretprobe, probe.KprobeMulti, probe.KretprobeMulti:
		return true
	}
	return false
}

// add tracks lk when its chosen mechanism has a missed counter.
func (p *missedProbes) add(lk *Link) {
	if p == nil || lk == nil || !missedMechanism(lk.decision.Chosen) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.links[lk] = struct{}{}
}

// remove stops tracking lk.
func (p *missedProbes) remove(lk *Link) {
	if p == nil || lk == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.links, lk)
}

// collect returns one Missed per tracked Link whose count could be read.
func (p *missedProbes) collect() []telemetry.Missed {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	links := make([]*Link, 0, len(p.links))
	for lk := range p.links {
		links = append(links, lk)
	}
	p.mu.Unlock()

	var out []telemetry.Missed
	for _, lk := range links {
		n, ok := linkMissed(lk)
		if !ok {
			continue
		}
		out = append(out, telemetry.Missed{Mechanism: lk.decision.Chosen, Target: lk.decision.Target, Count: n})
	}
	return out
}

// linkMissed reads the missed-hit count of an attached kprobe-family Link:
// from tracefs kprobe_profile for events safebpf created there (kretprobes
// with a maxactive cap, whose dropped returns count as misses), else from
// the kernel's link info (the missed field of perf-event kprobe and
// kprobe-multi link info is recent, 6.7 by our reading of the "bpf: Add
// missed stats" series, UNVERIFIED; older kernels leave it 0). ok is false
// when neither is readable.
func linkMissed(lk *Link) (n uint64, ok bool) {
	for _, c := range lk.extra {
		if ev, isEvent := c.(*tracefs.Event); isEvent {
			if n, err := ev.Missed(); err == nil {
				return n, true
			}
		}
	}
	if lk.Link == nil {
		return 0, false
	}
	info, err := lk.Link.Info()
	if err != nil {
		return 0, false
	}
	return infoMissed(info)
}

// infoMissed extracts the missed count from link info, when the link type
// has one.
func infoMissed(info *link.Info) (uint64, bool) {
	if km := info.KprobeMulti(); km != nil {
		return km.Missed, true
	}
	if pe := info.PerfEvent(); pe != nil {
		if k := pe.Kprobe(); k != nil {
			return k.Missed, true
		}
	}
	return 0, false
}
