package loader

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"sort"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/internal/elfscan"
	"github.com/safebpf/safebpf/probe"
)

// Collection is a loaded and attached CollectionSpec. Close it to detach
// every link and free every program and map it still owns.
type Collection struct {
	// Maps, Programs and Variables are the loaded objects by name, as in
	// ebpf.Collection. Programs holds the chosen alternatives and the
	// programs that are not attached (socket filters, Manual, ...), not
	// the unchosen alternatives or skipped optional programs. They are
	// loaded in audit mode too.
	Maps      map[string]*ebpf.Map
	Programs  map[string]*ebpf.Program
	Variables map[string]*ebpf.Variable
	// Links holds the attachment of every attached program, by program
	// name. Empty in audit mode.
	Links map[string]*Link
	// Decisions holds the decision of every chosen program (one per
	// program: a kprobe and kretprobe standing in for an fexit have one
	// each), then of every refused or skipped group, in Plans order.
	Decisions []fallback.Decision
	// Plans describes every program of the spec: what it is, its
	// alternatives, what was chosen and why.
	Plans []ProgramPlan

	coll       *ebpf.Collection
	loader     *Loader
	registered []*ebpf.Program
	closed     bool
}

// Close detaches every link, then frees the programs and maps the
// Collection still owns (not those moved out by Assign). Calling it twice
// is safe.
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
	if c.loader != nil {
		c.loader.forget(c.registered)
	}
	return errors.Join(errs...)
}

// Decision returns the decision that covered the named program, whether
// it was chosen, refused, or removed as an unchosen alternative.
func (c *Collection) Decision(program string) (fallback.Decision, bool) {
	for _, p := range c.Plans {
		if p.Program == program && p.Decision != nil {
			return *p.Decision, true
		}
	}
	return fallback.Decision{}, false
}

// Assign fills the ebpf-tagged fields of the struct to points to (as
// bpf2go's objects and ebpf.Collection.Assign do) with the Collection's
// maps, programs and variables. A program of the spec that was not
// loaded (an unchosen alternative, a skipped optional program) leaves its
// field nil; a name the spec does not have is an error. As with
// ebpf.Collection.Assign, the assigned maps, programs and variables move
// to the caller, who closes them; the Collection keeps its links, so
// Close it to detach.
func (c *Collection) Assign(to any) error {
	inSpec := map[string]bool{}
	for _, p := range c.Plans {
		inSpec[p.Program] = true
	}
	type assigned struct {
		kind string
		name string
	}
	var done []assigned
	err := assignFields(to, func(t reflect.Type, name string) (reflect.Value, error) {
		switch t {
		case reflect.TypeFor[*ebpf.Program]():
			if p := c.Programs[name]; p != nil {
				done = append(done, assigned{"program", name})
				return reflect.ValueOf(p), nil
			}
			if inSpec[name] {
				return reflect.Zero(t), nil
			}
			return reflect.Value{}, fmt.Errorf("missing program %q", name)
		case reflect.TypeFor[*ebpf.Map]():
			if m := c.Maps[name]; m != nil {
				done = append(done, assigned{"map", name})
				return reflect.ValueOf(m), nil
			}
			return reflect.Value{}, fmt.Errorf("missing map %q", name)
		case reflect.TypeFor[*ebpf.Variable]():
			if v := c.Variables[name]; v != nil {
				done = append(done, assigned{"variable", name})
				return reflect.ValueOf(v), nil
			}
			return reflect.Value{}, fmt.Errorf("missing variable %q", name)
		}
		return reflect.Value{}, fmt.Errorf("unsupported type %s", t)
	})
	if err != nil {
		return fmt.Errorf("assign: %w", err)
	}
	for _, a := range done {
		switch a.kind {
		case "program":
			delete(c.Programs, a.name)
		case "map":
			delete(c.Maps, a.name)
		case "variable":
			delete(c.Variables, a.name)
		}
	}
	return nil
}

// assignFields sets every field of *to tagged `ebpf:"name"` (also in
// embedded and nested structs, as cilium/ebpf does) to get's value.
func assignFields(to any, get func(reflect.Type, string) (reflect.Value, error)) error {
	v := reflect.ValueOf(to)
	if !v.IsValid() || v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("%T is not a non-nil pointer to a struct", to)
	}
	seen := map[string]string{}
	var walk func(s reflect.Value, visited map[reflect.Type]bool) error
	walk = func(s reflect.Value, visited map[reflect.Type]bool) error {
		t := s.Type()
		if visited[t] {
			return fmt.Errorf("recursion on type %s", t)
		}
		visited[t] = true
		defer delete(visited, t)
		for i := 0; i < t.NumField(); i++ {
			f, fv := t.Field(i), s.Field(i)
			tag := f.Tag.Get("ebpf")
			if tag == "" {
				switch {
				case f.Type.Kind() == reflect.Struct:
					if err := walk(fv, visited); err != nil {
						return fmt.Errorf("field %s: %w", f.Name, err)
					}
				case f.Type.Kind() == reflect.Pointer && f.Type.Elem().Kind() == reflect.Struct:
					if fv.IsNil() {
						return fmt.Errorf("field %s: nil pointer to %s", f.Name, f.Type.Elem())
					}
					if err := walk(fv.Elem(), visited); err != nil {
						return fmt.Errorf("field %s: %w", f.Name, err)
					}
				}
				continue
			}
			if strings.Contains(tag, ",") {
				return fmt.Errorf("field %s: ebpf tag contains a comma", f.Name)
			}
			key := f.Type.String() + "/" + tag
			if other, ok := seen[key]; ok {
				return fmt.Errorf("field %s: object %q was already assigned to %s", f.Name, tag, other)
			}
			val, err := get(f.Type, tag)
			if err != nil {
				return fmt.Errorf("field %s: %w", f.Name, err)
			}
			if !fv.CanSet() {
				return fmt.Errorf("field %s: can't set value", f.Name)
			}
			fv.Set(val)
			seen[key] = f.Name
		}
		return nil
	}
	return walk(v.Elem(), map[reflect.Type]bool{})
}

// LoadAndAttach plans every tracing program of spec, chooses one
// alternative per group, removes the unchosen ones from a copy of spec
// (the verifier never sees them), loads the copy and attaches every
// chosen program with the planned mechanism and settings. spec is not
// modified; the Loader keeps its program specs while the programs are
// loaded (the per-attachment calls read them, and load a program again
// for a batch), so leave them unchanged until the Collection is closed.
//
// In enforce mode a refusal of a group that is not optional fails the
// call with an error matching ErrRefused that names the refused program,
// before anything is loaded; an optional group is skipped. In warn mode
// programs attach as requested and the decisions record what enforce
// would have done. In audit mode maps and programs are loaded (so an
// agent runs) and nothing is attached.
//
// On any failure, everything the call created (programs, maps, links,
// perf events, tracefs events) is closed before it returns, and the log
// records of its decisions have reached the Logger (waiting at most
// telemetry.DurableWait, 1s).
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
	ctx, end := l.begin(ctx)
	defer end()
	an, err := analyse(spec, opts, l.resolver())
	if err != nil {
		return nil, fmt.Errorf("load and attach: %w", err)
	}
	plans := make([]*groupPlan, len(an.groups))
	for i, g := range an.groups {
		plans[i] = planGroup(l.planner, g, opts)
	}
	c := &Collection{Maps: map[string]*ebpf.Map{}, Programs: map[string]*ebpf.Program{}, Links: map[string]*Link{}, loader: l}
	c.addPlans(an, plans)
	audit := l.policy.Mode == hazards.Audit

	// A refused group that is not optional fails the call: each refusal is
	// reported on its own program. Nothing else was attached, so nothing
	// else is recorded.
	var refused []error
	for _, gp := range plans {
		if tr, ok := gp.refusal(); ok && !gp.g.optional && !audit {
			err := &AttachError{Program: tr.prog.name, Op: "plan", Decision: tr.d, Err: tr.err}
			l.record(ctx, tr.d, tr.prog.name).finish(err)
			refused = append(refused, err)
		}
	}
	if len(refused) > 0 {
		return nil, errors.Join(refused...)
	}
	// Skipped optional groups (and refusals in audit mode) are recorded
	// as refused, on the program refused.
	for _, gp := range plans {
		if tr, ok := gp.refusal(); ok {
			l.record(ctx, tr.d, tr.prog.name).finish(&AttachError{Program: tr.prog.name, Op: "plan", Decision: tr.d, Err: tr.err})
		}
	}

	// Load. A program the kernel will not load (a sleepable fentry on a
	// function that may not sleep, a target without BTF, ...) gives way
	// to the next alternative of its group, as libbpf-tools' "try fentry,
	// else kprobe" does; each retry removes one alternative.
	var cp *ebpf.CollectionSpec
	var coll *ebpf.Collection
	for {
		cp = loadSpec(spec, an, plans)
		coll, err = l.load(cp, opts)
		if err == nil {
			break
		}
		gp, p := failedAlternative(err, plans)
		if gp == nil || !replanAfterLoadFailure(l.planner, gp, p, err, opts) {
			break
		}
		c = &Collection{Maps: map[string]*ebpf.Map{}, Programs: map[string]*ebpf.Program{}, Links: map[string]*Link{}, loader: l}
		c.addPlans(an, plans)
		if tr, ok := gp.refusal(); ok {
			aerr := &AttachError{Program: tr.prog.name, Op: "load", Decision: tr.d, Err: tr.err}
			l.record(ctx, tr.d, tr.prog.name).finish(aerr)
			if !gp.g.optional {
				return nil, aerr
			}
		}
	}
	if err != nil {
		for _, gp := range plans {
			if gp.chosen == nil {
				continue
			}
			for _, p := range gp.chosen.progs {
				l.record(ctx, gp.decisions[p], p.name).finish(err)
			}
		}
		return nil, err
	}
	c.coll = coll
	c.Maps, c.Programs, c.Variables = coll.Maps, coll.Programs, coll.Variables
	l.remember(c, an, cp, opts.collection().Programs)

	type pending struct {
		name string
		a    *attempt
	}
	var done []pending
	fail := func(failed string, err error) (*Collection, error) {
		for _, p := range done {
			p.a.finish(&rolledBack{cause: fmt.Sprintf("program %q", failed)})
		}
		c.Close()
		return nil, err
	}
	execs := map[string]*link.Executable{}
	for _, gp := range plans {
		if gp.chosen == nil {
			continue
		}
		first := len(done) // this group's programs are done[first:]
		for _, p := range gp.chosen.progs {
			d := gp.decisions[p]
			a := l.record(ctx, d, p.name)
			if audit {
				done = append(done, pending{p.name, a})
				continue
			}
			if err := ctx.Err(); err != nil {
				a.finish(err)
				return fail(p.name, err)
			}
			lk, err := l.attachProgram(ctx, p, coll.Programs[p.name], d, opts, execs, coll, cp)
			if err != nil {
				err = &AttachError{Program: p.name, Op: "attach", Decision: d, Err: err}
				a.finish(err)
				if !gp.g.optional {
					return fail(p.name, err)
				}
				// Skip the whole alternative: a kprobe without its
				// kretprobe would leave half a measurement.
				for _, m := range done[first:] {
					c.Links[m.name].Close()
					delete(c.Links, m.name)
					m.a.finish(&rolledBack{cause: fmt.Sprintf("program %q", p.name)})
				}
				done = done[:first]
				c.markError(p.name, err)
				break
			}
			c.Links[p.name] = lk
			if changed := !equalSteps(lk.decision.Steps, d.Steps) || lk.decision.Chosen != d.Chosen; changed {
				// The attach fell back or left targets out: record
				// what was done.
				a.d = lk.decision
				c.setDecision(p.name, lk.decision)
			}
			done = append(done, pending{p.name, a})
			if err := l.stepOn("attached", p.name); err != nil {
				return fail(p.name, err)
			}
		}
	}
	for _, p := range done {
		p.a.finish(nil)
	}
	return c, nil
}

// failedAlternative finds, in a load error of cilium/ebpf ("program NAME:
// ..."), the chosen program the kernel would not load, when its group has
// alternatives left to try.
func failedAlternative(err error, plans []*groupPlan) (*groupPlan, *progInfo) {
	msg := err.Error()
	i := strings.Index(msg, "program ")
	if i < 0 {
		return nil, nil
	}
	name, rest, ok := strings.Cut(msg[i+len("program "):], ": ")
	if !ok || strings.HasPrefix(rest, "map ") {
		return nil, nil // a map failed to load: no alternative helps
	}
	for _, gp := range plans {
		if gp.chosen == nil {
			continue
		}
		for _, p := range gp.chosen.progs {
			if p.name == name && gp.chosen != gp.g.alts[len(gp.g.alts)-1] {
				return gp, p
			}
		}
	}
	return nil, nil
}

// load loads cp, after the test hook.
func (l *Loader) load(cp *ebpf.CollectionSpec, opts *CollectionOptions) (*ebpf.Collection, error) {
	if err := l.step("load"); err != nil {
		return nil, err
	}
	coll, err := ebpf.NewCollectionWithOptions(cp, opts.collection())
	if err != nil {
		return nil, &AttachError{Op: "load collection", Err: err}
	}
	return coll, nil
}

// loadSpec returns the spec to load: the chosen alternatives (a multi
// program chosen as single probes is loaded as such), the programs that
// are not attached, and nothing else. It shares spec's maps, variables,
// types and unchanged programs (cilium/ebpf copies what it changes while
// loading; a deep copy of every instruction cost more than the rest of
// safebpf's work on a large collection); programs it changes are copies.
func loadSpec(spec *ebpf.CollectionSpec, an *analysis, plans []*groupPlan) *ebpf.CollectionSpec {
	cp := &ebpf.CollectionSpec{
		Maps:      spec.Maps,
		Programs:  make(map[string]*ebpf.ProgramSpec, len(spec.Programs)),
		Variables: spec.Variables,
		Types:     spec.Types,
		ByteOrder: spec.ByteOrder,
	}
	for name, ps := range spec.Programs {
		cp.Programs[name] = ps
	}
	chosen := map[string]*progInfo{}
	for _, gp := range plans {
		if gp.chosen != nil {
			for _, p := range gp.chosen.progs {
				chosen[p.name] = p
			}
		}
	}
	for _, pi := range an.infos {
		_, skipped := an.skipped[pi]
		if !pi.attaches() && !skipped {
			continue
		}
		p, ok := chosen[pi.name]
		if !ok {
			delete(cp.Programs, pi.name)
			continue
		}
		// A variant, or a hand-built spec completed by analyse: the
		// loader's own copy.
		cp.Programs[pi.name] = p.spec
		// Trampoline programs load against their target: carry over a
		// target inherited from a retargeted alternative.
		if k := p.mech(); (k == probe.Fentry || k == probe.Fexit || k == probe.FmodRet) && p.spec.AttachTo != p.class.ap.symbol {
			c := p.spec.Copy()
			c.AttachTo = p.class.ap.symbol
			cp.Programs[pi.name] = c
		}
	}
	return cp
}

// attachProgram attaches one chosen program of a collection. A multi
// link the kernel refuses falls back to single probes, the program's
// single form loaded from cp against the collection's maps; the returned
// Link's Decision then says so, as it says which targets of an optional
// batch were left out.
func (l *Loader) attachProgram(ctx context.Context, p *progInfo, prog *ebpf.Program, d fallback.Decision, opts *CollectionOptions,
	execs map[string]*link.Executable, coll *ebpf.Collection, cp *ebpf.CollectionSpec) (*Link, error) {
	if err := l.stepOn("attach", p.name); err != nil {
		return nil, err
	}
	w := where{ap: p.class.ap, optional: p.optionalTargets, skipped: p.skipped}
	switch p.mech() {
	case probe.Uprobe, probe.Uretprobe, probe.UprobeMulti, probe.UretprobeMulti:
		t, _ := opts.uprobe(p.name)
		w.uprobe = t.Options
		ex, ok := execs[w.ap.path]
		if !ok {
			var err error
			ex, err = link.OpenExecutable(w.ap.path)
			if err != nil {
				return nil, fmt.Errorf("open executable %q: %w", w.ap.path, err)
			}
			execs[w.ap.path] = ex
		}
		w.ex = ex
	case probe.PerfEventHardware, probe.PerfEventSoftware:
		w.perf, _ = opts.perfEvent(p.name)
	}
	if isMulti(d.Chosen) {
		req := requestFor(p, nil, []*elfscan.Result{&p.scan}, opts.seccomp(p.name), opts)
		w.req = &req
		w.forms = &forms{mech: d.Chosen, prog: prog, spec: cp.Programs[p.name], maps: coll.Maps, opts: opts.collection().Programs}
	}
	return l.attachChosen(ctx, d.Chosen, prog, w, d)
}

// loadedProgram is what the Loader remembers of a program it loaded, for
// the per-attachment calls: its spec, what its instructions do, and the
// maps it was loaded with (to load it again in another form: a kprobe
// program as a kprobe_multi one, for a batch).
type loadedProgram struct {
	spec     *ebpf.ProgramSpec
	scan     elfscan.Result
	maps     map[string]*ebpf.Map
	progOpts ebpf.ProgramOptions
	// forms are the program's other forms loaded for batches, kept for
	// the next batch and closed when the Loader forgets the program.
	forms *keptForms
}

// remember records the programs of c, loaded from cp with the program
// options po, for later per-attachment calls.
func (l *Loader) remember(c *Collection, an *analysis, cp *ebpf.CollectionSpec, po ebpf.ProgramOptions) {
	ms := maps.Clone(c.Maps) // Assign takes maps out of c.Maps
	byName := map[string]*progInfo{}
	for _, pi := range an.infos {
		byName[pi.name] = pi
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.loaded == nil {
		l.loaded = map[*ebpf.Program]loadedProgram{}
	}
	for name, prog := range c.Programs {
		pi := byName[name]
		if pi == nil {
			continue
		}
		lp := loadedProgram{spec: cp.Programs[name], scan: pi.scan, maps: ms, progOpts: po, forms: &keptForms{}}
		if !pi.attaches() {
			lp.scan = elfscan.Program(pi.spec, cp.Programs)
		}
		l.loaded[prog] = lp
		c.registered = append(c.registered, prog)
	}
}

func (l *Loader) forget(progs []*ebpf.Program) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range progs {
		if lp, ok := l.loaded[p]; ok && lp.forms != nil {
			lp.forms.close()
		}
		delete(l.loaded, p)
	}
}

// lookup returns what the Loader remembers of prog.
func (l *Loader) lookup(prog *ebpf.Program) (loadedProgram, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	lp, ok := l.loaded[prog]
	return lp, ok
}
