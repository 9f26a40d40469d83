package loader

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/probe"
)

// BatchOptions configures the batch calls (Loader.KprobeBatch,
// Loader.KretprobeBatch, Executable.UprobeBatch, Executable.UretprobeBatch).
// A nil *BatchOptions selects every default.
type BatchOptions struct {
	// Cookies holds one BPF cookie per symbol, in the same order, read by
	// the program with bpf_get_attach_cookie: each target keeps its own
	// whether the batch attaches as one multi link or as single links.
	// Cookies need kernel 5.15+ for single links (the BPF perf link); a
	// kernel without them fails the call rather than dropping them. Nil
	// means no cookies (0 for every target).
	Cookies []uint64
	// Optional makes every target optional: a target that cannot be
	// attached (a symbol the kernel or the binary does not have, a function
	// the kernel will not probe) is left out, listed by Link.Skipped and
	// in a step of the Decision, and the others attach. False means all or
	// nothing: one target that cannot be attached fails the call, and
	// nothing stays attached.
	Optional bool
	// PID limits uprobes to one process (UprobeBatch, UretprobeBatch).
	// Zero means every process.
	PID int
	// RetprobeMaxActive is the maxactive of single kretprobes, as in
	// link.KprobeOptions (KretprobeBatch; a multi link has none). Zero means
	// the kernel default, or what a hazard's cap sets.
	RetprobeMaxActive int
}

func (o *BatchOptions) cookies() []uint64 {
	if o == nil {
		return nil
	}
	return o.Cookies
}

func (o *BatchOptions) optional() bool { return o != nil && o.Optional }

// SkippedTarget is a target of a batch with optional targets that was
// left out, and why.
type SkippedTarget struct {
	// Target is the function or symbol (or address, "0x…").
	Target string
	Err    error
}

// site is one function or symbol of an attachment that may span many:
// what its single link needs, and its place in a multi link.
type site struct {
	symbol string
	addr   uint64 // kernel address (kprobe.multi), or uprobe address (UprobeOptions.Address)
	offset uint64 // offset within the symbol
	refCtr uint64 // uprobe reference counter offset (USDT semaphore)
	cookie uint64
}

func (t site) name() string {
	if t.symbol != "" {
		return t.symbol
	}
	return "0x" + strconv.FormatUint(t.addr, 16)
}

// targets returns the targets of a kprobe or uprobe attachment: the given
// list, else the caller's multi options (symbols or addresses, with
// offsets, reference counters and cookies), else the attach point's
// resolved symbols (a glob's matches, with addresses where libbpf would
// pass them) or its one symbol, with w.cookies.
func (w where) targets() []site {
	if w.list != nil {
		return w.list
	}
	var ts []site
	switch {
	case w.kprobeMulti != nil && (len(w.kprobeMulti.Symbols) > 0 || len(w.kprobeMulti.Addresses) > 0):
		o := w.kprobeMulti
		ts = make([]site, max(len(o.Symbols), len(o.Addresses)))
		for i := range ts {
			if i < len(o.Symbols) {
				ts[i].symbol = o.Symbols[i]
			}
			if i < len(o.Addresses) {
				ts[i].addr = uint64(o.Addresses[i])
			}
			if i < len(o.Cookies) {
				ts[i].cookie = o.Cookies[i]
			}
		}
		return ts
	case w.uprobeMulti != nil && len(w.uprobeMulti.Addresses) > 0 && len(w.ap.symbols) == 0:
		ts = make([]site, len(w.uprobeMulti.Addresses))
		for i, a := range w.uprobeMulti.Addresses {
			ts[i].addr = a
		}
	default:
		syms := w.ap.symbols
		if len(syms) == 0 {
			syms = []string{w.ap.symbol}
		}
		ts = make([]site, len(syms))
		for i, s := range syms {
			ts[i].symbol = s
			if i < len(w.ap.addrs) {
				ts[i].addr = uint64(w.ap.addrs[i])
			}
		}
		if isKernelProbe(w.ap.mech) {
			break
		}
		for i := range ts {
			ts[i].addr = 0 // kernel addresses of a uprobe attach point: none
		}
	}
	if o := w.uprobeMulti; o != nil {
		for i := range ts {
			if i < len(o.Offsets) {
				ts[i].offset = o.Offsets[i]
			}
			if i < len(o.RefCtrOffsets) {
				ts[i].refCtr = o.RefCtrOffsets[i]
			}
			if i < len(o.Cookies) {
				ts[i].cookie = o.Cookies[i]
			}
		}
	}
	cookies := w.cookies
	if cookies == nil {
		cookies = w.ap.cookies
	}
	for i := range ts {
		if i < len(cookies) {
			ts[i].cookie = cookies[i]
		}
	}
	return ts
}

func isKernelProbe(m probe.Mechanism) bool {
	switch m {
	case probe.Kprobe, probe.Kretprobe, probe.KprobeMulti, probe.KretprobeMulti:
		return true
	}
	return false
}

func isMulti(m probe.Mechanism) bool {
	return m.Single() != ""
}

// chunks splits ts into runs of at most n targets (all of them when n is
// 0).
func chunks(ts []site, n int) [][]site {
	if n <= 0 || n >= len(ts) {
		return [][]site{ts}
	}
	var out [][]site
	for len(ts) > 0 {
		k := min(n, len(ts))
		out = append(out, ts[:k:k])
		ts = ts[k:]
	}
	return out
}

// batchSize is the number of targets registered together in one multi
// link under pacing p (0: all of them).
func batchSize(p *fallback.Pacing) int {
	if p == nil {
		return 0
	}
	return p.Batch
}

// forms gives a program in the form a mechanism needs: a kprobe program
// loaded as is attaches single kprobes, loaded with
// AttachTraceKprobeMulti a kprobe_multi link (and likewise for uprobes).
// The caller's program and variants are used as given; another form is
// loaded from the program's spec against the maps it was loaded with,
// when the loader knows them (programs it loaded itself).
type forms struct {
	// mech and prog are the caller's program and the mechanism it was
	// given for; given holds its variants (nil when none).
	mech  probe.Mechanism
	prog  *ebpf.Program
	given map[probe.Mechanism]*ebpf.Program
	// spec and maps load the other forms; nil spec: none can be loaded.
	spec *ebpf.ProgramSpec
	maps map[string]*ebpf.Map
	opts ebpf.ProgramOptions
	// kept, when set, keeps the forms loaded for the caller's program, so
	// that later batches reuse them (the Loader closes them when it
	// forgets the program).
	kept *keptForms
}

// keptForms are the other forms of one program the Loader loaded.
type keptForms struct {
	mu    sync.Mutex
	progs map[probe.Mechanism]*ebpf.Program
}

func (k *keptForms) close() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for m, p := range k.progs {
		p.Close()
		delete(k.progs, m)
	}
}

// can reports whether the program can be had in form m.
func (f *forms) can(m probe.Mechanism) bool {
	if f == nil {
		return false
	}
	if f.prog != nil && f.mech == m || f.given[m] != nil {
		return true
	}
	return f.spec != nil && formAttachType(f.spec, m) != nil
}

// get returns the program in form m, and whether the caller owns it
// (loaded for this call: close it once attached, the links keep it).
func (f *forms) get(m probe.Mechanism) (*ebpf.Program, bool, error) {
	if f == nil {
		return nil, false, fmt.Errorf("no program for %s: %w", m, ErrNotSupported)
	}
	if f.prog != nil && f.mech == m {
		return f.prog, false, nil
	}
	if p := f.given[m]; p != nil {
		return p, false, nil
	}
	if f.spec == nil {
		return nil, false, fmt.Errorf("no %s form of the program was given (Extra.Variants), and its spec is unknown (the Loader did not load it): %w", m, ErrNotSupported)
	}
	at := formAttachType(f.spec, m)
	if at == nil {
		return nil, false, fmt.Errorf("a %s program cannot be loaded as %s: %w", f.spec.Type, m, ErrNotSupported)
	}
	if f.kept != nil {
		f.kept.mu.Lock()
		defer f.kept.mu.Unlock()
		// Multi forms are the same program for entry and return probes
		// (the link's flags tell them apart), as are single ones.
		if p := f.kept.progs[formKey(m)]; p != nil {
			return p, false, nil
		}
	}
	p, err := loadForm(f.spec, *at, f.maps, f.opts)
	if err != nil {
		return nil, false, fmt.Errorf("load the %s form of program %s: %w", m, f.spec.Name, err)
	}
	if f.kept != nil {
		if f.kept.progs == nil {
			f.kept.progs = map[probe.Mechanism]*ebpf.Program{}
		}
		f.kept.progs[formKey(m)] = p
		return p, false, nil
	}
	return p, true, nil
}

// formKey names the form a mechanism needs: its attach type.
func formKey(m probe.Mechanism) probe.Mechanism {
	switch m {
	case probe.Kretprobe, probe.Uprobe, probe.Uretprobe:
		return probe.Kprobe
	case probe.KretprobeMulti:
		return probe.KprobeMulti
	case probe.UretprobeMulti:
		return probe.UprobeMulti
	}
	return m
}

// formAttachType returns the attach type a kprobe-type program is loaded
// with to attach as m, or nil when spec cannot take that form.
func formAttachType(spec *ebpf.ProgramSpec, m probe.Mechanism) *ebpf.AttachType {
	if spec.Type != ebpf.Kprobe {
		return nil
	}
	var at ebpf.AttachType
	switch m {
	case probe.Kprobe, probe.Kretprobe, probe.Uprobe, probe.Uretprobe:
		at = ebpf.AttachNone
	case probe.KprobeMulti, probe.KretprobeMulti:
		at = ebpf.AttachTraceKprobeMulti
	case probe.UprobeMulti, probe.UretprobeMulti:
		at = ebpf.AttachTraceUprobeMulti
	default:
		return nil
	}
	return &at
}

// loadForm loads a copy of spec with attach type at, its map references
// bound to maps (the maps of the collection the program was loaded from,
// by name), as cilium/ebpf's collection loader binds them.
func loadForm(spec *ebpf.ProgramSpec, at ebpf.AttachType, maps map[string]*ebpf.Map, opts ebpf.ProgramOptions) (*ebpf.Program, error) {
	cp := spec.Copy()
	cp.AttachType = at
	for i := range cp.Instructions {
		ins := &cp.Instructions[i]
		ref := ins.Reference()
		if !ins.IsLoadFromMap() || ref == "" || int32(ins.Constant) > 0 {
			continue
		}
		m := maps[ref]
		if m == nil {
			return nil, fmt.Errorf("map %s of the program is not known", ref)
		}
		if err := ins.AssociateMap(m); err != nil {
			return nil, fmt.Errorf("map %s: %w", ref, err)
		}
	}
	return ebpf.NewProgramWithOptions(cp, opts)
}

// batchRefused is called when the multi link m for w's targets could not
// be created (cause). Targets that do not exist (not in kallsyms, not a
// symbol of the binary) fail the call, naming them, unless the targets
// are optional: then they are skipped and the multi link is tried again
// for the rest. Whatever still fails falls back to one single link per
// target with the program's single form, planned again for the single
// mechanism (its own hazards, caps and pacing) and attached all or nothing
// (or target by target when optional). The Decision records each step.
func (l *Loader) batchRefused(ctx context.Context, m probe.Mechanism, prog *ebpf.Program, w where, d fallback.Decision, cause error) (*Link, error) {
	ts := w.targets()
	single := m.Single()
	missing := l.missingTargets(m, w, ts)
	if len(missing) > 0 && !w.optional {
		return nil, fmt.Errorf("%w; %w", cause, missingError(missing, len(ts)))
	}
	skipped := slices.Clone(w.skipped)
	if len(missing) > 0 {
		var rest []site
		for i, t := range ts {
			if err, ok := missing[i]; ok {
				skipped = append(skipped, SkippedTarget{Target: t.name(), Err: err})
				continue
			}
			rest = append(rest, t)
		}
		if len(rest) == 0 {
			return nil, fmt.Errorf("%w; none of the %d targets exists", cause, len(ts))
		}
		d = withStep(d, fallback.Step{From: m, To: m, Action: fallback.Warn,
			Reason: fmt.Sprintf("the %s link for %d targets could not be created (%v): %s, the link is made for the other %d",
				m, len(ts), cause, countOf(len(missing), "of them does not exist", "of them do not exist"), len(rest))})
		ts = rest
		w.list = rest
		out := &Link{decision: d, skipped: skipped}
		err := l.attachInto(ctx, out, m, prog, w, d)
		if err == nil {
			return out, nil
		}
		out.Close()
		cause = err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if single == "" || !w.forms.can(single) || w.req == nil {
		return nil, cause
	}
	sd, err := l.replanSingle(d, *w.req, single, len(ts), cause)
	if err != nil {
		return nil, err
	}
	sprog, owned, err := w.forms.get(single)
	if err != nil {
		return nil, fmt.Errorf("%w; falling back to single %s links: %w", cause, single, err)
	}
	if owned {
		defer sprog.Close() // the links hold the program
	}
	out := &Link{decision: sd, skipped: skipped}
	w.list = ts
	if err := l.attachInto(ctx, out, single, sprog, w, sd); err != nil {
		out.Close()
		return nil, fmt.Errorf("%w; falling back to single %s links: %w", cause, single, err)
	}
	return out, nil
}

// skippedStep is the step of a decision that lists the targets of a batch
// left out.
func skippedStep(m probe.Mechanism, skipped []SkippedTarget) fallback.Step {
	names := make([]string, len(skipped))
	for i, s := range skipped {
		names[i] = fmt.Sprintf("%s (%v)", s.Target, s.Err)
	}
	return fallback.Step{From: m, To: m, Action: fallback.Warn,
		Reason: fmt.Sprintf("%s (optional targets): %s", countOf(len(skipped), "target left out", "targets left out"), strings.Join(names, "; "))}
}

// replanSingle plans the single probes a refused multi link falls back
// to (pinned: the planner would batch them again) and chains the result
// to d: d's steps, the refusal, then the single plan's own (caps, pacing).
func (l *Loader) replanSingle(d fallback.Decision, req fallback.Request, single probe.Mechanism, n int, cause error) (fallback.Decision, error) {
	req.Mechanism, req.Pinned, req.Alternatives, req.Targets = single, true, nil, n
	sd, err := l.planner.plan(req)
	if err != nil {
		return sd, fmt.Errorf("%w; the single %s links it falls back to are refused: %w", cause, single, err)
	}
	out := d
	out.Chosen = sd.Chosen
	out.Settings = sd.Settings
	out.Settings.Multi = false
	out.Action = fallback.Downgrade
	if d.Mode != "" && sd.Action == fallback.Warn && d.WouldAction != "" {
		out.WouldChoose, out.WouldAction, out.WouldSettings = sd.WouldChoose, sd.WouldAction, sd.WouldSettings
	}
	multi := single.Multi()
	// The multi link's own settings (its pacing, its hazards' warnings)
	// no longer apply: the single plan's follow.
	out.Steps = slices.DeleteFunc(slices.Clone(d.Steps), func(s fallback.Step) bool {
		return s.From == multi && s.To == multi && s.Hazard != ""
	})
	out.Steps = append(out.Steps, fallback.Step{From: multi, To: single, Action: fallback.Downgrade,
		Reason: fmt.Sprintf("the %s link for %d targets could not be created (%v): attached as one %s link per target", multi, n, cause, single)})
	out.Steps = append(out.Steps, sd.Steps...)
	for _, f := range sd.Findings {
		if !slices.ContainsFunc(out.Findings, func(g hazards.Finding) bool { return g.ID == f.ID && g.Reason == f.Reason }) {
			out.Findings = append(out.Findings, f)
		}
	}
	for _, id := range sd.Forced {
		if !slices.Contains(out.Forced, id) {
			out.Forced = append(out.Forced, id)
		}
	}
	return out, nil
}

// withStep returns d with step appended (d's own steps are not changed).
func withStep(d fallback.Decision, s fallback.Step) fallback.Decision {
	d.Steps = append(slices.Clone(d.Steps), s)
	return d
}

// missingTargets returns, by index, the targets of ts that do not exist:
// kernel functions kallsyms does not list, symbols the binary does not
// have. Targets given by address are not checked.
func (l *Loader) missingTargets(m probe.Mechanism, w where, ts []site) map[int]error {
	out := map[int]error{}
	if isKernelProbe(m) {
		r := l.resolver()
		if _, err := r.kallsyms(); err != nil {
			return nil
		}
		for i, t := range ts {
			if t.symbol == "" {
				continue
			}
			if found, ok := r.has(t.symbol); ok && found == "" {
				out[i] = notFound("kernel function %s: not in /proc/kallsyms", t.symbol)
			}
		}
		return out
	}
	if w.ap.path == "" || w.ap.path == "<executable>" {
		return nil
	}
	funcs, err := elfFuncsOf(w.ap.path)
	if err != nil {
		return nil
	}
	for i, t := range ts {
		if t.symbol == "" || t.addr != 0 {
			continue
		}
		if !funcs.has(t.symbol) {
			out[i] = notFound("symbol %s: not a function symbol of %s", t.symbol, w.ap.path)
		}
	}
	return out
}

// missingError lists the targets that do not exist, in order; it
// matches os.ErrNotExist.
func missingError(missing map[int]error, n int) error {
	idx := make([]int, 0, len(missing))
	for i := range missing {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	errs := make([]error, len(idx))
	for j, i := range idx {
		errs[j] = missing[i]
	}
	return fmt.Errorf("%d of %d targets do not exist: %w", len(missing), n, joinErrors(errs))
}

// joinErrors is errors.Join on one line ("a; b").
func joinErrors(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return &joined{errs}
}

type joined struct{ errs []error }

func (j *joined) Error() string {
	parts := make([]string, len(j.errs))
	for i, e := range j.errs {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

func (j *joined) Unwrap() []error { return j.errs }

// countOf is "1 one" or "N many".
func countOf(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// KprobeBatch attaches prog to the entry of every kernel function in
// symbols, as a loop over link.Kprobe would, after planning the batch as
// one request: where the kernel has kprobe_multi links (5.18+) and they
// are safe, the functions are attached through one such link, with the
// program loaded again for it (from Extra.Variants[probe.KprobeMulti],
// or from its spec when the Loader loaded it), else one kprobe per
// function. A kprobe_multi link the kernel refuses falls back to single
// kprobes, with a Decision saying why. All functions attach or none
// (unless opts.Optional); each keeps its cookie (opts.Cookies).
func (l *Loader) KprobeBatch(symbols []string, prog *ebpf.Program, opts *BatchOptions, extra ...*Extra) (*Link, error) {
	return l.kprobeBatch(probe.Kprobe, symbols, prog, opts, extra)
}

// KretprobeBatch is KprobeBatch at the functions' return: kretprobes,
// batched into a kprobe_multi link of return probes (kretprobe-multi).
func (l *Loader) KretprobeBatch(symbols []string, prog *ebpf.Program, opts *BatchOptions, extra ...*Extra) (*Link, error) {
	return l.kprobeBatch(probe.Kretprobe, symbols, prog, opts, extra)
}

func (l *Loader) kprobeBatch(m probe.Mechanism, symbols []string, prog *ebpf.Program, opts *BatchOptions, extra []*Extra) (*Link, error) {
	x, err := extraOf(extra)
	if err != nil {
		return nil, err
	}
	if err := validateBatch(m, symbols, opts); err != nil {
		return nil, err
	}
	ap := attachPoint{mech: m, target: describeTargets(symbols, 0), symbols: symbols}
	if len(symbols) == 1 {
		ap.symbol = symbols[0]
	}
	o := requestOptions{keep: x.KeepMechanism, seccomp: true, targets: len(symbols)}
	if opts != nil {
		o.maxActive = opts.RetprobeMaxActive
	}
	f := l.formsOf(x, prog, m)
	if f.can(m.Multi()) {
		o.alternatives = []probe.Mechanism{m.Multi()}
	}
	if len(symbols) == 1 {
		// A trampoline program attaches to the one function it was
		// loaded for: only a batch of one may move to it.
		o.alternatives = append(o.alternatives, variantMechs(x.Variants, counterpartOf[m])...)
	}
	req := newRequest(m, ap.target, l.scans(x, prog, x.Variants), o)
	w := where{ap: ap, cookies: opts.cookies(), optional: opts.optional(), forms: f}
	return l.attachOne(req, prog, f, w)
}

// counterpartOf is the trampoline a single kernel probe may move to.
var counterpartOf = map[probe.Mechanism]probe.Mechanism{probe.Kprobe: probe.Fentry, probe.Kretprobe: probe.Fexit}

// UprobeBatch attaches prog to the entry of every symbol in symbols, as a
// loop over Uprobe would, after planning the batch as one request: where
// the kernel has uprobe_multi links (6.6+), through one such link (the
// program loaded again for it, from Extra.Variants[probe.UprobeMulti] or
// from its spec when the Loader loaded it), else one uprobe per symbol.
// On kernels with uprobe-mmap-lock-stall the registrations are paced: a
// multi link registers Pacing.Batch symbols at a time. A uprobe_multi
// link the kernel refuses falls back to single uprobes, with a Decision
// saying why. All symbols attach or none (unless opts.Optional); each
// keeps its cookie (opts.Cookies).
func (ex *Executable) UprobeBatch(symbols []string, prog *ebpf.Program, opts *BatchOptions, extra ...*Extra) (*Link, error) {
	return ex.l.uprobeBatch(probe.Uprobe, ex, symbols, prog, opts, extra)
}

// UretprobeBatch is UprobeBatch at the symbols' return (uretprobes,
// batched into a uprobe_multi link of return probes: uretprobe-multi).
// Unless extra says the traced processes run without seccomp
// (NoSeccomp), kernels with uretprobe-seccomp-kill refuse it.
func (ex *Executable) UretprobeBatch(symbols []string, prog *ebpf.Program, opts *BatchOptions, extra ...*Extra) (*Link, error) {
	return ex.l.uprobeBatch(probe.Uretprobe, ex, symbols, prog, opts, extra)
}

func (l *Loader) uprobeBatch(m probe.Mechanism, ex *Executable, symbols []string, prog *ebpf.Program, opts *BatchOptions, extra []*Extra) (*Link, error) {
	x, err := extraOf(extra)
	if err != nil {
		return nil, err
	}
	if err := validateBatch(m, symbols, opts); err != nil {
		return nil, err
	}
	ap := attachPoint{mech: m, path: ex.path, target: ex.path + ":" + describeTargets(symbols, 0), symbols: symbols}
	if len(symbols) == 1 {
		ap.symbol = symbols[0]
	}
	o := requestOptions{keep: x.KeepMechanism, seccomp: !x.NoSeccomp, targets: len(symbols)}
	f := l.formsOf(x, prog, m)
	if f.can(m.Multi()) {
		o.alternatives = []probe.Mechanism{m.Multi()}
	}
	req := newRequest(m, ap.target, l.scans(x, prog, x.Variants), o)
	uo := &link.UprobeOptions{}
	if opts != nil {
		uo.PID = opts.PID
	}
	w := where{ap: ap, ex: ex.Executable, uprobe: uo, cookies: opts.cookies(), optional: opts.optional(), forms: f}
	return l.attachOne(req, prog, f, w)
}

func validateBatch(m probe.Mechanism, symbols []string, opts *BatchOptions) error {
	if len(symbols) == 0 {
		return fmt.Errorf("attach %s batch: no symbols: %w", m, errInvalidInput)
	}
	for i, s := range symbols {
		if s == "" {
			return fmt.Errorf("attach %s batch: symbol %d is empty: %w", m, i, errInvalidInput)
		}
	}
	if c := opts.cookies(); c != nil && len(c) != len(symbols) {
		return fmt.Errorf("attach %s batch: %d cookies for %d symbols: want one per symbol (or none): %w", m, len(c), len(symbols), errInvalidInput)
	}
	if opts != nil && opts.RetprobeMaxActive < 0 {
		return fmt.Errorf("attach %s batch: negative RetprobeMaxActive %d: %w", m, opts.RetprobeMaxActive, errInvalidInput)
	}
	return nil
}

// formsOf returns the forms prog can be had in for a request whose own
// mechanism is m: prog itself for m, the caller's variants, and, when
// the Loader loaded prog, its spec and maps to load other forms.
func (l *Loader) formsOf(x Extra, prog *ebpf.Program, m probe.Mechanism) *forms {
	f := &forms{mech: m, prog: prog}
	for vm, v := range x.Variants {
		if v != nil && vm != m {
			if f.given == nil {
				f.given = map[probe.Mechanism]*ebpf.Program{}
			}
			f.given[vm] = v
		}
	}
	if lp, ok := l.lookup(prog); ok && lp.maps != nil && lp.spec != nil {
		f.spec, f.maps, f.opts, f.kept = lp.spec, lp.maps, lp.progOpts, lp.forms
	}
	return f
}

// given is the forms of a program that has no other: prog for m.
func given(m probe.Mechanism, prog *ebpf.Program) *forms {
	return &forms{mech: m, prog: prog}
}
