// Package telemetry turns loader Decisions into OpenTelemetry spans, span
// events and metrics, and slog records. It never sets a global provider,
// and recording never blocks or fails an attach. docs/telemetry.md is the
// operator's reference of every name defined here; TestDocumented holds
// the two against each other.
//
// # Never blocking
//
// A user's TracerProvider may export synchronously (sdktrace.WithSyncer),
// so span.End may block for as long as the exporter does; a slog handler
// may write to a full pipe. The attach path therefore never calls a
// provider or a handler. It appends a plain record (the Decision, the
// error, two timestamps) to its loader call's batch (Begin, StartAttach,
// Attach.End); Call.End hands the batch to two bounded queues (lanes),
// each drained by one goroutine: the logs lane calls the slog handlers,
// the otel lane the meter and the tracer. Attributes are built there, off
// the attach path. A hung span exporter stalls only the otel lane, a hung
// handler only the logs lane. Handing a batch over wakes no goroutine: the
// first batch after a lane drained kicks it, and it drains Linger later,
// so that a burst of calls shares one wake-up (a batch somebody waits for
// skips the linger). A lane holds at most DefaultQueueSize
// batches and MaxPendingRecords records; beyond that a batch is dropped
// whole and counted ([Recorder.Dropped], safebpf.telemetry.dropped). One
// batch per call means a LoadAndAttach of thousands of programs is one
// queue item: nothing is dropped for its size. Everything goes through
// the lanes, New's own records (Log) included.
//
// What is synchronous: [Call.End] of a call that recorded an error (a
// refusal or a failed attach) waits, at most [DurableWait], until the
// logs lane has handed the call's records to the handler, so an agent
// that exits right after the error still has the record. Nothing else
// waits. [Recorder.Flush] waits, with the caller's deadline, until both
// lanes have handed everything before it over.
//
// [Recorder.Shutdown] stops accepting records and waits, at most until its
// context is done ([Recorder.Close]: [CloseTimeout]), for the lanes to
// drain. Past the deadline it returns an error naming the records still
// pending, and the lanes drop what is left instead of calling a sink
// again: a lane goroutine blocked inside a hung exporter or handler
// returns as soon as that call does. No goroutine of this package
// outlives that call, and none is left at all when no sink hangs.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/probe"
)

// ScopeName is the instrumentation scope of every tracer and meter the
// Recorder creates: the import path of the package that emits telemetry.
const ScopeName = "github.com/safebpf/safebpf/loader"

// Version is the instrumentation version reported with ScopeName.
const Version = "0.1.0"

// Span, event and instrument names. docs/telemetry.md documents each.
const (
	SpanName           = "safebpf.attach"
	EventDecision      = "safebpf.decision"
	MetricDecisions    = "safebpf.decisions"
	MetricRefusals     = "safebpf.refusals"
	MetricDuration     = "safebpf.attach.duration"
	MetricForceLoaded  = "safebpf.force.loaded"
	MetricActive       = "safebpf.attachments.active"
	MetricMissed       = "safebpf.probe.missed"
	MetricDropped      = "safebpf.telemetry.dropped"
	unitDecision       = "{decision}"
	unitRefusal        = "{refusal}"
	unitForceLoad      = "{load}"
	unitAttachment     = "{attachment}"
	unitMiss           = "{miss}"
	unitRecord         = "{record}"
	unitSeconds        = "s"
	descDecisions      = "Attach decisions, one per decision and driving hazard."
	descRefusals       = "Attach requests refused because no safe mechanism remained."
	descDuration       = "Time from the start of an attach request to its decision and attach."
	descForceLoaded    = "Force sets loaded, one point per forced hazard ID (\"all\" for every hazard)."
	descActive         = "Attachments made by this Loader and not yet closed, by mechanism and the hazard that drove the decision."
	descMissed         = "Missed events per attachment: the kprobe's nmissed and the program's recursion misses."
	descDropped        = "Telemetry records dropped because a queue was full, closed or abandoned at shutdown."
	laneLogs, laneOtel = "logs", "otel"
)

// Attribute keys. All are lowercase and namespaced under "safebpf." except
// the OpenTelemetry semantic convention key error.type.
const (
	AttrKernelRelease       = attribute.Key("safebpf.kernel.release")
	AttrKernelVersion       = attribute.Key("safebpf.kernel.version")
	AttrKernelVersionSource = attribute.Key("safebpf.kernel.version_source")
	AttrKernelArch          = attribute.Key("safebpf.kernel.arch")
	AttrDistroID            = attribute.Key("safebpf.distro.id")
	AttrDistroVersionID     = attribute.Key("safebpf.distro.version_id")

	AttrTarget = attribute.Key("safebpf.target")
	// AttrProgram is the name of the program attached (collection-level
	// attaches; absent for per-attachment calls).
	AttrProgram   = attribute.Key("safebpf.program")
	AttrRequested = attribute.Key("safebpf.mechanism.requested")
	AttrChosen    = attribute.Key("safebpf.mechanism.chosen")
	AttrAction    = attribute.Key("safebpf.action")
	AttrMode      = attribute.Key("safebpf.mode")
	// AttrMissing lists the mechanisms found unavailable while planning (span event only).
	AttrMissing = attribute.Key("safebpf.mechanism.missing")
	// AttrHazardID is the one hazard a metric point is about ("none" when none).
	AttrHazardID = attribute.Key("safebpf.hazard.id")
	// AttrHazardIDs lists every hazard that drove a decision (span event only).
	AttrHazardIDs = attribute.Key("safebpf.hazard.ids")
	// AttrForcedIDs lists the hazards the operator forced past (span event only).
	AttrForcedIDs = attribute.Key("safebpf.hazard.forced_ids")
	AttrForced    = attribute.Key("safebpf.forced")
	// AttrForcedAll is set (true) when the force came from the "all" keyword.
	AttrForcedAll = attribute.Key("safebpf.forced_all")

	AttrMaxActive         = attribute.Key("safebpf.maxactive")
	AttrPerfEventType     = attribute.Key("safebpf.perf_event.type") // "hardware" or "software"
	AttrPerfEventFreq     = attribute.Key("safebpf.perf_event.frequency")
	AttrPerfEventPeriod   = attribute.Key("safebpf.perf_event.period")
	AttrPacingInterval    = attribute.Key("safebpf.pacing.interval") // seconds
	AttrPacingConcurrency = attribute.Key("safebpf.pacing.concurrency")
	AttrMulti             = attribute.Key("safebpf.multi")

	// AttrMissKind says which counter a safebpf.probe.missed point is:
	// "kprobe" or "recursion" (MissKind).
	AttrMissKind = attribute.Key("safebpf.miss.kind")
	// AttrQueue names the queue of a dropped record: "logs" or "otel".
	AttrQueue = attribute.Key("safebpf.telemetry.queue")

	// AttrErrorType is the semantic-convention error.type of a failed attach.
	AttrErrorType = attribute.Key("error.type")
)

// None is the attribute value used when there is no hazard or no chosen mechanism.
const None = "none"

// CloseTimeout bounds how long Close waits for the lanes to drain.
const CloseTimeout = 2 * time.Second

// durationBuckets are the histogram boundaries in seconds: attaches take
// from well under a millisecond (tracepoints) to seconds (paced uprobes).
var durationBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// Recorder records attach decisions. Create it with New; it is safe for
// concurrent use. A nil *Recorder records nothing.
type Recorder struct {
	tracer trace.Tracer
	logger *slog.Logger

	// The kernel's identity, built once: on every span, and the bounded
	// part (release, upstream version, distro) on every metric point.
	spanKernel, metricKernel []attribute.KeyValue

	decisions   metric.Int64Counter
	refusals    metric.Int64Counter
	duration    metric.Float64Histogram
	forceLoaded metric.Int64Counter
	active      metric.Int64ObservableGauge
	missed      metric.Int64ObservableCounter
	dropped     metric.Int64ObservableCounter
	reg         metric.Registration

	logs, otel *lane

	forceAll atomic.Bool

	mu      sync.Mutex
	sources []func() []Attachment
	closed  bool
}

// New returns a Recorder for kernel k (nil: unknown) that emits through
// tp, mp and logger. A nil tp or mp means otel.GetTracerProvider() or
// otel.GetMeterProvider() (resolved now: the global providers' delegation
// handles later installation); a nil logger discards records. New starts
// two goroutines (the lanes); Close stops them.
func New(tp trace.TracerProvider, mp metric.MeterProvider, logger *slog.Logger, k *probe.Kernel) (*Recorder, error) {
	return newRecorder(tp, mp, logger, k, DefaultQueueSize)
}

func newRecorder(tp trace.TracerProvider, mp metric.MeterProvider, logger *slog.Logger, k *probe.Kernel, size int) (*Recorder, error) {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if size < 1 {
		size = 1
	}
	meter := mp.Meter(ScopeName, metric.WithInstrumentationVersion(Version))
	r := &Recorder{
		tracer:       tp.Tracer(ScopeName, trace.WithInstrumentationVersion(Version)),
		logger:       logger,
		spanKernel:   KernelAttributes(k),
		metricKernel: kernelMetricAttributes(k),
	}
	var err, e error
	r.decisions, e = meter.Int64Counter(MetricDecisions, metric.WithUnit(unitDecision), metric.WithDescription(descDecisions))
	err = errors.Join(err, e)
	r.refusals, e = meter.Int64Counter(MetricRefusals, metric.WithUnit(unitRefusal), metric.WithDescription(descRefusals))
	err = errors.Join(err, e)
	r.duration, e = meter.Float64Histogram(MetricDuration, metric.WithUnit(unitSeconds), metric.WithDescription(descDuration),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	err = errors.Join(err, e)
	r.forceLoaded, e = meter.Int64Counter(MetricForceLoaded, metric.WithUnit(unitForceLoad), metric.WithDescription(descForceLoaded))
	err = errors.Join(err, e)
	r.active, e = meter.Int64ObservableGauge(MetricActive, metric.WithUnit(unitAttachment), metric.WithDescription(descActive))
	err = errors.Join(err, e)
	r.missed, e = meter.Int64ObservableCounter(MetricMissed, metric.WithUnit(unitMiss), metric.WithDescription(descMissed))
	err = errors.Join(err, e)
	r.dropped, e = meter.Int64ObservableCounter(MetricDropped, metric.WithUnit(unitRecord), metric.WithDescription(descDropped))
	err = errors.Join(err, e)
	if err != nil {
		return nil, fmt.Errorf("create instruments: %w", err)
	}
	r.logs = newLane(laneLogs, size, Linger, r.logBatch)
	r.otel = newLane(laneOtel, size, Linger, r.exportBatch)
	r.reg, err = meter.RegisterCallback(r.observe, r.active, r.missed, r.dropped)
	if err != nil {
		r.stopLanes()
		return nil, fmt.Errorf("register observable callback: %w", err)
	}
	return r, nil
}

func (r *Recorder) lanes() []*lane { return []*lane{r.logs, r.otel} }

func (r *Recorder) stopLanes() {
	for _, l := range r.lanes() {
		l.close()
	}
}

// KernelAttributes returns the kernel identity attributes of an attach
// span. A nil kernel yields safebpf.kernel.release="unknown".
func KernelAttributes(k *probe.Kernel) []attribute.KeyValue {
	attrs := kernelMetricAttributes(k)
	if k == nil {
		return attrs
	}
	src := string(k.VersionSource)
	if src == "" {
		src = string(probe.SourceNone)
	}
	attrs = append(attrs, AttrKernelVersionSource.String(src))
	if k.Arch != "" {
		attrs = append(attrs, AttrKernelArch.String(k.Arch))
	}
	return attrs
}

// kernelMetricAttributes is the kernel's identity on metric points:
// release, upstream version and distro, each bounded by the fleet's
// kernels (one value per agent).
func kernelMetricAttributes(k *probe.Kernel) []attribute.KeyValue {
	if k == nil {
		return []attribute.KeyValue{AttrKernelRelease.String("unknown"), AttrKernelVersion.String("unknown")}
	}
	version := "unknown"
	if k.Version != nil {
		version = k.Version.String()
	}
	attrs := []attribute.KeyValue{
		AttrKernelRelease.String(k.Release),
		AttrKernelVersion.String(version),
	}
	if k.Distro.ID != "" {
		attrs = append(attrs, AttrDistroID.String(k.Distro.ID))
	}
	if k.Distro.VersionID != "" {
		attrs = append(attrs, AttrDistroVersionID.String(k.Distro.VersionID))
	}
	return attrs
}

// SetForceAll tells the Recorder that the operator forced every hazard with
// the "all" keyword: forced decisions are then marked AttrForcedAll. They
// are logged at warn level, as every forced decision is.
func (r *Recorder) SetForceAll(all bool) {
	if r == nil {
		return
	}
	r.forceAll.Store(all)
}

// ForceLoaded records that a force set was loaded: one safebpf.force.loaded
// point per ID (hazards.ForceAll for "all", which also marks later forced
// decisions, see SetForceAll), through the otel lane.
func (r *Recorder) ForceLoaded(ids []hazards.ID, mode hazards.Mode) {
	if r == nil || len(ids) == 0 {
		return
	}
	for _, id := range ids {
		if id == hazards.ForceAll {
			r.SetForceAll(true)
		}
	}
	r.otel.put(&batch{force: &forceLoad{ids: append([]hazards.ID(nil), ids...), mode: mode}})
}

// Dropped returns how many records, summed over the lanes, were dropped
// because a lane was full or closed (a record dropped on both lanes
// counts twice: its log record and its spans and metrics are lost).
func (r *Recorder) Dropped() uint64 {
	if r == nil {
		return 0
	}
	var n uint64
	for _, l := range r.lanes() {
		n += l.dropped.Load()
	}
	return n
}

// Flush waits until every record handed over before the call has reached
// the providers and the handlers, or ctx is done. Unlike End, Flush may
// block; do not call it on an attach path. Shutdown (or Close) while
// Flush waits ends the wait with an error: Shutdown's own deadline then
// bounds the drain.
func (r *Recorder) Flush(ctx context.Context) error {
	if r == nil {
		return nil
	}
	markers := []*batch{{logged: make(chan struct{})}, {exported: make(chan struct{})}}
	for i, l := range r.lanes() {
		if err := l.putWait(ctx, markers[i]); err != nil {
			return fmt.Errorf("flush %s: %w", l.name, err)
		}
	}
	for i, done := range []chan struct{}{markers[0].logged, markers[1].exported} {
		l := r.lanes()[i]
		select {
		case <-done:
		case <-l.closing:
			// Shutdown decides from here how long to wait.
			return fmt.Errorf("flush %s: %w", l.name, errClosed)
		case <-ctx.Done():
			return fmt.Errorf("flush %s: %w", l.name, ctx.Err())
		}
	}
	return nil
}

// Shutdown stops accepting records, unregisters the observable callback
// and waits until the lanes are drained or ctx is done. When ctx ends
// first it returns an error naming the records still pending, and the
// lanes drop them: see the package documentation. Calling Shutdown again
// waits again; records are never accepted after the first call.
func (r *Recorder) Shutdown(ctx context.Context) error {
	if r == nil {
		return nil
	}
	var err error
	r.mu.Lock()
	first := !r.closed
	r.closed = true
	r.sources = nil
	r.mu.Unlock()
	if first {
		// Outside r.mu: the SDK may hold its own lock while it runs
		// observe, which takes r.mu.
		if e := r.reg.Unregister(); e != nil {
			err = fmt.Errorf("unregister callback: %w", e)
		}
	}
	r.stopLanes()
	for _, l := range r.lanes() {
		select {
		case <-l.done:
		case <-ctx.Done():
			l.abandon.Store(true)
			err = errors.Join(err, fmt.Errorf("drain %s queue: %d records pending, dropped: %w", l.name, l.pending.Load(), ctx.Err()))
		}
	}
	return err
}

// Close is Shutdown with a CloseTimeout deadline. It is safe to call more
// than once and on a nil Recorder.
func (r *Recorder) Close() error {
	if r == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), CloseTimeout)
	defer cancel()
	return r.Shutdown(ctx)
}
