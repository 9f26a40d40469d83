package loader

import (
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/safebpf/safebpf/internal/tracefs"
	"github.com/safebpf/safebpf/loader/internal/telemetry"
	"github.com/safebpf/safebpf/probe"
)

// attachments is the set of live Links a Loader attached: what feeds
// safebpf.attachments.active (by mechanism and hazard) and
// safebpf.probe.missed (the kprobe's nmissed, and every program's
// recursion misses). Wiring:
//
//	l.active = newAttachments(kernel)
//	recorder.RegisterAttachments(l.active.collect)
//	l.active.add(lk, prog)  // after a successful attach (attachChosen)
//	l.active.remove(lk)     // first thing in Link.Close
//
// collect runs on the metric reader's goroutine at each collection, never
// on an attach path. remove waits for a collection reading the Link, so
// nothing reads a file descriptor Close is releasing.
type attachments struct {
	mu    sync.Mutex
	links map[*Link]*tracked
	// recursion: the kernel reports bpf_prog_info.recursion_misses (5.12+,
	// 9ed9e9ba2337 "bpf: Count the number of times recursion was
	// prevented"); older kernels leave it 0, which is not a count.
	recursion bool
	// linkMissed: the kernel reports a kprobe's missed count in link info
	// (6.7+ by our reading of the "bpf: Add missed stats" series,
	// UNVERIFIED); older kernels leave it 0.
	linkMissed bool
	// cloneProg: the recursion count must be read through a clone of
	// the program taken at attach. From 5.15 every attachment safebpf
	// makes is a BPF link, perf-event-based ones included (BPF perf
	// links: cilium/ebpf's haveBPFLinkPerfEvent feature test, link/
	// perf_event.go, "5.15"), whose info names its program: a collection
	// opens the program by that ID, and the attach path makes no extra
	// system call. Before, perf-event attachments are made by ioctl and
	// name nothing. A distro kernel with perf links backported only pays
	// the clone it did not need.
	cloneProg bool
}

// tracked is one live Link. prog, where cloneProg asks for it, is a clone
// of the attached program (the caller may close theirs while the link
// lives), closed by remove.
type tracked struct {
	mu     sync.Mutex
	closed bool
	prog   *ebpf.Program
}

func newAttachments(k *probe.Kernel) *attachments {
	at := func(major, minor int) bool {
		return k != nil && k.Version != nil && (k.Version.Major > major || k.Version.Major == major && k.Version.Minor >= minor)
	}
	return &attachments{links: map[*Link]*tracked{}, recursion: at(5, 12), linkMissed: at(6, 7),
		cloneProg: at(5, 12) && !at(5, 15)}
}

// add tracks lk, attached with prog.
func (p *attachments) add(lk *Link, prog *ebpf.Program) {
	if p == nil || lk == nil {
		return
	}
	t := &tracked{}
	if p.cloneProg && prog != nil {
		if c, err := prog.Clone(); err == nil {
			t.prog = c
		}
	}
	p.mu.Lock()
	p.links[lk] = t
	p.mu.Unlock()
}

// remove stops tracking lk, waiting for a collection that is reading it.
func (p *attachments) remove(lk *Link) {
	if p == nil || lk == nil {
		return
	}
	p.mu.Lock()
	t := p.links[lk]
	delete(p.links, lk)
	p.mu.Unlock()
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	if t.prog != nil {
		t.prog.Close()
		t.prog = nil
	}
}

// collect returns one Attachment per tracked Link, with the missed counts
// the kernel reports for it.
func (p *attachments) collect() []telemetry.Attachment {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	links := make(map[*Link]*tracked, len(p.links))
	for lk, t := range p.links {
		links[lk] = t
	}
	p.mu.Unlock()

	out := make([]telemetry.Attachment, 0, len(links))
	for lk, t := range links {
		t.mu.Lock()
		if !t.closed {
			out = append(out, p.describe(lk, t))
		}
		t.mu.Unlock()
	}
	return out
}

func (p *attachments) describe(lk *Link, t *tracked) telemetry.Attachment {
	d := lk.decision
	a := telemetry.Attachment{Mechanism: d.Chosen, Target: d.Target}
	for _, st := range d.Steps {
		if st.Hazard != "" {
			a.Hazard = st.Hazard
			break
		}
	}
	if len(d.Forced) > 0 && a.Hazard == "" {
		a.Hazard = d.Forced[0]
	}
	// The link's info, read at most once.
	var info *link.Info
	var infoRead bool
	linkInfo := func() *link.Info {
		if !infoRead && lk.Link != nil {
			info, _ = lk.Link.Info()
		}
		infoRead = true
		return info
	}
	if isKernelProbe(d.Chosen) { // the kprobe family has a missed-hit counter
		if n, ok := p.kprobeMissed(lk, linkInfo); ok {
			a.Misses = append(a.Misses, telemetry.Miss{Kind: telemetry.MissKprobe, Count: n})
		}
	}
	if n, ok := p.recursionMisses(t, linkInfo); ok {
		a.Misses = append(a.Misses, telemetry.Miss{Kind: telemetry.MissRecursion, Count: n})
	}
	return a
}

// recursionMisses reads the attached program's recursion misses: through
// the clone taken at attach, else through the program the link's info
// names. ok is false where the kernel has no such count or the program
// cannot be opened.
func (p *attachments) recursionMisses(t *tracked, linkInfo func() *link.Info) (n uint64, ok bool) {
	if !p.recursion {
		return 0, false
	}
	prog := t.prog
	if prog == nil {
		info := linkInfo()
		if info == nil || info.Program == 0 {
			return 0, false
		}
		var err error
		if prog, err = ebpf.NewProgramFromID(info.Program); err != nil {
			return 0, false
		}
		defer prog.Close()
	}
	st, err := prog.Stats()
	if err != nil {
		return 0, false
	}
	return st.RecursionMisses, true
}

// kprobeMissed reads the missed-hit count of an attached kprobe-family
// Link: from tracefs kprobe_profile for events safebpf created there
// (kretprobes with a maxactive cap, whose dropped returns count as
// misses), else from the kernel's link info where it carries one. ok is
// false when neither is readable.
func (p *attachments) kprobeMissed(lk *Link, linkInfo func() *link.Info) (n uint64, ok bool) {
	for _, c := range lk.extra {
		if ev, isEvent := c.(*tracefs.Event); isEvent {
			if n, err := ev.Missed(); err == nil {
				return n, true
			}
		}
	}
	if !p.linkMissed {
		return 0, false
	}
	info := linkInfo()
	if info == nil {
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
