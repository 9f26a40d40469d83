package loader

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/internal/elfscan"
	"github.com/safebpf/safebpf/probe"
)

func (pi *progInfo) section() string { return pi.spec.SectionName }

// analysis is a CollectionSpec classified, resolved and grouped.
type analysis struct {
	// infos holds every program of the spec, by name.
	infos []*progInfo
	// groups holds the groups of alternatives of the attaching programs.
	groups []*group
	// skipped holds optional programs left out before planning (a section
	// safebpf cannot attach as written, a target the options do not give),
	// with why.
	skipped map[*progInfo]error
}

// analyse classifies every program of spec, completes targets from opts,
// resolves them with res, and forms the groups of alternatives. It fails
// on a program that cannot be attached as written, unless the program is
// optional.
func analyse(spec *ebpf.CollectionSpec, opts *CollectionOptions, res resolver) (*analysis, error) {
	names := make([]string, 0, len(spec.Programs))
	for n := range spec.Programs {
		names = append(names, n)
	}
	sort.Strings(names)
	a := &analysis{skipped: map[*progInfo]error{}}
	var errs []error
	for _, n := range names {
		ps := spec.Programs[n]
		if ps == nil {
			return nil, fmt.Errorf("program %q: nil ProgramSpec: %w", n, errInvalidInput)
		}
		pi := &progInfo{name: n, spec: ps, keep: opts.keep(n)}
		if ps.Type == ebpf.Tracing && ps.AttachType == ebpf.AttachNone {
			if at, ok := tracingAttachType[strings.TrimSuffix(strings.SplitN(strings.TrimPrefix(ps.SectionName, "?"), "/", 2)[0], ".s")]; ok {
				pi.spec = ps.Copy()
				pi.spec.AttachType = at
			}
		}
		c, err := classify(ps)
		pi.class = c
		pi.optional = c.optional || opts.optional(n)
		a.infos = append(a.infos, pi)
		if err == nil && opts.manual(n) {
			pi.class.use = useLoadOnly
			pi.class.why = "listed in CollectionOptions.Manual: attach it with the per-attachment calls"
			continue
		}
		if err == nil && pi.attaches() {
			err = opts.fillTarget(pi)
		}
		if err != nil {
			if pi.optional {
				a.skipped[pi] = err
				continue
			}
			errs = append(errs, err)
			continue
		}
		if pi.attaches() {
			pi.scan = elfscan.Program(ps, spec.Programs)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	var live []*progInfo
	for _, pi := range a.infos {
		if _, skip := a.skipped[pi]; !skip && pi.attaches() {
			live = append(live, pi)
		}
	}
	groups, inGroup, err := explicitGroups(live, opts.groups())
	if err != nil {
		return nil, err
	}
	for _, pi := range live {
		if pi.class.ap.batch {
			resolveBatch(res, pi)
			continue
		}
		if err := res.resolve(&pi.class.ap); err != nil {
			pi.missing = err
		}
	}
	var rest []*progInfo
	for _, pi := range live {
		if !inGroup[pi.name] {
			rest = append(rest, pi)
		}
	}
	groups = append(groups, automaticGroups(rest)...)
	for _, g := range groups {
		addVariants(g)
	}
	a.groups = groups
	return a, nil
}

// resolveBatch resolves each target of a program's batch as a single
// probe on it would be resolved (a syscall's wrapper, a symbol of the
// binary). Targets that do not exist are left out, with why, when the
// batch is optional; otherwise they make the program's target missing.
func resolveBatch(res resolver, pi *progInfo) {
	ap := &pi.class.ap
	var syms []string
	var cookies []uint64
	var missing []error
	for i, s := range ap.symbols {
		one := *ap
		one.symbols, one.cookies, one.addrs, one.batch, one.glob = nil, nil, nil, false, false
		one.symbol = s
		if single := one.mech.Single(); single != "" {
			one.mech = single // resolved as the function or symbol itself
		}
		if err := res.resolve(&one); err != nil {
			if pi.optionalTargets {
				pi.skipped = append(pi.skipped, SkippedTarget{Target: s, Err: err})
			} else {
				missing = append(missing, err)
			}
			continue
		}
		syms = append(syms, one.symbol)
		if i < len(ap.cookies) {
			cookies = append(cookies, ap.cookies[i])
		}
		if ap.path == "" || one.path != "" {
			ap.path = one.path
		}
	}
	switch {
	case len(missing) > 0:
		pi.missing = fmt.Errorf("%d of %d targets of the batch do not exist: %w", len(missing), len(ap.symbols), errors.Join(missing...))
		return
	case len(syms) == 0:
		pi.missing = fmt.Errorf("none of the %d targets of the batch exists: %w", len(ap.symbols), errTargetNotFound)
		return
	}
	if len(pi.skipped) > 0 {
		ap.symbols = syms
		if ap.cookies != nil {
			ap.cookies = cookies
		}
		if len(syms) == 1 {
			ap.symbol = syms[0]
		}
		return
	}
	ap.symbols = syms // resolved names (syscall wrappers)
}

// explicitGroups forms the caller's groups and carries retargeted kernel
// functions over to their placeholder members.
func explicitGroups(live []*progInfo, explicit []Group) ([]*group, map[string]bool, error) {
	byName := map[string]*progInfo{}
	for _, pi := range live {
		byName[pi.name] = pi
	}
	inGroup := map[string]bool{}
	var groups []*group
	for i, eg := range explicit {
		if len(eg.Alternatives) == 0 {
			return nil, nil, fmt.Errorf("group %d is empty: %w", i, errInvalidInput)
		}
		g := &group{explicit: true, optional: eg.Optional}
		var keys []string
		for _, names := range eg.Alternatives {
			if len(names) == 0 {
				return nil, nil, fmt.Errorf("group %d has an empty alternative: %w", i, errInvalidInput)
			}
			alt := &alternative{}
			for _, n := range names {
				pi, ok := byName[n]
				switch {
				case !ok:
					return nil, nil, fmt.Errorf("group %d names program %q, which is not an attached program of the spec (missing, not a tracing program, Manual, or skipped): %w", i, n, errInvalidInput)
				case inGroup[n]:
					return nil, nil, fmt.Errorf("program %q is in two groups: %w", n, errInvalidInput)
				}
				inGroup[n] = true
				alt.progs = append(alt.progs, pi)
				g.optional = g.optional || pi.optional
			}
			keys = append(keys, alt.String())
			g.alts = append(g.alts, alt)
		}
		g.key = joinKeys(keys)
		inheritTarget(g)
		groups = append(groups, g)
	}
	return groups, inGroup, nil
}

func joinKeys(keys []string) string {
	out := ""
	for i, k := range keys {
		if i > 0 {
			out += "|"
		}
		out += k
	}
	return out
}

// addVariants offers, after every multi program of g, the same program
// loaded as single probes (one per target): where the kernel has no multi
// links the planner can then move the request to probes it has; and
// after a single-probe program with a batch of targets, the same program
// loaded for a multi link, which the planner batches the targets into
// where the kernel has one.
func addVariants(g *group) {
	for i := 0; i < len(g.alts); i++ {
		p := g.alts[i].single()
		if p == nil || p.keep || p.variantOf != nil {
			continue
		}
		if multi := p.mech().Multi(); multi != "" && p.class.ap.batch && len(p.class.ap.symbols) > 1 && p.spec.Type == ebpf.Kprobe {
			v := &progInfo{name: p.name, scan: p.scan, optional: p.optional, missing: p.missing, variantOf: p,
				optionalTargets: p.optionalTargets, skipped: p.skipped}
			v.class = p.class
			v.class.ap.mech = multi
			v.spec = p.spec.Copy()
			v.spec.AttachType = *formAttachType(p.spec, multi)
			g.alts = slices.Insert(g.alts, i+1, &alternative{progs: []*progInfo{v}})
			i++
			continue
		}
		single := p.mech().Single()
		ok := single != ""
		if !ok || slices.ContainsFunc(g.alts, func(a *alternative) bool {
			s := a.single()
			return s != nil && s.mech() == single
		}) {
			continue
		}
		v := &progInfo{name: p.name, scan: p.scan, optional: p.optional, missing: p.missing, variantOf: p,
			optionalTargets: p.optionalTargets, skipped: p.skipped}
		v.class = p.class
		v.class.ap.mech = single
		if !p.class.ap.batch {
			v.class.ap.symbols = dedupe(p.class.ap.symbols)
		}
		v.class.ap.addrs = nil
		v.spec = p.spec.Copy()
		v.spec.AttachType = ebpf.AttachNone
		g.alts = slices.Insert(g.alts, i+1, &alternative{progs: []*progInfo{v}})
		i++
	}
}

func dedupe(s []string) []string {
	var out []string
	for _, x := range s {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// groupPlan is the planner's answer for one group.
type groupPlan struct {
	g *group
	// chosen is the alternative that attaches; nil when every alternative
	// was refused or unresolvable.
	chosen *alternative
	// decisions holds the decision of each program of chosen.
	decisions map[*progInfo]fallback.Decision
	// tried lists the alternatives refused before chosen (or all of them
	// when none was chosen), with the decision and error of the program
	// that was refused.
	tried []triedAlt
}

type triedAlt struct {
	alt  *alternative
	prog *progInfo
	d    fallback.Decision
	err  error
	// loadFailed is set when the alternative was chosen and the kernel
	// would not load prog (err is then the load error).
	loadFailed bool
}

// refusal returns the group's refusal: the first alternative's.
func (gp *groupPlan) refusal() (triedAlt, bool) {
	if gp.chosen != nil || len(gp.tried) == 0 {
		return triedAlt{}, false
	}
	return gp.tried[0], true
}

// planGroup asks the planner for each alternative of g in order until one
// is not refused. A one-program alternative is offered, as variants, the
// mechanisms of the one-program alternatives after it, so that the
// planner's own edges (fentry→kprobe, uprobe-multi→uprobe, ...) and
// reasons apply; alternatives the planner already considered are not
// asked again. The programs of a several-program alternative are planned
// one by one and must all be allowed.
func planGroup(pl *planner, g *group, opts *CollectionOptions) *groupPlan {
	return planGroupFrom(pl, g, opts, &groupPlan{g: g}, map[*alternative]bool{})
}

// replanAfterLoadFailure moves gp past its chosen alternative, which the
// kernel would not load (loadErr names the program), to the next
// alternatives. It returns false when gp had no chosen alternative.
func replanAfterLoadFailure(pl *planner, gp *groupPlan, failed *progInfo, loadErr error, opts *CollectionOptions) bool {
	if gp.chosen == nil {
		return false
	}
	d := gp.decisions[failed]
	skip := map[*alternative]bool{}
	for _, a := range gp.g.alts {
		skip[a] = true
		if a == gp.chosen {
			break
		}
	}
	next := &groupPlan{g: gp.g, tried: append(gp.tried, triedAlt{alt: gp.chosen, prog: failed, d: d, err: loadErr, loadFailed: true})}
	*gp = *planGroupFrom(pl, gp.g, opts, next, skip)
	return true
}

// planGroupFrom plans the alternatives of g not in considered, adding to
// gp.
func planGroupFrom(pl *planner, g *group, opts *CollectionOptions, gp *groupPlan, considered map[*alternative]bool) *groupPlan {
	gp.chosen, gp.decisions = nil, nil
	for i, alt := range g.alts {
		if considered[alt] {
			continue
		}
		considered[alt] = true
		if p := firstMissing(alt); p != nil {
			gp.tried = append(gp.tried, triedAlt{alt: alt, prog: p, d: missingDecision(p, pl.pol), err: newRefusal(p.missing)})
			continue
		}
		if p := alt.single(); p != nil {
			variants := map[probe.Mechanism]*alternative{}
			var mechs []probe.Mechanism
			scans := []*elfscan.Result{&p.scan}
			seccomp := opts.seccomp(p.name)
			if !p.keep {
				for _, o := range g.alts[i+1:] {
					s := o.single()
					if s == nil || considered[o] || firstMissing(o) != nil || s.mech() == p.mech() || variants[s.mech()] != nil {
						continue
					}
					variants[s.mech()] = o
					mechs = append(mechs, s.mech())
					scans = append(scans, &s.scan)
					seccomp = seccomp || opts.seccomp(s.name)
				}
			}
			req := requestFor(p, mechs, scans, seccomp, opts)
			d, err := pl.plan(req)
			if err == nil && d.Chosen != p.mech() && !samePerf(d.Chosen, p.mech()) && variants[d.Chosen] == nil {
				// The planner moved the request to an alternative already
				// ruled out (batching single probes back into a multi
				// link that did not load): keep this one's mechanism.
				req.Pinned = true
				d, err = pl.plan(req)
			}
			if err == nil {
				chosen := alt
				if d.Chosen != p.mech() && !samePerf(d.Chosen, p.mech()) {
					chosen = variants[d.Chosen]
				}
				if chosen == nil {
					err = fmt.Errorf("the planner chose %s, but no program of the group attaches with it: %w", d.Chosen, ErrNotSupported)
				} else {
					gp.chosen = chosen
					gp.decisions = map[*progInfo]fallback.Decision{chosen.progs[0]: d}
					break
				}
			}
			gp.tried = append(gp.tried, triedAlt{alt: alt, prog: p, d: d, err: newRefusal(err)})
			for _, st := range d.Steps {
				for m, o := range variants {
					if m == st.From || m == st.To {
						considered[o] = true
					}
				}
			}
			continue
		}
		decisions := map[*progInfo]fallback.Decision{}
		var failed *triedAlt
		for _, p := range alt.progs {
			req := requestFor(p, nil, []*elfscan.Result{&p.scan}, opts.seccomp(p.name), opts)
			d, err := pl.plan(req)
			if err != nil {
				failed = &triedAlt{alt: alt, prog: p, d: d, err: newRefusal(err)}
				break
			}
			decisions[p] = d
		}
		if failed != nil {
			gp.tried = append(gp.tried, *failed)
			continue
		}
		gp.chosen, gp.decisions = alt, decisions
		break
	}
	if gp.chosen != nil && len(gp.tried) > 0 {
		for p, d := range gp.decisions {
			gp.decisions[p] = chainDecision(gp.tried[0], d)
		}
	}
	return gp
}

// samePerf reports whether a and b are both perf events: one program
// serves the hardware and the software event.
func samePerf(a, b probe.Mechanism) bool {
	perf := func(m probe.Mechanism) bool { return m == probe.PerfEventHardware || m == probe.PerfEventSoftware }
	return perf(a) && perf(b)
}

func firstMissing(alt *alternative) *progInfo {
	for _, p := range alt.progs {
		if p.missing != nil {
			return p
		}
	}
	return nil
}

// requestFor builds the request for program p with the given variants.
func requestFor(p *progInfo, alternatives []probe.Mechanism, scans []*elfscan.Result, seccomp bool, opts *CollectionOptions) fallback.Request {
	ap := p.class.ap
	o := requestOptions{
		alternatives: alternatives,
		keep:         p.keep,
		seccomp:      seccomp,
		targets:      ap.targets(),
		attachTo:     ap.attachTo(),
	}
	switch ap.mech {
	case probe.Kretprobe, probe.Fexit, probe.KretprobeMulti:
		o.maxActive = opts.maxActive()
	case probe.PerfEventHardware, probe.PerfEventSoftware:
		ev, _ := opts.perfEvent(p.name)
		o.perf = &fallback.PerfEvent{Hardware: ev.mechanism() == probe.PerfEventHardware, Frequency: ev.Frequency, Period: ev.Period}
		o.keep = o.keep || !ev.movable() && ev.mechanism() == probe.PerfEventHardware
	}
	return newRequest(ap.mech, ap.target, scans, o)
}

// missingDecision is the decision recorded for a program whose target
// does not exist: refused, with the resolver's reason.
func missingDecision(p *progInfo, pol *hazards.Policy) fallback.Decision {
	return fallback.Decision{
		Target:    p.class.ap.target,
		Requested: p.mech(),
		Action:    fallback.Refuse,
		Mode:      pol.Mode,
		Steps:     []fallback.Step{{From: p.mech(), Action: fallback.Refuse, Reason: p.missing.Error()}},
	}
}

// chainDecision records, in the decision of an alternative chosen after
// others were refused, that the group's preferred alternative was
// refused and why: Requested becomes the preferred mechanism and the
// first step the move away from it.
func chainDecision(first triedAlt, d fallback.Decision) fallback.Decision {
	out := d
	out.Requested = first.prog.mech()
	step := fallback.Step{From: first.prog.mech(), To: d.Chosen, Action: fallback.Downgrade}
	reason := fmt.Sprintf("alternative %s (%s) not attached", first.alt, first.prog.mech())
	if first.loadFailed {
		step.Reason = fmt.Sprintf("alternative %s (%s) did not load: %v", first.alt, first.prog.mech(), first.err)
		out.Steps = append([]fallback.Step{step}, d.Steps...)
		out.Action = fallback.Downgrade
		return out
	}
	for _, st := range first.d.Steps {
		if st.Action == fallback.Refuse {
			step.Hazard, step.Missing = st.Hazard, st.Missing
			if st.Reason != "" {
				reason += ": " + st.Reason
			}
			break
		}
	}
	if step.Hazard == "" && step.Missing == "" && first.prog.missing != nil {
		reason += ": " + first.prog.missing.Error()
	}
	step.Reason = reason
	out.Steps = append([]fallback.Step{step}, d.Steps...)
	out.Action = fallback.Downgrade
	return out
}
