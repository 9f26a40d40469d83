package telemetry

import (
	"context"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/safebpf/safebpf/probe"
)

// Missed is the cumulative missed-hit count of one attached probe, as
// reported by link info (kprobe_missed) or tracefs kprobe_profile.
type Missed struct {
	// Mechanism is the attached mechanism (kprobe, kretprobe, …).
	Mechanism probe.Mechanism
	// Target is the probed function or symbol; it is truncated to
	// MaxTargetLen bytes in attributes.
	Target string
	// Count is the cumulative number of missed hits since attach.
	Count uint64
}

// MaxTargetLen bounds the safebpf.target attribute of safebpf.probe.missed.
const MaxTargetLen = 128

// MaxMissedSeries bounds the number of safebpf.probe.missed series per
// collection; the remaining probes are summed under the target "_other".
const MaxMissedSeries = 512

// otherTarget collects the probes beyond MaxMissedSeries.
const otherTarget = "_other"

// RegisterMissed adds fn as a source of safebpf.probe.missed observations.
// fn is called on every metric collection, from the reader's goroutine
// (never on an attach path); it must be safe for concurrent use and should
// return quickly. Counts of probes with the same mechanism and (truncated)
// target are summed. Close removes every source.
func (r *Recorder) RegisterMissed(fn func() []Missed) {
	if r == nil || fn == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.missedFns = append(r.missedFns, fn)
}

type missedKey struct {
	mechanism probe.Mechanism
	target    string
}

// observe is the callback of the observable instruments.
func (r *Recorder) observe(_ context.Context, o metric.Observer) error {
	r.mu.Lock()
	fns := append([]func() []Missed(nil), r.missedFns...)
	r.mu.Unlock()

	sums := map[missedKey]uint64{}
	var order []missedKey
	for _, fn := range fns {
		for _, m := range fn() {
			k := missedKey{m.Mechanism, truncate(m.Target, MaxTargetLen)}
			if _, ok := sums[k]; !ok {
				if len(order) >= MaxMissedSeries {
					k.target = otherTarget
				}
				if _, ok := sums[k]; !ok {
					order = append(order, k)
				}
			}
			sums[k] = saturatingAdd(sums[k], m.Count)
		}
	}
	for _, k := range order {
		o.ObserveInt64(r.missed, clampInt64(sums[k]), metric.WithAttributeSet(attribute.NewSet(
			AttrChosen.String(string(k.mechanism)),
			AttrTarget.String(k.target),
		)))
	}
	for _, q := range r.queues() {
		if n := q.dropped.Load(); n > 0 {
			o.ObserveInt64(r.dropped, clampInt64(n), metric.WithAttributeSet(attribute.NewSet(AttrSignal.String(q.name))))
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
