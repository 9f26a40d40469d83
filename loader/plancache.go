package loader

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/probe"
)

// planner plans requests for one kernel, catalog and policy, and
// remembers each answer by the request's shape: everything the planner
// reads except the target's name, which only labels the Decision. An
// agent attaching the same kind of program to a thousand targets pays
// for one evaluation of the catalog (the version constraints, the
// evidence), not a thousand. The kernel, catalog and policy must not
// change while the planner is in use; a Loader's never do.
type planner struct {
	k   *kernelView
	cat *hazards.Catalog
	pol *hazards.Policy

	mu   sync.RWMutex
	memo map[planKey]planned
}

// maxPlans bounds the memo; past it, plans are computed and not kept
// (request shapes are few in practice: mechanisms × program facts).
const maxPlans = 4096

func newPlanner(k *kernelView, cat *hazards.Catalog, pol *hazards.Policy) *planner {
	return &planner{k: k, cat: cat, pol: pol, memo: map[planKey]planned{}}
}

// planKey is a fallback.Request without its Target, in comparable form.
// TestPlanKeyCoversRequest fails when fallback.Request gains a field this
// key does not carry.
type planKey struct {
	mechanism       probe.Mechanism
	alternatives    string
	pinned          bool
	readsUserMemory bool
	readsUserStacks bool
	tailCalls       bool
	seccomp         bool
	targets         int
	maxActive       int
	perf            fallback.PerfEvent
	hasPerf         bool
	// attachTo is req.AttachTo, joined, when a mechanism the request may
	// end on runs in interrupt context depending on what it traces (a
	// kprobe on a syscall entry point never does): then the targets decide
	// the interrupt-context hazards and name themselves in the Decision's
	// text. Uprobes, perf events and iterators do not depend on it, so
	// their plans stay shared across targets.
	attachTo string
}

func keyOf(req fallback.Request) planKey {
	k := planKey{
		mechanism:       req.Mechanism,
		pinned:          req.Pinned,
		readsUserMemory: req.ReadsUserMemory,
		readsUserStacks: req.ReadsUserStacks,
		tailCalls:       req.TailCalls,
		seccomp:         req.Seccomp,
		targets:         req.Targets,
		maxActive:       req.MaxActive,
	}
	switch len(req.Alternatives) {
	case 0:
	case 1:
		k.alternatives = string(req.Alternatives[0])
	default:
		var b strings.Builder
		for i, m := range req.Alternatives {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(string(m))
		}
		k.alternatives = b.String()
	}
	if req.PerfEvent != nil {
		k.perf, k.hasPerf = *req.PerfEvent, true
	}
	if len(req.AttachTo) > 0 && targetDependent(req) {
		k.attachTo = strings.Join(req.AttachTo, "\x00")
	}
	return k
}

// targetDependent reports whether the interrupt context of a mechanism
// the request may be planned onto depends on its targets.
func targetDependent(req fallback.Request) bool {
	if req.Mechanism.InterruptContext() == probe.Maybe {
		return true
	}
	for _, m := range req.Alternatives {
		if m.InterruptContext() == probe.Maybe {
			return true
		}
	}
	return false
}

// planned is a remembered answer, for a request with an empty target.
type planned struct {
	d   fallback.Decision
	err error
}

// plan answers req: from the memo when a request of the same shape was
// planned before, else from fallback.Plan.
func (p *planner) plan(req fallback.Request) (fallback.Decision, error) {
	key := keyOf(req)
	p.mu.RLock()
	hit, ok := p.memo[key]
	p.mu.RUnlock()
	if !ok {
		// The mechanisms the planner may assess, and their hazards'
		// facts, are looked for first if they were not yet.
		k, err := p.k.need(context.Background(), fallback.Assessable(req))
		if err != nil {
			return fallback.Decision{Target: req.Target, Requested: req.Mechanism, Mode: p.pol.EffectiveMode()},
				fmt.Errorf("plan %s on %s: %w", req.Mechanism, req.Target, err)
		}
		target := req.Target
		req.Target = ""
		d, err := fallback.Plan(k, p.cat, req, p.pol)
		hit = planned{d, err}
		p.mu.Lock()
		if len(p.memo) < maxPlans {
			p.memo[key] = hit
		}
		p.mu.Unlock()
		req.Target = target
	}
	return complete(hit.d, hit.err, req, p.pol)
}

// complete returns a copy of a remembered plan labelled with req's target
// (fallback.Plan sets Requested and Mode; the target is the one thing
// the memo's key leaves out). The copy shares nothing
// the caller could change with the memo.
func complete(d fallback.Decision, err error, req fallback.Request, pol *hazards.Policy) (fallback.Decision, error) {
	d.Steps = slices.Clone(d.Steps)
	d.Findings = slices.Clone(d.Findings)
	d.Forced = slices.Clone(d.Forced)
	if d.Settings.PerfEvent != nil {
		pe := *d.Settings.PerfEvent
		d.Settings.PerfEvent = &pe
	}
	if d.Settings.Pacing != nil {
		pc := *d.Settings.Pacing
		d.Settings.Pacing = &pc
	}
	if d.WouldSettings != nil {
		ws := *d.WouldSettings
		d.WouldSettings = &ws
	}
	d.Target = req.Target
	if refused, ok := err.(*fallback.RefusedError); ok {
		c := *refused
		c.Target = req.Target
		err = &c
	}
	if err == nil && d.Chosen == "" && pol.EffectiveMode() != hazards.Audit {
		err = fmt.Errorf("plan %s on %s: planner chose no mechanism: %w", req.Mechanism, req.Target, ErrRefused)
	}
	return d, err
}
