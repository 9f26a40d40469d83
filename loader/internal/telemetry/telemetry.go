// Package telemetry turns loader Decisions into OpenTelemetry spans, span
// events and metrics, and slog records. It never sets a global provider,
// and recording never blocks or fails an attach.
//
// # Signals
//
// Every attach is one span named [SpanName] carrying the kernel identity
// ([AttrKernelRelease], [AttrKernelVersion], [AttrKernelVersionSource],
// [AttrKernelArch], [AttrDistroID], [AttrDistroVersionID]) and one span
// event named [EventDecision] carrying the decision. The metrics are
//
//	safebpf.decisions         counter   {decision}  one per decision and driving hazard
//	safebpf.refusals          counter   {refusal}   one per refused decision
//	safebpf.attach.duration   histogram s           time from StartAttach to End
//	safebpf.probe.missed      observable counter {miss}  missed hits per attached kprobe/kretprobe
//	safebpf.telemetry.dropped observable counter {record} records dropped because a sink was full
//
// and every decision is one slog record: info for allow, upgrade and pace,
// warn for downgrade, cap, refuse, warn and every forced decision, error
// for a failed attach that is not a refusal.
//
// # Never blocking
//
// A user's TracerProvider may export synchronously (sdktrace.WithSyncer), so
// span.End may block for as long as the exporter does; a slog handler may
// write to a full pipe. The attach path therefore never calls a provider or
// a handler: [Attach.End] only computes attribute sets and enqueues one
// closure per signal (traces, metrics, logs) into a bounded channel per
// signal, each drained by its own goroutine. A hanging trace exporter
// stalls only the trace queue. When a queue is full the record for that
// signal is dropped and counted ([Recorder.Dropped] and
// safebpf.telemetry.dropped). Because the span is created by the trace
// goroutine (with the attach's start timestamp), the context StartAttach
// returns does not carry the attach span.
//
// [Recorder.Close] flushes the queues with a deadline and returns an error
// naming the records still pending if the deadline passes; it never waits
// for a hung exporter beyond the deadline.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of every tracer and meter the
// Recorder creates: the import path of the package that emits telemetry.
const ScopeName = "github.com/safebpf/safebpf/loader"

// Version is the instrumentation version reported with ScopeName.
const Version = "0.1.0"

// Span, event and instrument names.
const (
	SpanName        = "safebpf.attach"
	EventDecision   = "safebpf.decision"
	MetricDecisions = "safebpf.decisions"
	MetricRefusals  = "safebpf.refusals"
	MetricDuration  = "safebpf.attach.duration"
	MetricMissed    = "safebpf.probe.missed"
	MetricDropped   = "safebpf.telemetry.dropped"
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

	// AttrSignal names the telemetry queue of a dropped record: traces, metrics or logs.
	AttrSignal = attribute.Key("safebpf.telemetry.signal")

	// AttrErrorType is the semantic-convention error.type of a failed attach.
	AttrErrorType = attribute.Key("error.type")
)

// None is the attribute value used when there is no hazard or no chosen mechanism.
const None = "none"

// DefaultQueueSize is the capacity of each signal's queue.
const DefaultQueueSize = 1024

// CloseTimeout bounds how long Close waits for the queues to drain.
const CloseTimeout = 2 * time.Second

// durationBuckets are the histogram boundaries in seconds: attaches take
// from well under a millisecond (tracepoints) to seconds (paced uprobes).
var durationBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// Recorder records attach decisions. Create it with New; it is safe for
// concurrent use. A nil *Recorder records nothing.
type Recorder struct {
	tracer trace.Tracer
	logger *slog.Logger

	decisions metric.Int64Counter
	refusals  metric.Int64Counter
	duration  metric.Float64Histogram
	missed    metric.Int64ObservableCounter
	dropped   metric.Int64ObservableCounter
	reg       metric.Registration

	traces, metrics, logs *queue

	forceAll atomic.Bool

	mu        sync.Mutex
	missedFns []func() []Missed
	closed    bool
}

// New returns a Recorder that emits through tp, mp and logger. A nil tp or mp
// means otel.GetTracerProvider() or otel.GetMeterProvider() (resolved now:
// the global providers' delegation handles later installation); a nil
// logger discards records. New starts three goroutines; Close stops them.
func New(tp trace.TracerProvider, mp metric.MeterProvider, logger *slog.Logger) (*Recorder, error) {
	return newRecorder(tp, mp, logger, DefaultQueueSize)
}

func newRecorder(tp trace.TracerProvider, mp metric.MeterProvider, logger *slog.Logger, size int) (*Recorder, error) {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if size < 1 {
		size = 1
	}
	meter := mp.Meter(ScopeName, metric.WithInstrumentationVersion(Version))
	r := &Recorder{
		tracer: tp.Tracer(ScopeName, trace.WithInstrumentationVersion(Version)),
		logger: logger,
	}
	var err, e error
	r.decisions, e = meter.Int64Counter(MetricDecisions,
		metric.WithUnit("{decision}"),
		metric.WithDescription("Attach decisions, one per decision and driving hazard."))
	err = errors.Join(err, e)
	r.refusals, e = meter.Int64Counter(MetricRefusals,
		metric.WithUnit("{refusal}"),
		metric.WithDescription("Attach requests refused because no safe mechanism remained."))
	err = errors.Join(err, e)
	r.duration, e = meter.Float64Histogram(MetricDuration,
		metric.WithUnit("s"),
		metric.WithDescription("Time from the start of an attach request to its decision and attach."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	err = errors.Join(err, e)
	r.missed, e = meter.Int64ObservableCounter(MetricMissed,
		metric.WithUnit("{miss}"),
		metric.WithDescription("Missed hits per attached kprobe or kretprobe (e.g. returns dropped by a maxactive cap)."))
	err = errors.Join(err, e)
	r.dropped, e = meter.Int64ObservableCounter(MetricDropped,
		metric.WithUnit("{record}"),
		metric.WithDescription("Telemetry records dropped because a queue was full (an exporter is slow or hung)."))
	err = errors.Join(err, e)
	if err != nil {
		return nil, fmt.Errorf("create instruments: %w", err)
	}
	r.traces = newQueue("traces", size)
	r.metrics = newQueue("metrics", size)
	r.logs = newQueue("logs", size)
	r.reg, err = meter.RegisterCallback(r.observe, r.missed, r.dropped)
	if err != nil {
		r.stopQueues()
		return nil, fmt.Errorf("register observable callback: %w", err)
	}
	return r, nil
}

func (r *Recorder) queues() []*queue { return []*queue{r.traces, r.metrics, r.logs} }

func (r *Recorder) stopQueues() {
	for _, q := range r.queues() {
		q.close()
	}
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

// Dropped returns how many records, summed over signals, were dropped
// because a queue was full or the Recorder was closed.
func (r *Recorder) Dropped() uint64 {
	if r == nil {
		return 0
	}
	var n uint64
	for _, q := range r.queues() {
		n += q.dropped.Load()
	}
	return n
}

// Flush waits until every record enqueued before the call has been handed
// to the providers and the logger, or ctx is done. Unlike End, Flush may
// block; do not call it on an attach path.
func (r *Recorder) Flush(ctx context.Context) error {
	if r == nil {
		return nil
	}
	var waits []chan struct{}
	for _, q := range r.queues() {
		done := make(chan struct{})
		if err := q.putWait(ctx, func() { close(done) }); err != nil {
			return fmt.Errorf("flush %s: %w", q.name, err)
		}
		waits = append(waits, done)
	}
	for i, done := range waits {
		select {
		case <-done:
		case <-ctx.Done():
			return fmt.Errorf("flush %s: %w", r.queues()[i].name, ctx.Err())
		}
	}
	return nil
}

// FlushLogs waits until every log record enqueued before the call has
// been handed to the logger, or ctx is done. The loader calls it, with a
// short deadline, before returning a refusal or a failed attach, so that
// an agent which exits right after (log.Fatal) still has the record.
func (r *Recorder) FlushLogs(ctx context.Context) error {
	if r == nil {
		return nil
	}
	done := make(chan struct{})
	if err := r.logs.putWait(ctx, func() { close(done) }); err != nil {
		return fmt.Errorf("flush logs: %w", err)
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("flush logs: %w", ctx.Err())
	}
}

// Shutdown stops accepting records, unregisters the observable callbacks
// and waits until the queues are drained or ctx is done. It returns an
// error naming the pending records when ctx ends first; the goroutines
// then finish on their own once the exporter returns. Calling Shutdown
// again waits again; records are never accepted after the first call.
func (r *Recorder) Shutdown(ctx context.Context) error {
	if r == nil {
		return nil
	}
	var err error
	r.mu.Lock()
	first := !r.closed
	r.closed = true
	r.missedFns = nil
	r.mu.Unlock()
	if first {
		// Outside r.mu: the SDK may hold its own lock while it runs
		// observe, which takes r.mu.
		if e := r.reg.Unregister(); e != nil {
			err = fmt.Errorf("unregister callback: %w", e)
		}
	}
	r.stopQueues()
	for _, q := range r.queues() {
		select {
		case <-q.done:
		case <-ctx.Done():
			err = errors.Join(err, fmt.Errorf("drain %s queue: %d records pending: %w", q.name, len(q.ch), ctx.Err()))
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

// queue is one signal's bounded queue and its draining goroutine.
type queue struct {
	name    string
	mu      sync.RWMutex // guards closed against sends on a closed channel
	closed  bool
	ch      chan func()
	done    chan struct{}
	dropped atomic.Uint64
	panics  atomic.Uint64
}

func newQueue(name string, size int) *queue {
	q := &queue{name: name, ch: make(chan func(), size), done: make(chan struct{})}
	go q.run()
	return q
}

func (q *queue) run() {
	defer close(q.done)
	for f := range q.ch {
		q.do(f)
	}
}

// do runs f, containing a panic from a user's exporter or handler: telemetry
// must not crash the agent.
func (q *queue) do(f func()) {
	defer func() {
		if recover() != nil {
			q.panics.Add(1)
		}
	}()
	f()
}

// put enqueues f without blocking; it drops and counts f when the queue is
// full or closed.
func (q *queue) put(f func()) bool {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		q.dropped.Add(1)
		return false
	}
	select {
	case q.ch <- f:
		return true
	default:
		q.dropped.Add(1)
		return false
	}
}

// putWait enqueues f, waiting for room until ctx is done.
func (q *queue) putWait(ctx context.Context, f func()) error {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return errClosed
	}
	select {
	case q.ch <- f:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (q *queue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.ch)
	}
}

var errClosed = errors.New("recorder closed")
