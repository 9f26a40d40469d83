package loader

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/probe"
)

// Collection is a loaded and attached CollectionSpec. Close it to detach
// every link and free every program and map.
type Collection struct {
	// Maps and Programs are the loaded objects by name, as in
	// ebpf.Collection. Programs holds only the chosen alternatives. Both
	// are empty in audit mode.
	Maps     map[string]*ebpf.Map
	Programs map[string]*ebpf.Program
	// Links holds the attachment of every attached program, by program name.
	Links map[string]*Link
	// Decisions holds one decision per group of alternatives (a program
	// without alternatives is its own group), in Plans order.
	Decisions []fallback.Decision
	// Plans describes every program of the spec: what it is, its
	// alternatives, what was chosen and why.
	Plans []ProgramPlan

	coll   *ebpf.Collection
	closed bool
}

// Close detaches every link, then frees programs and maps. Calling it
// twice is safe.
func (c *Collection) Close() error {
	if c == nil || c.closed {
		return nil
	}
	c.closed = true
	var errs []error
	names := make([]string, 0, len(c.Links))
	for n := range c.Links {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		errs = append(errs, c.Links[n].Close())
	}
	if c.coll != nil {
		c.coll.Close()
	}
	return errors.Join(errs...)
}

// Decision returns the decision that covered the named program, whether
// it was chosen or removed as an unchosen alternative.
func (c *Collection) Decision(program string) (fallback.Decision, bool) {
	for _, p := range c.Plans {
		if p.Program == program && p.Decision != nil {
			return *p.Decision, true
		}
	}
	return fallback.Decision{}, false
}

// LoadAndAttach plans every program of spec that has an attach point in its
// section name, chooses one program per group of alternatives, removes the
// unchosen ones from a copy of spec (the verifier never sees them), loads
// the copy and attaches every chosen program with the planned mechanism and
// settings. spec is not modified.
//
// In enforce mode a refusal fails the call with an error matching
// ErrRefused, before anything is loaded. In warn mode programs attach as
// requested and the decisions record what enforce would have done. In
// audit mode nothing is loaded or attached: the returned Collection holds
// only Plans and Decisions.
//
// On any failure, everything the call created (programs, maps, links, perf
// events, tracefs events) is closed before it returns.
func (l *Loader) LoadAndAttach(spec *ebpf.CollectionSpec, opts *CollectionOptions) (*Collection, error) {
	return l.LoadAndAttachContext(context.Background(), spec, opts)
}

// LoadAndAttachContext is LoadAndAttach with a context, checked between
// steps and passed to telemetry.
func (l *Loader) LoadAndAttachContext(ctx context.Context, spec *ebpf.CollectionSpec, opts *CollectionOptions) (*Collection, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	if spec == nil {
		return nil, fmt.Errorf("load and attach: nil spec: %w", errInvalidInput)
	}
	infos, groups, err := analyse(spec, groupsOf(opts), opts)
	if err != nil {
		return nil, fmt.Errorf("load and attach: %w", err)
	}

	// Plan every group; keep the attempts open until the attach outcome is known.
	type planned struct {
		g      *group
		a      *attempt
		chosen *progInfo
	}
	var plans []planned
	finishAll := func(err error) {
		for _, p := range plans {
			if p.a != nil {
				p.a.finish(err)
			}
		}
	}
	c := &Collection{Maps: map[string]*ebpf.Map{}, Programs: map[string]*ebpf.Program{}, Links: map[string]*Link{}}
	var refusals []error
	for _, g := range groups {
		req := l.request(g, opts)
		a, err := l.plan(ctx, req)
		if err != nil {
			if l.policy.Mode == hazards.Audit {
				c.addPlans(g, a.d, nil, err)
				continue
			}
			refusals = append(refusals, fmt.Errorf("plan group %s: %w", g.describe(), err))
			continue
		}
		chosen := l.chosenMember(g, a.d)
		if chosen == nil {
			err := &AttachError{Program: g.members[0].name, Op: "choose program", Decision: a.d,
				Err: fmt.Errorf("the planner chose %s but the spec has no program for it: %w", a.d.Chosen, ErrNotSupported)}
			a.finish(err)
			refusals = append(refusals, err)
			continue
		}
		plans = append(plans, planned{g: g, a: a, chosen: chosen})
		c.addPlans(g, a.d, chosen, nil)
	}
	c.addUnattached(infos)
	for _, p := range c.Plans {
		if p.Decision != nil && p.Chosen {
			c.Decisions = append(c.Decisions, *p.Decision)
		} else if p.Decision != nil && p.Refusal != "" && p.isPrimary {
			c.Decisions = append(c.Decisions, *p.Decision)
		}
	}
	if len(refusals) > 0 {
		err := errors.Join(refusals...)
		finishAll(err)
		return nil, err
	}
	if l.policy.Mode == hazards.Audit {
		finishAll(nil)
		return c, nil
	}

	// Remove the unchosen alternatives before the verifier sees them.
	cp := spec.Copy()
	for _, p := range plans {
		for _, m := range p.g.members {
			if m != p.chosen {
				delete(cp.Programs, m.name)
			}
		}
	}
	fail := func(err error) (*Collection, error) {
		finishAll(err)
		c.Close()
		return nil, err
	}
	if err := l.step("load"); err != nil {
		return fail(err)
	}
	coll, err := ebpf.NewCollectionWithOptions(cp, opts.collection())
	if err != nil {
		return fail(&AttachError{Op: "load collection", Err: err})
	}
	c.coll = coll
	c.Maps = coll.Maps
	c.Programs = coll.Programs

	execs := map[string]*link.Executable{}
	for _, p := range plans {
		pi := p.chosen
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		if err := l.step("attach:" + pi.name); err != nil {
			return fail(err)
		}
		w, err := l.whereFor(pi, opts, execs)
		if err != nil {
			return fail(&AttachError{Program: pi.name, Op: "attach", Decision: p.a.d, Err: err})
		}
		lk, err := l.attachChosen(ctx, p.a.d.Chosen, coll.Programs[pi.name], w, p.a.d)
		if err != nil {
			return fail(&AttachError{Program: pi.name, Op: "attach", Decision: p.a.d, Err: err})
		}
		c.Links[pi.name] = lk
		if err := l.step("attached:" + pi.name); err != nil {
			return fail(err)
		}
	}
	finishAll(nil)
	return c, nil
}

func groupsOf(o *CollectionOptions) [][]string {
	if o == nil {
		return nil
	}
	return o.Groups
}

func (o *CollectionOptions) collection() ebpf.CollectionOptions {
	if o == nil {
		return ebpf.CollectionOptions{}
	}
	return o.Collection
}

// request builds the planner's request for a group: the most preferred
// member is requested, the others are offered as alternatives.
func (l *Loader) request(g *group, opts *CollectionOptions) fallback.Request {
	primary := g.members[0]
	req := fallback.Request{
		Mechanism:       primary.ap.mech,
		Target:          primary.ap.target,
		Pinned:          opts.pinned(primary.name),
		ReadsUserMemory: g.readsUserMemory(),
		Seccomp:         opts.seccomp(primary.name),
		Targets:         1,
	}
	for _, m := range g.members[1:] {
		req.Alternatives = append(req.Alternatives, m.ap.mech)
		req.Pinned = req.Pinned || opts.pinned(m.name)
		req.Seccomp = req.Seccomp || opts.seccomp(m.name)
	}
	switch primary.ap.mech {
	case probe.Kretprobe, probe.Fexit:
		req.MaxActive = opts.maxActive()
	case probe.PerfEventHardware, probe.PerfEventSoftware:
		ev := opts.perfEvent(primary.name)
		req.PerfEvent = &fallback.PerfEvent{Hardware: ev.Hardware, Frequency: ev.Frequency, Period: ev.Period}
	}
	return req
}

// chosenMember maps the planner's choice to a program of the group. In
// warn mode the planner's Chosen is the requested mechanism.
func (l *Loader) chosenMember(g *group, d fallback.Decision) *progInfo {
	if d.Chosen == "" {
		return nil
	}
	return g.member(d.Chosen)
}

func (g *group) describe() string {
	if len(g.members) == 1 {
		return fmt.Sprintf("program %q", g.members[0].name)
	}
	names := make([]string, len(g.members))
	for i, m := range g.members {
		names[i] = m.name
	}
	return fmt.Sprintf("of alternatives %q", names)
}

// whereFor resolves a program's attach point to what the attach primitive
// needs, opening (and caching per call) executables for uprobes.
func (l *Loader) whereFor(pi *progInfo, opts *CollectionOptions, execs map[string]*link.Executable) (where, error) {
	w := where{symbol: pi.ap.symbol, group: pi.ap.group, name: pi.ap.name, tpBTF: pi.ap.tpBTF, path: pi.ap.path}
	switch pi.ap.mech {
	case probe.Uprobe, probe.Uretprobe, probe.UprobeMulti:
		t, _ := opts.uprobe(pi.name)
		w.uprobe = t.Options
		ex, ok := execs[pi.ap.path]
		if !ok {
			var err error
			ex, err = link.OpenExecutable(pi.ap.path)
			if err != nil {
				return w, fmt.Errorf("open executable %q: %w", pi.ap.path, err)
			}
			execs[pi.ap.path] = ex
		}
		w.ex = ex
	case probe.PerfEventHardware, probe.PerfEventSoftware:
		w.perf = opts.perfEvent(pi.name)
	}
	return w, nil
}
