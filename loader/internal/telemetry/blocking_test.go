package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/probe"
)

// gate blocks every caller of wait until open is called.
type gate struct {
	once    sync.Once
	ch      chan struct{}
	entered chan struct{} // closed when the first caller blocks
	enterMu sync.Once
}

func newGate() *gate { return &gate{ch: make(chan struct{}), entered: make(chan struct{})} }

func (g *gate) wait(ctx context.Context) error {
	g.enterMu.Do(func() { close(g.entered) })
	select {
	case <-g.ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }

// hangingSpanExporter blocks ExportSpans until the gate opens; it ignores
// the context, as a buggy exporter would.
type hangingSpanExporter struct{ g *gate }

func (e hangingSpanExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error {
	return e.g.wait(context.Background())
}
func (e hangingSpanExporter) Shutdown(context.Context) error { return nil }

// hangingMetricExporter blocks Export until the gate opens. entered, if
// set, is called when Export starts.
type hangingMetricExporter struct {
	g       *gate
	entered func()
}

func (e hangingMetricExporter) Temporality(k sdkmetric.InstrumentKind) metricdata.Temporality {
	return sdkmetric.DefaultTemporalitySelector(k)
}
func (e hangingMetricExporter) Aggregation(k sdkmetric.InstrumentKind) sdkmetric.Aggregation {
	return sdkmetric.DefaultAggregationSelector(k)
}
func (e hangingMetricExporter) Export(context.Context, *metricdata.ResourceMetrics) error {
	if e.entered != nil {
		e.entered()
	}
	return e.g.wait(context.Background())
}
func (e hangingMetricExporter) ForceFlush(context.Context) error { return nil }
func (e hangingMetricExporter) Shutdown(context.Context) error   { return nil }

// hangingHandler is a slog handler writing to a pipe nobody reads.
type hangingHandler struct{ g *gate }

func (h hangingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h hangingHandler) Handle(context.Context, slog.Record) error {
	return h.g.wait(context.Background())
}
func (h hangingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h hangingHandler) WithGroup(string) slog.Handler      { return h }

// laneGoroutines returns the stacks of the goroutines this package
// started (lane.run, the only goroutine it starts), as runtime.Stack
// shows them: a goleak-style check without the dependency.
func laneGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "telemetry.(*lane).run") {
			out = append(out, g)
		}
	}
	return out
}

// waitNoLaneGoroutines waits up to d for every lane goroutine to return,
// without calling anything on the Recorder.
func waitNoLaneGoroutines(t *testing.T, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		gs := laneGoroutines()
		if len(gs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d lane goroutines left after %v:\n%s", len(gs), d, strings.Join(gs, "\n\n"))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// hungMeterProvider returns a MeterProvider whose PeriodicReader is stuck
// in hangingMetricExporter.Export until g opens, and registers the cleanup
// that waits for it (after the test has opened g).
//
// The reader's interval is long and the hung export is started with
// ForceFlush once the provider exists, never with a short interval: the
// SDK's NewPeriodicReader (go.opentelemetry.io/otel/sdk/metric v1.40.0,
// periodic_reader.go) starts its run goroutine before it assigns r.inst,
// which collect reads without synchronisation. A tick that fires before
// NewMeterProvider registers the reader (the "reader is not registered"
// error) is therefore a data race between the constructor's write and the
// reader goroutine's read; with a 1ms interval a preempted test goroutine
// on a loaded machine hits it (upstream open-telemetry/opentelemetry-go
// issue 8769). ForceFlush hands the collection to the run goroutine over
// a channel, which orders it after the constructor and the registration.
func hungMeterProvider(t *testing.T, g *gate) *sdkmetric.MeterProvider {
	t.Helper()
	exporting := make(chan struct{})
	var once sync.Once
	exp := hangingMetricExporter{g: g, entered: func() { once.Do(func() { close(exporting) }) }}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(
		sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))))
	ctx, cancel := context.WithCancel(context.Background())
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		_ = mp.ForceFlush(ctx) // returns when g opens or ctx is canceled
	}()
	t.Cleanup(func() {
		cancel()
		<-flushed
	})
	select {
	case <-exporting:
	case <-time.After(5 * time.Second):
		t.Fatal("the metric reader never called its exporter")
	}
	return mp
}

// hungRecorder is a Recorder whose span exporter, metric exporter and
// slog handler all block until g opens. The returned func opens g and
// shuts the providers down (the metric reader's Shutdown waits for its
// hung Export).
func hungRecorder(t *testing.T, g *gate, size int) (*Recorder, func()) {
	t.Helper()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(hangingSpanExporter{g}))
	mp := hungMeterProvider(t, g)
	r, err := newRecorder(tp, mp, slog.New(hangingHandler{g}), debianKernel, size)
	if err != nil {
		t.Fatal(err)
	}
	return r, func() {
		g.open()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = tp.Shutdown(ctx)
		_ = mp.Shutdown(ctx)
	}
}

var downgrade = fallback.Decision{
	Target: "do_unlinkat", Requested: probe.Fentry, Chosen: probe.Kprobe,
	Action: fallback.Downgrade, Mode: hazards.Enforce,
	Steps: []fallback.Step{{From: probe.Fentry, To: probe.Kprobe, Action: fallback.Downgrade, Hazard: "fentry-zap-pid-ns-deadlock"}},
}

// TestHangingExporters proves that exporters and a handler that block
// forever do not delay attaches: 1000 decisions are recorded well within
// the bound, overflow is dropped and counted, Close returns within its
// deadline, and the lane goroutines are gone as soon as the sinks return,
// with no further call.
func TestHangingExporters(t *testing.T) {
	const decisions = 1000
	// The bound is 200ms for 1000 decisions (they take a few ms without
	// the race detector, which slows this path 5-20x on a loaded machine:
	// then the bound is 2s). A blocking path would never finish at all,
	// since the exporters block until the gate opens.
	bound := 200 * time.Millisecond
	if raceEnabled {
		bound = 2 * time.Second
	}
	for _, size := range []int{DefaultQueueSize, 16} {
		t.Run(fmt.Sprintf("queue=%d", size), func(t *testing.T) {
			g := newGate()
			r, shutdown := hungRecorder(t, g, size)
			defer shutdown()

			start := time.Now()
			for i := 0; i < decisions; i++ {
				_, a := r.StartAttach(context.Background(), downgrade.Target, downgrade.Requested)
				a.End(downgrade, nil)
			}
			elapsed := time.Since(start)
			t.Logf("%d decisions recorded in %v", decisions, elapsed)
			if elapsed > bound {
				t.Errorf("%d decisions took %v with hanging exporters, want < %v", decisions, elapsed, bound)
			}

			// The exporters are really blocked (not merely slow).
			select {
			case <-g.entered:
			case <-time.After(5 * time.Second):
				t.Fatal("no exporter or handler was ever called")
			}

			if size < decisions {
				// Each lane holds size records plus at most one in
				// flight; the rest is dropped and counted.
				if got, min := r.otel.dropped.Load(), uint64(decisions-size-1); got < min {
					t.Errorf("otel dropped %d, want >= %d", got, min)
				}
				if got, min := r.logs.dropped.Load(), uint64(decisions-size-1); got < min {
					t.Errorf("logs dropped %d, want >= %d", got, min)
				}
			} else if got := r.Dropped(); got != 0 {
				t.Errorf("dropped %d records with room in the queue", got)
			}

			start = time.Now()
			err := r.Close()
			waited := time.Since(start)
			if err == nil || !strings.Contains(err.Error(), "pending") {
				t.Errorf("Close with hung exporters = %v, want a deadline error naming pending records", err)
			}
			if waited > CloseTimeout+time.Second {
				t.Errorf("Close waited %v, past its %v deadline", waited, CloseTimeout)
			}
			// While the sinks hang, the only goroutines left are the ones
			// blocked inside them: one per lane at most.
			gs := laneGoroutines()
			if len(gs) > 2 {
				t.Errorf("%d lane goroutines after Close, want at most one per lane", len(gs))
			}
			for _, st := range gs {
				if !strings.Contains(st, "(*gate).wait") {
					t.Errorf("a lane goroutine outlives Close without being blocked in a sink:\n%s", st)
				}
			}

			// Release the sinks: the goroutines return by themselves,
			// dropping what was left instead of calling the sinks again.
			g.open()
			waitNoLaneGoroutines(t, 5*time.Second)
		})
	}
}

// TestFlushThenClose: a Flush waiting for room in a lane whose sink hangs
// must not keep Close from returning, and returns itself once Close runs.
func TestFlushThenClose(t *testing.T) {
	g := newGate()
	r, shutdown := hungRecorder(t, g, 1)
	defer shutdown()
	defer g.open()
	for i := 0; i < 4; i++ { // one in each sink, one queued, the rest dropped
		r.RecordDecision(context.Background(), downgrade)
	}
	<-g.entered
	flushed := make(chan error, 1)
	go func() { flushed <- r.Flush(context.Background()) }()
	time.Sleep(50 * time.Millisecond) // let Flush block on the full lane

	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		closed <- r.Shutdown(ctx)
	}()
	select {
	case err := <-closed:
		t.Logf("Shutdown: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown deadlocked behind a waiting Flush")
	}
	select {
	case err := <-flushed:
		if !errors.Is(err, errClosed) {
			t.Errorf("Flush = %v, want it ended by the close", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Flush still blocked after Close")
	}
	g.open()
	waitNoLaneGoroutines(t, 5*time.Second)
}

// syncHandler keeps records, safe for concurrent use.
type syncHandler struct {
	mu   *sync.Mutex
	msgs *[]string
}

func (h syncHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h syncHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	*h.msgs = append(*h.msgs, r.Message)
	return nil
}
func (h syncHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h syncHandler) WithGroup(string) slog.Handler      { return h }

// TestRefusalDurable: a call that refused has its log record at the
// handler when Call.End returns, even while the span exporter hangs (the
// logs lane does not wait for it); and with a hung handler Call.End gives
// up after DurableWait.
func TestRefusalDurable(t *testing.T) {
	refused := fallback.Decision{Target: "text_poke_bp", Requested: probe.Kprobe, Action: fallback.Refuse, Mode: hazards.Enforce,
		Steps: []fallback.Step{{From: probe.Kprobe, Action: fallback.Refuse, Hazard: hzTextPoke}}}

	g := newGate()
	defer g.open()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(hangingSpanExporter{g}))
	var mu sync.Mutex
	var msgs []string
	r, err := New(tp, nil, slog.New(syncHandler{&mu, &msgs}), debianKernel)
	if err != nil {
		t.Fatal(err)
	}
	r.RecordDecision(context.Background(), downgrade) // the span exporter now hangs
	<-g.entered
	ctx, call := r.Begin(context.Background())
	_, a := r.StartAttach(ctx, refused.Target, refused.Requested)
	a.End(refused, refusedErr)
	start := time.Now()
	call.End()
	mu.Lock()
	got := slices.Clone(msgs)
	mu.Unlock()
	if len(got) != 2 || time.Since(start) > DurableWait/2 {
		t.Errorf("after %v the handler has %q, want both records at once", time.Since(start), got)
	}
	_ = r.Close()

	h := newGate()
	defer h.open()
	r2, err := New(nil, nil, slog.New(hangingHandler{h}), debianKernel)
	if err != nil {
		t.Fatal(err)
	}
	ctx, call = r2.Begin(context.Background())
	_, a = r2.StartAttach(ctx, refused.Target, refused.Requested)
	a.End(refused, refusedErr)
	start = time.Now()
	call.End()
	if d := time.Since(start); d < DurableWait || d > DurableWait+time.Second {
		t.Errorf("Call.End with a hung handler returned after %v, want about %v", d, DurableWait)
	}
	if err := r2.Close(); err == nil {
		t.Error("Close with a hung handler: want a deadline error")
	}
	g.open()
	h.open()
	waitNoLaneGoroutines(t, 5*time.Second)
}

// TestLargeCallNotDropped: one call of 3,000 decisions (a LoadAndAttach
// of 3,000 programs) is one queue item: with a queue of 16, nothing is
// dropped and every span is exported.
func TestLargeCallNotDropped(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	r, err := newRecorder(tp, nil, nil, debianKernel, 16)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, call := r.Begin(context.Background())
	for i := 0; i < 3000; i++ {
		_, a := r.StartAttach(ctx, downgrade.Target, downgrade.Requested)
		a.SetProgram(fmt.Sprintf("p%d", i))
		a.End(downgrade, nil)
	}
	call.End()
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(sr.Ended()); n != 3000 || r.Dropped() != 0 {
		t.Errorf("%d spans exported, %d records dropped; want 3000 and 0", n, r.Dropped())
	}
}
