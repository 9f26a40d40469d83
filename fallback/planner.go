package fallback

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/probe"
)

// errInvalidInput is wrapped by every argument check of Plan.
var errInvalidInput = errors.New("invalid input")

// Default pacing of uprobe registrations when neither the policy nor the
// hazard entry says: one registration at a time, 10ms apart; a uprobe_multi
// link registers 50 symbols at a time (the hazard lab's scenario 3 on
// Debian 6.12: links of 50 symbols 10ms apart kept a forking, mmapping
// process's latency at its baseline, where one link of 500 quadrupled its
// median; docs/hazard-lab.md).
const (
	DefaultPaceInterval    = 10 * time.Millisecond
	DefaultPaceConcurrency = 1
	DefaultPaceBatch       = 50
)

// evaluator returns the findings for one mechanism. Plan builds it from a
// catalog; tests may supply their own.
type evaluator func(m probe.Mechanism) []hazards.Finding

// Plan decides how to attach req on kernel k, given the hazard catalog in
// effect cat and the operator's policy pol. It is a pure function: it does
// no I/O and may be called concurrently.
//
// cat is taken as given: it is the catalog with pol's edits (overrides,
// kernel assertions, user rules) already applied, once, by
// [hazards.Catalog.WithPolicy] — the loader and the safebpf command build
// it when they start. A nil cat means [hazards.Builtin]. Plan reads only
// pol's Mode, Force and uprobe pacing; a pol that edits the catalog
// ([hazards.Policy.EditsCatalog]) with a cat that WithPolicy did not make
// is an error, because its edits would be silently ignored. A nil pol
// means enforce mode with nothing forced. A nil k is an unknown kernel:
// every mechanism undecided, every verdict unknown.
//
// The returned Decision is complete even when the request is refused or
// invalid: Target, Requested and Mode are always set, here and nowhere
// else. A refusal's error is a *[RefusedError] (errors.Is(err,
// ErrRefused)). In warn mode Plan never refuses: it returns the requested
// mechanism with Action Warn and records in WouldChoose/WouldAction what
// enforce would have done. Audit mode plans exactly like enforce.
//
// How each hazard action and each missing mechanism moves the plan is
// described in the package documentation.
func Plan(k *probe.Kernel, cat *hazards.Catalog, req Request, pol *hazards.Policy) (Decision, error) {
	if k == nil {
		k = &probe.Kernel{}
	}
	if cat == nil {
		cat = hazards.Builtin()
	}
	if pol.EditsCatalog() && !cat.WithPolicyApplied() {
		return defaults(req, pol), fmt.Errorf("plan attach of %s: the policy edits the catalog, but the catalog given is not the one in effect: apply the policy once with hazards.Catalog.WithPolicy and plan with its result: %w", req.Mechanism, errInvalidInput)
	}
	eval := func(m probe.Mechanism) []hazards.Finding {
		return cat.Evaluate(k, hazards.Attachment{
			Mechanism:       m,
			ReadsUserMemory: req.ReadsUserMemory,
			ReadsUserStacks: req.ReadsUserStacks,
			TailCalls:       req.TailCalls,
			Seccomp:         req.Seccomp,
			AttachTo:        req.AttachTo,
		})
	}
	return plan(k, eval, req, pol)
}

// defaults is the part of every Decision that restates the request and
// the mode, set before planning so that an invalid request's Decision
// carries it too.
func defaults(req Request, pol *hazards.Policy) Decision {
	return Decision{Target: req.Target, Requested: req.Mechanism, Mode: pol.EffectiveMode()}
}

// assessment is what the planner knows about one mechanism.
type assessment struct {
	m        probe.Mechanism
	support  probe.Support
	findings []hazards.Finding
	// blocking: affected or unknown findings whose action removes the
	// mechanism (downgrade, avoid, refuse) and that are not forced.
	blocking []hazards.Finding
	// forced: findings that would have acted but are forced.
	forced []hazards.Finding
	// capping, pacing, warning: affected or unknown findings with those actions.
	capping, pacing, warning []hazards.Finding
}

func (a *assessment) available() bool { return a.support.Yes() }
func (a *assessment) usable() bool    { return a.available() && len(a.blocking) == 0 }

// planner carries one Plan call.
type planner struct {
	k     *probe.Kernel
	eval  evaluator
	req   Request
	pol   *hazards.Policy
	force map[hazards.ID]bool
	all   bool
	cache map[probe.Mechanism]*assessment
	order []probe.Mechanism // assessment order, for Decision.Findings
}

func plan(k *probe.Kernel, eval evaluator, req Request, pol *hazards.Policy) (Decision, error) {
	base := defaults(req, pol)
	if !req.Mechanism.Valid() {
		return base, fmt.Errorf("plan attach of %q: unknown mechanism: %w", req.Mechanism, errInvalidInput)
	}
	for _, alt := range req.Alternatives {
		if !alt.Valid() {
			return base, fmt.Errorf("plan attach of %s: unknown alternative mechanism %q: %w", req.Mechanism, alt, errInvalidInput)
		}
	}
	mode := base.Mode
	switch mode {
	case hazards.Enforce, hazards.Warn, hazards.Audit:
	default:
		return base, fmt.Errorf("plan attach of %s: unknown policy mode %q: %w", req.Mechanism, mode, errInvalidInput)
	}
	p := &planner{
		k: k, eval: eval, req: req, pol: pol,
		force: map[hazards.ID]bool{},
		cache: map[probe.Mechanism]*assessment{},
	}
	if pol != nil {
		for _, id := range pol.Force {
			if id == hazards.ForceAll {
				p.all = true
			}
			p.force[id] = true
		}
	}

	d, refusal := p.walk()
	d.Mode, d.Target, d.Requested = base.Mode, base.Target, base.Requested
	d.Findings = p.findings()

	if mode != hazards.Warn {
		if refusal != nil {
			return d, refusal
		}
		return d, nil
	}

	// Warn mode: attach as requested, keep what enforce would have done.
	would := d.Settings
	d.WouldChoose, d.WouldAction, d.WouldSettings = d.Chosen, d.Action, &would
	d.Chosen = req.Mechanism
	d.Settings = p.requestedSettings()
	if d.WouldAction != Allow {
		d.Action = Warn
	}
	return d, nil
}

// assess evaluates m once per plan.
func (p *planner) assess(m probe.Mechanism) *assessment {
	if a, ok := p.cache[m]; ok {
		return a
	}
	a := &assessment{m: m, support: p.k.Support(m)}
	if p.eval != nil {
		a.findings = p.eval(m)
	}
	for _, f := range a.findings {
		if f.Verdict == hazards.NotAffected {
			continue
		}
		act := findingAction(f)
		if p.forced(f.ID) {
			a.forced = append(a.forced, f)
			continue
		}
		if f.Verdict == hazards.Unknown {
			switch onUnknown(f) {
			case hazards.OnUnknownAllow:
				continue
			case hazards.OnUnknownWarn:
				a.warning = append(a.warning, f)
				continue
			}
		}
		switch act {
		case hazards.ActionDowngrade, hazards.ActionAvoid, hazards.ActionRefuse:
			a.blocking = append(a.blocking, f)
		case hazards.ActionCap:
			a.capping = append(a.capping, f)
		case hazards.ActionPace:
			a.pacing = append(a.pacing, f)
		default: // warn, or an action this planner does not know: report it
			a.warning = append(a.warning, f)
		}
	}
	p.cache[m] = a
	p.order = append(p.order, m)
	return a
}

func (p *planner) forced(id hazards.ID) bool { return p.all || p.force[id] }

// findings returns every finding considered, in assessment order.
func (p *planner) findings() []hazards.Finding {
	var out []hazards.Finding
	for _, m := range p.order {
		out = append(out, p.cache[m].findings...)
	}
	return out
}

// onUnknown is what an unknown verdict of f does: the finding's, else its
// hazard's effective on_unknown, else refuse (unknown is never safe).
func onUnknown(f hazards.Finding) hazards.OnUnknown {
	switch {
	case f.OnUnknown != "":
		return f.OnUnknown
	case f.Hazard != nil:
		return f.Hazard.EffectiveOnUnknown()
	}
	return hazards.OnUnknownRefuse
}

func findingAction(f hazards.Finding) hazards.Action {
	if f.Action != "" {
		return f.Action
	}
	if f.Hazard != nil {
		return f.Hazard.Action
	}
	return hazards.ActionWarn
}

// edge is one move the planner may take away from a mechanism.
type edge struct {
	to      probe.Mechanism
	action  Action
	variant bool // needs a program variant in Request.Alternatives
	// onlyMissing: the move answers only a missing mechanism, never a
	// hazard (hardware → software perf event: the cpu-clock event runs in
	// hard IRQ and is exposed to the same deadlocks as the NMI).
	onlyMissing bool
}

// escapes lists, in order of preference, where the planner may go when
// from is unavailable or hazardous.
func escapes(from probe.Mechanism) []edge {
	switch from {
	case probe.Fentry:
		return []edge{{to: probe.Kprobe, action: Downgrade, variant: true}}
	case probe.Fexit:
		return []edge{{to: probe.Kretprobe, action: Downgrade, variant: true}}
	case probe.Kprobe:
		return []edge{{to: probe.Fentry, action: Upgrade, variant: true}}
	case probe.Kretprobe:
		return []edge{{to: probe.Fexit, action: Upgrade, variant: true}}
	case probe.PerfEventHardware:
		return []edge{{to: probe.PerfEventSoftware, action: Downgrade, onlyMissing: true}}
	case probe.KprobeMulti:
		return []edge{{to: probe.Kprobe, action: Downgrade, variant: true}}
	case probe.KretprobeMulti:
		return []edge{{to: probe.Kretprobe, action: Downgrade, variant: true}}
	case probe.UprobeMulti:
		return []edge{{to: probe.Uprobe, action: Downgrade, variant: true}}
	case probe.UretprobeMulti:
		return []edge{{to: probe.Uretprobe, action: Downgrade, variant: true}}
	case probe.TpBTF:
		return []edge{{to: probe.RawTracepoint, action: Downgrade, variant: true}}
	case probe.RawTracepoint:
		return []edge{{to: probe.Tracepoint, action: Downgrade, variant: true}}
	}
	return nil
}

// Counterparts returns the mechanisms the planner may move a request for m
// to when the request carries a program variant for them (its
// Request.Alternatives), in order of preference: its escapes, then the
// multi link a request for many targets batches into. Moves that need no
// variant (hardware → software perf event) are not listed.
func Counterparts(m probe.Mechanism) []probe.Mechanism {
	var out []probe.Mechanism
	for _, e := range escapes(m) {
		if e.variant {
			out = append(out, e.to)
		}
	}
	if multi := m.Multi(); multi != "" {
		out = append(out, multi)
	}
	return out
}

// Assessable returns every mechanism Plan may assess for req (its
// availability and the hazards that concern it), req.Mechanism first: the
// mechanisms reachable from it through the planner's moves that req can
// take (a move that needs a program variant only when req carries it, in
// Request.Alternatives), and their multi forms when req carries them. A
// caller that describes the kernel on demand must have recorded these
// mechanisms and the facts their hazards ask (hazards.Catalog.FactsFor)
// before calling Plan: evidence not looked for is unknown.
func Assessable(req Request) []probe.Mechanism {
	out := []probe.Mechanism{req.Mechanism}
	add := func(m probe.Mechanism) {
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	for i := 0; i < len(out); i++ {
		for _, e := range escapes(out[i]) {
			if !e.variant || slices.Contains(req.Alternatives, e.to) {
				add(e.to)
			}
		}
		if multi := out[i].Multi(); multi != "" && slices.Contains(req.Alternatives, multi) {
			add(multi)
		}
	}
	return out
}

func (p *planner) hasVariant(m probe.Mechanism) bool {
	return slices.Contains(p.req.Alternatives, m)
}

// walk runs the enforce-mode plan.
func (p *planner) walk() (Decision, *RefusedError) {
	var d Decision
	cur := p.req.Mechanism
	visited := map[probe.Mechanism]bool{}
	var changed Action // first mechanism-changing action

	// Escape from blocked or unavailable mechanisms until one is usable.
	for {
		visited[cur] = true
		a := p.assess(cur)
		if a.usable() {
			break
		}
		if p.req.Pinned {
			return p.refuse(&d, a, "the request is pinned to "+string(cur))
		}
		next, e, why := p.escape(a, visited)
		if next == nil {
			return p.refuse(&d, a, why)
		}
		d.Steps = append(d.Steps, p.moveStep(a, e))
		changed = firstOf(changed, e.action)
		cur = e.to
	}

	// cur is usable. Improvements that change the mechanism come first.
	if !p.req.Pinned {
		a := p.assess(cur)
		if cur == probe.Kretprobe && len(a.capping) > 0 && p.hasVariant(probe.Fexit) && !visited[probe.Fexit] {
			if fx := p.assess(probe.Fexit); fx.usable() {
				f := a.capping[0]
				d.Steps = append(d.Steps, Step{
					From: cur, To: probe.Fexit, Action: Upgrade, Hazard: f.ID,
					Reason: fmt.Sprintf("%s: %s; fexit is available and safe, so it is preferred to capping maxactive", f.ID, verdictText(f)),
				})
				changed = firstOf(changed, Upgrade)
				cur = probe.Fexit
				visited[cur] = true
			}
		}
		if multi := cur.Multi(); multi != "" && p.req.Targets >= 2 && !visited[multi] {
			if s, ok := p.batch(cur, multi); ok {
				d.Steps = append(d.Steps, s)
				d.Settings.Multi = true
				changed = firstOf(changed, Upgrade)
				cur = multi
				visited[cur] = true
			} else {
				d.Steps = append(d.Steps, s)
			}
		}
	}

	a := p.assess(cur)
	d.Chosen = cur
	d.Settings.PerfEvent = p.perfSettings(cur)
	if p.req.MaxActive > 0 && cur == probe.Kretprobe {
		d.Settings.MaxActive = min(p.req.MaxActive, hazards.MaxActiveLimit)
	}
	settingAction := Action("")
	capped := 0
	for _, f := range a.capping {
		if cur != probe.Kretprobe {
			d.Steps = append(d.Steps, Step{
				From: cur, To: cur, Action: Warn, Hazard: f.ID,
				Reason: fmt.Sprintf("%s: %s; maxactive can only be set on kretprobe, not %s", f.ID, verdictText(f), cur),
			})
			settingAction = firstOf(settingAction, Warn)
			continue
		}
		n, why := p.maxActive(f)
		// Several hazards may cap: each asks for at least its pool, so
		// the largest cap wins.
		if n < capped {
			why += fmt.Sprintf("; kept %d, the larger cap", capped)
			n = capped
		}
		capped = n
		d.Settings.MaxActive = n
		d.Steps = append(d.Steps, Step{
			From: cur, To: cur, Action: Cap, Hazard: f.ID,
			Reason: fmt.Sprintf("%s: %s; maxactive set to %d (%s)", f.ID, verdictText(f), n, why),
		})
		settingAction = firstOf(settingAction, Cap)
	}
	for _, f := range a.pacing {
		pc, why := p.pacing(f, cur)
		d.Settings.Pacing = &pc
		batches := ""
		if pc.Batch > 0 {
			batches = fmt.Sprintf("; a multi link registers %d symbols at a time, each batch one registration", pc.Batch)
		}
		d.Steps = append(d.Steps, Step{
			From: cur, To: cur, Action: Pace, Hazard: f.ID,
			Reason: fmt.Sprintf("%s: %s; registrations paced %s apart, %d at a time%s (%s)", f.ID, verdictText(f), pc.Interval, pc.Concurrency, batches, why),
		})
		settingAction = firstOf(settingAction, Pace)
	}
	for _, f := range a.warning {
		why := "reported only"
		if f.Verdict == hazards.Unknown && onUnknown(f) == hazards.OnUnknownWarn {
			why = "on_unknown warn: reported only"
		}
		d.Steps = append(d.Steps, Step{
			From: cur, To: cur, Action: Warn, Hazard: f.ID,
			Reason: fmt.Sprintf("%s: %s; %s", f.ID, verdictText(f), why),
		})
		settingAction = firstOf(settingAction, Warn)
	}
	for _, f := range a.forced {
		d.Steps = append(d.Steps, Step{
			From: cur, To: cur, Action: Warn, Hazard: f.ID, Forced: true,
			Reason: fmt.Sprintf("%s: %s; forced by the operator, %s would otherwise apply", f.ID, verdictText(f), findingAction(f)),
		})
		d.Forced = appendUnique(d.Forced, f.ID)
		settingAction = firstOf(settingAction, Warn)
	}
	d.Action = firstOf(changed, firstOf(settingAction, Allow))
	return d, nil
}

// batch decides whether the request's targets go through one multi link:
// the request must carry the program in its multi form (a multi link
// takes a program loaded for it, Request.Alternatives), and the multi
// mechanism must be available and safe. It returns the upgrade step, or,
// when not batching, a step that says why (Action Allow: the request
// keeps its mechanism, one link per target).
func (p *planner) batch(cur, multi probe.Mechanism) (Step, bool) {
	n := p.req.Targets
	if !p.hasVariant(multi) {
		return Step{From: cur, To: cur, Action: Allow,
			Reason: fmt.Sprintf("%d targets requested together, not batched: the request has no %s form of the program; one %s link per target", n, multi, cur)}, false
	}
	ma := p.assess(multi)
	if ma.usable() {
		return Step{From: cur, To: multi, Action: Upgrade,
			Reason: fmt.Sprintf("%d targets requested together: batched into one %s link (%s)", n, multi, supportText(ma.support))}, true
	}
	s := Step{From: cur, To: cur, Action: Allow}
	if !ma.available() {
		s.Missing = multi
		s.Reason = fmt.Sprintf("%d targets requested together, not batched: %s %s; one %s link per target", n, multi, supportText(ma.support), cur)
		return s, false
	}
	f := ma.blocking[0]
	s.Hazard = f.ID
	s.Reason = fmt.Sprintf("%d targets requested together, not batched: %s blocks %s (%s); one %s link per target", n, f.ID, multi, verdictText(f), cur)
	return s, false
}

// escape picks the next mechanism away from a blocked one: the first usable
// candidate, or else the first candidate at all (so a chain shows every
// mechanism tried before the refusal).
func (p *planner) escape(a *assessment, visited map[probe.Mechanism]bool) (*assessment, edge, string) {
	var first *assessment
	var firstEdge edge
	var missing []string
	for _, e := range escapes(a.m) {
		if e.onlyMissing && a.available() {
			missing = append(missing, fmt.Sprintf("%s is no remedy for a hazard (only for a missing %s)", e.to, a.m))
			continue
		}
		if visited[e.to] {
			missing = append(missing, fmt.Sprintf("its alternative %s was already rejected", e.to))
			continue
		}
		if e.variant && !p.hasVariant(e.to) {
			missing = append(missing, fmt.Sprintf("the request has no %s variant of the program", e.to))
			continue
		}
		c := p.assess(e.to)
		if c.usable() {
			return c, e, ""
		}
		if first == nil {
			first, firstEdge = c, e
		}
	}
	if first != nil {
		return first, firstEdge, ""
	}
	if len(missing) == 0 {
		return nil, edge{}, "no other mechanism can replace " + string(a.m)
	}
	return nil, edge{}, strings.Join(missing, "; ")
}

// moveStep describes leaving a for e.to.
func (p *planner) moveStep(a *assessment, e edge) Step {
	s := Step{From: a.m, To: e.to, Action: e.action}
	if !a.available() {
		s.Missing = a.m
		s.Reason = fmt.Sprintf("%s %s", a.m, supportText(a.support))
	} else {
		f := a.blocking[0]
		s.Hazard = f.ID
		s.Reason = fmt.Sprintf("%s: %s; action %s", f.ID, verdictText(f), findingAction(f))
	}
	if a.m == probe.PerfEventHardware {
		s.Reason += "; same frequency/period on the software cpu-clock event"
	}
	return s
}

// refuse ends the plan on a.
func (p *planner) refuse(d *Decision, a *assessment, why string) (Decision, *RefusedError) {
	s := Step{From: a.m, Action: Refuse}
	var reasons []string
	if !a.available() {
		s.Missing = a.m
		reasons = append(reasons, fmt.Sprintf("%s %s", a.m, supportText(a.support)))
	}
	for _, f := range a.blocking {
		if s.Hazard == "" && s.Missing == "" {
			s.Hazard = f.ID
		}
		reasons = append(reasons, fmt.Sprintf("%s: %s", f.ID, verdictText(f)))
	}
	if why != "" {
		reasons = append(reasons, why)
	}
	s.Reason = strings.Join(reasons, "; ")
	d.Steps = append(d.Steps, s)
	d.Action = Refuse
	d.Chosen = ""
	d.Settings = Settings{}
	d.Forced = nil

	err := &RefusedError{
		Requested: p.req.Mechanism,
		Target:    p.req.Target,
		Kernel:    kernelText(p.k),
		Tried:     append([]Step(nil), d.Steps...),
		Why:       why,
	}
	// Every hazard that blocked a mechanism along the way blocks the request.
	seen := map[string]bool{}
	for _, st := range d.Steps {
		b := p.assess(st.From)
		if !b.available() {
			key := "missing/" + string(b.m)
			if !seen[key] {
				seen[key] = true
				err.Missing = append(err.Missing, MissingMechanism{Mechanism: b.m, Reason: b.support.Reason, Undecided: !b.support.Known()})
			}
		}
		for _, f := range b.blocking {
			key := string(f.ID) + "/" + string(b.m)
			if seen[key] {
				continue
			}
			seen[key] = true
			bl := Blocker{Hazard: f.ID, Mechanism: b.m, Verdict: f.Verdict, Reason: reasonText(f), Action: findingAction(f)}
			if f.Hazard != nil {
				bl.Title = f.Hazard.Title
				bl.Ranges = append([]string(nil), f.Hazard.Affected...)
				bl.FixedIn = append([]string(nil), f.Hazard.FixedIn...)
			}
			err.Blockers = append(err.Blockers, bl)
		}
	}
	err.ForceHint = forceHint(err.Blockers)
	return *d, err
}

func (p *planner) perfSettings(m probe.Mechanism) *PerfEvent {
	if m != probe.PerfEventHardware && m != probe.PerfEventSoftware {
		return nil
	}
	pe := PerfEvent{}
	if p.req.PerfEvent != nil {
		pe = *p.req.PerfEvent
	}
	pe.Hardware = m == probe.PerfEventHardware
	return &pe
}

// requestedSettings are the settings of an attach exactly as requested.
func (p *planner) requestedSettings() Settings {
	s := Settings{PerfEvent: p.perfSettings(p.req.Mechanism)}
	if p.req.Mechanism == probe.Kretprobe && p.req.MaxActive > 0 {
		s.MaxActive = min(p.req.MaxActive, hazards.MaxActiveLimit)
	}
	return s
}

// params returns the hazard's parameters, as the catalog in effect has
// them (a policy's overrides are already applied there).
func (p *planner) params(f hazards.Finding) hazards.Params {
	if f.Hazard == nil {
		return hazards.Params{}
	}
	return f.Hazard.Params
}

// maxActive computes the capped maxactive: the requested value, else the
// hazard's (or policy's) default, else the kernel's own default
// max(10, 2*CPUs); never above the ceiling, which never exceeds
// hazards.MaxActiveLimit.
func (p *planner) maxActive(f hazards.Finding) (int, string) {
	pr := p.params(f)
	ceiling := pr.MaxActiveCeiling
	if ceiling <= 0 || ceiling > hazards.MaxActiveLimit {
		ceiling = hazards.MaxActiveLimit
	}
	n, src := p.req.MaxActive, "requested"
	if n <= 0 {
		n, src = pr.MaxActive, "hazard default"
	}
	kernelDefault := max(10, 2*p.k.CPUs)
	if n <= 0 {
		n, src = kernelDefault, "kernel default max(10, 2*CPUs)"
	}
	// A hazard's default never shrinks the pool below what the kernel
	// would allocate on its own: on a machine with more than 256 possible
	// CPUs, 512 would miss more returns than no cap at all. (Before
	// 3b7ddab8a19a a non-preemptible kernel's default was CPUs, not
	// 2*CPUs: the larger figure only errs towards more instances.) An
	// explicit request is the caller's to make.
	if src == "hazard default" && p.k.CPUs > 0 && n < kernelDefault {
		n, src = kernelDefault, fmt.Sprintf("kernel default max(10, 2*CPUs) %d, above the hazard default %d", kernelDefault, pr.MaxActive)
	}
	if n > ceiling {
		return ceiling, fmt.Sprintf("%s %d above ceiling %d", src, n, ceiling)
	}
	return n, fmt.Sprintf("%s, ceiling %d", src, ceiling)
}

// pacing computes uprobe pacing for mechanism m: the policy's uprobes
// section, else the hazard's params (with policy overrides), else the
// package defaults. Batch is set for multi links only.
func (p *planner) pacing(f hazards.Finding, m probe.Mechanism) (Pacing, string) {
	pr := p.params(f)
	pc := Pacing{Interval: time.Duration(pr.PaceInterval), Concurrency: pr.PaceConcurrency}
	batch := pr.PaceBatch
	src := "hazard parameters"
	if p.pol != nil {
		if p.pol.Uprobes.Interval > 0 {
			pc.Interval, src = time.Duration(p.pol.Uprobes.Interval), "policy uprobes"
		}
		if p.pol.Uprobes.Concurrency > 0 {
			pc.Concurrency, src = p.pol.Uprobes.Concurrency, "policy uprobes"
		}
		if p.pol.Uprobes.Batch > 0 {
			batch, src = p.pol.Uprobes.Batch, "policy uprobes"
		}
	}
	if pc.Interval <= 0 {
		pc.Interval = DefaultPaceInterval
	}
	if pc.Concurrency <= 0 {
		pc.Concurrency = DefaultPaceConcurrency
	}
	if m == probe.UprobeMulti || m == probe.UretprobeMulti {
		if batch <= 0 {
			batch = DefaultPaceBatch
		}
		pc.Batch = batch
	}
	return pc, src
}

// reasonText is the finding's reason without the "<id>: " prefix the
// catalog puts on it (the planner names the hazard itself).
func reasonText(f hazards.Finding) string {
	return strings.TrimPrefix(f.Reason, string(f.ID)+": ")
}

func verdictText(f hazards.Finding) string {
	r := reasonText(f)
	if r == "" {
		r = "no reason given"
	}
	if f.Verdict == hazards.Unknown {
		switch onUnknown(f) {
		case hazards.OnUnknownWarn, hazards.OnUnknownAllow:
			return "verdict unknown (" + r + ")"
		}
		return "verdict unknown (" + r + "), treated as not safe"
	}
	return string(f.Verdict) + " (" + r + ")"
}

func supportText(s probe.Support) string {
	r := s.Reason
	if r == "" {
		r = "no reason given"
	}
	switch {
	case s.Yes():
		return "is available (" + r + ")"
	case s.No():
		return "is not available (" + r + ")"
	}
	return "availability is undecided (" + r + "), treated as not available"
}

func kernelText(k *probe.Kernel) string {
	if k == nil || k.Release == "" && k.Version == nil {
		return "an unknown kernel"
	}
	v := "upstream version unknown"
	if k.Version != nil {
		v = "upstream " + k.Version.String()
	}
	if k.Release == "" {
		return "kernel " + v
	}
	return fmt.Sprintf("kernel %s (%s)", k.Release, v)
}

// firstOf returns a unless it is empty.
func firstOf(a, b Action) Action {
	if a != "" {
		return a
	}
	return b
}

func appendUnique(ids []hazards.ID, id hazards.ID) []hazards.ID {
	if id == "" || slices.Contains(ids, id) {
		return ids
	}
	return append(ids, id)
}
