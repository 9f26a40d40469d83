package loader

import (
	"errors"
	"log/slog"

	"github.com/safebpf/safebpf/internal/tracefs"
)

// start runs the Loader's start-up housekeeping: it removes tracefs events
// whose owner is provably dead (see tracefs.CleanupStale: a safebpf
// process killed before it could remove them, in this PID namespace or
// any other), so an agent that crashed restarts with a clean event table.
// Events it cannot judge are kept and counted. Failures are logged, never
// fatal: tracefs may be absent. Every record goes through l.starts.
func (l *Loader) start() {
	h := l.logger.Handler()
	fs, err := tracefs.Find()
	if err != nil {
		if !errors.Is(err, tracefs.ErrNotMounted) {
			l.starts.add(h, slog.LevelDebug, "safebpf: find tracefs", slog.Any("error", err))
		}
		return
	}
	l.tracefs = fs
	res, err := fs.CleanupStale()
	for _, s := range res.Removed {
		if s.Err == nil {
			l.starts.add(h, slog.LevelInfo, "safebpf: removed stale tracefs event",
				slog.String("group", s.Probe.Group), slog.String("event", s.Probe.Event),
				slog.String("owner", s.Owner.String()), slog.String("why", s.Why))
		}
	}
	if len(res.Kept) > 0 {
		// One record per reason, not per event.
		counts := map[string]int{}
		var order []string
		for _, s := range res.Kept {
			if counts[s.Why] == 0 {
				order = append(order, s.Why)
			}
			counts[s.Why]++
		}
		for _, why := range order {
			l.starts.add(h, slog.LevelInfo, "safebpf: kept tracefs events whose owner cannot be judged",
				slog.Int("count", counts[why]), slog.String("why", why))
		}
	}
	if err != nil {
		l.starts.add(h, slog.LevelWarn, "safebpf: remove stale tracefs events", slog.Any("error", err))
	}
}
