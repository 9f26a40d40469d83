package loader

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"

	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/loader/internal/telemetry"
)

// MetricForceLoaded counts force sets loaded by New: one point per forced
// hazard ID (safebpf.hazard.id, "all" for the keyword) and mode. A
// dashboard that shows it non-zero shows a fleet running with hazard
// checks bypassed, whether or not a hazard was met yet.
const MetricForceLoaded = "safebpf.force.loaded"

// recordForce leaves the trace a loaded force set must leave: a warn
// record — on opts.Logger, or on slog.Default() when it is nil, because an
// operator must always be able to find that hazard checks are off — and a
// safebpf.force.loaded point per ID. The record goes through s, never
// directly to a handler.
func recordForce(s *startLog, logger *slog.Logger, mp metric.MeterProvider, pol hazards.Policy) {
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

	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	c, err := mp.Meter(telemetry.ScopeName, metric.WithInstrumentationVersion(telemetry.Version)).Int64Counter(MetricForceLoaded,
		metric.WithUnit("{load}"),
		metric.WithDescription("Force sets loaded, one point per forced hazard ID (\"all\" for every hazard)."))
	if err != nil {
		otel.Handle(err)
		return
	}
	for _, id := range ids {
		c.Add(context.Background(), 1, metric.WithAttributes(
			telemetry.AttrHazardID.String(id), telemetry.AttrMode.String(string(pol.Mode)), telemetry.AttrForcedAll.Bool(id == string(hazards.ForceAll))))
	}
}
