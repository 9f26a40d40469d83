package loader

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/internal/elfscan"
	"github.com/safebpf/safebpf/probe"
)

// The per-attachment calls take cilium/ebpf's own option types and return
// a *Link (a link.Link), so that migrating from package link is a rename:
// link.Kprobe(sym, prog, opts) becomes l.Kprobe(sym, prog, opts). What
// safebpf adds (program variants, facts about the program and its target)
// goes in an optional trailing *Extra.

// scans returns what is known of the programs' instructions: from
// Extra.Spec for prog, else from what the Loader remembers of programs it
// loaded; nil for a program nobody could look at.
func (l *Loader) scans(x Extra, prog *ebpf.Program, variants map[probe.Mechanism]*ebpf.Program) []*elfscan.Result {
	one := func(p *ebpf.Program, spec *ebpf.ProgramSpec) *elfscan.Result {
		if spec != nil {
			r := elfscan.Program(spec, nil)
			return &r
		}
		if lp, ok := l.lookup(p); ok {
			r := lp.scan
			return &r
		}
		return nil
	}
	out := []*elfscan.Result{one(prog, x.Spec)}
	for _, v := range variants {
		if v != nil {
			out = append(out, one(v, nil))
		}
	}
	return out
}

// specOf returns the spec of prog: Extra.Spec, else the one the Loader
// kept when it loaded prog, else nil.
func (l *Loader) specOf(x Extra, prog *ebpf.Program) *ebpf.ProgramSpec {
	if x.Spec != nil {
		return x.Spec
	}
	if lp, ok := l.lookup(prog); ok {
		return lp.spec
	}
	return nil
}

// variantMechs returns the mechanisms of the given variants among those
// the request may move to, in the order given.
func variantMechs(variants map[probe.Mechanism]*ebpf.Program, allowed ...probe.Mechanism) []probe.Mechanism {
	var out []probe.Mechanism
	for _, m := range allowed {
		if variants[m] != nil {
			out = append(out, m)
		}
	}
	return out
}

// attachOne plans req and attaches the program of the chosen mechanism:
// prog for the requested one, else the variant the forms give (the
// caller's, or a form of prog the Loader loads). A multi link whose
// program form cannot be loaded falls back to single probes with prog,
// and one the kernel refuses as attachChosen says; either way the
// Decision recorded and returned is the one carried out.
func (l *Loader) attachOne(req fallback.Request, prog *ebpf.Program, f *forms, w where) (*Link, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	if prog == nil && l.policy.Mode != hazards.Audit {
		return nil, fmt.Errorf("attach %s to %s: nil program: %w", req.Mechanism, req.Target, errInvalidInput)
	}
	ctx, end := l.begin(context.Background())
	defer end()
	a, err := l.plan(ctx, req)
	if err != nil {
		if l.policy.Mode == hazards.Audit {
			return &Link{decision: a.d}, nil
		}
		return nil, err
	}
	if l.policy.Mode == hazards.Audit {
		a.finish(nil)
		return &Link{decision: a.d}, nil
	}
	if w.req == nil {
		w.req = &req
	}
	if w.forms == nil {
		w.forms = f
	}
	chosen, m, d := prog, a.d.Chosen, a.d
	if m != req.Mechanism && !samePerf(m, req.Mechanism) {
		p, owned, err := f.get(m)
		switch {
		case err == nil:
			chosen = p
			if owned {
				defer p.Close() // the links hold the program
			}
		case m.Single() == req.Mechanism:
			// The batch's multi form would not load: single probes with
			// the caller's program.
			d, err = l.replanSingle(a.d, req, req.Mechanism, len(w.targets()), err)
			if err != nil {
				e := &AttachError{Op: "attach", Decision: a.d, Err: err}
				a.finish(e)
				return nil, e
			}
			m = req.Mechanism
		default:
			e := &AttachError{Op: "attach", Decision: a.d,
				Err: fmt.Errorf("no program variant for %s: %w", m, err)}
			a.finish(e)
			return nil, e
		}
	}
	lk, err := l.attachChosen(a.ctx, m, chosen, w, d)
	if err != nil {
		e := &AttachError{Op: "attach", Decision: d, Err: err}
		a.d = d
		a.finish(e)
		return nil, e
	}
	a.d = lk.decision
	a.finish(nil)
	return lk, nil
}

// Kprobe attaches prog to the entry of the kernel function symbol, as
// cilium/ebpf's link.Kprobe does (retrying with the arch's syscall prefix),
// after planning. With a fentry variant in extra (loaded with AttachTo set
// to the symbol) the request may move to it where kprobes are missing or
// hazardous.
func (l *Loader) Kprobe(symbol string, prog *ebpf.Program, opts *link.KprobeOptions, extra ...*Extra) (*Link, error) {
	return l.kprobe(probe.Kprobe, probe.Fentry, symbol, prog, opts, extra)
}

// Kretprobe attaches prog to the return of the kernel function symbol, as
// link.Kretprobe does, after planning: maxactive (opts.RetprobeMaxActive,
// or a hazard's cap) is set through a tracefs event whose group names this
// process, and with an fexit variant in extra the request may move to it.
func (l *Loader) Kretprobe(symbol string, prog *ebpf.Program, opts *link.KprobeOptions, extra ...*Extra) (*Link, error) {
	return l.kprobe(probe.Kretprobe, probe.Fexit, symbol, prog, opts, extra)
}

func (l *Loader) kprobe(m, tramp probe.Mechanism, symbol string, prog *ebpf.Program, opts *link.KprobeOptions, extra []*Extra) (*Link, error) {
	x, err := extraOf(extra)
	if err != nil {
		return nil, err
	}
	ap := attachPoint{mech: m, symbol: symbol, target: symbol, name: symbol}
	o := requestOptions{alternatives: variantMechs(x.Variants, tramp), keep: x.KeepMechanism, seccomp: true, attachTo: ap.attachTo()}
	if opts != nil {
		ap.offset = opts.Offset
		o.maxActive = opts.RetprobeMaxActive
		if opts.Offset != 0 {
			o.alternatives = nil // a trampoline cannot attach inside a function
		}
	}
	req := newRequest(m, symbol, l.scans(x, prog, x.Variants), o)
	return l.attachOne(req, prog, l.formsOf(x, prog, m), where{ap: ap, kprobe: opts})
}

// KprobeMulti attaches prog to the entry of every function in
// opts.Symbols or opts.Addresses through one kprobe_multi link, as
// link.KprobeMulti does (5.18+), after planning. A kprobe variant in
// extra (the same program loaded without AttachTraceKprobeMulti) lets the
// request move to one kprobe per symbol where the kernel has no
// kprobe_multi.
func (l *Loader) KprobeMulti(prog *ebpf.Program, opts link.KprobeMultiOptions, extra ...*Extra) (*Link, error) {
	return l.kprobeMulti(probe.KprobeMulti, probe.Kprobe, prog, opts, extra)
}

// KretprobeMulti is KprobeMulti at the functions' return
// (link.KretprobeMulti); the variant is a kretprobe.
func (l *Loader) KretprobeMulti(prog *ebpf.Program, opts link.KprobeMultiOptions, extra ...*Extra) (*Link, error) {
	return l.kprobeMulti(probe.KretprobeMulti, probe.Kretprobe, prog, opts, extra)
}

func (l *Loader) kprobeMulti(m, single probe.Mechanism, prog *ebpf.Program, opts link.KprobeMultiOptions, extra []*Extra) (*Link, error) {
	x, err := extraOf(extra)
	if err != nil {
		return nil, err
	}
	if opts.Session {
		return nil, fmt.Errorf("attach %s: kprobe sessions are not planned by safebpf yet: %w", m, ErrNotSupported)
	}
	n := len(opts.Symbols) + len(opts.Addresses)
	target := describeTargets(opts.Symbols, len(opts.Addresses))
	ap := attachPoint{mech: m, target: target, symbols: opts.Symbols}
	if len(opts.Symbols) == 1 {
		ap.symbol = opts.Symbols[0]
	}
	o := requestOptions{keep: x.KeepMechanism, seccomp: true, targets: n, attachTo: ap.attachTo()}
	f := l.formsOf(x, prog, m)
	if len(opts.Addresses) == 0 && f.can(single) {
		o.alternatives = []probe.Mechanism{single}
	}
	req := newRequest(m, target, l.scans(x, prog, x.Variants), o)
	return l.attachOne(req, prog, f, where{ap: ap, kprobeMulti: &opts})
}

func describeTargets(symbols []string, addrs int) string {
	switch {
	case addrs > 0:
		return fmt.Sprintf("%d addresses", addrs)
	case len(symbols) <= 3:
		return strings.Join(symbols, ",")
	}
	return fmt.Sprintf("%s,... (%d functions)", strings.Join(symbols[:3], ","), len(symbols))
}

// AttachTracing attaches an fentry, fexit, fmod_ret or tp_btf program, as
// link.AttachTracing does, after planning. opts.AttachType is optional, as
// in cilium/ebpf: unset, the program's own attach type is taken from
// extra's Spec or from the spec the Loader kept when it loaded the
// program. When neither is known, every type the program can be on this
// kernel (a type the kernel lacks could not have loaded) is planned; it
// attaches only when all of them would attach as they are, the kernel
// then uses the program's own type, and the Decision recorded is the one
// for the type the kernel reports. With a kprobe (kretprobe for fexit)
// variant in extra, and the target function known from the spec, the
// request may move to it.
func (l *Loader) AttachTracing(opts link.TracingOptions, extra ...*Extra) (*Link, error) {
	x, err := extraOf(extra)
	if err != nil {
		return nil, err
	}
	if opts.Program == nil {
		return nil, fmt.Errorf("attach tracing program: nil program: %w", errInvalidInput)
	}
	spec := l.specOf(x, opts.Program)
	at := opts.AttachType
	if at == ebpf.AttachNone && spec != nil {
		at = spec.AttachType
	}
	target := programName(opts.Program)
	if spec != nil && spec.AttachTo != "" {
		target = spec.AttachTo
	}
	ap := attachPoint{symbol: target, name: target, target: target}
	w := where{ap: ap, cookie: opts.Cookie}
	o := requestOptions{keep: x.KeepMechanism, seccomp: true}
	switch at {
	case ebpf.AttachTraceFEntry:
		ap.mech = probe.Fentry
		o.alternatives = variantMechs(x.Variants, probe.Kprobe)
	case ebpf.AttachTraceFExit:
		ap.mech = probe.Fexit
		o.alternatives = variantMechs(x.Variants, probe.Kretprobe)
	case ebpf.AttachModifyReturn:
		ap.mech = probe.FmodRet
	case ebpf.AttachTraceRawTp:
		ap.mech = probe.TpBTF
		o.alternatives = variantMechs(x.Variants, probe.RawTracepoint, probe.Tracepoint)
		if slices.Contains(o.alternatives, probe.Tracepoint) {
			w.ap.group = l.tracepointGroup(target)
		}
	case ebpf.AttachNone:
		return l.attachTracingUnknown(opts, x, w)
	default:
		return nil, fmt.Errorf("attach tracing program %s: attach type %s: want fentry, fexit, fmod_ret or raw_tp: %w", target, at, errInvalidInput)
	}
	if spec != nil && spec.AttachTo != "" {
		o.attachTo = []string{spec.AttachTo}
	}
	if len(o.alternatives) > 0 && (spec == nil || spec.AttachTo == "") {
		return nil, fmt.Errorf("attach %s program %s with a variant: the target is unknown (pass Extra.Spec, the program's spec): %w", ap.mech, target, errInvalidInput)
	}
	w.ap.mech = ap.mech
	req := newRequest(ap.mech, target, l.scans(x, opts.Program, x.Variants), o)
	return l.attachOne(req, opts.Program, l.formsOf(x, opts.Program, ap.mech), w)
}

// tracingCandidates are the types AttachTracing accepts.
var tracingCandidates = []probe.Mechanism{probe.Fentry, probe.Fexit, probe.FmodRet, probe.TpBTF}

// attachTracingUnknown attaches a tracing program whose attach type
// nobody told: see AttachTracing.
func (l *Loader) attachTracingUnknown(opts link.TracingOptions, x Extra, w where) (*Link, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	ctx, end := l.begin(context.Background())
	defer end()
	scans := l.scans(x, opts.Program, nil)
	type cand struct {
		m   probe.Mechanism
		d   fallback.Decision
		err error
	}
	var cands []cand
	k, err := l.kernel.need(ctx, tracingCandidates)
	if err != nil {
		return nil, fmt.Errorf("attach tracing program %s: %w", w.ap.target, err)
	}
	for _, m := range tracingCandidates {
		if k.Support(m).No() {
			continue // such a program could not have loaded here
		}
		req := newRequest(m, w.ap.target, scans, requestOptions{keep: true, seccomp: true})
		d, err := l.planner.plan(req)
		cands = append(cands, cand{m, d, err})
	}
	if len(cands) == 0 {
		return nil, fmt.Errorf("attach tracing program %s: the kernel has none of fentry, fexit, fmod_ret and tp_btf: %w", w.ap.target, ErrNotSupported)
	}
	var why []string
	var firstErr error
	for _, c := range cands {
		switch {
		case c.err != nil:
			why = append(why, fmt.Sprintf("as %s it would be refused", c.m))
			firstErr = cmpErr(firstErr, newRefusal(c.err))
		case c.d.Chosen != c.m || c.d.Action == fallback.Warn && c.d.WouldAction != "" && c.d.WouldAction != fallback.Allow:
			why = append(why, fmt.Sprintf("as %s it would be %s", c.m, Explain(c.d)))
		}
	}
	if len(why) > 0 {
		d := cands[0].d
		err := fmt.Errorf("attach tracing program %s: its attach type is unknown (TracingOptions.AttachType is unset and the program was not loaded by this Loader), and %s: set TracingOptions.AttachType or pass Extra.Spec",
			w.ap.target, strings.Join(why, "; "))
		if firstErr != nil {
			err = fmt.Errorf("%w: %w", err, firstErr)
		} else {
			err = fmt.Errorf("%w: %w", err, errInvalidInput)
		}
		a := l.record(ctx, d, "")
		a.finish(err)
		return nil, err
	}
	if l.policy.Mode == hazards.Audit {
		a := l.record(ctx, cands[0].d, "")
		a.finish(nil)
		return &Link{decision: cands[0].d}, nil
	}
	none := ebpf.AttachNone
	w.tracingType = &none
	lk, err := l.attachChosen(ctx, cands[0].m, opts.Program, w, cands[0].d)
	if err != nil {
		e := &AttachError{Op: "attach", Decision: cands[0].d, Err: err}
		l.record(ctx, cands[0].d, "").finish(e)
		return nil, e
	}
	// The kernel attached the program as what it is: record that.
	actual := tracingMechanism(lk)
	for _, c := range cands {
		if c.m == actual {
			lk.decision = c.d
		}
	}
	if actual == "" || lk.decision.Chosen != actual {
		lk.Close()
		err := fmt.Errorf("attach tracing program %s: the kernel does not say what it attached it as (no link info): set TracingOptions.AttachType: %w", w.ap.target, errInvalidInput)
		l.record(ctx, cands[0].d, "").finish(err)
		return nil, err
	}
	l.record(ctx, lk.decision, "").finish(nil)
	return lk, nil
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// tracingMechanism reads what a tracing link was attached as.
func tracingMechanism(lk *Link) probe.Mechanism {
	info, err := lk.Info()
	if err != nil {
		return ""
	}
	if info.RawTracepoint() != nil {
		return probe.TpBTF
	}
	if tr := info.Tracing(); tr != nil {
		switch ebpf.AttachType(tr.AttachType) {
		case ebpf.AttachTraceFEntry:
			return probe.Fentry
		case ebpf.AttachTraceFExit:
			return probe.Fexit
		case ebpf.AttachModifyReturn:
			return probe.FmodRet
		}
	}
	return ""
}

func programName(p *ebpf.Program) string {
	if p == nil {
		return "<nil program>"
	}
	if info, err := p.Info(); err == nil && info.Name != "" {
		return info.Name
	}
	return p.String()
}

// AttachLSM attaches a BPF LSM program to its hook, as link.AttachLSM
// does, after planning (LSM programs have no variant: hazards refuse or
// warn).
func (l *Loader) AttachLSM(opts link.LSMOptions, extra ...*Extra) (*Link, error) {
	x, err := extraOf(extra)
	if err != nil {
		return nil, err
	}
	if opts.Program == nil {
		return nil, fmt.Errorf("attach lsm program: nil program: %w", errInvalidInput)
	}
	target := programName(opts.Program)
	if spec := l.specOf(x, opts.Program); spec != nil && spec.AttachTo != "" {
		target = spec.AttachTo
	}
	req := newRequest(probe.LSM, target, l.scans(x, opts.Program, nil), requestOptions{keep: x.KeepMechanism, seccomp: true})
	return l.attachOne(req, opts.Program, given(probe.LSM, opts.Program), where{ap: attachPoint{mech: probe.LSM, target: target, name: target}, cookie: opts.Cookie})
}

// AttachIter attaches a BPF iterator, as link.AttachIter does, after
// planning. The returned Iter's Open creates an instance of it.
func (l *Loader) AttachIter(opts link.IterOptions, extra ...*Extra) (*Iter, error) {
	x, err := extraOf(extra)
	if err != nil {
		return nil, err
	}
	if opts.Program == nil {
		return nil, fmt.Errorf("attach iterator: nil program: %w", errInvalidInput)
	}
	target := programName(opts.Program)
	if spec := l.specOf(x, opts.Program); spec != nil && spec.AttachTo != "" {
		target = spec.AttachTo
	}
	req := newRequest(probe.Iter, target, l.scans(x, opts.Program, nil), requestOptions{keep: x.KeepMechanism, seccomp: true})
	lk, err := l.attachOne(req, opts.Program, given(probe.Iter, opts.Program), where{ap: attachPoint{mech: probe.Iter, target: target, name: target}, iterMap: opts.Map})
	if err != nil {
		return nil, err
	}
	return iterOf(lk), nil
}

func iterOf(lk *Link) *Iter {
	it, _ := lk.Link.(*link.Iter)
	return &Iter{Link: lk, it: it}
}

// Tracepoint attaches prog to the tracepoint group/name, as link.Tracepoint
// does, after planning (hazards may refuse or warn; there is no variant).
func (l *Loader) Tracepoint(group, name string, prog *ebpf.Program, opts *link.TracepointOptions, extra ...*Extra) (*Link, error) {
	x, err := extraOf(extra)
	if err != nil {
		return nil, err
	}
	target := group + "/" + name
	req := newRequest(probe.Tracepoint, target, l.scans(x, prog, nil), requestOptions{keep: x.KeepMechanism, seccomp: true, attachTo: []string{target}})
	return l.attachOne(req, prog, given(probe.Tracepoint, prog), where{ap: attachPoint{mech: probe.Tracepoint, group: group, name: name, target: target}, tracepoint: opts})
}

// AttachRawTracepoint attaches a raw tracepoint program, as
// link.AttachRawTracepoint does, after planning. A tp_btf or tracepoint
// variant of the program in extra lets the request move to it.
func (l *Loader) AttachRawTracepoint(opts link.RawTracepointOptions, extra ...*Extra) (*Link, error) {
	x, err := extraOf(extra)
	if err != nil {
		return nil, err
	}
	o := requestOptions{keep: x.KeepMechanism, seccomp: true, alternatives: variantMechs(x.Variants, probe.TpBTF, probe.Tracepoint), attachTo: []string{opts.Name}}
	ap := attachPoint{mech: probe.RawTracepoint, name: opts.Name, target: opts.Name}
	if slices.Contains(o.alternatives, probe.Tracepoint) {
		ap.group = l.tracepointGroup(opts.Name)
		if ap.group == "" {
			return nil, notFound("attach raw tracepoint %s with a tracepoint variant: no tracefs event of that name", opts.Name)
		}
	}
	req := newRequest(probe.RawTracepoint, opts.Name, l.scans(x, opts.Program, x.Variants), o)
	return l.attachOne(req, opts.Program, l.formsOf(x, opts.Program, probe.RawTracepoint), where{ap: ap})
}

// tracepointGroup finds the tracefs group of the tracepoint name, "" when
// there is none or several.
func (l *Loader) tracepointGroup(name string) string {
	fs, err := l.tracefsFS()
	if err != nil {
		return ""
	}
	m, _ := filepath.Glob(filepath.Join(fs.Path(), "events", "*", name))
	if len(m) != 1 {
		return ""
	}
	return filepath.Base(filepath.Dir(m[0]))
}

// AttachPerfEvent attaches a perf_event program to a sampling event on
// every CPU in opts.CPUs (all online CPUs when empty). A CPU-cycles request
// moves to the software cpu-clock event, with the same frequency or period
// on the same CPUs, when hardware events are unavailable; every other
// event is kept (refused if the kernel cannot give it). Pass the
// program's spec in extra to let the loader scan what it reads.
func (l *Loader) AttachPerfEvent(prog *ebpf.Program, opts PerfEventOptions, extra ...*Extra) (*Link, error) {
	x, err := extraOf(extra)
	if err != nil {
		return nil, err
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	m := opts.mechanism()
	o := requestOptions{
		keep:    x.KeepMechanism || (m == probe.PerfEventHardware && !opts.movable()),
		seccomp: true,
		perf:    &fallback.PerfEvent{Hardware: m == probe.PerfEventHardware, Frequency: opts.Frequency, Period: opts.Period},
	}
	req := newRequest(m, opts.name(), l.scans(x, prog, nil), o)
	return l.attachOne(req, prog, given(m, prog), where{ap: attachPoint{mech: m, target: opts.name()}, perf: opts})
}

// Executable is a binary uprobes attach to: cilium/ebpf's link.Executable
// (embedded, so Symbol and the rest work as before) bound to the Loader
// that plans its uprobes. Its Uprobe, Uretprobe, UprobeMulti and
// UretprobeMulti take the same arguments as cilium/ebpf's, plus an
// optional *Extra.
type Executable struct {
	*link.Executable
	l    *Loader
	path string
}

// OpenExecutable opens the binary at path for uprobes planned by l, as
// link.OpenExecutable does.
func (l *Loader) OpenExecutable(path string) (*Executable, error) {
	ex, err := link.OpenExecutable(path)
	if err != nil {
		return nil, fmt.Errorf("open executable %q: %w", path, err)
	}
	return &Executable{Executable: ex, l: l, path: path}, nil
}

// Path returns the path the executable was opened with.
func (ex *Executable) Path() string { return ex.path }

// Uprobe attaches prog to the entry of symbol, as link.Executable.Uprobe
// does, after planning. On kernels with uprobe-mmap-lock-stall,
// registrations are serialised and spaced Loader-wide; the Decision's
// Settings.Pacing shows it.
func (ex *Executable) Uprobe(symbol string, prog *ebpf.Program, opts *link.UprobeOptions, extra ...*Extra) (*Link, error) {
	return ex.l.uprobe(probe.Uprobe, ex.Executable, ex.path, []string{symbol}, prog, opts, nil, extra)
}

// Uretprobe attaches prog to the return of symbol, as
// link.Executable.Uretprobe does, after planning. Unless extra says the
// traced processes run without seccomp (NoSeccomp), kernels with
// uretprobe-seccomp-kill refuse it.
func (ex *Executable) Uretprobe(symbol string, prog *ebpf.Program, opts *link.UprobeOptions, extra ...*Extra) (*Link, error) {
	return ex.l.uprobe(probe.Uretprobe, ex.Executable, ex.path, []string{symbol}, prog, opts, nil, extra)
}

// UprobeMulti attaches prog to the entry of every symbol through one
// uprobe_multi link, as link.Executable.UprobeMulti does (6.6+), after
// planning. A uprobe variant in extra (the same program loaded without
// AttachTraceUprobeMulti) lets the request move to one uprobe per symbol.
func (ex *Executable) UprobeMulti(symbols []string, prog *ebpf.Program, opts *link.UprobeMultiOptions, extra ...*Extra) (*Link, error) {
	return ex.l.uprobe(probe.UprobeMulti, ex.Executable, ex.path, symbols, prog, nil, opts, extra)
}

// UretprobeMulti is UprobeMulti at the symbols' return
// (link.Executable.UretprobeMulti): a return probe, planned as one.
func (ex *Executable) UretprobeMulti(symbols []string, prog *ebpf.Program, opts *link.UprobeMultiOptions, extra ...*Extra) (*Link, error) {
	return ex.l.uprobe(probe.UretprobeMulti, ex.Executable, ex.path, symbols, prog, nil, opts, extra)
}

// Uprobe attaches prog to the entry of symbol in ex, an executable opened
// with cilium/ebpf's link.OpenExecutable, after planning; see
// Executable.Uprobe.
func (l *Loader) Uprobe(ex *link.Executable, symbol string, prog *ebpf.Program, opts *link.UprobeOptions, extra ...*Extra) (*Link, error) {
	return l.uprobe(probe.Uprobe, ex, "", []string{symbol}, prog, opts, nil, extra)
}

// Uretprobe attaches prog to the return of symbol in ex after planning;
// see Executable.Uretprobe.
func (l *Loader) Uretprobe(ex *link.Executable, symbol string, prog *ebpf.Program, opts *link.UprobeOptions, extra ...*Extra) (*Link, error) {
	return l.uprobe(probe.Uretprobe, ex, "", []string{symbol}, prog, opts, nil, extra)
}

// UprobeMulti is Executable.UprobeMulti on an executable opened with
// link.OpenExecutable.
func (l *Loader) UprobeMulti(ex *link.Executable, symbols []string, prog *ebpf.Program, opts *link.UprobeMultiOptions, extra ...*Extra) (*Link, error) {
	return l.uprobe(probe.UprobeMulti, ex, "", symbols, prog, nil, opts, extra)
}

// UretprobeMulti is Executable.UretprobeMulti on an executable opened with
// link.OpenExecutable.
func (l *Loader) UretprobeMulti(ex *link.Executable, symbols []string, prog *ebpf.Program, opts *link.UprobeMultiOptions, extra ...*Extra) (*Link, error) {
	return l.uprobe(probe.UretprobeMulti, ex, "", symbols, prog, nil, opts, extra)
}

func (l *Loader) uprobe(m probe.Mechanism, ex *link.Executable, path string, symbols []string, prog *ebpf.Program,
	uo *link.UprobeOptions, umo *link.UprobeMultiOptions, extra []*Extra) (*Link, error) {
	x, err := extraOf(extra)
	if err != nil {
		return nil, err
	}
	if ex == nil {
		return nil, fmt.Errorf("attach %s to %q: nil executable: %w", m, symbols, errInvalidInput)
	}
	if path == "" {
		path = "<executable>"
	}
	n := len(symbols)
	if umo != nil && len(umo.Addresses) > 0 {
		n = len(umo.Addresses)
	}
	target := path + ":" + describeTargets(symbols, 0)
	ap := attachPoint{mech: m, path: path, target: target, symbols: symbols}
	if len(symbols) == 1 {
		ap.symbol = symbols[0]
	}
	o := requestOptions{keep: x.KeepMechanism, seccomp: !x.NoSeccomp, targets: n}
	f := l.formsOf(x, prog, m)
	if single := m.Single(); single != "" && f.can(single) {
		o.alternatives = []probe.Mechanism{single}
	}
	req := newRequest(m, target, l.scans(x, prog, x.Variants), o)
	w := where{ap: ap, ex: ex, uprobe: uo, uprobeMulti: umo}
	if umo != nil && uo == nil {
		w.uprobe = &link.UprobeOptions{PID: int(umo.PID)}
	}
	return l.attachOne(req, prog, f, w)
}
