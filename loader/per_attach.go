package loader

import (
	"context"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/internal/elfscan"
	"github.com/safebpf/safebpf/probe"
)

// attachOne plans req and attaches the variant of the chosen mechanism.
func (l *Loader) attachOne(ctx context.Context, req fallback.Request, variants map[probe.Mechanism]*ebpf.Program, w where) (*Link, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
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
	prog := variants[a.d.Chosen]
	if prog == nil && (a.d.Chosen == probe.PerfEventSoftware || a.d.Chosen == probe.PerfEventHardware) {
		prog = variants[req.Mechanism]
	}
	if prog == nil {
		e := &AttachError{Op: "attach", Decision: a.d,
			Err: fmt.Errorf("no program variant for %s was given: %w", a.d.Chosen, ErrNotSupported)}
		a.finish(e)
		return nil, e
	}
	lk, err := l.attachChosen(a.ctx, a.d.Chosen, prog, w, a.d)
	if err != nil {
		e := &AttachError{Op: "attach", Decision: a.d, Err: err}
		a.finish(e)
		return nil, e
	}
	a.finish(nil)
	return lk, nil
}

// Kprobe attaches prog to the entry of the kernel function symbol, as
// cilium/ebpf's link.Kprobe does, after planning: with opts.Fentry set the
// request may move to (or, on kernels without kprobes, up to) the fentry
// variant. The returned Link's Decision says what was done.
func (l *Loader) Kprobe(symbol string, prog *ebpf.Program, opts *KprobeOptions) (*Link, error) {
	o := opts.get()
	req := fallback.Request{Mechanism: probe.Kprobe, Target: symbol, Pinned: o.Pinned, ReadsUserMemory: true, Seccomp: true, Targets: 1}
	v := map[probe.Mechanism]*ebpf.Program{probe.Kprobe: prog}
	if o.Fentry != nil {
		req.Alternatives = []probe.Mechanism{probe.Fentry}
		v[probe.Fentry] = o.Fentry
	}
	return l.attachOne(context.Background(), req, v, where{symbol: symbol, cookie: o.Cookie, offset: o.Offset})
}

// Kretprobe attaches prog to the return of the kernel function symbol, as
// link.Kretprobe does, after planning: maxactive may be capped (through a
// tracefs event whose group names this process), and with opts.Fentry set
// (the fexit variant) the request may move to fexit.
func (l *Loader) Kretprobe(symbol string, prog *ebpf.Program, opts *KprobeOptions) (*Link, error) {
	o := opts.get()
	req := fallback.Request{Mechanism: probe.Kretprobe, Target: symbol, Pinned: o.Pinned, ReadsUserMemory: true, Seccomp: true, Targets: 1, MaxActive: o.RetprobeMaxActive}
	v := map[probe.Mechanism]*ebpf.Program{probe.Kretprobe: prog}
	if o.Fentry != nil {
		req.Alternatives = []probe.Mechanism{probe.Fexit}
		v[probe.Fexit] = o.Fentry
	}
	return l.attachOne(context.Background(), req, v, where{symbol: symbol, cookie: o.Cookie, offset: o.Offset})
}

// AttachTracing attaches an fentry or fexit program, as link.AttachTracing
// does, after planning: with opts.Kprobe and opts.Symbol set the request may
// move to the kprobe (kretprobe for fexit) variant.
func (l *Loader) AttachTracing(opts TracingOptions) (*Link, error) {
	m, alt := probe.Fentry, probe.Kprobe
	if opts.AttachType == ebpf.AttachTraceFExit {
		m, alt = probe.Fexit, probe.Kretprobe
	}
	target := opts.Symbol
	if target == "" && opts.Program != nil {
		target = opts.Program.String()
	}
	req := fallback.Request{Mechanism: m, Target: target, Pinned: opts.Pinned, ReadsUserMemory: true, Seccomp: true, Targets: 1, MaxActive: opts.RetprobeMaxActive}
	v := map[probe.Mechanism]*ebpf.Program{m: opts.Program}
	if opts.Kprobe != nil {
		if opts.Symbol == "" {
			return nil, fmt.Errorf("attach %s with a %s variant: Symbol is empty: %w", m, alt, errInvalidInput)
		}
		req.Alternatives = []probe.Mechanism{alt}
		v[alt] = opts.Kprobe
	}
	return l.attachOne(context.Background(), req, v, where{symbol: opts.Symbol, cookie: opts.Cookie})
}

// Tracepoint attaches prog to the tracepoint group/name, as link.Tracepoint
// does, after planning (hazards may refuse or warn; there is no variant).
func (l *Loader) Tracepoint(group, name string, prog *ebpf.Program, opts *TracepointOptions) (*Link, error) {
	var cookie uint64
	if opts != nil {
		cookie = opts.Cookie
	}
	req := fallback.Request{Mechanism: probe.Tracepoint, Target: group + "/" + name, ReadsUserMemory: true, Seccomp: true, Targets: 1}
	return l.attachOne(context.Background(), req, map[probe.Mechanism]*ebpf.Program{probe.Tracepoint: prog},
		where{group: group, name: name, cookie: cookie})
}

// AttachRawTracepoint attaches a raw tracepoint program, as
// link.AttachRawTracepoint does, after planning.
func (l *Loader) AttachRawTracepoint(opts RawTracepointOptions) (*Link, error) {
	req := fallback.Request{Mechanism: probe.RawTracepoint, Target: opts.Name, ReadsUserMemory: true, Seccomp: true, Targets: 1}
	return l.attachOne(context.Background(), req, map[probe.Mechanism]*ebpf.Program{probe.RawTracepoint: opts.Program},
		where{name: opts.Name})
}

// AttachPerfEvent attaches a perf_event program to a sampling event on
// every CPU in opts.CPUs (all online CPUs when empty). A hardware request
// moves to the software cpu-clock event, with the same frequency or period
// on the same CPUs, when hardware events are unavailable or hazardous for
// the program (nmi-user-read-deadlock with a program that reads user
// memory: set opts.Spec to let the loader scan it).
func (l *Loader) AttachPerfEvent(prog *ebpf.Program, opts PerfEventOptions) (*Link, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	m := probe.PerfEventSoftware
	target := "software-cpu-clock"
	if opts.Hardware {
		m, target = probe.PerfEventHardware, "hardware-cycles"
	}
	reads := true
	if opts.Spec != nil {
		reads = elfscan.Program(opts.Spec, nil).ReadsUserMemory
	}
	req := fallback.Request{Mechanism: m, Target: target, Pinned: opts.Pinned, ReadsUserMemory: reads, Seccomp: true, Targets: 1,
		PerfEvent: &fallback.PerfEvent{Hardware: opts.Hardware, Frequency: opts.Frequency, Period: opts.Period}}
	return l.attachOne(context.Background(), req, map[probe.Mechanism]*ebpf.Program{m: prog}, where{perf: opts})
}

// Executable is a binary uprobes attach to, as cilium/ebpf's
// link.Executable, bound to the Loader that plans its uprobes.
type Executable struct {
	l    *Loader
	ex   *link.Executable
	path string
}

// OpenExecutable opens the binary at path for uprobes planned by l.
func (l *Loader) OpenExecutable(path string) (*Executable, error) {
	ex, err := link.OpenExecutable(path)
	if err != nil {
		return nil, fmt.Errorf("open executable %q: %w", path, err)
	}
	return &Executable{l: l, ex: ex, path: path}, nil
}

// OpenExecutable opens the binary at path; attach to it with
// Loader.Uprobe and Loader.Uretprobe. Loader.OpenExecutable returns an
// Executable whose own Uprobe and Uretprobe methods can be used instead.
func OpenExecutable(path string) (*Executable, error) {
	ex, err := link.OpenExecutable(path)
	if err != nil {
		return nil, fmt.Errorf("open executable %q: %w", path, err)
	}
	return &Executable{ex: ex, path: path}, nil
}

// Uprobe attaches prog to the entry of symbol, as link.Executable.Uprobe
// does, through the Loader that opened ex.
func (ex *Executable) Uprobe(symbol string, prog *ebpf.Program, opts *UprobeOptions) (*Link, error) {
	if ex.l == nil {
		return nil, fmt.Errorf("uprobe %s:%s: executable not opened through a Loader (use Loader.Uprobe): %w", ex.path, symbol, errInvalidInput)
	}
	return ex.l.Uprobe(ex, symbol, prog, opts)
}

// Uretprobe attaches prog to the return of symbol, as
// link.Executable.Uretprobe does, through the Loader that opened ex.
func (ex *Executable) Uretprobe(symbol string, prog *ebpf.Program, opts *UprobeOptions) (*Link, error) {
	if ex.l == nil {
		return nil, fmt.Errorf("uretprobe %s:%s: executable not opened through a Loader (use Loader.Uretprobe): %w", ex.path, symbol, errInvalidInput)
	}
	return ex.l.Uretprobe(ex, symbol, prog, opts)
}

// Uprobe attaches prog to the entry of symbol in ex after planning. On
// kernels with uprobe-mmap-lock-stall, registrations are serialised and
// spaced Loader-wide; the Decision's Settings.Pacing shows it.
func (l *Loader) Uprobe(ex *Executable, symbol string, prog *ebpf.Program, opts *UprobeOptions) (*Link, error) {
	return l.uprobe(probe.Uprobe, ex, symbol, prog, opts)
}

// Uretprobe attaches prog to the return of symbol in ex after planning,
// paced like Uprobe.
func (l *Loader) Uretprobe(ex *Executable, symbol string, prog *ebpf.Program, opts *UprobeOptions) (*Link, error) {
	return l.uprobe(probe.Uretprobe, ex, symbol, prog, opts)
}

func (l *Loader) uprobe(m probe.Mechanism, ex *Executable, symbol string, prog *ebpf.Program, opts *UprobeOptions) (*Link, error) {
	if ex == nil {
		return nil, fmt.Errorf("attach %s to %q: nil executable: %w", m, symbol, errInvalidInput)
	}
	pinned := opts != nil && opts.Pinned
	seccomp := opts == nil || !opts.NoSeccomp
	req := fallback.Request{Mechanism: m, Target: ex.path + ":" + symbol, Pinned: pinned, ReadsUserMemory: true, Seccomp: seccomp, Targets: 1}
	return l.attachOne(context.Background(), req, map[probe.Mechanism]*ebpf.Program{m: prog},
		where{symbol: symbol, ex: ex.ex, path: ex.path, uprobe: opts})
}
