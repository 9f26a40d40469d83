package loader

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"

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

// slowHandler is a slog handler that takes its time with every record,
// as one writing to a slow pipe does, and keeps what it was given.
type slowHandler struct {
	mu      *sync.Mutex
	records *[]slog.Record
	delay   time.Duration
}

func (h slowHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h slowHandler) Handle(_ context.Context, r slog.Record) error {
	time.Sleep(h.delay)
	h.mu.Lock()
	defer h.mu.Unlock()
	*h.records = append(*h.records, r)
	return nil
}
func (h slowHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h slowHandler) WithGroup(string) slog.Handler      { return h }

func recordAttrs(r slog.Record) map[string]string {
	out := map[string]string{}
	r.Attrs(func(a slog.Attr) bool {
		out[a.Key] = a.Value.String()
		return true
	})
	return out
}

// TestRefusalAttributedAndLogged: a collection whose kprobe is refused (a
// kernel without kprobes) beside a healthy tracepoint. The refusal is
// reported on the kprobe only — error text, span, safebpf.refusals — and
// its log record has reached the Logger when LoadAndAttach returns, even
// through a slow handler (an agent calls log.Fatal right after). No root
// needed: the refusal comes before anything loads.
func TestRefusalAttributedAndLogged(t *testing.T) {
	k := describe(t, probe.Description{Release: "6.18.44", CPUs: 2})
	k.Mechanisms[probe.Kprobe] = probe.Unsupported("test: CONFIG_KPROBES unset")
	k.Mechanisms[probe.Fentry] = probe.Unsupported("test: EPERM")
	k.Mechanisms[probe.Tracepoint] = probe.Supported("test")

	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	var mu sync.Mutex
	var records []slog.Record
	logger := slog.New(slowHandler{mu: &mu, records: &records, delay: 150 * time.Millisecond})
	l, err := New(&Options{Kernel: k, TracerProvider: tp, MeterProvider: mp, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	cs := spec(
		counterProg("kp", "kprobe/do_unlinkat", ebpf.Kprobe, 0, 0),
		counterProg("tp", "tracepoint/sched/sched_switch", ebpf.TracePoint, 1, 0),
	)
	_, err = l.LoadAndAttach(cs, nil)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), `"kp"`) || strings.Contains(err.Error(), `"tp"`) {
		t.Fatalf("error %v: want a refusal naming kp and not tp", err)
	}

	// The log record is there already, before Close flushes anything.
	mu.Lock()
	got := append([]slog.Record(nil), records...)
	mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("%d log records when LoadAndAttach returned, want the refusal's", len(got))
	}
	if a := recordAttrs(got[0]); a["program"] != "kp" || a["action"] != "refuse" || got[0].Level != slog.LevelWarn {
		t.Errorf("log record %v %s: want program=kp action=refuse at warn", a, got[0].Level)
	}

	if err := l.Close(); err != nil { // flushes spans and metrics
		t.Fatal(err)
	}
	var attach []sdktrace.ReadOnlySpan
	for _, s := range spans.Ended() {
		if s.Name() == "safebpf.attach" {
			attach = append(attach, s)
		}
	}
	if len(attach) != 1 {
		t.Fatalf("%d attach spans, want one (the refused program; the tracepoint was never attached)", len(attach))
	}
	attrs := map[string]string{}
	for _, kv := range attach[0].Attributes() {
		attrs[string(kv.Key)] = kv.Value.Emit()
	}
	if attrs["safebpf.program"] != "kp" || attach[0].Status().Code != codes.Error {
		t.Errorf("span %v status %v: want program kp with an error status", attrs, attach[0].Status())
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var refusals []attribute.Set
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == "safebpf.refusals" {
				for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
					for range dp.Value {
						refusals = append(refusals, dp.Attributes)
					}
				}
			}
		}
	}
	if len(refusals) != 1 {
		t.Fatalf("%d refusals counted, want 1", len(refusals))
	}
	if v, _ := refusals[0].Value("safebpf.mechanism.requested"); v.Emit() != "kprobe" {
		t.Errorf("refusal counted for %s, want kprobe", v.Emit())
	}
}
