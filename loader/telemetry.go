package loader

import (
	"context"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/loader/internal/telemetry"
)

// The loader records through loader/internal/telemetry: a span with a
// decision event, metrics and an slog record per decision, never
// blocking an attach. Every public entry point that plans begins a call
// (begin), whose records reach the telemetry queues together when it
// returns; a call that refused or failed waits there, at most
// telemetry.DurableWait, for its log records to reach the Logger.

// begin starts the telemetry record of one loader call; defer the
// returned end.
func (l *Loader) begin(ctx context.Context) (context.Context, func()) {
	ctx, c := l.rec.Begin(ctx)
	return ctx, c.End
}

// attempt is one planned request being carried out.
type attempt struct {
	ctx context.Context
	d   fallback.Decision
	at  *telemetry.Attach // nil once finished
}

// record begins the record of one decision of the call in ctx, for the
// named program (empty for the per-attachment calls).
func (l *Loader) record(ctx context.Context, d fallback.Decision, program string) *attempt {
	ctx, a := l.rec.StartAttach(ctx, d.Target, d.Requested)
	a.SetProgram(program)
	return &attempt{ctx: ctx, d: d, at: a}
}

func (a *attempt) finish(err error) {
	if a.at != nil {
		a.at.End(a.d, err)
		a.at = nil
	}
}
