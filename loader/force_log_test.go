package loader

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/probe"
)

// recordingHandler keeps every record it is given.
type recordingHandler struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

// forceRecords waits briefly for the force record(s) and returns them as
// "LEVEL message attrs" lines.
func (h *recordingHandler) forceRecords(t *testing.T) []string {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		var out []string
		h.mu.Lock()
		for _, r := range h.recs {
			if !strings.Contains(r.Message, "forced") {
				continue
			}
			var b strings.Builder
			b.WriteString(r.Level.String() + " " + r.Message)
			r.Attrs(func(a slog.Attr) bool {
				b.WriteString(" " + a.String())
				return true
			})
			out = append(out, b.String())
		}
		h.mu.Unlock()
		if len(out) > 0 || time.Now().After(deadline) {
			return out
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestForceLeavesATrace holds New to issue 12's finding 4: a force set,
// "all" above all, is logged at warn when it is loaded — with a nil Logger
// too, then on slog.Default() — and counted in safebpf.force.loaded.
func TestForceLeavesATrace(t *testing.T) {
	k := describe(t, probe.Description{Release: "6.1.30", CPUs: 4})
	def := &recordingHandler{}
	saved := slog.Default()
	slog.SetDefault(slog.New(def))
	t.Cleanup(func() { slog.SetDefault(saved) })

	for _, tc := range []struct {
		name   string
		opts   Options
		logger *recordingHandler // nil: expect the record on slog.Default()
		want   []string
		ids    []string
	}{
		{"all from Options, nil Logger", Options{Force: []hazards.ID{hazards.ForceAll}}, nil,
			[]string{"WARN", "every hazard", "all"}, []string{"all"}},
		{"all from a policy, with a Logger", Options{Policy: &hazards.Policy{APIVersion: "safebpf/v1", Force: []hazards.ID{hazards.ForceAll}}}, &recordingHandler{},
			[]string{"WARN", "every hazard"}, []string{"all"}},
		{"one ID", Options{Force: []hazards.ID{"kretprobe-contention"}}, &recordingHandler{},
			[]string{"WARN", "kretprobe-contention"}, []string{"kretprobe-contention"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			def.mu.Lock()
			def.recs = nil
			def.mu.Unlock()
			reader := sdkmetric.NewManualReader()
			opts := tc.opts
			opts.Kernel = k
			opts.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
			h := def
			if tc.logger != nil {
				h = tc.logger
				opts.Logger = slog.New(h)
			}
			l, err := New(&opts)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			recs := h.forceRecords(t)
			if len(recs) != 1 {
				t.Fatalf("force records = %q; want exactly one", recs)
			}
			for _, w := range tc.want {
				if !strings.Contains(recs[0], w) {
					t.Errorf("force record %q lacks %q", recs[0], w)
				}
			}
			if err := l.rec.Flush(context.Background()); err != nil { // the point goes through the telemetry queue
				t.Fatal(err)
			}
			var rm metricdata.ResourceMetrics
			if err := reader.Collect(context.Background(), &rm); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					if m.Name != "safebpf.force.loaded" {
						continue
					}
					for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
						id, _ := dp.Attributes.Value(attribute.Key("safebpf.hazard.id"))
						if dp.Value != 1 {
							t.Errorf("safebpf.force.loaded{%s} = %d; want 1", id.AsString(), dp.Value)
						}
						got = append(got, id.AsString())
					}
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.ids) {
				t.Errorf("safebpf.force.loaded points for %v; want %v", got, tc.ids)
			}
		})
	}

	// Nothing forced: no record, no point.
	def.mu.Lock()
	def.recs = nil
	def.mu.Unlock()
	l, err := New(&Options{Kernel: k})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	time.Sleep(50 * time.Millisecond)
	def.mu.Lock()
	defer def.mu.Unlock()
	for _, r := range def.recs {
		if strings.Contains(r.Message, "forced") {
			t.Errorf("record %q without any force", r.Message)
		}
	}
}
