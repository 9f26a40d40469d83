package telemetry

import (
	"context"
	"io"
	"log/slog"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// BenchmarkCall records one loader call of 1,000 decisions (a
// LoadAndAttach of 1,000 programs) three ways: with a nil Recorder (no
// telemetry), through the SDK providers and a JSON handler as the caller
// sees it (the attach path: Begin, StartAttach, End, Call.End), and the
// same plus Flush (the lanes' work too: attributes, spans, metric points,
// log lines). The attach-path run drains the lanes with the timer stopped,
// so that it neither measures their work nor overflows them. Run all three in one invocation: the sdk lines report their
// ratio to the nil line.
func BenchmarkCall(b *testing.B) {
	const n = 1000
	run := func(b *testing.B, r *Recorder, flush bool) {
		for b.Loop() {
			ctx, call := r.Begin(context.Background())
			for range n {
				_, a := r.StartAttach(ctx, downgrade.Target, downgrade.Requested)
				a.SetProgram("prog")
				a.End(downgrade, nil)
			}
			call.End()
			if !flush {
				b.StopTimer()
			}
			if err := r.Flush(context.Background()); err != nil {
				b.Fatal(err)
			}
			if !flush {
				b.StartTimer()
			}
		}
	}
	sdk := func(b *testing.B) *Recorder {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewNoopExporter()))
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		r, err := New(tp, mp, slog.New(slog.NewJSONHandler(io.Discard, nil)), debianKernel)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			r.Close()
			tp.Shutdown(context.Background())
			mp.Shutdown(context.Background())
		})
		return r
	}
	var base float64
	report := func(b *testing.B) {
		ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(ns/n, "ns/decision")
		if base > 0 {
			b.ReportMetric(ns/base, "x-none")
		}
	}
	b.Run("none", func(b *testing.B) {
		run(b, nil, false)
		base = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		report(b)
	})
	b.Run("sdk-attach-path", func(b *testing.B) {
		run(b, sdk(b), false)
		report(b)

	})
	b.Run("sdk-drained", func(b *testing.B) {
		run(b, sdk(b), true)
		report(b)
	})
}
