package loader

import (
	"errors"
	"log/slog"

	"github.com/safebpf/safebpf/internal/tracefs"
)

// start runs the Loader's start-up housekeeping: it removes tracefs events
// left by dead safebpf processes (group "safebpf_<pid>_<n>"), so an agent
// that crashed can restart without "file exists" errors or a full event
// table. Failures are logged, never fatal: tracefs may be absent.
func (l *Loader) start() {
	fs, err := tracefs.Find()
	if err != nil {
		if !errors.Is(err, tracefs.ErrNotMounted) {
			l.logger.Debug("safebpf: find tracefs", slog.Any("error", err))
		}
		return
	}
	l.tracefs = fs
	stale, err := fs.CleanupStale()
	for _, s := range stale {
		if s.Err == nil {
			l.logger.Info("safebpf: removed stale tracefs event",
				slog.String("group", s.Probe.Group), slog.String("event", s.Probe.Event), slog.Int("dead_pid", s.PID))
		}
	}
	if err != nil {
		l.logger.Warn("safebpf: remove stale tracefs events", slog.Any("error", err))
	}
}
