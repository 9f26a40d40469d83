package loader

import (
	"context"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/internal/tracefs"
	"github.com/safebpf/safebpf/probe"
)

// where is everything an attach primitive may need, whichever mechanism
// the planner chose: the attach point and the caller's cilium/ebpf
// options.
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
}

// symbols returns the functions or symbols of the attach point: the
// resolved targets of a glob, else the one symbol.
func (w where) symbols() []string {
	if len(w.ap.symbols) > 0 {
		return w.ap.symbols
	}
	return []string{w.ap.symbol}
}

// attachChosen attaches prog with mechanism m, applying the decision's
// settings. It closes anything it created when it fails.
func (l *Loader) attachChosen(ctx context.Context, m probe.Mechanism, prog *ebpf.Program, w where, d fallback.Decision) (*Link, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if prog == nil {
		return nil, fmt.Errorf("attach %s to %s: nil program: %w", m, d.Target, errInvalidInput)
	}
	out := &Link{decision: d}
	err := l.attachInto(ctx, out, m, prog, w, d)
	if err != nil {
		out.Close()
		return nil, err
	}
	if l.missed != nil {
		l.missed.add(out)
		out.onClose = func() { l.missed.remove(out) }
	}
	return out, nil
}

func (l *Loader) attachInto(ctx context.Context, out *Link, m probe.Mechanism, prog *ebpf.Program, w where, d fallback.Decision) error {
	switch m {
	case probe.Kprobe, probe.Kretprobe:
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
		syms := w.symbols()
		var cookies []uint64
		if w.kprobeMulti != nil && len(w.kprobeMulti.Cookies) == len(syms) {
			cookies = w.kprobeMulti.Cookies // a kprobe_multi request moved to single kprobes
		}
		for i, sym := range syms {
			if cookies != nil {
				ko.Cookie = cookies[i]
			}
			var lk link.Link
			var err error
			switch {
			case m == probe.Kretprobe && d.Settings.MaxActive > 0:
				err = l.kretprobeMaxActive(out, sym, ko, prog, d.Settings.MaxActive)
			case m == probe.Kretprobe:
				lk, err = link.Kretprobe(sym, prog, &ko)
			default:
				lk, err = link.Kprobe(sym, prog, &ko)
			}
			if err != nil {
				return err
			}
			out.add(lk)
		}
		return nil
	case probe.KprobeMulti, probe.KretprobeMulti:
		o := link.KprobeMultiOptions{}
		if w.kprobeMulti != nil {
			o = *w.kprobeMulti
		}
		if len(o.Symbols) == 0 && len(o.Addresses) == 0 {
			if len(w.ap.addrs) > 0 {
				o.Addresses = w.ap.addrs
			} else {
				o.Symbols = w.symbols()
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
	case probe.Uprobe, probe.Uretprobe, probe.UprobeMulti, probe.UretprobeMulti:
		return l.attachUprobe(ctx, out, m, w, prog, d)
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

func (l *Loader) attachUprobe(ctx context.Context, out *Link, m probe.Mechanism, w where, prog *ebpf.Program, d fallback.Decision) error {
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
	if m == probe.UprobeMulti || m == probe.UretprobeMulti {
		umo := link.UprobeMultiOptions{PID: uint32(uo.PID)}
		if w.uprobeMulti != nil {
			umo = *w.uprobeMulti
		}
		syms := w.symbols()
		if len(umo.Addresses) > 0 {
			syms = nil
		}
		_, err := l.pacer.do(ctx, d.Settings.Pacing, func() error {
			if err := l.step("uprobe:" + w.ap.symbol); err != nil {
				return err
			}
			var lk link.Link
			var err error
			if m == probe.UretprobeMulti {
				lk, err = w.ex.UretprobeMulti(syms, prog, &umo)
			} else {
				lk, err = w.ex.UprobeMulti(syms, prog, &umo)
			}
			out.add(lk)
			return err
		})
		return err
	}
	for _, sym := range w.symbols() {
		_, err := l.pacer.do(ctx, d.Settings.Pacing, func() error {
			if err := l.step("uprobe:" + sym); err != nil {
				return err
			}
			var lk link.Link
			var err error
			if m == probe.Uretprobe {
				lk, err = w.ex.Uretprobe(sym, prog, &uo)
			} else {
				lk, err = w.ex.Uprobe(sym, prog, &uo)
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
