package loader

import (
	"log/slog"
	"time"

	"github.com/safebpf/safebpf/loader/internal/telemetry"
)

// maxStartRecords bounds the records New writes itself: a host littered
// with thousands of stale events gets a summary, not thousands of lines.
const maxStartRecords = 64

// startLog collects the records New writes itself (the force set,
// unknown force IDs, stale tracefs events removed) until the Recorder
// exists; New then hands them to its logs lane like every other record,
// so that a handler that blocks — a full pipe, a collector that stopped
// reading — cannot stall New. That is the restart-after-crash path, where
// stale events exist and an operator needs the agent back.
type startLog struct {
	recs    []telemetry.LogRecord
	dropped int
}

// add queues a record for h; past maxStartRecords it only counts.
func (s *startLog) add(h slog.Handler, level slog.Level, msg string, attrs ...slog.Attr) {
	if len(s.recs) >= maxStartRecords {
		s.dropped++
		return
	}
	r := slog.NewRecord(time.Now(), level, msg, 0)
	r.AddAttrs(attrs...)
	s.recs = append(s.recs, telemetry.LogRecord{Handler: h, Record: r})
}

// records returns what was queued, with a summary record on h for what
// was not.
func (s *startLog) records(summary slog.Handler) []telemetry.LogRecord {
	if s.dropped > 0 && summary != nil {
		r := slog.NewRecord(time.Now(), slog.LevelInfo, "safebpf: more start-up records not logged", 0)
		r.AddAttrs(slog.Int("count", s.dropped))
		s.recs = append(s.recs, telemetry.LogRecord{Handler: summary, Record: r})
	}
	recs := s.recs
	s.recs, s.dropped = nil, 0
	return recs
}
