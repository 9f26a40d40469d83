package loader

import (
	"log/slog"

	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/loader/internal/telemetry"
)

// MetricForceLoaded counts force sets loaded by New: one point per forced
// hazard ID (safebpf.hazard.id, "all" for the keyword) and mode. A
// dashboard that shows it non-zero shows a fleet running with hazard
// checks bypassed, whether or not a hazard was met yet. docs/telemetry.md
// lists it with every other name.
const MetricForceLoaded = telemetry.MetricForceLoaded

// recordForce leaves the trace a loaded force set must leave: a warn
// record — on logger, or on slog.Default() when it is nil, because an
// operator must always be able to find that hazard checks are off — and
// a safebpf.force.loaded point per ID. Both go through the Recorder's
// lanes, never directly to a handler or a provider.
func recordForce(s *startLog, rec *telemetry.Recorder, logger *slog.Logger, pol hazards.Policy) {
	if len(pol.Force) == 0 {
		return
	}
	if logger == nil {
		logger = slog.Default()
	}
	ids := make([]string, len(pol.Force))
	all := false
	for i, id := range pol.Force {
		ids[i] = string(id)
		all = all || id == hazards.ForceAll
	}
	msg := "safebpf: hazards forced: each forced hazard is attached past"
	if all {
		msg = "safebpf: every hazard forced (force: all): no hazard will refuse or change an attach"
	}
	s.add(logger.Handler(), slog.LevelWarn, msg,
		slog.Any("forced_hazards", ids), slog.Bool("forced_all", all), slog.String("mode", string(pol.Mode)))
	rec.ForceLoaded(pol.Force, pol.Mode)
}
