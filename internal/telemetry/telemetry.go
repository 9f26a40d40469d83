// Package telemetry turns loader Decisions into OpenTelemetry spans, span
// events and metrics, and slog records. It never sets a global provider,
// and recording never blocks or fails an attach.
package telemetry

// API contract (implemented by the telemetry helper; the loader calls it):
//
//	func New(tp trace.TracerProvider, mp metric.MeterProvider, logger *slog.Logger) (*Recorder, error)
//	func (r *Recorder) StartAttach(ctx context.Context, k *probe.Kernel, target string, requested probe.Mechanism) (context.Context, *Attach)
//	func (a *Attach) End(d fallback.Decision, err error) // span event + counters + histogram + slog; never blocks
//	func (r *Recorder) RegisterMissed(fn func() []Missed) // observable counter safebpf.probe.missed
//	func (r *Recorder) Close() error
