package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/probe"
)

// Attach is one attach request being recorded. End it exactly once; a nil
// *Attach records nothing.
type Attach struct {
	r         *Recorder
	parent    trace.SpanContext
	start     time.Time
	target    string
	requested probe.Mechanism
	program   string
	spanAttrs []attribute.KeyValue
	ended     atomic.Bool
}

// SetProgram names the program being attached; its span and log record
// then carry it. Call it before End.
func (a *Attach) SetProgram(name string) {
	if a == nil || name == "" {
		return
	}
	a.program = name
	a.spanAttrs = append(a.spanAttrs, AttrProgram.String(name))
}

// StartAttach begins recording an attach of target with the requested
// mechanism on kernel k (nil: unknown kernel). It does not block and does
// not call the providers: the span is created when End's record is
// processed, with this call's time as its start and the span in ctx as its
// parent. The returned context is ctx; it does not carry the attach span.
func (r *Recorder) StartAttach(ctx context.Context, k *probe.Kernel, target string, requested probe.Mechanism) (context.Context, *Attach) {
	if r == nil {
		return ctx, nil
	}
	attrs := KernelAttributes(k)
	attrs = append(attrs, AttrTarget.String(target), AttrRequested.String(string(requested)))
	return ctx, &Attach{
		r:         r,
		parent:    trace.SpanContextFromContext(ctx),
		start:     time.Now(),
		target:    target,
		requested: requested,
		spanAttrs: attrs,
	}
}

// RecordDecision records a decision that had no attach of its own (an
// audit-mode plan): a zero-length attach span with the decision event.
func (r *Recorder) RecordDecision(ctx context.Context, k *probe.Kernel, d fallback.Decision) {
	if r == nil {
		return
	}
	_, a := r.StartAttach(ctx, k, d.Target, d.Requested)
	a.End(d, nil)
}

// KernelAttributes returns the kernel identity attributes of an attach
// span. A nil kernel yields safebpf.kernel.release="unknown".
func KernelAttributes(k *probe.Kernel) []attribute.KeyValue {
	if k == nil {
		return []attribute.KeyValue{AttrKernelRelease.String("unknown"), AttrKernelVersion.String("unknown")}
	}
	version := "unknown"
	if k.Version != nil {
		version = k.Version.String()
	}
	src := string(k.VersionSource)
	if src == "" {
		src = string(probe.SourceNone)
	}
	attrs := []attribute.KeyValue{
		AttrKernelRelease.String(k.Release),
		AttrKernelVersion.String(version),
		AttrKernelVersionSource.String(src),
	}
	if k.Arch != "" {
		attrs = append(attrs, AttrKernelArch.String(k.Arch))
	}
	if k.Distro.ID != "" {
		attrs = append(attrs, AttrDistroID.String(k.Distro.ID))
	}
	if k.Distro.VersionID != "" {
		attrs = append(attrs, AttrDistroVersionID.String(k.Distro.VersionID))
	}
	return attrs
}

// End records decision d and the attach outcome err (nil: attached, or
// nothing to attach in audit mode). It never blocks: see the package
// documentation. Calls after the first are ignored.
func (a *Attach) End(d fallback.Decision, err error) {
	if a == nil || !a.ended.CompareAndSwap(false, true) {
		return
	}
	r := a.r
	end := time.Now()
	if d.Requested == "" {
		d.Requested = a.requested
	}
	if d.Target == "" {
		d.Target = a.target
	}
	s := summarize(d, err, r.forceAll.Load())
	parent := a.parent
	start := a.start
	spanAttrs := a.spanAttrs
	if s.errorType != "" {
		spanAttrs = append(spanAttrs[:len(spanAttrs):len(spanAttrs)], AttrErrorType.String(s.errorType))
	}
	event := s.eventAttributes(d)
	var statusMsg string
	if err != nil {
		statusMsg = err.Error()
	}

	r.traces.put(func() {
		ctx := trace.ContextWithSpanContext(context.Background(), parent)
		_, span := r.tracer.Start(ctx, SpanName,
			trace.WithTimestamp(start),
			trace.WithSpanKind(trace.SpanKindInternal),
			trace.WithAttributes(spanAttrs...))
		span.AddEvent(EventDecision, trace.WithTimestamp(end), trace.WithAttributes(event...))
		if err != nil {
			span.SetStatus(codes.Error, statusMsg)
		}
		span.End(trace.WithTimestamp(end))
	})

	seconds := end.Sub(start).Seconds()
	r.metrics.put(func() {
		ctx := trace.ContextWithSpanContext(context.Background(), parent)
		for _, h := range s.hazards {
			r.decisions.Add(ctx, 1, metric.WithAttributeSet(attribute.NewSet(
				AttrHazardID.String(string(h)),
				AttrRequested.String(s.requested),
				AttrChosen.String(s.chosen),
				AttrAction.String(s.action),
				AttrForced.Bool(s.isForced(h)),
				AttrMode.String(s.mode),
			)))
		}
		if s.refused {
			r.refusals.Add(ctx, 1, metric.WithAttributeSet(attribute.NewSet(
				AttrHazardID.String(string(s.refusedBy)),
				AttrRequested.String(s.requested),
				AttrMode.String(s.mode),
			)))
		}
		hist := []attribute.KeyValue{
			AttrRequested.String(s.requested),
			AttrChosen.String(s.chosen),
			AttrAction.String(s.action),
		}
		if s.errorType != "" {
			hist = append(hist, AttrErrorType.String(s.errorType))
		}
		r.duration.Record(ctx, seconds, metric.WithAttributeSet(attribute.NewSet(hist...)))
	})

	level, msg, logAttrs := s.logRecord(d, err)
	if a.program != "" {
		logAttrs = append([]slog.Attr{slog.String("program", a.program)}, logAttrs...)
	}
	r.logs.put(func() {
		ctx := trace.ContextWithSpanContext(context.Background(), parent)
		h := r.logger.Handler()
		if !h.Enabled(ctx, level) {
			return
		}
		rec := slog.NewRecord(end, level, msg, 0)
		rec.AddAttrs(logAttrs...)
		_ = h.Handle(ctx, rec) // a failing handler must not fail the attach
	})
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
	errorType string
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
	if s.action == "" {
		s.action = string(fallback.Allow)
	}
	if s.mode == "" {
		s.mode = string(hazards.Enforce)
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

func (s summary) forcedIDs(d fallback.Decision) []string {
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
	if ids := s.forcedIDs(d); len(ids) > 0 {
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

// logRecord returns the slog level, message and attributes of a decision.
func (s summary) logRecord(d fallback.Decision, err error) (slog.Level, string, []slog.Attr) {
	level := slog.LevelInfo
	switch fallback.Action(s.action) {
	case fallback.Downgrade, fallback.Cap, fallback.Refuse, fallback.Warn:
		level = slog.LevelWarn
	}
	if s.anyForced || s.refused {
		level = slog.LevelWarn
	}
	msg := "safebpf decision"
	if err != nil && !s.refused {
		level = slog.LevelError
		msg = "safebpf attach failed"
	}
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
	if ids := s.forcedIDs(d); len(ids) > 0 {
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
	var reasons []string
	for _, st := range d.Steps {
		if st.Reason != "" {
			reasons = append(reasons, st.Reason)
		}
	}
	if len(reasons) > 0 {
		attrs = append(attrs, slog.Any("reasons", reasons))
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	return level, msg, attrs
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
