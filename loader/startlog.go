package loader

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// maxStartRecords bounds the records New queues: a host littered with
// thousands of stale events gets a summary, not thousands of lines.
const maxStartRecords = 64

// startLog hands the records New writes itself (the force set, stale
// tracefs events removed) to their handlers on one goroutine, so that a
// handler that blocks — a full pipe, a collector that stopped reading —
// cannot stall New. That is the restart-after-crash path, where stale
// events exist and an operator needs the agent back.
type startLog struct {
	recs    []startRecord
	dropped int
	done    chan struct{}
}

type startRecord struct {
	h slog.Handler
	r slog.Record
}

// add queues a record for h; past maxStartRecords it only counts.
func (s *startLog) add(h slog.Handler, level slog.Level, msg string, attrs ...slog.Attr) {
	if len(s.recs) >= maxStartRecords {
		s.dropped++
		return
	}
	r := slog.NewRecord(time.Now(), level, msg, 0)
	r.AddAttrs(attrs...)
	s.recs = append(s.recs, startRecord{h, r})
}

// flush starts the goroutine that hands the queued records over; it
// returns at once.
func (s *startLog) flush(summary slog.Handler) {
	s.done = make(chan struct{})
	if s.dropped > 0 && summary != nil {
		r := slog.NewRecord(time.Now(), slog.LevelInfo, "safebpf: more start-up records not logged", 0)
		r.AddAttrs(slog.Int("count", s.dropped))
		s.recs = append(s.recs, startRecord{summary, r})
	}
	recs := s.recs
	s.recs = nil
	go func() {
		defer close(s.done)
		ctx := context.Background()
		for _, sr := range recs {
			handle(ctx, sr.h, sr.r)
		}
	}()
}

// handle calls h, containing a panic from a user's handler.
func handle(ctx context.Context, h slog.Handler, r slog.Record) {
	defer func() { _ = recover() }()
	if h.Enabled(ctx, r.Level) {
		_ = h.Handle(ctx, r)
	}
}

// startLogWait bounds how long Close waits for the start-up records.
const startLogWait = 500 * time.Millisecond

// pending waits up to startLogWait for the goroutine to hand everything
// over, and returns an error when it has not (its handler is blocked; the
// goroutine then finishes whenever the handler returns).
func (s *startLog) pending() error {
	if s == nil || s.done == nil {
		return nil
	}
	select {
	case <-s.done:
		return nil
	case <-time.After(startLogWait):
		return fmt.Errorf("start-up log records still pending after %s: the slog handler is blocked", startLogWait)
	}
}
