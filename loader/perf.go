package loader

import (
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/cilium/ebpf"

	"github.com/safebpf/safebpf/internal/perf"
	"github.com/safebpf/safebpf/internal/tracefs"
)

// attachPerf opens ev on every CPU it names (every online CPU when none)
// and attaches prog to each, through a BPF perf link where the kernel has
// them (5.15+) or the ioctl before. If any CPU fails, everything opened or
// attached so far is closed.
func (l *Loader) attachPerf(out *Link, prog *ebpf.Program, ev PerfEventOptions) error {
	if err := ev.validate(); err != nil {
		return err
	}
	if err := l.step("perf-open"); err != nil {
		return err
	}
	typ, config := ev.eventType()
	cpus := ev.CPUs
	cached := len(cpus) == 0
	if cached {
		var err error
		if cpus, err = l.onlineCPUs(false); err != nil {
			return err
		}
	}
	set, err := perf.Open(perf.Event{Type: typ, Config: config, Frequency: ev.Frequency, Period: ev.Period, CPUs: cpus})
	if err != nil && cached {
		// A CPU went offline (or came online) since the list was read:
		// read it again and retry once when it changed.
		if fresh, ferr := l.onlineCPUs(true); ferr == nil && !slices.Equal(fresh, cpus) {
			set, err = perf.Open(perf.Event{Type: typ, Config: config, Frequency: ev.Frequency, Period: ev.Period, CPUs: fresh})
		}
	}
	if err != nil {
		return err
	}
	var cs closers
	fail := func(err error) error {
		return errors.Join(err, cs.closeAll(), set.Close())
	}
	for _, fd := range set.FDs {
		if err := l.stepOn("perf-attach", strconv.Itoa(fd.CPU())); err != nil {
			return fail(err)
		}
		a, err := perf.Attach(prog, fd)
		if err != nil {
			return fail(fmt.Errorf("attach to %s on cpu %d: %w", set.Event.Name(), fd.CPU(), err))
		}
		cs.push(a)
		if out.Link == nil && a.Link() != nil {
			out.Link = a.Link()
		}
	}
	out.extra = append(out.extra, cs...)
	out.attached = true
	return nil
}

// onlineCPUs returns the online CPUs, read once per Loader (again when
// reread is set, after a perf event failed to open on the list).
func (l *Loader) onlineCPUs(reread bool) ([]int, error) {
	l.cpuMu.Lock()
	defer l.cpuMu.Unlock()
	if l.cpus == nil || reread {
		cpus, err := perf.OnlineCPUs()
		if err != nil {
			return nil, err
		}
		l.cpus = cpus
	}
	return l.cpus, nil
}

// attachTraceEvent attaches prog to a tracefs kprobe/kretprobe event. The
// returned attachment owns ev: closing it closes the perf event and then
// removes ev.
func attachTraceEvent(out *Link, prog *ebpf.Program, ev *tracefs.Event) error {
	a, err := perf.AttachTraceEvent(prog, ev)
	if err != nil {
		return err
	}
	// ev is listed before its owner so the missed-count reader finds it;
	// Close runs in reverse, so the attachment removes ev first and ev's
	// own Close is then a no-op.
	out.extra = append(out.extra, ev, a)
	if raw := a.Link(); raw != nil && out.Link == nil { // nil in ioctl mode (kernels before 5.15)
		out.Link = raw
	}
	out.attached = true
	return nil
}
