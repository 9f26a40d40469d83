package telemetry

import (
	"context"
	"unicode/utf8"

	"go.opentelemetry.io/otel/metric"

	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/probe"
)

// Attachment is one live attachment as the loader reports it at each
// metric collection: what feeds safebpf.attachments.active and
// safebpf.probe.missed.
type Attachment struct {
	// Mechanism is the attached (chosen) mechanism.
	Mechanism probe.Mechanism
	// Hazard is the first hazard that drove its decision; empty for none.
	Hazard hazards.ID
	// Target is the probed function, symbol or event; it is truncated to
	// MaxTargetLen bytes in attributes.
	Target string
	// Misses are the attachment's cumulative missed counts the kernel
	// reports, by kind; a kind the kernel does not report is absent.
	Misses []Miss
}

// Miss is one cumulative missed count of an attachment.
type Miss struct {
	Kind  MissKind
	Count uint64
}

// MissKind says which counter a Miss comes from (AttrMissKind).
type MissKind string

const (
	// MissKprobe is the kprobe's own nmissed: hits the kprobe or
	// kretprobe could not handle (a kretprobe whose maxactive instances
	// were all in use drops the return). From tracefs kprobe_profile for
	// events safebpf created there, else from link info (kernel 6.7+).
	MissKprobe MissKind = "kprobe"
	// MissRecursion is the program's recursion_misses
	// (bpf_prog_info, kernel 5.12+): runs the kernel skipped because a
	// BPF program was already running on the CPU — on every program type.
	MissRecursion MissKind = "recursion"
)

// MaxTargetLen bounds the safebpf.target attribute of safebpf.probe.missed.
const MaxTargetLen = 128

// MaxMissedSeries bounds the number of safebpf.probe.missed series; the
// remaining attachments are summed under the target "_other".
const MaxMissedSeries = 512

// otherTarget collects the attachments beyond MaxMissedSeries.
const otherTarget = "_other"

// RegisterAttachments adds fn as a source of live attachments. fn is
// called on every metric collection, from the reader's goroutine (never
// on an attach path); it must be safe for concurrent use and should
// return quickly. Close removes every source.
func (r *Recorder) RegisterAttachments(fn func() []Attachment) {
	if r == nil || fn == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.sources = append(r.sources, fn)
}

type activeKey struct {
	mechanism probe.Mechanism
	hazard    hazards.ID
}

type missedKey struct {
	mechanism probe.Mechanism
	target    string
	kind      MissKind
}

// observe is the callback of the observable instruments.
func (r *Recorder) observe(_ context.Context, o metric.Observer) error {
	r.mu.Lock()
	fns := append([]func() []Attachment(nil), r.sources...)
	r.mu.Unlock()

	active := map[activeKey]int64{}
	var activeOrder []activeKey
	sums := map[missedKey]uint64{}
	var order []missedKey
	targets := map[missedKey]bool{} // (mechanism, target) pairs with a series
	for _, fn := range fns {
		for _, at := range fn() {
			ak := activeKey{at.Mechanism, at.Hazard}
			if ak.hazard == "" {
				ak.hazard = None
			}
			if _, ok := active[ak]; !ok {
				activeOrder = append(activeOrder, ak)
			}
			active[ak]++
			for _, m := range at.Misses {
				k := missedKey{at.Mechanism, truncate(at.Target, MaxTargetLen), m.Kind}
				pair := missedKey{mechanism: k.mechanism, target: k.target}
				if !targets[pair] && len(targets) >= MaxMissedSeries {
					k.target = otherTarget
				} else {
					targets[pair] = true
				}
				if _, ok := sums[k]; !ok {
					order = append(order, k)
				}
				sums[k] = saturatingAdd(sums[k], m.Count)
			}
		}
	}
	for _, k := range activeOrder {
		o.ObserveInt64(r.active, active[k], metric.WithAttributeSet(r.metricSet(
			AttrChosen.String(string(k.mechanism)),
			AttrHazardID.String(string(k.hazard)),
		)))
	}
	for _, k := range order {
		o.ObserveInt64(r.missed, clampInt64(sums[k]), metric.WithAttributeSet(r.metricSet(
			AttrChosen.String(string(k.mechanism)),
			AttrTarget.String(k.target),
			AttrMissKind.String(string(k.kind)),
		)))
	}
	for _, l := range r.lanes() {
		if n := l.dropped.Load(); n > 0 {
			o.ObserveInt64(r.dropped, clampInt64(n), metric.WithAttributeSet(r.metricSet(AttrQueue.String(l.name))))
		}
	}
	return nil
}

func saturatingAdd(a, b uint64) uint64 {
	if a+b < a {
		return ^uint64(0)
	}
	return a + b
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
