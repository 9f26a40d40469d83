package telemetry

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/probe"
)

// docPath is the operator's reference TestDocumented holds the code to.
const docPath = "../../../docs/telemetry.md"

// names is what a run emitted, or what docs/telemetry.md lists.
type names struct {
	metricUnits map[string]string   // metric name → unit
	metricAttrs map[string][]string // metric name → attribute keys
	spanAttrs   map[string][]string // span or event name → attribute keys
	attrs       []string            // every attribute key
	logKeys     []string            // keys of the decision log records
}

// gatedHandler forwards to next once g opens.
type gatedHandler struct {
	g    *gate
	next slog.Handler
}

func (h gatedHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }
func (h gatedHandler) Handle(ctx context.Context, r slog.Record) error {
	_ = h.g.wait(ctx)
	return h.next.Handle(ctx, r)
}
func (h gatedHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h gatedHandler) WithGroup(string) slog.Handler      { return h }

// emitEverything runs a Recorder over every path that emits a name: every
// action, every setting, refusal, failure, force, a collection program,
// live attachments with both kinds of misses, and records dropped by a
// full queue. It returns the names the SDK readers and the handler saw.
func emitEverything(t *testing.T) names {
	t.Helper()
	spans := tracetest.NewSpanRecorder()
	reader := sdkmetric.NewManualReader()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	logs := &syncBuffer{}
	g := newGate()
	defer g.open()
	logger := slog.New(gatedHandler{g, slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})})
	r, err := newRecorder(tp, mp, logger, debianKernel, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		g.open()
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	}()

	// A logs queue of one batch whose handler holds: the third record
	// at the latest is dropped (safebpf.telemetry.dropped).
	for i := 0; i < 3; i++ {
		r.RecordDecision(context.Background(), downgrade)
	}
	g.open()
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r.logs.dropped.Load() == 0 {
		t.Fatal("nothing dropped with a held handler and a queue of one")
	}

	r.ForceLoaded([]hazards.ID{hazards.ForceAll, hzFentry}, hazards.Enforce)
	// The queue holds one batch: let the lane take this one before the
	// call's batch is handed over.
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.RegisterAttachments(func() []Attachment {
		return []Attachment{
			{Mechanism: probe.Kretprobe, Hazard: hzKretprob, Target: "do_sys_openat2",
				Misses: []Miss{{Kind: MissKprobe, Count: 3}, {Kind: MissRecursion, Count: 1}}},
			{Mechanism: probe.Tracepoint, Target: "syscalls/sys_enter_openat",
				Misses: []Miss{{Kind: MissRecursion, Count: 0}}},
		}
	})
	decisions := []struct {
		d       fallback.Decision
		program string
		err     error
	}{
		{d: fallback.Decision{Target: "do_unlinkat", Requested: probe.Fentry, Chosen: probe.Kprobe, Action: fallback.Downgrade, Mode: hazards.Enforce,
			Steps: []fallback.Step{{From: probe.Fentry, To: probe.Kprobe, Action: fallback.Downgrade, Hazard: hzFentry, Reason: "r"}}}, program: "trace_unlink"},
		{d: fallback.Decision{Target: "do_sys_openat2", Requested: probe.Kretprobe, Chosen: probe.Kretprobe, Action: fallback.Cap, Mode: hazards.Enforce,
			Settings: fallback.Settings{MaxActive: 64},
			Steps:    []fallback.Step{{From: probe.Kretprobe, To: probe.Kretprobe, Action: fallback.Cap, Hazard: hzKretprob}}}},
		{d: fallback.Decision{Target: "/usr/bin/bash:readline", Requested: probe.Uprobe, Chosen: probe.UprobeMulti, Action: fallback.Pace, Mode: hazards.Enforce,
			Settings: fallback.Settings{Multi: true, Pacing: &fallback.Pacing{Interval: 10 * time.Millisecond, Concurrency: 4}}}},
		{d: fallback.Decision{Target: "cycles", Requested: probe.PerfEventHardware, Chosen: probe.PerfEventSoftware, Action: fallback.Downgrade, Mode: hazards.Enforce,
			Settings: fallback.Settings{PerfEvent: &fallback.PerfEvent{Frequency: 99}},
			Steps:    []fallback.Step{{From: probe.PerfEventHardware, To: probe.PerfEventSoftware, Action: fallback.Downgrade, Missing: probe.PerfEventHardware}}}},
		{d: fallback.Decision{Target: "instructions", Requested: probe.PerfEventHardware, Chosen: probe.PerfEventHardware, Action: fallback.Allow, Mode: hazards.Enforce,
			Settings: fallback.Settings{PerfEvent: &fallback.PerfEvent{Hardware: true, Period: 100000}}}},
		{d: fallback.Decision{Target: "text_poke_bp", Requested: probe.Kprobe, Action: fallback.Refuse, Mode: hazards.Enforce,
			Steps: []fallback.Step{{From: probe.Kprobe, Action: fallback.Refuse, Hazard: hzTextPoke}}}, err: refusedErr},
		{d: fallback.Decision{Target: "text_poke_bp", Requested: probe.Kprobe, Chosen: probe.Kprobe, Action: fallback.Warn, Mode: hazards.Enforce,
			Forced: []hazards.ID{hazards.ForceAll},
			Steps:  []fallback.Step{{From: probe.Kprobe, To: probe.Kprobe, Action: fallback.Warn, Hazard: hzTextPoke, Forced: true}}}},
		{d: fallback.Decision{Target: "vfs_read", Requested: probe.Kprobe, Chosen: probe.Kprobe, Action: fallback.Allow, Mode: hazards.Enforce},
			err: errors.New("attach: permission denied")},
	}
	ctx, call := r.Begin(context.Background())
	for _, c := range decisions {
		_, a := r.StartAttach(ctx, c.d.Target, c.d.Requested)
		a.SetProgram(c.program)
		a.End(c.d, c.err)
	}
	call.End()
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}

	got := names{metricUnits: map[string]string{}, metricAttrs: map[string][]string{}, spanAttrs: map[string][]string{}}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			var keys []string
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					keys = appendKeys(keys, dp.Attributes.ToSlice())
				}
			case metricdata.Gauge[int64]:
				for _, dp := range d.DataPoints {
					keys = appendKeys(keys, dp.Attributes.ToSlice())
				}
			case metricdata.Histogram[float64]:
				for _, dp := range d.DataPoints {
					keys = appendKeys(keys, dp.Attributes.ToSlice())
				}
			default:
				t.Fatalf("%s: unexpected data %T", m.Name, m.Data)
			}
			if len(keys) == 0 {
				continue // an instrument with no point emitted nothing
			}
			got.metricUnits[m.Name] = m.Unit
			got.metricAttrs[m.Name] = sortedSet(keys)
			got.attrs = append(got.attrs, keys...)
		}
	}
	for _, s := range spans.Ended() {
		keys := appendKeys(got.spanAttrs[s.Name()], s.Attributes())
		got.spanAttrs[s.Name()] = sortedSet(keys)
		got.attrs = append(got.attrs, keys...)
		for _, e := range s.Events() {
			keys := appendKeys(got.spanAttrs[e.Name], e.Attributes)
			got.spanAttrs[e.Name] = sortedSet(keys)
			got.attrs = append(got.attrs, keys...)
		}
	}
	got.attrs = sortedSet(got.attrs)
	h := &harness{logs: logs}
	for _, rec := range h.logRecords(t) {
		for k := range rec {
			if k != "level" && k != "msg" {
				got.logKeys = append(got.logKeys, k)
			}
		}
	}
	got.logKeys = sortedSet(got.logKeys)
	return got
}

func appendKeys(keys []string, kvs []attribute.KeyValue) []string {
	for _, kv := range kvs {
		keys = append(keys, string(kv.Key))
	}
	return keys
}

// readDoc parses the tables of docs/telemetry.md: the first column of
// every row in the sections Metrics, Spans and events, Attributes and Log
// records, the metrics' units and every table's attribute lists. The
// kernel attributes the Metrics section says every point carries are
// added to each metric.
func readDoc(text string) (names, error) {
	doc := names{metricUnits: map[string]string{}, metricAttrs: map[string][]string{}, spanAttrs: map[string][]string{}}
	tick := regexp.MustCompile("`([^`]+)`")
	ticked := func(s string) []string {
		var out []string
		for _, m := range tick.FindAllStringSubmatch(s, -1) {
			out = append(out, m[1])
		}
		return out
	}
	var section string
	var kernel []string
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "## ") {
			section = strings.TrimPrefix(line, "## ")
			continue
		}
		if !strings.HasPrefix(line, "| `") {
			if section == "Metrics" && len(doc.metricUnits) == 0 {
				for _, k := range ticked(line) {
					if strings.HasPrefix(k, "safebpf.kernel.") || strings.HasPrefix(k, "safebpf.distro.") {
						kernel = append(kernel, k)
					}
				}
			}
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		name := ticked(cells[0])
		if len(name) != 1 {
			return doc, errors.New("row without one name: " + line)
		}
		switch section {
		case "Metrics":
			if len(cells) != 5 {
				return doc, errors.New("metric row without 5 columns: " + line)
			}
			unit := ticked(cells[2])
			if len(unit) != 1 {
				return doc, errors.New("metric row without one unit: " + line)
			}
			doc.metricUnits[name[0]] = unit[0]
			doc.metricAttrs[name[0]] = ticked(cells[3])
		case "Spans and events":
			if len(cells) != 3 {
				return doc, errors.New("span row without 3 columns: " + line)
			}
			doc.spanAttrs[name[0]] = sortedSet(ticked(cells[2]))
		case "Attributes":
			doc.attrs = append(doc.attrs, name[0])
		case "Log records":
			doc.logKeys = append(doc.logKeys, name[0])
		}
	}
	if len(kernel) == 0 {
		return doc, errors.New("the Metrics section names no kernel attributes")
	}
	for m, attrs := range doc.metricAttrs {
		doc.metricAttrs[m] = sortedSet(append(attrs, kernel...))
	}
	doc.attrs = sortedSet(doc.attrs)
	doc.logKeys = sortedSet(doc.logKeys)
	return doc, nil
}

// compareNames lists every difference between what the doc lists and
// what a run emitted, naming the side a name is missing from.
func compareNames(doc, got names) []string {
	var out []string
	sets := func(what string, d, g []string) {
		for _, n := range d {
			if !slices.Contains(g, n) {
				out = append(out, what+" "+n+": documented, not emitted")
			}
		}
		for _, n := range g {
			if !slices.Contains(d, n) {
				out = append(out, what+" "+n+": emitted, not documented")
			}
		}
	}
	sets("metric", sortedKeys(doc.metricUnits), sortedKeys(got.metricUnits))
	for m, u := range got.metricUnits {
		if du, ok := doc.metricUnits[m]; ok && du != u {
			out = append(out, "metric "+m+": unit "+u+", documented "+du)
		}
		if _, ok := doc.metricAttrs[m]; ok {
			sets("attribute on "+m, doc.metricAttrs[m], got.metricAttrs[m])
		}
	}
	sets("span or event", sortedKeys(doc.spanAttrs), sortedKeys(got.spanAttrs))
	for s, attrs := range got.spanAttrs {
		if _, ok := doc.spanAttrs[s]; ok {
			sets("attribute on "+s, doc.spanAttrs[s], attrs)
		}
	}
	sets("attribute", doc.attrs, got.attrs)
	sets("log key", doc.logKeys, got.logKeys)
	sort.Strings(out)
	return out
}

// TestDocumented holds docs/telemetry.md against the code: every metric
// (with its unit and attributes), span, event, attribute and log key
// documented is emitted by a run over every path, and everything emitted
// is documented.
func TestDocumented(t *testing.T) {
	text, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := readDoc(string(text))
	if err != nil {
		t.Fatalf("%s: %v", docPath, err)
	}
	got := emitEverything(t)
	for _, d := range compareNames(doc, got) {
		t.Errorf("%s: %s", docPath, d)
	}
	// Every name the package declares is in the doc (a name nothing
	// emits would otherwise go unnoticed on both sides).
	for _, n := range []string{SpanName, EventDecision, MetricDecisions, MetricRefusals, MetricDuration,
		MetricForceLoaded, MetricActive, MetricMissed, MetricDropped} {
		if !strings.Contains(string(text), "`"+n+"`") {
			t.Errorf("%s does not list %s", docPath, n)
		}
	}
}

// TestDocumentedDetectsDrift: a name added on one side only — a metric,
// an attribute on a metric, a span attribute, a log key — is reported,
// on the side it is missing from.
func TestDocumentedDetectsDrift(t *testing.T) {
	text, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := readDoc(string(text))
	if err != nil {
		t.Fatal(err)
	}
	got := emitEverything(t)
	if d := compareNames(doc, got); len(d) != 0 {
		t.Fatalf("doc and code differ before any change: %q", d)
	}

	extraDoc := strings.Replace(string(text), "| `safebpf.refusals` |",
		"| `safebpf.retries` | counter | `{retry}` | `safebpf.mode` | new |\n| `safebpf.refusals` |", 1)
	extraDoc = strings.Replace(extraDoc, "| `error` |", "| `retry` | new |\n| `error` |", 1)
	doc2, err := readDoc(extraDoc)
	if err != nil {
		t.Fatal(err)
	}
	got2 := got
	got2.metricUnits = map[string]string{"safebpf.attach.retries": "{retry}"}
	got2.metricAttrs = map[string][]string{}
	for k, v := range got.metricUnits {
		got2.metricUnits[k] = v
	}
	for k, v := range got.metricAttrs {
		got2.metricAttrs[k] = v
	}
	got2.metricAttrs["safebpf.attach.retries"] = []string{"safebpf.mode"}
	got2.metricAttrs[MetricDecisions] = sortedSet(append(slices.Clone(got.metricAttrs[MetricDecisions]), "safebpf.retry.reason"))
	got2.attrs = sortedSet(append(slices.Clone(got.attrs), "safebpf.retry.reason"))

	want := []string{
		"attribute on safebpf.decisions safebpf.retry.reason: emitted, not documented",
		"attribute safebpf.retry.reason: emitted, not documented",
		"log key retry: documented, not emitted",
		"metric safebpf.attach.retries: emitted, not documented",
		"metric safebpf.retries: documented, not emitted",
	}
	if d := compareNames(doc2, got2); !slices.Equal(d, want) {
		t.Errorf("differences reported:\n%s\nwant:\n%s", strings.Join(d, "\n"), strings.Join(want, "\n"))
	}
}

func sortedSet(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return slices.Compact(s)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
