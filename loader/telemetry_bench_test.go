package loader

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// BenchmarkTelemetryOverhead measures what recording costs a real
// LoadAndAttach (tracepointSpec: 40 small tracepoint programs): the loader
// with the default no-op providers and a discarding Logger, then with SDK
// providers (a synchronous span exporter, a metric reader) and a JSON
// Logger, the telemetry drained (Loader.Close's work) inside the timed
// loop. The sdk line reports its ratio to the no-op line of the same run;
// BenchmarkLoadAndAttach gives the loader's ratio to plain cilium/ebpf.
func BenchmarkTelemetryOverhead(b *testing.B) {
	mountTracefs(b)
	cs := tracepointSpec(40, 20)
	var noop time.Duration
	loader := func(opts *Options) func(b *testing.B) {
		return func(b *testing.B) {
			l := newHostLoader(b, opts)
			for b.Loop() {
				c, err := l.LoadAndAttach(cs, nil)
				if err != nil {
					b.Fatal(err)
				}
				c.Close()
				if err := l.rec.Flush(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			perOp := b.Elapsed() / time.Duration(b.N)
			if opts == nil {
				noop = perOp
			} else if noop > 0 {
				b.ReportMetric(float64(perOp)/float64(noop), "x-noop")
			}
		}
	}
	b.Run("noop", loader(nil))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewNoopExporter()))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer tp.Shutdown(context.Background())
	defer mp.Shutdown(context.Background())
	b.Run("sdk", loader(&Options{TracerProvider: tp, MeterProvider: mp,
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))}))
}
