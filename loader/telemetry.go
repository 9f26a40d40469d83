package loader

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/loader/internal/telemetry"
	"github.com/safebpf/safebpf/probe"
)

// recorder is what the loader needs from telemetry: one record per
// decision, started before planning and ended after the attach.
type recorder interface {
	// start begins the record of one attach; program is empty for the
	// per-attachment calls.
	start(ctx context.Context, k *probe.Kernel, target string, requested probe.Mechanism, program string) (context.Context, func(fallback.Decision, error))
	// flushLogs waits, at most until ctx is done, for the log records
	// already ended to reach the logger.
	flushLogs(ctx context.Context) error
	registerMissed(fn func() []telemetry.Missed)
	close() error
}

// otelRecorder records through loader/internal/telemetry: a span event, metrics
// and an slog record per decision, never blocking the attach.
type otelRecorder struct{ r *telemetry.Recorder }

func newRecorder(tp trace.TracerProvider, mp metric.MeterProvider, logger *slog.Logger, force []hazards.ID) (recorder, error) {
	r, err := telemetry.New(tp, mp, logger)
	if err != nil {
		return nil, err
	}
	for _, id := range force {
		if id == hazards.ForceAll {
			r.SetForceAll(true)
		}
	}
	return otelRecorder{r}, nil
}

func (o otelRecorder) start(ctx context.Context, k *probe.Kernel, target string, requested probe.Mechanism, program string) (context.Context, func(fallback.Decision, error)) {
	ctx, a := o.r.StartAttach(ctx, k, target, requested)
	a.SetProgram(program)
	return ctx, a.End
}

func (o otelRecorder) flushLogs(ctx context.Context) error { return o.r.FlushLogs(ctx) }

func (o otelRecorder) registerMissed(fn func() []telemetry.Missed) { o.r.RegisterMissed(fn) }

func (o otelRecorder) close() error { return o.r.Close() }
