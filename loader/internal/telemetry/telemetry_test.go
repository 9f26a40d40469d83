package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/probe"
)

// debianKernel is the identity of a Debian 12 machine.
var debianKernel = &probe.Kernel{
	Release:       "6.1.0-18-amd64",
	Version:       &probe.Version{Major: 6, Minor: 1, Patch: 76, PatchKnown: true},
	VersionSource: probe.SourceDebian,
	Arch:          "amd64",
	Distro:        probe.Distro{ID: "debian", VersionID: "12", DebianPackage: "6.1.76-1"},
}

// harness is a Recorder wired to in-memory SDK readers and a JSON log buffer.
type harness struct {
	rec    *Recorder
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
	logs   *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newHarness(t *testing.T) *harness { return newHarnessFor(t, debianKernel) }

// newHarnessFor is newHarness for kernel k (nil: unknown).
func newHarnessFor(t *testing.T, k *probe.Kernel) *harness {
	t.Helper()
	h := &harness{
		spans:  tracetest.NewSpanRecorder(),
		reader: sdkmetric.NewManualReader(),
		logs:   &syncBuffer{},
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(h.spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(h.reader))
	logger := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rec, err := New(tp, mp, logger, k)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.rec = rec
	t.Cleanup(func() {
		if err := rec.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		ctx := context.Background()
		_ = tp.Shutdown(ctx)
		_ = mp.Shutdown(ctx)
	})
	return h
}

func (h *harness) flush(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.rec.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

// attrMap turns attributes into plain Go values for cmp.
func attrMap(kvs []attribute.KeyValue) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.AsInterface()
	}
	return m
}

type event struct {
	Name  string
	Attrs map[string]any
}

type span struct {
	Name         string
	Scope        string
	ScopeVersion string
	Kind         trace.SpanKind
	Status       codes.Code
	StatusDesc   string
	Attrs        map[string]any
	Events       []event
}

func (h *harness) endedSpans(t *testing.T) []span {
	t.Helper()
	var out []span
	for _, s := range h.spans.Ended() {
		if !s.EndTime().After(s.StartTime()) && !s.EndTime().Equal(s.StartTime()) {
			t.Errorf("span %s ends (%v) before it starts (%v)", s.Name(), s.EndTime(), s.StartTime())
		}
		sp := span{
			Name:         s.Name(),
			Scope:        s.InstrumentationScope().Name,
			ScopeVersion: s.InstrumentationScope().Version,
			Kind:         s.SpanKind(),
			Status:       s.Status().Code,
			StatusDesc:   s.Status().Description,
			Attrs:        attrMap(s.Attributes()),
		}
		for _, e := range s.Events() {
			if !e.Time.Equal(s.EndTime()) {
				t.Errorf("event %s at %v, want the span's end %v", e.Name, e.Time, s.EndTime())
			}
			sp.Events = append(sp.Events, event{e.Name, attrMap(e.Attributes)})
		}
		out = append(out, sp)
	}
	return out
}

type point struct {
	Attrs map[string]any
	Value int64 // counter value, or histogram count
}

type metricOut struct {
	Unit   string
	Points []point
}

// metrics collects every metric of the recorder's scope, keyed by name;
// instruments without points are left out. Points are sorted by attributes.
func (h *harness) metrics(t *testing.T) map[string]metricOut {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := h.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	out := map[string]metricOut{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != ScopeName || sm.Scope.Version != Version {
			t.Errorf("scope %s@%s, want %s@%s", sm.Scope.Name, sm.Scope.Version, ScopeName, Version)
		}
		for _, m := range sm.Metrics {
			var pts []point
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				if !d.IsMonotonic {
					t.Errorf("%s is not monotonic", m.Name)
				}
				for _, dp := range d.DataPoints {
					pts = append(pts, point{attrMap(dp.Attributes.ToSlice()), dp.Value})
				}
			case metricdata.Gauge[int64]:
				for _, dp := range d.DataPoints {
					pts = append(pts, point{attrMap(dp.Attributes.ToSlice()), dp.Value})
				}
			case metricdata.Histogram[float64]:
				for _, dp := range d.DataPoints {
					if dp.Sum < 0 || dp.Sum > 60 {
						t.Errorf("%s sum %v s out of range", m.Name, dp.Sum)
					}
					if diff := cmp.Diff(durationBuckets, dp.Bounds); diff != "" {
						t.Errorf("%s bounds (-want +got):\n%s", m.Name, diff)
					}
					pts = append(pts, point{attrMap(dp.Attributes.ToSlice()), int64(dp.Count)})
				}
			default:
				t.Fatalf("%s: unexpected data %T", m.Name, m.Data)
			}
			if len(pts) == 0 {
				continue
			}
			sort.Slice(pts, func(i, j int) bool { return fmt.Sprint(pts[i].Attrs) < fmt.Sprint(pts[j].Attrs) })
			out[m.Name] = metricOut{Unit: m.Unit, Points: pts}
		}
	}
	return out
}

// logRecords parses the JSON log lines, dropping the time.
func (h *harness) logRecords(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(h.logs.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		delete(m, "time")
		out = append(out, m)
	}
	return out
}

// metricKernel are the kernel attributes of debianKernel on metric points.
var metricKernel = []any{
	"safebpf.kernel.release", "6.1.0-18-amd64",
	"safebpf.kernel.version", "6.1.76",
	"safebpf.distro.id", "debian",
	"safebpf.distro.version_id", "12",
}

// mk returns the attributes of a metric point: kv plus debianKernel's.
func mk(kv ...any) map[string]any { return with(map[string]any{}, append(kv, metricKernel...)...) }

// kernelAttrs are the span attributes of debianKernel.
func kernelAttrs(target, requested string) map[string]any {
	return map[string]any{
		"safebpf.kernel.release":        "6.1.0-18-amd64",
		"safebpf.kernel.version":        "6.1.76",
		"safebpf.kernel.version_source": "proc_version",
		"safebpf.kernel.arch":           "amd64",
		"safebpf.distro.id":             "debian",
		"safebpf.distro.version_id":     "12",
		"safebpf.target":                target,
		"safebpf.mechanism.requested":   requested,
	}
}

func with(m map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(m)+len(kv)/2)
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

const (
	hzFentry   hazards.ID = "fentry-zap-pid-ns-deadlock"
	hzTextPoke hazards.ID = "x86-text-poke-race"
	hzKretprob hazards.ID = "kretprobe-contention"
)

// refusedErr stands in for the loader's refusal error.
var refusedErr = fmt.Errorf("attach kprobe to %q: %w", "text_poke_bp", fallback.ErrRefused)

func TestDecisionTelemetry(t *testing.T) {
	tests := []struct {
		name     string
		forceAll bool
		d        fallback.Decision
		err      error
		spans    []span
		metrics  map[string]metricOut
		logs     []map[string]any
	}{
		{
			name: "downgrade",
			d: fallback.Decision{
				Target: "do_unlinkat", Requested: probe.Fentry, Chosen: probe.Kprobe,
				Action: fallback.Downgrade, Mode: hazards.Enforce,
				Steps: []fallback.Step{{From: probe.Fentry, To: probe.Kprobe, Action: fallback.Downgrade,
					Hazard: hzFentry, Reason: "fentry deadlocks in zap_pid_ns_processes on this kernel"}},
				Findings: []hazards.Finding{{ID: hzFentry, Verdict: hazards.Affected, Action: hazards.ActionDowngrade, Mechanism: probe.Fentry}},
			},
			spans: []span{{
				Name: SpanName, Scope: ScopeName, ScopeVersion: Version, Kind: trace.SpanKindInternal,
				Status: codes.Unset,
				Attrs:  kernelAttrs("do_unlinkat", "fentry"),
				Events: []event{{EventDecision, map[string]any{
					"safebpf.mechanism.requested": "fentry",
					"safebpf.mechanism.chosen":    "kprobe",
					"safebpf.action":              "downgrade",
					"safebpf.mode":                "enforce",
					"safebpf.forced":              false,
					"safebpf.hazard.ids":          []string{"fentry-zap-pid-ns-deadlock"},
				}}},
			}},
			metrics: map[string]metricOut{
				MetricDecisions: {"{decision}", []point{{mk("safebpf.hazard.id", "fentry-zap-pid-ns-deadlock", "safebpf.mechanism.requested", "fentry", "safebpf.mechanism.chosen", "kprobe", "safebpf.action", "downgrade", "safebpf.forced", false, "safebpf.mode", "enforce"), 1}}},
				MetricDuration:  {"s", []point{{mk("safebpf.mechanism.requested", "fentry", "safebpf.mechanism.chosen", "kprobe", "safebpf.action", "downgrade"), 1}}},
			},
			logs: []map[string]any{{
				"level": "WARN", "msg": "safebpf decision", "target": "do_unlinkat",
				"requested": "fentry", "chosen": "kprobe", "action": "downgrade", "mode": "enforce",
				"forced": false, "hazards": []any{"fentry-zap-pid-ns-deadlock"},
				"decision": "do_unlinkat: fentry → kprobe (downgrade): fentry → kprobe: fentry-zap-pid-ns-deadlock: fentry deadlocks in zap_pid_ns_processes on this kernel",
			}},
		},
		{
			name: "refusal",
			d: fallback.Decision{
				Target: "text_poke_bp", Requested: probe.Kprobe, Action: fallback.Refuse, Mode: hazards.Enforce,
				Steps: []fallback.Step{{From: probe.Kprobe, Action: fallback.Refuse, Hazard: hzTextPoke,
					Reason: "kprobes race with text_poke on this kernel"}},
			},
			err: refusedErr,
			spans: []span{{
				Name: SpanName, Scope: ScopeName, ScopeVersion: Version, Kind: trace.SpanKindInternal,
				Status: codes.Error, StatusDesc: refusedErr.Error(),
				Attrs: with(kernelAttrs("text_poke_bp", "kprobe"), "error.type", "refused"),
				Events: []event{{EventDecision, map[string]any{
					"safebpf.mechanism.requested": "kprobe",
					"safebpf.mechanism.chosen":    "none",
					"safebpf.action":              "refuse",
					"safebpf.mode":                "enforce",
					"safebpf.forced":              false,
					"safebpf.hazard.ids":          []string{"x86-text-poke-race"},
				}}},
			}},
			metrics: map[string]metricOut{
				MetricDecisions: {"{decision}", []point{{mk("safebpf.hazard.id", "x86-text-poke-race", "safebpf.mechanism.requested", "kprobe", "safebpf.mechanism.chosen", "none", "safebpf.action", "refuse", "safebpf.forced", false, "safebpf.mode", "enforce"), 1}}},
				MetricRefusals:  {"{refusal}", []point{{mk("safebpf.hazard.id", "x86-text-poke-race", "safebpf.mechanism.requested", "kprobe", "safebpf.mode", "enforce"), 1}}},
				MetricDuration:  {"s", []point{{mk("safebpf.mechanism.requested", "kprobe", "safebpf.mechanism.chosen", "none", "safebpf.action", "refuse", "error.type", "refused"), 1}}},
			},
			logs: []map[string]any{{
				"level": "WARN", "msg": "safebpf decision", "target": "text_poke_bp",
				"requested": "kprobe", "chosen": "none", "action": "refuse", "mode": "enforce",
				"forced": false, "hazards": []any{"x86-text-poke-race"},
				"decision": "text_poke_bp: kprobe refused: kprobe refused: x86-text-poke-race: kprobes race with text_poke on this kernel",
				"error":    refusedErr.Error(),
			}},
		},
		{
			name: "forced",
			d: fallback.Decision{
				Target: "text_poke_bp", Requested: probe.Kprobe, Chosen: probe.Kprobe, Action: fallback.Warn,
				Mode: hazards.Enforce, Forced: []hazards.ID{hzTextPoke},
				Steps: []fallback.Step{{From: probe.Kprobe, To: probe.Kprobe, Action: fallback.Warn, Hazard: hzTextPoke,
					Forced: true, Reason: "forced past x86-text-poke-race"}},
			},
			spans: []span{{
				Name: SpanName, Scope: ScopeName, ScopeVersion: Version, Kind: trace.SpanKindInternal,
				Status: codes.Unset,
				Attrs:  kernelAttrs("text_poke_bp", "kprobe"),
				Events: []event{{EventDecision, map[string]any{
					"safebpf.mechanism.requested": "kprobe",
					"safebpf.mechanism.chosen":    "kprobe",
					"safebpf.action":              "warn",
					"safebpf.mode":                "enforce",
					"safebpf.forced":              true,
					"safebpf.hazard.ids":          []string{"x86-text-poke-race"},
					"safebpf.hazard.forced_ids":   []string{"x86-text-poke-race"},
				}}},
			}},
			metrics: map[string]metricOut{
				MetricDecisions: {"{decision}", []point{{mk("safebpf.hazard.id", "x86-text-poke-race", "safebpf.mechanism.requested", "kprobe", "safebpf.mechanism.chosen", "kprobe", "safebpf.action", "warn", "safebpf.forced", true, "safebpf.mode", "enforce"), 1}}},
				MetricDuration:  {"s", []point{{mk("safebpf.mechanism.requested", "kprobe", "safebpf.mechanism.chosen", "kprobe", "safebpf.action", "warn"), 1}}},
			},
			logs: []map[string]any{{
				"level": "WARN", "msg": "safebpf decision", "target": "text_poke_bp",
				"requested": "kprobe", "chosen": "kprobe", "action": "warn", "mode": "enforce",
				"forced": true, "hazards": []any{"x86-text-poke-race"},
				"forced_hazards": []any{"x86-text-poke-race"},
				"decision":       "text_poke_bp: kprobe (warn): kprobe kept (warn): x86-text-poke-race: forced: forced past x86-text-poke-race; forced past: x86-text-poke-race",
			}},
		},
		{
			// Forced with "all": even an allow action is logged at warn.
			name:     "forced by all",
			forceAll: true,
			d: fallback.Decision{
				Target: "text_poke_bp", Requested: probe.Kprobe, Chosen: probe.Kprobe, Action: fallback.Allow,
				Mode: hazards.Enforce, Forced: []hazards.ID{hzTextPoke},
			},
			spans: []span{{
				Name: SpanName, Scope: ScopeName, ScopeVersion: Version, Kind: trace.SpanKindInternal,
				Status: codes.Unset,
				Attrs:  kernelAttrs("text_poke_bp", "kprobe"),
				Events: []event{{EventDecision, map[string]any{
					"safebpf.mechanism.requested": "kprobe",
					"safebpf.mechanism.chosen":    "kprobe",
					"safebpf.action":              "allow",
					"safebpf.mode":                "enforce",
					"safebpf.forced":              true,
					"safebpf.forced_all":          true,
					"safebpf.hazard.ids":          []string{"x86-text-poke-race"},
					"safebpf.hazard.forced_ids":   []string{"x86-text-poke-race"},
				}}},
			}},
			metrics: map[string]metricOut{
				MetricDecisions: {"{decision}", []point{{mk("safebpf.hazard.id", "x86-text-poke-race", "safebpf.mechanism.requested", "kprobe", "safebpf.mechanism.chosen", "kprobe", "safebpf.action", "allow", "safebpf.forced", true, "safebpf.mode", "enforce"), 1}}},
				MetricDuration:  {"s", []point{{mk("safebpf.mechanism.requested", "kprobe", "safebpf.mechanism.chosen", "kprobe", "safebpf.action", "allow"), 1}}},
			},
			logs: []map[string]any{{
				"level": "WARN", "msg": "safebpf decision", "target": "text_poke_bp",
				"requested": "kprobe", "chosen": "kprobe", "action": "allow", "mode": "enforce",
				"forced": true, "forced_all": true, "hazards": []any{"x86-text-poke-race"},
				"forced_hazards": []any{"x86-text-poke-race"},
				"decision":       "text_poke_bp: kprobe (as requested): forced past: x86-text-poke-race",
			}},
		},
		{
			name: "cap",
			d: fallback.Decision{
				Target: "tcp_sendmsg", Requested: probe.Kretprobe, Chosen: probe.Kretprobe, Action: fallback.Cap,
				Mode: hazards.Warn, Settings: fallback.Settings{MaxActive: 64},
				Steps: []fallback.Step{{From: probe.Kretprobe, To: probe.Kretprobe, Action: fallback.Cap,
					Hazard: hzKretprob, Reason: "maxactive capped at 64"}},
			},
			spans: []span{{
				Name: SpanName, Scope: ScopeName, ScopeVersion: Version, Kind: trace.SpanKindInternal,
				Status: codes.Unset,
				Attrs:  kernelAttrs("tcp_sendmsg", "kretprobe"),
				Events: []event{{EventDecision, map[string]any{
					"safebpf.mechanism.requested": "kretprobe",
					"safebpf.mechanism.chosen":    "kretprobe",
					"safebpf.action":              "cap",
					"safebpf.mode":                "warn",
					"safebpf.forced":              false,
					"safebpf.hazard.ids":          []string{"kretprobe-contention"},
					"safebpf.maxactive":           int64(64),
				}}},
			}},
			metrics: map[string]metricOut{
				MetricDecisions: {"{decision}", []point{{mk("safebpf.hazard.id", "kretprobe-contention", "safebpf.mechanism.requested", "kretprobe", "safebpf.mechanism.chosen", "kretprobe", "safebpf.action", "cap", "safebpf.forced", false, "safebpf.mode", "warn"), 1}}},
				MetricDuration:  {"s", []point{{mk("safebpf.mechanism.requested", "kretprobe", "safebpf.mechanism.chosen", "kretprobe", "safebpf.action", "cap"), 1}}},
			},
			logs: []map[string]any{{
				"level": "WARN", "msg": "safebpf decision", "target": "tcp_sendmsg",
				"requested": "kretprobe", "chosen": "kretprobe", "action": "cap", "mode": "warn",
				"forced": false, "hazards": []any{"kretprobe-contention"}, "maxactive": float64(64),
				"decision": "tcp_sendmsg: kretprobe (cap): kretprobe kept (cap): kretprobe-contention: maxactive capped at 64; settings: kretprobe maxactive 64",
			}},
		},
		{
			// A VM without a PMU: hardware → software because hardware
			// events are missing is how the machine is, not a warning.
			name: "no PMU",
			d: fallback.Decision{
				Target: "hardware-cycles", Requested: probe.PerfEventHardware, Chosen: probe.PerfEventSoftware,
				Action: fallback.Downgrade, Mode: hazards.Enforce,
				Settings: fallback.Settings{PerfEvent: &fallback.PerfEvent{Frequency: 99}},
				Steps: []fallback.Step{{From: probe.PerfEventHardware, To: probe.PerfEventSoftware, Action: fallback.Downgrade,
					Missing: probe.PerfEventHardware, Reason: "no PMU"}},
			},
			spans: []span{{
				Name: SpanName, Scope: ScopeName, ScopeVersion: Version, Kind: trace.SpanKindInternal,
				Status: codes.Unset,
				Attrs:  kernelAttrs("hardware-cycles", "perf-event-hardware"),
				Events: []event{{EventDecision, map[string]any{
					"safebpf.mechanism.requested":  "perf-event-hardware",
					"safebpf.mechanism.chosen":     "perf-event-software",
					"safebpf.action":               "downgrade",
					"safebpf.mode":                 "enforce",
					"safebpf.forced":               false,
					"safebpf.mechanism.missing":    []string{"perf-event-hardware"},
					"safebpf.perf_event.type":      "software",
					"safebpf.perf_event.frequency": int64(99),
				}}},
			}},
			metrics: map[string]metricOut{
				MetricDecisions: {"{decision}", []point{{mk("safebpf.hazard.id", "none", "safebpf.mechanism.requested", "perf-event-hardware", "safebpf.mechanism.chosen", "perf-event-software", "safebpf.action", "downgrade", "safebpf.forced", false, "safebpf.mode", "enforce"), 1}}},
				MetricDuration:  {"s", []point{{mk("safebpf.mechanism.requested", "perf-event-hardware", "safebpf.mechanism.chosen", "perf-event-software", "safebpf.action", "downgrade"), 1}}},
			},
			logs: []map[string]any{{
				"level": "INFO", "msg": "safebpf decision", "target": "hardware-cycles",
				"requested": "perf-event-hardware", "chosen": "perf-event-software", "action": "downgrade", "mode": "enforce",
				"forced": false, "perf_event_hardware": false,
				"decision": "hardware-cycles: perf-event-hardware → perf-event-software (downgrade): perf-event-hardware → perf-event-software: perf-event-hardware unavailable: no PMU; settings: perf event software cpu-clock at 99 Hz",
			}},
		},
		{
			name: "allow without hazard",
			d: fallback.Decision{
				Target: "sched_switch", Requested: probe.Tracepoint, Chosen: probe.Tracepoint, Action: fallback.Allow,
				Mode: hazards.Enforce,
			},
			spans: []span{{
				Name: SpanName, Scope: ScopeName, ScopeVersion: Version, Kind: trace.SpanKindInternal,
				Status: codes.Unset,
				Attrs:  kernelAttrs("sched_switch", "tracepoint"),
				Events: []event{{EventDecision, map[string]any{
					"safebpf.mechanism.requested": "tracepoint",
					"safebpf.mechanism.chosen":    "tracepoint",
					"safebpf.action":              "allow",
					"safebpf.mode":                "enforce",
					"safebpf.forced":              false,
				}}},
			}},
			metrics: map[string]metricOut{
				MetricDecisions: {"{decision}", []point{{mk("safebpf.hazard.id", "none", "safebpf.mechanism.requested", "tracepoint", "safebpf.mechanism.chosen", "tracepoint", "safebpf.action", "allow", "safebpf.forced", false, "safebpf.mode", "enforce"), 1}}},
				MetricDuration:  {"s", []point{{mk("safebpf.mechanism.requested", "tracepoint", "safebpf.mechanism.chosen", "tracepoint", "safebpf.action", "allow"), 1}}},
			},
			logs: []map[string]any{{
				"level": "INFO", "msg": "safebpf decision", "target": "sched_switch",
				"requested": "tracepoint", "chosen": "tracepoint", "action": "allow", "mode": "enforce",
				"forced": false, "decision": "sched_switch: tracepoint (as requested)",
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.rec.SetForceAll(tt.forceAll)
			_, a := h.rec.StartAttach(context.Background(), tt.d.Target, tt.d.Requested)
			a.End(tt.d, tt.err)
			a.End(tt.d, tt.err) // ignored
			h.flush(t)

			if diff := cmp.Diff(tt.spans, h.endedSpans(t)); diff != "" {
				t.Errorf("spans (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.metrics, h.metrics(t)); diff != "" {
				t.Errorf("metrics (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.logs, h.logRecords(t)); diff != "" {
				t.Errorf("logs (-want +got):\n%s", diff)
			}
			if n := h.rec.Dropped(); n != 0 {
				t.Errorf("Dropped() = %d, want 0", n)
			}
		})
	}
}

// TestDecisionPerHazard checks one safebpf.decisions increment per driving
// hazard, and that a perf event downgrade and pacing reach the event.
func TestDecisionPerHazard(t *testing.T) {
	h := newHarnessFor(t, nil)
	d := fallback.Decision{
		Target: "cycles", Requested: probe.PerfEventHardware, Chosen: probe.PerfEventSoftware,
		Action: fallback.Downgrade, Mode: hazards.Enforce,
		Settings: fallback.Settings{PerfEvent: &fallback.PerfEvent{Frequency: 99}},
		Steps: []fallback.Step{
			{From: probe.PerfEventHardware, To: probe.PerfEventSoftware, Action: fallback.Downgrade, Hazard: "nmi-user-read-deadlock"},
			{From: probe.PerfEventHardware, To: probe.PerfEventSoftware, Action: fallback.Downgrade, Missing: probe.PerfEventHardware},
			{From: probe.PerfEventSoftware, To: probe.PerfEventSoftware, Action: fallback.Downgrade, Hazard: "nmi-user-read-deadlock"},
			{From: probe.PerfEventSoftware, To: probe.PerfEventSoftware, Action: fallback.Warn, Hazard: "other-hazard"},
		},
	}
	h.rec.RecordDecision(context.Background(), d)
	h.flush(t)

	got := h.metrics(t)[MetricDecisions]
	var ids []string
	for _, p := range got.Points {
		ids = append(ids, p.Attrs["safebpf.hazard.id"].(string))
		if p.Value != 1 {
			t.Errorf("%v: value %d, want 1", p.Attrs, p.Value)
		}
	}
	if diff := cmp.Diff([]string{"nmi-user-read-deadlock", "other-hazard"}, ids); diff != "" {
		t.Errorf("hazard ids (-want +got):\n%s", diff)
	}
	spans := h.endedSpans(t)
	if len(spans) != 1 || len(spans[0].Events) != 1 {
		t.Fatalf("spans = %+v, want one with one event", spans)
	}
	ev := spans[0].Events[0].Attrs
	want := map[string]any{
		"safebpf.mechanism.requested":  "perf-event-hardware",
		"safebpf.mechanism.chosen":     "perf-event-software",
		"safebpf.action":               "downgrade",
		"safebpf.mode":                 "enforce",
		"safebpf.forced":               false,
		"safebpf.hazard.ids":           []string{"nmi-user-read-deadlock", "other-hazard"},
		"safebpf.mechanism.missing":    []string{"perf-event-hardware"},
		"safebpf.perf_event.type":      "software",
		"safebpf.perf_event.frequency": int64(99),
	}
	if diff := cmp.Diff(want, ev); diff != "" {
		t.Errorf("event (-want +got):\n%s", diff)
	}
	wantSpan := map[string]any{
		"safebpf.kernel.release":      "unknown",
		"safebpf.kernel.version":      "unknown",
		"safebpf.target":              "cycles",
		"safebpf.mechanism.requested": "perf-event-hardware",
	}
	if diff := cmp.Diff(wantSpan, spans[0].Attrs); diff != "" {
		t.Errorf("span attributes of an unknown kernel (-want +got):\n%s", diff)
	}
}

func TestPacingAttributes(t *testing.T) {
	got := attrMap(settingsAttributes(fallback.Settings{
		Pacing: &fallback.Pacing{Interval: 50 * time.Millisecond, Concurrency: 1},
		Multi:  true,
	}))
	want := map[string]any{
		"safebpf.pacing.interval":    0.05,
		"safebpf.pacing.concurrency": int64(1),
		"safebpf.multi":              true,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestParentSpan checks that the attach span is a child of the caller's span.
func TestParentSpan(t *testing.T) {
	h := newHarness(t)
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())
	ctx, parent := tp.Tracer("test").Start(context.Background(), "agent.start")
	defer parent.End()
	_, a := h.rec.StartAttach(ctx, "do_unlinkat", probe.Kprobe)
	a.End(fallback.Decision{Chosen: probe.Kprobe, Action: fallback.Allow}, nil)
	h.flush(t)
	ended := h.spans.Ended()
	if len(ended) != 1 {
		t.Fatalf("%d spans, want 1", len(ended))
	}
	if got, want := ended[0].Parent().SpanID(), parent.SpanContext().SpanID(); got != want {
		t.Errorf("parent span %v, want %v", got, want)
	}
	if got, want := ended[0].SpanContext().TraceID(), parent.SpanContext().TraceID(); got != want {
		t.Errorf("trace %v, want %v", got, want)
	}
}

func TestAttachFailure(t *testing.T) {
	h := newHarness(t)
	_, a := h.rec.StartAttach(context.Background(), "do_unlinkat", probe.Kprobe)
	a.End(fallback.Decision{Chosen: probe.Kprobe, Action: fallback.Allow}, typedErr{})
	h.flush(t)
	spans := h.endedSpans(t)
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	if spans[0].Status != codes.Error || spans[0].Attrs["error.type"] != "attach.ebusy" {
		t.Errorf("status %v, error.type %v; want Error, attach.ebusy", spans[0].Status, spans[0].Attrs["error.type"])
	}
	if _, ok := h.metrics(t)[MetricRefusals]; ok {
		t.Errorf("a failed attach counted as a refusal")
	}
	logs := h.logRecords(t)
	if len(logs) != 1 || logs[0]["level"] != "ERROR" || logs[0]["msg"] != "safebpf attach failed" {
		t.Errorf("logs = %v, want one ERROR 'safebpf attach failed'", logs)
	}
}

type typedErr struct{}

func (typedErr) Error() string     { return "attach: device busy" }
func (typedErr) ErrorType() string { return "attach.ebusy" }

func TestErrorType(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{fmt.Errorf("x: %w", typedErr{}), "attach.ebusy"},
		{fmt.Errorf("x: %w", fallback.ErrRefused), "refused"},
		{fmt.Errorf("x: %w", context.Canceled), "canceled"},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), "deadline_exceeded"},
		{fmt.Errorf("x: %w", errors.New("boom")), "*errors.errorString"},
	}
	for _, tt := range tests {
		if got := ErrorType(tt.err); got != tt.want {
			t.Errorf("ErrorType(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestAttachmentsObserved(t *testing.T) {
	h := newHarness(t)
	long := strings.Repeat("é", MaxTargetLen) // 2 bytes per rune
	h.rec.RegisterAttachments(func() []Attachment {
		return []Attachment{
			{Mechanism: probe.Kretprobe, Target: "tcp_sendmsg", Hazard: hzKretprob, Misses: []Miss{{MissKprobe, 7}, {MissRecursion, 1}}},
			{Mechanism: probe.Kprobe, Target: "tcp_sendmsg", Misses: []Miss{{MissKprobe, 0}}},
			{Mechanism: probe.Kretprobe, Target: long, Hazard: hzKretprob, Misses: []Miss{{MissKprobe, 2}}},
			{Mechanism: probe.Tracepoint, Target: "sched/sched_switch", Misses: []Miss{{MissRecursion, 4}}},
			{Mechanism: probe.Uprobe, Target: "/bin/bash:readline"}, // the kernel reports no count
		}
	})
	h.rec.RegisterAttachments(func() []Attachment {
		return []Attachment{{Mechanism: probe.Kretprobe, Target: "tcp_sendmsg", Hazard: hzKretprob, Misses: []Miss{{MissKprobe, 3}}}}
	})
	want := metricOut{"{miss}", []point{
		{mk("safebpf.mechanism.chosen", "kprobe", "safebpf.target", "tcp_sendmsg", "safebpf.miss.kind", "kprobe"), 0},
		{mk("safebpf.mechanism.chosen", "kretprobe", "safebpf.target", "tcp_sendmsg", "safebpf.miss.kind", "kprobe"), 10},
		{mk("safebpf.mechanism.chosen", "kretprobe", "safebpf.target", strings.Repeat("é", MaxTargetLen/2), "safebpf.miss.kind", "kprobe"), 2},
		{mk("safebpf.mechanism.chosen", "kretprobe", "safebpf.target", "tcp_sendmsg", "safebpf.miss.kind", "recursion"), 1},
		{mk("safebpf.mechanism.chosen", "tracepoint", "safebpf.target", "sched/sched_switch", "safebpf.miss.kind", "recursion"), 4},
	}}
	got := h.metrics(t)
	if diff := cmp.Diff(want, got[MetricMissed]); diff != "" {
		t.Errorf("missed (-want +got):\n%s", diff)
	}
	wantActive := metricOut{"{attachment}", []point{
		{mk("safebpf.mechanism.chosen", "kretprobe", "safebpf.hazard.id", "kretprobe-contention"), 3},
		{mk("safebpf.mechanism.chosen", "kprobe", "safebpf.hazard.id", "none"), 1},
		{mk("safebpf.mechanism.chosen", "tracepoint", "safebpf.hazard.id", "none"), 1},
		{mk("safebpf.mechanism.chosen", "uprobe", "safebpf.hazard.id", "none"), 1},
	}}
	if diff := cmp.Diff(wantActive, got[MetricActive]); diff != "" {
		t.Errorf("active (-want +got):\n%s", diff)
	}
	if err := h.rec.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	got = h.metrics(t)
	if _, ok := got[MetricMissed]; ok {
		t.Errorf("after Close, missed still observed: %v", got[MetricMissed])
	}
	if _, ok := got[MetricActive]; ok {
		t.Errorf("after Close, attachments still observed: %v", got[MetricActive])
	}
}

func TestMissedSeriesBound(t *testing.T) {
	h := newHarness(t)
	h.rec.RegisterAttachments(func() []Attachment {
		var as []Attachment
		for i := 0; i < MaxMissedSeries+10; i++ {
			as = append(as, Attachment{Mechanism: probe.Kprobe, Target: fmt.Sprintf("f%d", i), Misses: []Miss{{MissKprobe, 1}}})
		}
		return as
	})
	got := h.metrics(t)[MetricMissed].Points
	if len(got) != MaxMissedSeries+1 {
		t.Fatalf("%d series, want %d", len(got), MaxMissedSeries+1)
	}
	for _, p := range got {
		if p.Attrs["safebpf.target"] == otherTarget && p.Value != 10 {
			t.Errorf("%s = %d, want 10", otherTarget, p.Value)
		}
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{"abc", 5, "abc"},
		{"abcdef", 3, "abc"},
		{"aé", 2, "a"},
		{"ééé", 4, "éé"},
	}
	for _, tt := range tests {
		if got := truncate(tt.s, tt.n); got != tt.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
	}
}

func TestNilRecorder(t *testing.T) {
	var r *Recorder
	ctx, a := r.StartAttach(context.Background(), "x", probe.Kprobe)
	if ctx == nil || a != nil {
		t.Fatalf("nil Recorder: StartAttach = %v, %v", ctx, a)
	}
	a.End(fallback.Decision{}, nil)
	r.RecordDecision(context.Background(), fallback.Decision{})
	r.RegisterAttachments(func() []Attachment { return nil })
	r.ForceLoaded([]hazards.ID{hazards.ForceAll}, hazards.Enforce)
	r.Log(LogRecord{})
	ctx, c := r.Begin(context.Background())
	if c != nil || ctx == nil {
		t.Fatalf("nil Recorder: Begin = %v, %v", ctx, c)
	}
	c.End()
	r.SetForceAll(true)
	if err := r.Flush(context.Background()); err != nil {
		t.Errorf("Flush: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// TestRecordAfterClose checks that End after Close drops, counts and does
// not panic, and that Close is idempotent.
func TestRecordAfterClose(t *testing.T) {
	h := newHarness(t)
	_, a := h.rec.StartAttach(context.Background(), "x", probe.Kprobe)
	if err := h.rec.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	a.End(fallback.Decision{Chosen: probe.Kprobe}, nil)
	if got := h.rec.Dropped(); got != 2 {
		t.Errorf("Dropped() = %d, want 2 (one per queue)", got)
	}
	if err := h.rec.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if len(h.spans.Ended()) != 0 {
		t.Errorf("span recorded after Close")
	}
	for _, l := range h.rec.lanes() {
		select {
		case <-l.done:
		default:
			t.Errorf("%s goroutine still running after Close", l.name)
		}
	}
}

// TestExporterPanicContained checks that a panicking handler does not
// kill the queue's goroutine.
func TestExporterPanicContained(t *testing.T) {
	rd := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(rd))
	defer mp.Shutdown(context.Background())
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	defer tp.Shutdown(context.Background())
	r, err := New(tp, mp, slog.New(panicHandler{}), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := 0; i < 3; i++ {
		r.RecordDecision(context.Background(), fallback.Decision{Requested: probe.Uprobe, Chosen: probe.Uprobe})
	}
	if err := r.Flush(context.Background()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if got := r.logs.panics.Load(); got != 3 {
		t.Errorf("contained %d panics, want 3", got)
	}
	if got := len(sr.Ended()); got != 3 {
		t.Errorf("%d spans, want 3", got)
	}
}

type panicHandler struct{}

func (panicHandler) Enabled(context.Context, slog.Level) bool  { return true }
func (panicHandler) Handle(context.Context, slog.Record) error { panic("handler bug") }
func (h panicHandler) WithAttrs([]slog.Attr) slog.Handler      { return h }
func (h panicHandler) WithGroup(string) slog.Handler           { return h }

// TestConcurrentEndAndClose records from many goroutines while the
// Recorder closes and a reader collects: no panic (send on a closed
// channel), no race, and every record is either exported or counted as
// dropped.
func TestConcurrentEndAndClose(t *testing.T) {
	h := newHarness(t)
	h.rec.RegisterAttachments(func() []Attachment {
		return []Attachment{{Mechanism: probe.Kprobe, Target: "f", Misses: []Miss{{MissKprobe, 1}}}}
	})
	const workers, each = 8, 200
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				_, a := h.rec.StartAttach(context.Background(), "f", probe.Kprobe)
				a.End(fallback.Decision{Chosen: probe.Kprobe, Action: fallback.Allow}, nil)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 20; i++ {
			var rm metricdata.ResourceMetrics
			_ = h.reader.Collect(context.Background(), &rm)
		}
	}()
	time.Sleep(time.Millisecond)
	if err := h.rec.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	wg.Wait()
	exported := uint64(len(h.spans.Ended()))
	if got := exported + h.rec.otel.dropped.Load(); got != workers*each {
		t.Errorf("spans exported %d + dropped %d = %d, want %d", exported, h.rec.otel.dropped.Load(), got, workers*each)
	}
}
