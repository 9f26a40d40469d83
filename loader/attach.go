package loader

import (
	"context"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/internal/tracefs"
	"github.com/safebpf/safebpf/probe"
)

// where is everything an attach primitive may need, whichever mechanism
// the planner chose.
type where struct {
	symbol      string // kernel function
	group, name string // tracepoint; name alone for raw tracepoints
	tpBTF       bool
	ex          *link.Executable
	path        string // executable path, for messages
	cookie      uint64
	offset      uint64
	uprobe      *UprobeOptions
	perf        PerfEventOptions
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
	var err error
	switch m {
	case probe.Kprobe:
		out.Link, err = link.Kprobe(w.symbol, prog, &link.KprobeOptions{Cookie: w.cookie, Offset: w.offset})
	case probe.Kretprobe:
		if n := d.Settings.MaxActive; n > 0 {
			err = l.kretprobeMaxActive(out, w, prog, n)
		} else {
			out.Link, err = link.Kretprobe(w.symbol, prog, &link.KprobeOptions{Cookie: w.cookie, Offset: w.offset})
		}
	case probe.KprobeMulti:
		out.Link, err = link.KprobeMulti(prog, link.KprobeMultiOptions{Symbols: []string{w.symbol}, Cookies: []uint64{w.cookie}})
	case probe.KretprobeMulti:
		out.Link, err = link.KretprobeMulti(prog, link.KprobeMultiOptions{Symbols: []string{w.symbol}, Cookies: []uint64{w.cookie}})
	case probe.Fentry, probe.Fexit:
		at := ebpf.AttachTraceFEntry
		if m == probe.Fexit {
			at = ebpf.AttachTraceFExit
		}
		out.Link, err = link.AttachTracing(link.TracingOptions{Program: prog, AttachType: at, Cookie: w.cookie})
	case probe.Tracepoint:
		out.Link, err = link.Tracepoint(w.group, w.name, prog, &link.TracepointOptions{Cookie: w.cookie})
	case probe.RawTracepoint:
		if w.tpBTF {
			out.Link, err = link.AttachTracing(link.TracingOptions{Program: prog, AttachType: ebpf.AttachTraceRawTp, Cookie: w.cookie})
		} else {
			out.Link, err = link.AttachRawTracepoint(link.RawTracepointOptions{Name: w.name, Program: prog})
		}
	case probe.Uprobe, probe.Uretprobe, probe.UprobeMulti:
		err = l.attachUprobe(ctx, out, m, w, prog, d)
	case probe.PerfEventHardware, probe.PerfEventSoftware:
		ev := w.perf
		ev.Hardware = m == probe.PerfEventHardware
		if p := d.Settings.PerfEvent; p != nil && (p.Frequency != 0 || p.Period != 0) {
			ev.Frequency, ev.Period = p.Frequency, p.Period
		}
		err = l.attachPerf(out, prog, ev)
	default:
		err = fmt.Errorf("mechanism %s is not attachable: %w", m, ErrNotSupported)
	}
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

func (l *Loader) attachUprobe(ctx context.Context, out *Link, m probe.Mechanism, w where, prog *ebpf.Program, d fallback.Decision) error {
	if w.ex == nil {
		return fmt.Errorf("attach %s to %s: no executable: %w", m, w.symbol, errInvalidInput)
	}
	var uo link.UprobeOptions
	if o := w.uprobe; o != nil {
		uo = link.UprobeOptions{Address: o.Address, Offset: o.Offset, PID: o.PID, RefCtrOffset: o.RefCtrOffset, Cookie: o.Cookie}
	}
	_, err := l.pacer.do(ctx, d.Settings.Pacing, func() error {
		if err := l.step("uprobe:" + w.symbol); err != nil {
			return err
		}
		var err error
		switch m {
		case probe.Uretprobe:
			out.Link, err = w.ex.Uretprobe(w.symbol, prog, &uo)
		case probe.UprobeMulti:
			out.Link, err = w.ex.UprobeMulti([]string{w.symbol}, prog, &link.UprobeMultiOptions{PID: uint32(uo.PID)})
		default:
			out.Link, err = w.ex.Uprobe(w.symbol, prog, &uo)
		}
		return err
	})
	return err
}

// kretprobeMaxActive creates a kretprobe with maxactive through tracefs,
// in a group naming this process ("safebpf_<pid>_<n>"), and attaches prog
// to it.
func (l *Loader) kretprobeMaxActive(out *Link, w where, prog *ebpf.Program, n int) error {
	fs, err := l.tracefsFS()
	if err != nil {
		return fmt.Errorf("kretprobe on %s with maxactive %d: %w", w.symbol, n, err)
	}
	ev, err := fs.Kprobe(w.symbol, &tracefs.KprobeOptions{Offset: w.offset, Return: true, MaxActive: n, PID: os.Getpid()})
	if err != nil {
		return err
	}
	if w.cookie != 0 {
		ev.Close()
		return fmt.Errorf("kretprobe on %s with maxactive %d: a cookie needs a BPF perf link: %w", w.symbol, n, errInvalidInput)
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
