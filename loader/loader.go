package loader

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/cilium/ebpf"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/internal/tracefs"
	"github.com/safebpf/safebpf/loader/internal/telemetry"
	"github.com/safebpf/safebpf/probe"
)

// Options configures a Loader. A nil *Options selects every default.
// New copies what it uses; changing Options afterwards has no effect.
type Options struct {
	// Kernel describes the running kernel; it is taken as it is (facts
	// it does not record are unknown). Nil means probe.Detect: in New the
	// kernel's identity only, then, when a request first needs them, the
	// mechanisms the planner may choose for it and the facts the hazards
	// of those mechanisms (the catalog's and the policy's rules) ask.
	Kernel *probe.Kernel
	// HostRoot is where the host's root file system is mounted when the
	// agent runs in a container ("/host"): New's probe.Detect reads the
	// host's os-release, /boot and /proc and /sys files there
	// (probe.Options.HostRoot). Empty means "/". Ignored when Kernel is
	// set. Flags.Apply sets it from -safebpf-host-root or SAFEBPF_HOST_ROOT.
	HostRoot string
	// Catalog is the hazard catalog. Nil means hazards.CatalogFor(Policy):
	// the catalog file SAFEBPF_CATALOG or the policy's catalog key names,
	// else hazards.Builtin().
	Catalog *hazards.Catalog
	// Policy holds the operator's edits (mode, force list, overrides,
	// pacing). Nil means no edits.
	Policy *hazards.Policy
	// Mode overrides the policy's mode. Empty means the policy's mode, or
	// hazards.Enforce when the policy sets none.
	Mode hazards.Mode
	// Force lists hazard IDs to force past (hazards.ForceAll forces every
	// hazard). It is merged with the policy's force list. An ID that is
	// neither in the catalog nor a policy rule forces nothing: New logs it
	// at warn level (to Logger, or slog.Default() when Logger is nil) and
	// ignores it, because it may name a hazard a newer release knows while
	// a fleet is being upgraded.
	Force []hazards.ID
	// TracerProvider supplies spans. Nil means otel.GetTracerProvider().
	TracerProvider trace.TracerProvider
	// MeterProvider supplies metrics. Nil means otel.GetMeterProvider().
	MeterProvider metric.MeterProvider
	// Logger receives one record per decision. Nil discards them — except
	// the warn record New writes when a force set is loaded, which then
	// goes to slog.Default(): that hazard checks are bypassed must always
	// be findable. Records New writes itself are handed over on a
	// goroutine, so a handler that blocks cannot stall New.
	Logger *slog.Logger
}

// Loader plans, loads and attaches BPF programs on one kernel. It is safe
// for concurrent use. Close it when done; Close does not detach links or
// collections it returned, which the caller closes.
type Loader struct {
	kernel  *kernelView // completed on demand
	catalog *hazards.Catalog
	policy  hazards.Policy // effective: mode and force merged
	planner *planner       // for kernel, catalog and policy
	logger  *slog.Logger
	rec     *telemetry.Recorder
	pacer   *pacer
	active  *attachments // live links feeding safebpf.attachments.active and safebpf.probe.missed
	tracefs *tracefs.FS  // nil until found; guarded by mu
	starts  *startLog    // records New wrote before rec existed

	cpuMu sync.Mutex
	cpus  []int // online CPUs, read by the first perf attach (onlineCPUs)

	mu     sync.RWMutex
	closed bool
	// loaded remembers the programs LoadAndAttach loaded, for the
	// per-attachment calls (what a program is, what it reads).
	loaded map[*ebpf.Program]loadedProgram

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
	in, err := opts.InEffect()
	if err != nil {
		return nil, err
	}
	l.catalog, l.policy = in.Catalog, in.Policy
	l.starts = &startLog{}
	warnUnknownForce(l.starts, opts.Logger, in.IgnoredForce, l.catalog.IDs())

	if opts.Kernel != nil {
		l.kernel = newKernelView(opts.Kernel.Clone(), l.catalog, nil)
	} else {
		// The identity only: mechanisms and facts are looked for when a
		// request needs them (kernelView).
		k, err := detectAtStart(context.Background(), opts.HostRoot)
		if err != nil {
			return nil, fmt.Errorf("detect kernel: %w", err)
		}
		hostRoot := opts.HostRoot
		l.kernel = newKernelView(k, l.catalog, func(ctx context.Context, mechs []probe.Mechanism, facts []probe.Fact) (*probe.Kernel, error) {
			return probe.Detect(ctx, &probe.Options{HostRoot: hostRoot, Mechanisms: mechs, Facts: facts})
		})
	}
	l.planner = newPlanner(l.kernel, l.catalog, &l.policy)
	// The kernel's identity is built into the Recorder once, not per
	// request.
	k := l.kernel.current()
	rec, err := telemetry.New(opts.TracerProvider, opts.MeterProvider, l.logger, k)
	if err != nil {
		return nil, fmt.Errorf("set up telemetry: %w", err)
	}
	l.rec = rec
	l.active = newAttachments(k)
	rec.RegisterAttachments(l.active.collect)
	recordForce(l.starts, rec, opts.Logger, l.policy)
	l.start()
	rec.Log(l.starts.records(l.logger.Handler())...)
	return l, nil
}

// InEffect is what a Loader made from Options plans with: the catalog and
// the policy in effect, computed once (by New, PlanSpec, and the safebpf
// command) and then taken as given by the planner.
type InEffect struct {
	// Catalog is the base catalog (Options.Catalog, else
	// hazards.CatalogFor(Options.Policy)) with the policy's edits —
	// overrides, kernel assertions, rules — applied once by
	// hazards.Catalog.WithPolicy.
	Catalog *hazards.Catalog
	// Policy is the policy the planner reads: Options.Policy's, with
	// Options.Mode and the known IDs of Options.Force merged, and the
	// mode set (hazards.Enforce when neither gives one).
	Policy hazards.Policy
	// IgnoredForce are the IDs of Options.Force the catalog does not
	// know: they force nothing (hazards.FromOperator); New logs them.
	IgnoredForce []hazards.ID
}

// InEffect resolves o (nil means defaults) into the catalog and policy in
// effect. It reads the catalog file SAFEBPF_CATALOG or the policy's
// catalog key names, when o.Catalog is nil. An invalid mode, a policy
// that does not validate against the catalog, an ID in the policy's force
// list the catalog does not know, and a malformed ID in o.Force are
// errors.
func (o *Options) InEffect() (InEffect, error) {
	if o == nil {
		o = &Options{}
	}
	base := o.Catalog
	if base == nil {
		// The built-in catalog, or a newer one from SAFEBPF_CATALOG or the
		// policy's catalog key.
		c, err := hazards.CatalogFor(o.Policy)
		if err != nil {
			return InEffect{}, err
		}
		base = c
	}
	in := InEffect{Catalog: base}
	var polForce []hazards.ID
	if o.Policy != nil {
		in.Policy = *o.Policy
		polForce = o.Policy.Force
	}
	if o.Policy.EditsCatalog() {
		cat, err := base.WithPolicy(o.Policy)
		if err != nil {
			return InEffect{}, fmt.Errorf("apply policy: %w", err)
		}
		in.Catalog = cat
	}
	if o.Mode != "" {
		in.Policy.Mode = o.Mode
	}
	in.Policy.Mode = in.Policy.EffectiveMode()
	if !in.Policy.Mode.Valid() {
		return InEffect{}, fmt.Errorf("set mode %q: want enforce, warn or audit: %w", in.Policy.Mode, errInvalidInput)
	}
	if _, err := in.Catalog.CheckForce(polForce, hazards.FromPolicyFile); err != nil {
		return InEffect{}, fmt.Errorf("policy force list: %w: %w", err, errInvalidInput)
	}
	force, err := in.Catalog.CheckForce(slices.Concat(polForce, o.Force), hazards.FromOperator)
	if err != nil {
		return InEffect{}, fmt.Errorf("force hazard: %w: %w", err, errInvalidInput)
	}
	in.Policy.Force = force.Known()
	in.IgnoredForce = force.Unknown
	return in, nil
}

// Kernel returns a copy of the kernel description the Loader plans for,
// complete: every mechanism probed and every fact the catalog asks
// observed. New detects only the kernel's identity and the Loader looks
// for a mechanism and its hazards' facts when a request first needs them,
// so the first call of Kernel pays for what no request needed yet (the
// trial loads of BTF-typed programs, live self-tests: tens of
// milliseconds). Where that detection fails, the copy holds what is known,
// and what was not looked for says so (probe.Kernel.Support: "not
// probed"; probe.Kernel.Observe: "not looked for").
func (l *Loader) Kernel() *probe.Kernel {
	k, err := l.kernel.complete(context.Background())
	if err != nil {
		k = l.kernel.current()
	}
	return k.Clone()
}

// Mode returns the mode the Loader runs in.
func (l *Loader) Mode() hazards.Mode { return l.policy.Mode }

// Close releases the Loader's telemetry: it waits, at most
// telemetry.CloseTimeout (2s), for the records already made to reach the
// providers and the Logger, and returns an error naming what was still
// pending then (an exporter or handler that hangs); it never waits
// longer, and leaves no goroutine behind but one blocked inside such a
// hung exporter or handler, which returns with it. Links and collections
// it returned stay attached until closed by the caller. Calling Close
// twice is safe.
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
	return l.rec.Close()
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

// stepOn is step(kind + ":" + name), without building the name when no
// test hook is set.
func (l *Loader) stepOn(kind, name string) error {
	if l.hook == nil {
		return nil
	}
	return l.hook(kind + ":" + name)
}

// plan asks the planner and starts the telemetry record of the call in
// ctx (begin). On success the caller must call finish exactly once; on
// error the attempt (holding the planner's decision) is already finished,
// with the refusal wrapped so that it also matches the sentinel
// cilium/ebpf's call would have.
func (l *Loader) plan(ctx context.Context, req fallback.Request) (*attempt, error) {
	ctx, at := l.rec.StartAttach(ctx, req.Target, req.Mechanism)
	a := &attempt{ctx: ctx, at: at}
	d, err := l.planner.plan(req)
	a.d = d
	if err != nil {
		err = newRefusal(err)
		a.finish(err)
		return a, err
	}
	return a, nil
}

// resolver returns the resolver for this machine.
func (l *Loader) resolver() *hostResolver {
	return newHostResolver(func() (string, error) {
		fs, err := l.tracefsFS()
		if err != nil {
			return "", err
		}
		return fs.Path(), nil
	})
}

// detectAtStart is the detection New makes: the running kernel's identity
// (below hostRoot when set), no mechanism and no fact, which the
// kernelView adds on demand.
func detectAtStart(ctx context.Context, hostRoot string) (*probe.Kernel, error) {
	return probe.Detect(ctx, &probe.Options{HostRoot: hostRoot, Mechanisms: []probe.Mechanism{}})
}
