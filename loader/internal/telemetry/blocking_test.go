package telemetry

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

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

// TestHangingExporters proves that exporters and a handler that block
// forever do not delay attaches: 1000 decisions are recorded well within
// the bound, overflow is dropped and counted, Close gives up at its
// deadline, and the goroutines finish once the exporters return.
func TestHangingExporters(t *testing.T) {
	const decisions = 1000
	// The bound is 200ms for 1000 decisions (they take under 15ms without
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
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(hangingSpanExporter{g}))
			mp := hungMeterProvider(t, g)
			r, err := newRecorder(tp, mp, slog.New(hangingHandler{g}), size)
			if err != nil {
				t.Fatal(err)
			}
			d := fallback.Decision{
				Target: "do_unlinkat", Requested: probe.Fentry, Chosen: probe.Kprobe,
				Action: fallback.Downgrade, Mode: hazards.Enforce,
				Steps: []fallback.Step{{From: probe.Fentry, To: probe.Kprobe, Action: fallback.Downgrade, Hazard: "fentry-zap-pid-ns-deadlock"}},
			}

			start := time.Now()
			for i := 0; i < decisions; i++ {
				_, a := r.StartAttach(context.Background(), debianKernel, d.Target, d.Requested)
				a.End(d, nil)
			}
			elapsed := time.Since(start)
			t.Logf("%d decisions recorded in %v", decisions, elapsed)
			if elapsed > bound {
				t.Errorf("%d decisions took %v with hanging exporters, want < %v", decisions, elapsed, bound)
			}

			// The trace exporter is really blocked (not merely slow).
			select {
			case <-g.entered:
			case <-time.After(5 * time.Second):
				t.Fatal("no exporter or handler was ever called")
			}

			if size < decisions {
				// The trace and log queues hold size records plus at most
				// one in flight; the rest is dropped and counted.
				if got, min := r.traces.dropped.Load(), uint64(decisions-size-1); got < min {
					t.Errorf("traces dropped %d, want >= %d", got, min)
				}
				if got, min := r.logs.dropped.Load(), uint64(decisions-size-1); got < min {
					t.Errorf("logs dropped %d, want >= %d", got, min)
				}
			} else if got := r.traces.dropped.Load() + r.logs.dropped.Load(); got != 0 {
				t.Errorf("dropped %d records with room in the queue", got)
			}

			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			start = time.Now()
			err = r.Shutdown(ctx)
			cancel()
			if err == nil || !strings.Contains(err.Error(), "pending") {
				t.Errorf("Shutdown with hung exporters = %v, want a deadline error naming pending records", err)
			}
			if waited := time.Since(start); waited > time.Second {
				t.Errorf("Shutdown waited %v past its 50ms deadline", waited)
			}

			// Release the exporters: the goroutines drain and exit.
			g.open()
			ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := r.Shutdown(ctx); err != nil {
				t.Errorf("Shutdown after release: %v", err)
			}
			for _, q := range r.queues() {
				select {
				case <-q.done:
				default:
					t.Errorf("%s goroutine leaked", q.name)
				}
			}
			if err := tp.Shutdown(ctx); err != nil {
				t.Errorf("tracer provider shutdown: %v", err)
			}
			if err := mp.Shutdown(ctx); err != nil {
				t.Errorf("meter provider shutdown: %v", err)
			}
		})
	}
}
