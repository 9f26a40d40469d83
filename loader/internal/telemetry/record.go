package telemetry

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/probe"
)

// batch is what one loader call (or New, or Flush) hands to the lanes.
// The same batch goes to both lanes; each lane closes its own done
// channel when it has handed the batch to its sinks.
type batch struct {
	decisions []decision
	logs      []LogRecord
	force     *forceLoad

	// logged and exported are closed by the logs and the otel lane once
	// they handled (or dropped) the batch; nil when nobody waits.
	logged, exported chan struct{}
}

func (b *batch) records() int {
	n := len(b.decisions) + len(b.logs)
	if b.force != nil {
		n++
	}
	return n
}

// awaited reports whether somebody waits for a lane to handle b.
func (b *batch) awaited() bool { return b.logged != nil || b.exported != nil }

// handled signals that lane l is done with b.
func (b *batch) handled(l *lane) {
	switch {
	case l.name == laneLogs && b.logged != nil:
		close(b.logged)
	case l.name == laneOtel && b.exported != nil:
		close(b.exported)
	}
}

// decision is one ended attach: everything End was given, nothing
// computed. Attributes are built on the lanes' goroutines.
type decision struct {
	parent     trace.SpanContext
	start, end time.Time
	target     string
	requested  probe.Mechanism
	program    string
	d          fallback.Decision
	err        error
}

// forceLoad is a force set New loaded (safebpf.force.loaded).
type forceLoad struct {
	ids  []hazards.ID
	mode hazards.Mode
}

// LogRecord is a record for an slog handler that goes through the logs
// lane like every decision's record: New's start-up records (stale tracefs
// events removed, the force set loaded, unknown force IDs).
type LogRecord struct {
	Handler slog.Handler
	Record  slog.Record
}

// Log hands records to the logs lane; it never blocks. Handlers that are
// disabled for a record's level are skipped there.
func (r *Recorder) Log(recs ...LogRecord) {
	if r == nil || len(recs) == 0 {
		return
	}
	b := &batch{logs: recs}
	r.logs.put(b)
}

// Attach is one attach request being recorded. End it exactly once; a nil
// *Attach records nothing.
type Attach struct {
	r         *Recorder
	call      *Call
	parent    trace.SpanContext
	start     time.Time
	target    string
	requested probe.Mechanism
	program   string
	ended     atomic.Bool
}

// StartAttach begins recording an attach of target with the requested
// mechanism. It does not block and does not call the providers: the span
// is created on the otel lane, with this call's time as its start and the
// span in ctx as its parent. When ctx carries a Call (Begin), End adds the
// record to the call's batch; otherwise End hands it over on its own. The
// returned context is ctx.
func (r *Recorder) StartAttach(ctx context.Context, target string, requested probe.Mechanism) (context.Context, *Attach) {
	if r == nil {
		return ctx, nil
	}
	c, _ := ctx.Value(callKey{}).(*Call)
	if c != nil && c.r != r {
		c = nil
	}
	a := &Attach{}
	if c != nil && c.firstUsed.CompareAndSwap(false, true) {
		a = &c.first
	}
	a.r, a.call = r, c
	a.parent = trace.SpanContextFromContext(ctx)
	a.start = time.Now()
	a.target, a.requested = target, requested
	return ctx, a
}

// SetProgram names the program being attached; its span, metrics and log
// record then carry it. Call it before End.
func (a *Attach) SetProgram(name string) {
	if a == nil {
		return
	}
	a.program = name
}

// End records decision d and the attach outcome err (nil: attached, or
// nothing to attach in audit mode). It never blocks and never calls a
// provider or a handler. Calls after the first are ignored.
func (a *Attach) End(d fallback.Decision, err error) {
	if a == nil || !a.ended.CompareAndSwap(false, true) {
		return
	}
	rec := decision{
		parent: a.parent, start: a.start, end: time.Now(),
		target: a.target, requested: a.requested, program: a.program,
		d: d, err: err,
	}
	if a.call != nil && a.call.add(rec) {
		return
	}
	a.r.enqueue(&batch{decisions: []decision{rec}})
}

// RecordDecision records a decision that had no attach of its own (an
// audit-mode plan): a zero-length attach span with the decision event.
func (r *Recorder) RecordDecision(ctx context.Context, d fallback.Decision) {
	if r == nil {
		return
	}
	_, a := r.StartAttach(ctx, d.Target, d.Requested)
	a.End(d, nil)
}

type callKey struct{}

// Call collects the records of one loader call, handed to the lanes
// together by End: one queue item per call whatever its size, so no
// decision of a large LoadAndAttach is dropped for want of room.
//
// A Call is its own context (the caller's, carrying it): one allocation
// per loader call holds the context, the first attach's record and the
// batch handed to the lanes, since most calls attach once.
type Call struct {
	context.Context
	r     *Recorder
	mu    sync.Mutex
	recs  []decision
	ended bool

	first     Attach      // the call's first Attach (StartAttach)
	firstUsed atomic.Bool // first was handed out
	one       [1]decision // recs' room for one record
	b         batch       // what End hands to the lanes
}

// Value returns the Call for callKey, else what the caller's context
// holds.
func (c *Call) Value(key any) any {
	if key == (callKey{}) {
		return c
	}
	return c.Context.Value(key)
}

// Begin starts the record of one loader call; the returned context
// carries it to StartAttach. End it exactly once (defer call.End()). A nil
// Recorder returns ctx and a nil *Call, whose End does nothing.
func (r *Recorder) Begin(ctx context.Context) (context.Context, *Call) {
	if r == nil {
		return ctx, nil
	}
	c := &Call{Context: ctx, r: r}
	return c, c
}

func (c *Call) add(rec decision) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return false
	}
	if c.recs == nil {
		c.recs = c.one[:0]
	}
	c.recs = append(c.recs, rec)
	return true
}

// DurableWait bounds how long Call.End waits for the log records of a
// call that refused or failed to reach the slog handler. An agent that
// exits right after the error (log.Fatal, as cilium/ebpf's examples do)
// then still has them, unless the handler takes longer than this, when
// the wait gives up and the record is written whenever the handler
// returns (if the process still runs).
const DurableWait = time.Second

// End hands the call's records to the lanes. It never blocks, except
// when a record carries an error (a refusal or a failed attach): then it
// waits, at most DurableWait, until the logs lane has handed the call's
// records to the handler. Only the logs lane is waited for: a hung span
// exporter never delays a refused call.
func (c *Call) End() {
	if c == nil {
		return
	}
	c.mu.Lock()
	recs := c.recs
	c.recs, c.ended = nil, true
	c.mu.Unlock()
	if len(recs) == 0 {
		return
	}
	durable := false
	for _, rec := range recs {
		durable = durable || rec.err != nil
	}
	b := &c.b
	b.decisions = recs
	if !durable {
		c.r.enqueue(b)
		return
	}
	b.logged = make(chan struct{})
	if !c.r.enqueue(b) {
		return
	}
	t := time.NewTimer(DurableWait)
	defer t.Stop()
	select {
	case <-b.logged:
	case <-t.C:
	}
}

// enqueue hands b to both lanes and reports whether the logs lane took it.
func (r *Recorder) enqueue(b *batch) bool {
	r.otel.put(b)
	return r.logs.put(b)
}
