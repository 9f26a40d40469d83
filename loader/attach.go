package loader

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/internal/tracefs"
	"github.com/safebpf/safebpf/probe"
)

// where is everything an attach primitive may need, whichever mechanism
// the planner chose: the attach point, the targets and the caller's
// cilium/ebpf options.
type where struct {
	ap          attachPoint
	ex          *link.Executable
	kprobe      *link.KprobeOptions
	kprobeMulti *link.KprobeMultiOptions
	uprobe      *link.UprobeOptions
	uprobeMulti *link.UprobeMultiOptions
	tracepoint  *link.TracepointOptions
	cookie      uint64 // tracing, LSM
	iterMap     *ebpf.Map
	perf        PerfEventOptions
	// tracingType overrides the attach type passed to link.AttachTracing:
	// ebpf.AttachNone when the program's own type is unknown and the
	// kernel is to use it, as cilium/ebpf does.
	tracingType *ebpf.AttachType
	// list, when set, is the targets of a kprobe or uprobe attachment
	// (see targets); cookies, when set, gives each of ap's symbols its
	// BPF cookie.
	list    []site
	cookies []uint64
	// optional lets a batch leave out targets that cannot be attached
	// (Link.Skipped); false attaches all or nothing. skipped are targets
	// already left out (resolve found them missing).
	optional bool
	skipped  []SkippedTarget
	// req is the request the decision answers (for planning the single
	// probes a refused multi link falls back to); forms gives the program
	// in another form. Both are unset where no fallback exists.
	req   *fallback.Request
	forms *forms
}

// attachChosen attaches prog with mechanism m, applying the decision's
// settings. It closes anything it created when it fails. A multi link
// that cannot be created falls back as batchRefused says; the returned
// Link's Decision then says why.
func (l *Loader) attachChosen(ctx context.Context, m probe.Mechanism, prog *ebpf.Program, w where, d fallback.Decision) (*Link, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if prog == nil {
		return nil, fmt.Errorf("attach %s to %s: nil program: %w", m, d.Target, errInvalidInput)
	}
	out := &Link{decision: d, skipped: slices.Clone(w.skipped)}
	// The steps around the kernel's part (the cilium/ebpf calls or their
	// equivalent): the benchmarks time safebpf's own work as the rest.
	if err := l.step("kernel"); err != nil {
		return nil, err
	}
	err := l.attachInto(ctx, out, m, prog, w, d)
	_ = l.step("kernel-done")
	if err != nil && isMulti(m) && ctx.Err() == nil && !errors.Is(err, errInvalidInput) {
		out.Close()
		out, err = l.batchRefused(ctx, m, prog, w, d, err)
	}
	if err != nil {
		if out != nil {
			out.Close()
		}
		return nil, err
	}
	if len(out.skipped) > 0 {
		out.decision = withStep(out.decision, skippedStep(out.decision.Chosen, out.skipped))
	}
	if l.active != nil {
		l.active.add(out, prog)
		out.onClose = func() { l.active.remove(out) }
	}
	return out, nil
}

func (l *Loader) attachInto(ctx context.Context, out *Link, m probe.Mechanism, prog *ebpf.Program, w where, d fallback.Decision) error {
	switch m {
	case probe.Kprobe, probe.Kretprobe:
		return l.attachKprobes(out, m, prog, w, d)
	case probe.KprobeMulti, probe.KretprobeMulti:
		return l.attachKprobeMulti(out, m, prog, w)
	case probe.Fentry, probe.Fexit, probe.FmodRet, probe.TpBTF:
		at := map[probe.Mechanism]ebpf.AttachType{
			probe.Fentry: ebpf.AttachTraceFEntry, probe.Fexit: ebpf.AttachTraceFExit,
			probe.FmodRet: ebpf.AttachModifyReturn, probe.TpBTF: ebpf.AttachTraceRawTp,
		}[m]
		if w.tracingType != nil {
			at = *w.tracingType
		}
		lk, err := link.AttachTracing(link.TracingOptions{Program: prog, AttachType: at, Cookie: w.cookie})
		if err != nil {
			return err
		}
		out.add(lk)
		return nil
	case probe.LSM:
		lk, err := link.AttachLSM(link.LSMOptions{Program: prog, Cookie: w.cookie})
		if err != nil {
			return err
		}
		out.add(lk)
		return nil
	case probe.Iter:
		it, err := link.AttachIter(link.IterOptions{Program: prog, Map: w.iterMap})
		if err != nil {
			return err
		}
		out.add(it)
		return nil
	case probe.Tracepoint:
		lk, err := link.Tracepoint(w.ap.group, w.ap.name, prog, w.tracepoint)
		if err != nil {
			return err
		}
		out.add(lk)
		return nil
	case probe.RawTracepoint:
		lk, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: w.ap.name, Program: prog})
		if err != nil {
			return err
		}
		out.add(lk)
		return nil
	case probe.Uprobe, probe.Uretprobe:
		return l.attachUprobes(ctx, out, m, prog, w, d)
	case probe.UprobeMulti, probe.UretprobeMulti:
		return l.attachUprobeMulti(ctx, out, m, prog, w, d)
	case probe.PerfEventHardware, probe.PerfEventSoftware:
		ev := w.perf
		if m != ev.mechanism() {
			// Moved by the planner: only CPU cycles move, to cpu-clock.
			ev.Hardware, ev.Type, ev.Config = m == probe.PerfEventHardware, 0, 0
		}
		if p := d.Settings.PerfEvent; p != nil && (p.Frequency != 0 || p.Period != 0) {
			ev.Frequency, ev.Period = p.Frequency, p.Period
		}
		return l.attachPerf(out, prog, ev)
	}
	return fmt.Errorf("mechanism %s is not attachable: %w", m, ErrNotSupported)
}

// targetError names the target of a batch that failed; a lone target's
// error is returned as cilium/ebpf's call returned it.
func targetError(m probe.Mechanism, ts []site, i int, err error) error {
	if len(ts) == 1 {
		return err
	}
	return fmt.Errorf("attach %s to %s (target %d of %d): %w", m, ts[i].name(), i+1, len(ts), notExistToo(err))
}

// notExistToo makes cilium/ebpf's "symbol not in the binary"
// (link.ErrNoSymbol) also match os.ErrNotExist, as every other missing
// target of a batch does.
func notExistToo(err error) error {
	if errors.Is(err, link.ErrNoSymbol) && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w (%w)", err, errTargetNotFound)
	}
	return err
}

// skipOrFail records that target i failed: skipped when the batch's
// targets are optional (the error is then nil), else the error that fails
// the call.
func skipOrFail(out *Link, w where, m probe.Mechanism, ts []site, i int, err error) error {
	if !w.optional {
		return targetError(m, ts, i, err)
	}
	out.skipped = append(out.skipped, SkippedTarget{Target: ts[i].name(), Err: notExistToo(err)})
	return nil
}

// allSkipped fails a batch of optional targets none of which attached.
func allSkipped(out *Link, m probe.Mechanism, n int) error {
	if n > 0 && len(out.skipped) == n {
		errs := make([]error, len(out.skipped))
		for i, s := range out.skipped {
			errs[i] = fmt.Errorf("%s: %w", s.Target, s.Err)
		}
		return fmt.Errorf("attach %s: none of the %d targets could be attached: %w", m, n, errors.Join(errs...))
	}
	return nil
}

// attachKprobes attaches one kprobe or kretprobe link per target.
func (l *Loader) attachKprobes(out *Link, m probe.Mechanism, prog *ebpf.Program, w where, d fallback.Decision) error {
	ko := link.KprobeOptions{}
	if w.kprobe != nil {
		ko = *w.kprobe
	}
	if ko.Offset == 0 {
		ko.Offset = w.ap.offset
	}
	// maxactive is the planner's (Settings.MaxActive), set through
	// safebpf's own tracefs events, never cilium/ebpf's.
	ko.RetprobeMaxActive = 0
	ts := w.targets()
	for i, t := range ts {
		if t.symbol == "" && len(ts) > 1 {
			return fmt.Errorf("attach %s to %s: a single %s needs a symbol: %w", m, t.name(), m, errInvalidInput)
		}
		o := ko
		if t.cookie != 0 {
			o.Cookie = t.cookie
		}
		if t.offset != 0 {
			o.Offset = t.offset
		}
		var lk link.Link
		var err error
		switch {
		case m == probe.Kretprobe && d.Settings.MaxActive > 0:
			err = l.kretprobeMaxActive(out, t.symbol, o, prog, d.Settings.MaxActive)
			if err != nil && bestEffortCap(d, w) {
				// The pool cap only keeps returns from being missed: where
				// it cannot be set, the kretprobe attaches with the
				// kernel's default pool, as without safebpf, and says so.
				capErr := err
				if lk, err = link.Kretprobe(t.symbol, prog, &o); err == nil && out.decision.Settings.MaxActive > 0 {
					out.decision = uncapped(out.decision, capErr)
				}
			}
		case m == probe.Kretprobe:
			lk, err = link.Kretprobe(t.symbol, prog, &o)
		default:
			lk, err = link.Kprobe(t.symbol, prog, &o)
		}
		if err != nil {
			if err := skipOrFail(out, w, m, ts, i, err); err != nil {
				return err
			}
			continue
		}
		out.add(lk)
	}
	return allSkipped(out, m, len(ts))
}

// attachKprobeMulti attaches one kprobe_multi link for every target.
func (l *Loader) attachKprobeMulti(out *Link, m probe.Mechanism, prog *ebpf.Program, w where) error {
	o := link.KprobeMultiOptions{}
	if w.kprobeMulti != nil {
		o.Session = w.kprobeMulti.Session
	}
	ts := w.targets()
	byAddr := len(ts) > 0 && ts[0].symbol == ""
	if len(ts) > 0 && !byAddr && ts[0].addr != 0 && w.kprobeMulti == nil {
		byAddr = true // a glob resolved to addresses, as libbpf passes them
	}
	var cookies bool
	for _, t := range ts {
		if byAddr {
			o.Addresses = append(o.Addresses, uintptr(t.addr))
		} else {
			o.Symbols = append(o.Symbols, t.symbol)
		}
		cookies = cookies || t.cookie != 0
	}
	if cookies {
		o.Cookies = make([]uint64, len(ts))
		for i, t := range ts {
			o.Cookies[i] = t.cookie
		}
	}
	var lk link.Link
	var err error
	if m == probe.KretprobeMulti {
		lk, err = link.KretprobeMulti(prog, o)
	} else {
		lk, err = link.KprobeMulti(prog, o)
	}
	if err != nil {
		return err
	}
	out.add(lk)
	return nil
}

// attachUprobes attaches one uprobe or uretprobe link per target, each
// registration paced as the decision says.
func (l *Loader) attachUprobes(ctx context.Context, out *Link, m probe.Mechanism, prog *ebpf.Program, w where, d fallback.Decision) error {
	if w.ex == nil {
		return fmt.Errorf("attach %s to %s: no executable: %w", m, w.ap.symbol, errInvalidInput)
	}
	uo := link.UprobeOptions{}
	if w.uprobe != nil {
		uo = *w.uprobe
	}
	if uo.Offset == 0 {
		uo.Offset = w.ap.offset
	}
	ts := w.targets()
	for i, t := range ts {
		o := uo
		if t.cookie != 0 {
			o.Cookie = t.cookie
		}
		if t.addr != 0 {
			o.Address = t.addr
		}
		if t.offset != 0 {
			o.Offset = t.offset
		}
		if t.refCtr != 0 {
			o.RefCtrOffset = t.refCtr
		}
		_, err := l.pacer.do(ctx, d.Settings.Pacing, func() error {
			if err := l.stepOn("uprobe", t.name()); err != nil {
				return err
			}
			var lk link.Link
			var err error
			if m == probe.Uretprobe {
				lk, err = w.ex.Uretprobe(t.symbol, prog, &o)
			} else {
				lk, err = w.ex.Uprobe(t.symbol, prog, &o)
			}
			out.add(lk)
			return err
		})
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			if err := skipOrFail(out, w, m, ts, i, err); err != nil {
				return err
			}
		}
	}
	return allSkipped(out, m, len(ts))
}

// attachUprobeMulti attaches the targets through uprobe_multi links: one
// for all of them, or, where the decision paces registrations
// (uprobe-mmap-lock-stall), one per Pacing.Batch targets, each a paced
// registration.
func (l *Loader) attachUprobeMulti(ctx context.Context, out *Link, m probe.Mechanism, prog *ebpf.Program, w where, d fallback.Decision) error {
	if w.ex == nil {
		return fmt.Errorf("attach %s to %s: no executable: %w", m, w.ap.symbol, errInvalidInput)
	}
	var pid uint32
	switch {
	case w.uprobeMulti != nil:
		pid = w.uprobeMulti.PID
	case w.uprobe != nil:
		pid = uint32(w.uprobe.PID)
	}
	ts := w.targets()
	for _, chunk := range chunks(ts, batchSize(d.Settings.Pacing)) {
		syms, o := uprobeMultiArgs(chunk, pid)
		_, err := l.pacer.do(ctx, d.Settings.Pacing, func() error {
			if err := l.stepOn("uprobe", chunk[0].name()); err != nil {
				return err
			}
			var lk link.Link
			var err error
			if m == probe.UretprobeMulti {
				lk, err = w.ex.UretprobeMulti(syms, prog, o)
			} else {
				lk, err = w.ex.UprobeMulti(syms, prog, o)
			}
			out.add(lk)
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// uprobeMultiArgs returns the symbols and options of one uprobe_multi
// link for ts.
func uprobeMultiArgs(ts []site, pid uint32) ([]string, *link.UprobeMultiOptions) {
	o := &link.UprobeMultiOptions{PID: pid}
	var syms []string
	var cookies, offsets, refs bool
	for _, t := range ts {
		cookies = cookies || t.cookie != 0
		offsets = offsets || t.offset != 0
		refs = refs || t.refCtr != 0
	}
	for _, t := range ts {
		if t.symbol != "" {
			syms = append(syms, t.symbol)
		} else {
			o.Addresses = append(o.Addresses, t.addr)
		}
		if cookies {
			o.Cookies = append(o.Cookies, t.cookie)
		}
		if offsets {
			o.Offsets = append(o.Offsets, t.offset)
		}
		if refs {
			o.RefCtrOffsets = append(o.RefCtrOffsets, t.refCtr)
		}
	}
	if len(syms) > 0 && len(o.Addresses) > 0 {
		// Mixed: give every target by address (those with a symbol have
		// none, so this only happens for hand-built target lists).
		syms = nil
	}
	return syms, o
}

// bestEffortCap reports whether d's maxactive comes only from hazards
// whose harm is missed returns or contention (functional, performance),
// not from the caller, so that a kretprobe may attach without it.
func bestEffortCap(d fallback.Decision, w where) bool {
	if w.req != nil && w.req.MaxActive > 0 {
		return false // asked for by the caller: fail as cilium/ebpf would
	}
	capped := false
	for _, s := range d.Steps {
		if s.Action != fallback.Cap {
			continue
		}
		capped = true
		for _, f := range d.Findings {
			if f.ID == s.Hazard && f.Hazard != nil && f.Hazard.Severity != hazards.SeverityFunctional && f.Hazard.Severity != hazards.SeverityPerformance {
				return false
			}
		}
	}
	return capped
}

// uncapped returns d for a kretprobe that attached with the kernel's
// default pool because the cap could not be set (err says why).
func uncapped(d fallback.Decision, err error) fallback.Decision {
	var id hazards.ID
	for _, s := range d.Steps {
		if s.Action == fallback.Cap {
			id = s.Hazard
			break
		}
	}
	n := d.Settings.MaxActive
	d.Settings.MaxActive = 0
	if d.Action == fallback.Cap {
		d.Action = fallback.Warn
	}
	return withStep(d, fallback.Step{
		From: probe.Kretprobe, To: probe.Kretprobe, Action: fallback.Warn, Hazard: id,
		Reason: fmt.Sprintf("maxactive %d not applied (%v): attached with the kernel's default instance pool; returns beyond it are missed, and safebpf.probe.missed counts them", n, err),
	})
}

// kretprobeMaxActive creates a kretprobe with maxactive through tracefs,
// in a group naming this process ("safebpf_<pidns>_<pid>_<start>_<n>"),
// and attaches prog to it.
func (l *Loader) kretprobeMaxActive(out *Link, symbol string, ko link.KprobeOptions, prog *ebpf.Program, n int) error {
	fs, err := l.tracefsFS()
	if err != nil {
		return fmt.Errorf("kretprobe on %s with maxactive %d: %w", symbol, n, err)
	}
	if ko.Cookie != 0 {
		return fmt.Errorf("kretprobe on %s with maxactive %d: a cookie needs a BPF perf link: %w", symbol, n, errInvalidInput)
	}
	ev, err := fs.Kprobe(symbol, &tracefs.KprobeOptions{Offset: ko.Offset, Return: true, MaxActive: n})
	if err != nil {
		return err
	}
	return attachTraceEvent(out, prog, ev)
}

func (l *Loader) tracefsFS() (*tracefs.FS, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tracefs != nil {
		return l.tracefs, nil
	}
	fs, err := tracefs.Find()
	if err != nil {
		return nil, err
	}
	l.tracefs = fs
	return fs, nil
}
