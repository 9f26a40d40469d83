package loader

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/internal/tracefs"
	"github.com/safebpf/safebpf/probe"
)

// Options configures a Loader. A nil *Options selects every default.
// New copies what it uses; changing Options afterwards has no effect.
type Options struct {
	// Kernel describes the running kernel. Nil means probe.Detect once, in New.
	Kernel *probe.Kernel
	// Catalog is the hazard catalog. Nil means hazards.Builtin().
	Catalog *hazards.Catalog
	// Policy holds the operator's edits (mode, force list, overrides,
	// pacing). Nil means no edits.
	Policy *hazards.Policy
	// Mode overrides the policy's mode. Empty means the policy's mode, or
	// hazards.Enforce when the policy sets none.
	Mode hazards.Mode
	// Force lists hazard IDs to force past (hazards.ForceAll forces every
	// hazard). It is merged with the policy's force list. An ID that is
	// neither in the catalog nor a policy rule makes New fail.
	Force []hazards.ID
	// TracerProvider supplies spans. Nil means otel.GetTracerProvider().
	TracerProvider trace.TracerProvider
	// MeterProvider supplies metrics. Nil means otel.GetMeterProvider().
	MeterProvider metric.MeterProvider
	// Logger receives one record per decision. Nil discards them.
	Logger *slog.Logger
}

// Loader plans, loads and attaches BPF programs on one kernel. It is safe
// for concurrent use. Close it when done; Close does not detach links or
// collections it returned, which the caller closes.
type Loader struct {
	kernel  *probe.Kernel
	catalog *hazards.Catalog
	policy  hazards.Policy // effective: mode and force merged
	logger  *slog.Logger
	rec     recorder
	pacer   *pacer
	missed  *missedProbes // kprobe-family links feeding safebpf.probe.missed
	tracefs *tracefs.FS   // nil until found; guarded by mu

	mu     sync.RWMutex
	closed bool

	// hook, when set by tests, is called before each step and may inject
	// a failure. Steps: "load", "attach:<prog>", "attached:<prog>",
	// "perf-open", "perf-attach:<cpu>", "uprobe:<symbol>".
	hook func(step string) error
}

// New returns a Loader. It detects the kernel unless opts.Kernel is set,
// validates the force list against the catalog and the policy's rules, and
// sets up telemetry from the providers in opts.
func New(opts *Options) (*Loader, error) {
	if opts == nil {
		opts = &Options{}
	}
	l := &Loader{pacer: newPacer()}
	l.logger = opts.Logger
	if l.logger == nil {
		l.logger = slog.New(slog.DiscardHandler)
	}
	l.catalog = opts.Catalog
	if l.catalog == nil {
		l.catalog = hazards.Builtin()
	}
	pol, err := effectivePolicy(l.catalog, opts.Policy, opts.Mode, opts.Force)
	if err != nil {
		return nil, err
	}
	l.policy = pol

	if opts.Kernel != nil {
		l.kernel = opts.Kernel.Clone()
	} else {
		k, err := detect(context.Background())
		if err != nil {
			return nil, fmt.Errorf("detect kernel: %w", err)
		}
		l.kernel = k
	}
	rec, err := newRecorder(opts.TracerProvider, opts.MeterProvider, l.logger, l.policy.Force)
	if err != nil {
		return nil, fmt.Errorf("set up telemetry: %w", err)
	}
	l.rec = rec
	l.missed = newMissedProbes()
	rec.registerMissed(l.missed.collect)
	l.start()
	return l, nil
}

// effectivePolicy merges mode and force into a copy of pol and validates
// the force IDs.
func effectivePolicy(cat *hazards.Catalog, pol *hazards.Policy, mode hazards.Mode, force []hazards.ID) (hazards.Policy, error) {
	var p hazards.Policy
	if pol != nil {
		p = *pol
		p.Force = append([]hazards.ID(nil), pol.Force...)
	}
	if mode != "" {
		p.Mode = mode
	}
	if p.Mode == "" {
		p.Mode = hazards.Enforce
	}
	switch p.Mode {
	case hazards.Enforce, hazards.Warn, hazards.Audit:
	default:
		return p, fmt.Errorf("set mode %q: want enforce, warn or audit: %w", p.Mode, errInvalidInput)
	}
	known := map[hazards.ID]bool{}
	for _, h := range cat.Hazards() {
		known[h.ID] = true
	}
	for _, h := range p.Rules {
		known[h.ID] = true
	}
	seen := map[hazards.ID]bool{}
	var merged []hazards.ID
	for _, id := range append(p.Force, force...) {
		if id != hazards.ForceAll && !known[id] {
			ids := make([]string, 0, len(known))
			for k := range known {
				ids = append(ids, string(k))
			}
			sort.Strings(ids)
			return p, fmt.Errorf("force hazard %q: unknown ID, want %q or one of %s: %w",
				id, hazards.ForceAll, strings.Join(ids, ", "), errInvalidInput)
		}
		if !seen[id] {
			seen[id] = true
			merged = append(merged, id)
		}
	}
	p.Force = merged
	return p, nil
}

// Kernel returns a copy of the kernel description the Loader plans for.
func (l *Loader) Kernel() *probe.Kernel { return l.kernel.Clone() }

// Mode returns the mode the Loader runs in.
func (l *Loader) Mode() hazards.Mode { return l.policy.Mode }

// Close releases the Loader's telemetry. Links and collections it returned
// stay attached until closed by the caller. Calling Close twice is safe.
func (l *Loader) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	return l.rec.close()
}

func (l *Loader) check() error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return ErrClosed
	}
	return nil
}

func (l *Loader) step(name string) error {
	if l.hook == nil {
		return nil
	}
	return l.hook(name)
}

// attempt is one planned request being carried out.
type attempt struct {
	ctx context.Context
	d   fallback.Decision
	end func(fallback.Decision, error)
}

// plan asks the planner and starts the telemetry record. On success the
// caller must call finish exactly once; on error the attempt (holding the
// planner's decision) is already finished.
func (l *Loader) plan(ctx context.Context, req fallback.Request) (*attempt, error) {
	ctx, end := l.rec.start(ctx, l.kernel, req.Target, req.Mechanism)
	a := &attempt{ctx: ctx, end: end}
	d, err := planWith(l.kernel, l.catalog, req, &l.policy)
	a.d = d
	if err != nil {
		a.finish(err)
		return a, err
	}
	return a, nil
}

func (a *attempt) finish(err error) {
	if a.end != nil {
		a.end(a.d, err)
		a.end = nil
	}
}

// planWith calls the planner and fills in what it leaves empty.
func planWith(k *probe.Kernel, cat *hazards.Catalog, req fallback.Request, pol *hazards.Policy) (fallback.Decision, error) {
	d, err := fallback.Plan(k, cat, req, pol)
	if d.Mode == "" {
		d.Mode = pol.Mode
	}
	if d.Requested == "" {
		d.Requested = req.Mechanism
	}
	if d.Target == "" {
		d.Target = req.Target
	}
	if err == nil && d.Chosen == "" && pol.Mode != hazards.Audit {
		err = fmt.Errorf("plan %s on %s: planner chose no mechanism: %w", req.Mechanism, req.Target, ErrRefused)
	}
	return d, err
}

func detect(ctx context.Context) (*probe.Kernel, error) {
	return probe.Detect(ctx, nil)
}
