package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/hazards"
)

// exportBatch is the otel lane's sink: spans and metric points.
func (r *Recorder) exportBatch(b *batch) {
	if f := b.force; f != nil {
		r.exportForce(f)
	}
	for i := range b.decisions {
		r.export(&b.decisions[i])
	}
}

func (r *Recorder) export(rec *decision) {
	ctx := trace.ContextWithSpanContext(context.Background(), rec.parent)
	// The summary only for an instrument or a span that records: with no
	// SDK installed (the global no-op providers) a decision costs the
	// lane no attributes.
	var sum *summary
	summarized := func() *summary {
		if sum == nil {
			s := summarize(rec.d, rec.err, r.forceAll.Load())
			sum = &s
		}
		return sum
	}

	// Metrics first: they are what alerts are built on, and the SDK's
	// instruments never block (a synchronous span exporter may).
	if r.decisions.Enabled(ctx) {
		s := summarized()
		for _, h := range s.hazards {
			r.decisions.Add(ctx, 1, metric.WithAttributeSet(r.metricSet(
				AttrHazardID.String(string(h)),
				AttrRequested.String(s.requested),
				AttrChosen.String(s.chosen),
				AttrAction.String(s.action),
				AttrForced.Bool(s.isForced(h)),
				AttrMode.String(s.mode),
			)))
		}
	}
	if r.refusals.Enabled(ctx) {
		if s := summarized(); s.refused {
			r.refusals.Add(ctx, 1, metric.WithAttributeSet(r.metricSet(
				AttrHazardID.String(string(s.refusedBy)),
				AttrRequested.String(s.requested),
				AttrMode.String(s.mode),
			)))
		}
	}
	if r.duration.Enabled(ctx) {
		s := summarized()
		hist := []attribute.KeyValue{
			AttrRequested.String(s.requested),
			AttrChosen.String(s.chosen),
			AttrAction.String(s.action),
		}
		if s.errorType != "" {
			hist = append(hist, AttrErrorType.String(s.errorType))
		}
		r.duration.Record(ctx, rec.end.Sub(rec.start).Seconds(), metric.WithAttributeSet(r.metricSet(hist...)))
	}

	spanAttrs := make([]attribute.KeyValue, 0, len(r.spanKernel)+4)
	spanAttrs = append(spanAttrs, r.spanKernel...)
	spanAttrs = append(spanAttrs, AttrTarget.String(rec.target), AttrRequested.String(string(rec.requested)))
	if rec.program != "" {
		spanAttrs = append(spanAttrs, AttrProgram.String(rec.program))
	}
	if et := ErrorType(rec.err); et != "" {
		spanAttrs = append(spanAttrs, AttrErrorType.String(et))
	}
	_, span := r.tracer.Start(ctx, SpanName,
		trace.WithTimestamp(rec.start),
		trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(spanAttrs...))
	if !span.IsRecording() {
		// Sampled out, or no SDK: the event's rendering is for nobody.
		span.End()
		return
	}
	span.AddEvent(EventDecision, trace.WithTimestamp(rec.end), trace.WithAttributes(summarized().eventAttributes(rec.d)...))
	if rec.err != nil {
		span.SetStatus(codes.Error, rec.err.Error())
	}
	span.End(trace.WithTimestamp(rec.end))
}

func (r *Recorder) exportForce(f *forceLoad) {
	for _, id := range f.ids {
		r.forceLoaded.Add(context.Background(), 1, metric.WithAttributeSet(r.metricSet(
			AttrHazardID.String(string(id)),
			AttrMode.String(string(f.mode)),
			AttrForcedAll.Bool(id == hazards.ForceAll))))
	}
}

// metricSet is the attribute set of a metric point: kv and the kernel's
// identity.
func (r *Recorder) metricSet(kv ...attribute.KeyValue) attribute.Set {
	return attribute.NewSet(append(kv, r.metricKernel...)...)
}

// logBatch is the logs lane's sink.
func (r *Recorder) logBatch(b *batch) {
	for _, lr := range b.logs {
		handle(lr.Handler, lr.Record)
	}
	h := r.logger.Handler()
	for i := range b.decisions {
		rec := &b.decisions[i]
		s := summarize(rec.d, rec.err, r.forceAll.Load())
		// The level first: a handler that drops it (slog.DiscardHandler,
		// the default) costs no attributes and no rendering.
		level, msg := s.logLevel(rec.err)
		if !h.Enabled(context.Background(), level) {
			continue
		}
		attrs := s.logAttrs(rec.d, rec.err)
		if rec.program != "" {
			attrs = append([]slog.Attr{slog.String("program", rec.program)}, attrs...)
		}
		lr := slog.NewRecord(rec.end, level, msg, 0)
		lr.AddAttrs(attrs...)
		handle(h, lr)
	}
}

// handle hands rec to h when h is enabled for its level. A failing
// handler must not fail anything.
func handle(h slog.Handler, rec slog.Record) {
	if h == nil {
		return
	}
	ctx := context.Background()
	if h.Enabled(ctx, rec.Level) {
		_ = h.Handle(ctx, rec)
	}
}

// summary is a Decision reduced to bounded attribute values.
type summary struct {
	requested, chosen, action, mode string
	// hazards are the driving hazards, in order ("none" alone when none).
	hazards   []hazards.ID
	forced    map[hazards.ID]bool
	anyForced bool
	forcedAll bool
	refused   bool
	refusedBy hazards.ID
	// hazardMoved: a hazard (not only a missing mechanism) drove a step.
	hazardMoved bool
	errorType   string
}

func summarize(d fallback.Decision, err error, forceAll bool) summary {
	s := summary{
		requested: string(d.Requested),
		chosen:    string(d.Chosen),
		action:    string(d.Action),
		mode:      string(d.Mode),
		forced:    map[hazards.ID]bool{},
	}
	if s.chosen == "" {
		s.chosen = None
	}
	seen := map[hazards.ID]bool{}
	add := func(id hazards.ID) {
		if id == "" || id == hazards.ForceAll || seen[id] {
			return
		}
		seen[id] = true
		s.hazards = append(s.hazards, id)
	}
	for _, st := range d.Steps {
		add(st.Hazard)
		s.hazardMoved = s.hazardMoved || st.Hazard != ""
		if st.Forced && st.Hazard != "" {
			s.forced[st.Hazard] = true
		}
		if st.Forced {
			s.anyForced = true
		}
		if st.Action == fallback.Refuse && s.refusedBy == "" && st.Hazard != "" {
			s.refusedBy = st.Hazard
		}
	}
	for _, id := range d.Forced {
		if id == hazards.ForceAll {
			s.forcedAll = true
			s.anyForced = true
			continue
		}
		add(id)
		s.forced[id] = true
		s.anyForced = true
	}
	if s.anyForced && forceAll {
		s.forcedAll = true
	}
	if len(s.hazards) == 0 {
		s.hazards = []hazards.ID{None}
	}
	s.refused = d.Action == fallback.Refuse || (err != nil && errors.Is(err, fallback.ErrRefused))
	if s.refused && s.refusedBy == "" {
		s.refusedBy = s.hazards[0]
	}
	if err != nil {
		s.errorType = ErrorType(err)
	}
	return s
}

func (s summary) isForced(id hazards.ID) bool { return s.forced[id] }

func (s summary) hazardIDs() []string {
	if len(s.hazards) == 1 && s.hazards[0] == None {
		return nil
	}
	out := make([]string, len(s.hazards))
	for i, h := range s.hazards {
		out[i] = string(h)
	}
	return out
}

func (s summary) forcedIDs() []string {
	var out []string
	for _, h := range s.hazards {
		if s.forced[h] {
			out = append(out, string(h))
		}
	}
	return out
}

func (s summary) eventAttributes(d fallback.Decision) []attribute.KeyValue {
	attrs := []attribute.KeyValue{
		AttrRequested.String(s.requested),
		AttrChosen.String(s.chosen),
		AttrAction.String(s.action),
		AttrMode.String(s.mode),
		AttrForced.Bool(s.anyForced),
	}
	if ids := s.hazardIDs(); len(ids) > 0 {
		attrs = append(attrs, AttrHazardIDs.StringSlice(ids))
	}
	if ids := s.forcedIDs(); len(ids) > 0 {
		attrs = append(attrs, AttrForcedIDs.StringSlice(ids))
	}
	if s.forcedAll {
		attrs = append(attrs, AttrForcedAll.Bool(true))
	}
	var missing []string
	for _, st := range d.Steps {
		if st.Missing != "" && !slices.Contains(missing, string(st.Missing)) {
			missing = append(missing, string(st.Missing))
		}
	}
	if len(missing) > 0 {
		attrs = append(attrs, AttrMissing.StringSlice(missing))
	}
	return append(attrs, settingsAttributes(d.Settings)...)
}

func settingsAttributes(st fallback.Settings) []attribute.KeyValue {
	var attrs []attribute.KeyValue
	if st.MaxActive > 0 {
		attrs = append(attrs, AttrMaxActive.Int(st.MaxActive))
	}
	if pe := st.PerfEvent; pe != nil {
		typ := "software"
		if pe.Hardware {
			typ = "hardware"
		}
		attrs = append(attrs, AttrPerfEventType.String(typ))
		if pe.Frequency != 0 {
			attrs = append(attrs, AttrPerfEventFreq.Int64(clampInt64(pe.Frequency)))
		}
		if pe.Period != 0 {
			attrs = append(attrs, AttrPerfEventPeriod.Int64(clampInt64(pe.Period)))
		}
	}
	if p := st.Pacing; p != nil {
		attrs = append(attrs,
			AttrPacingInterval.Float64(p.Interval.Seconds()),
			AttrPacingConcurrency.Int(p.Concurrency))
	}
	if st.Multi {
		attrs = append(attrs, AttrMulti.Bool(true))
	}
	return attrs
}

// Log messages of decision records.
const (
	MsgDecision     = "safebpf decision"
	MsgAttachFailed = "safebpf attach failed"
)

// logLevel returns the slog level and message of a decision's record.
//
// Levels: warn when a hazard moved, capped or refused the request, when
// anything was forced, and in warn mode's would-be changes; info for
// allow, upgrade, pace, and a move only because a mechanism is missing
// (hardware → software perf event on a VM without a PMU is how the
// machine is, not a warning); error for a failed attach that is not a
// refusal.
func (s summary) logLevel(err error) (slog.Level, string) {
	level := slog.LevelInfo
	switch fallback.Action(s.action) {
	case fallback.Cap, fallback.Refuse, fallback.Warn:
		level = slog.LevelWarn
	case fallback.Downgrade:
		if s.hazardMoved {
			level = slog.LevelWarn
		}
	}
	if s.anyForced || s.refused {
		level = slog.LevelWarn
	}
	msg := MsgDecision
	if err != nil && !s.refused {
		level = slog.LevelError
		msg = MsgAttachFailed
	}
	return level, msg
}

// logAttrs is the decision's log record's attributes.
func (s summary) logAttrs(d fallback.Decision, err error) []slog.Attr {
	attrs := []slog.Attr{
		slog.String("target", d.Target),
		slog.String("requested", s.requested),
		slog.String("chosen", s.chosen),
		slog.String("action", s.action),
		slog.String("mode", s.mode),
		slog.Bool("forced", s.anyForced),
	}
	if ids := s.hazardIDs(); len(ids) > 0 {
		attrs = append(attrs, slog.Any("hazards", ids))
	}
	if ids := s.forcedIDs(); len(ids) > 0 {
		attrs = append(attrs, slog.Any("forced_hazards", ids))
	}
	if s.forcedAll {
		attrs = append(attrs, slog.Bool("forced_all", true))
	}
	if d.Settings.MaxActive > 0 {
		attrs = append(attrs, slog.Int("maxactive", d.Settings.MaxActive))
	}
	if pe := d.Settings.PerfEvent; pe != nil {
		attrs = append(attrs, slog.Bool("perf_event_hardware", pe.Hardware))
	}
	if p := d.Settings.Pacing; p != nil {
		attrs = append(attrs, slog.Duration("pacing_interval", p.Interval), slog.Int("pacing_concurrency", p.Concurrency))
	}
	// The decision in words: fallback's one rendering.
	attrs = append(attrs, slog.String("decision", d.String()))
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	return attrs
}

// ErrorType returns a bounded error.type value for err: the result of an
// ErrorType() string method anywhere in its chain, "refused" for
// fallback.ErrRefused, "canceled"/"deadline_exceeded" for context errors,
// else the Go type of the innermost error of its Unwrap chain.
func ErrorType(err error) string {
	if err == nil {
		return ""
	}
	var et interface{ ErrorType() string }
	if errors.As(err, &et) {
		if t := et.ErrorType(); t != "" {
			return t
		}
	}
	switch {
	case errors.Is(err, fallback.ErrRefused):
		return "refused"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline_exceeded"
	}
	inner := err
	for {
		u := errors.Unwrap(inner)
		if u == nil {
			break
		}
		inner = u
	}
	return fmt.Sprintf("%T", inner)
}

func clampInt64(v uint64) int64 {
	if v > 1<<63-1 {
		return 1<<63 - 1
	}
	return int64(v)
}
