package loader

import (
	"context"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/probe"
)

// TestDecisionsReachProviders plans in audit mode (no root needed) and
// checks that each decision reached the providers given in Options.
func TestDecisionsReachProviders(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	k := describe(t, probe.Description{Release: "6.1.30", CPUs: 4,
		Kallsyms: "0000000000000000 d tasks_rcu_exit_srcu\n"})
	l, err := New(&Options{Kernel: k, Mode: hazards.Audit, TracerProvider: tp, MeterProvider: mp})
	if err != nil {
		t.Fatal(err)
	}
	lk, err := l.Kprobe("do_unlinkat", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if lk.Attached() {
		t.Error("audit mode attached something")
	}
	if _, err := l.Tracepoint("sched", "sched_switch", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil { // flushes the telemetry queues
		t.Fatal(err)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var decisions int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "safebpf.decisions" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				decisions += dp.Value
			}
		}
	}
	if decisions < 2 {
		t.Errorf("safebpf.decisions = %d, want >= 2", decisions)
	}
	var attachSpans int
	for _, s := range spans.Ended() {
		if s.Name() == "safebpf.attach" {
			attachSpans++
		}
	}
	if attachSpans != 2 {
		t.Errorf("got %d safebpf.attach spans, want 2", attachSpans)
	}
}
