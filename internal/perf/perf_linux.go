//go:build linux

package perf

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/safebpf/safebpf/internal/kernel"
	"github.com/safebpf/safebpf/internal/tracefs"
	"golang.org/x/sys/unix"
)

// OnlineCPUs returns the CPUs in /sys/devices/system/cpu/online, read as
// a host file: a regular file of at most kernel.MaxFileSize bytes.
func OnlineCPUs() ([]int, error) {
	return (&kernel.Host{}).OnlineCPUs()
}

// Open opens ev on each of its CPUs (pid -1, system-wide, close-on-exec,
// disabled until attached). If any CPU fails, every event already opened is
// closed and the error names the CPU. A hardware event the machine lacks
// yields an error matching [ebpf.ErrNotSupported] and the errno.
func Open(ev Event) (*Set, error) {
	if err := ev.validate(); err != nil {
		return nil, fmt.Errorf("open perf event: %w", err)
	}
	cpus := append([]int(nil), ev.CPUs...)
	if len(cpus) == 0 {
		var err error
		if cpus, err = OnlineCPUs(); err != nil {
			return nil, fmt.Errorf("open perf event %s: %w", ev.Name(), err)
		}
	}
	ev.CPUs = cpus

	typ, config := ev.attr()
	attr := unix.PerfEventAttr{
		Type:        typ,
		Config:      config,
		Sample_type: unix.PERF_SAMPLE_RAW,
		Bits:        unix.PerfBitDisabled,
	}
	attr.Size = uint32(unsafe.Sizeof(attr))
	if ev.Frequency != 0 {
		attr.Sample = ev.Frequency
		attr.Bits |= unix.PerfBitFreq
	} else {
		attr.Sample = ev.Period
	}

	set := &Set{Event: ev}
	for _, cpu := range cpus {
		fd, err := unix.PerfEventOpen(&attr, -1, cpu, -1, unix.PERF_FLAG_FD_CLOEXEC)
		if err != nil {
			_ = set.Close()
			return nil, fmt.Errorf("open perf event %s on cpu %d: %w", ev.Name(), cpu, classify(err, !ev.software()))
		}
		set.FDs = append(set.FDs, &FD{fd: fd, cpu: cpu})
	}
	return set, nil
}

// OpenTracepoint opens the trace event with the given tracefs ID (from
// events/GROUP/NAME/id) as a PERF_TYPE_TRACEPOINT perf event for all
// processes (pid -1) on cpu 0, disabled until attached. This is how the
// kernel attaches BPF to tracepoints and to kprobe/uprobe trace events: the
// program runs whichever CPU hits the event.
func OpenTracepoint(id uint64) (*FD, error) {
	attr := unix.PerfEventAttr{
		Type:        unix.PERF_TYPE_TRACEPOINT,
		Config:      id,
		Sample_type: unix.PERF_SAMPLE_RAW,
		Sample:      1,
		Wakeup:      1,
		Bits:        unix.PerfBitDisabled,
	}
	attr.Size = uint32(unsafe.Sizeof(attr))
	fd, err := unix.PerfEventOpen(&attr, -1, 0, -1, unix.PERF_FLAG_FD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("open tracepoint perf event %d: %w", id, classify(err, false))
	}
	return &FD{fd: fd, cpu: 0}, nil
}

// classify maps perf_event_open errnos meaning "this machine has no such
// event" to ebpf.ErrNotSupported, keeping the errno in the chain.
func classify(err error, hardware bool) error {
	var errno unix.Errno
	if !errors.As(err, &errno) {
		return err
	}
	switch {
	case hardware && (errno == unix.ENOENT || errno == unix.EOPNOTSUPP):
		return fmt.Errorf("no hardware perf events (%s): %w: %w", unix.ErrnoName(errno), ebpf.ErrNotSupported, errno)
	case errno == unix.ENOENT && !hardware:
		return fmt.Errorf("no such event (%s): %w", unix.ErrnoName(errno), errno)
	}
	return fmt.Errorf("%s: %w", unix.ErrnoName(errno), errno)
}

// Attach attaches prog to the perf event fd and enables the event. It
// takes ownership of fd in every case: on success the Attachment closes
// it, on failure Attach closes it.
//
// It tries a BPF perf link first; when the kernel has none (before 5.15)
// it uses PERF_EVENT_IOC_SET_BPF.
func Attach(prog *ebpf.Program, fd *FD) (*Attachment, error) {
	a, err := attach(prog, fd, false)
	if err != nil {
		_ = fd.Close()
		return nil, err
	}
	return a, nil
}

func attach(prog *ebpf.Program, fd *FD, forceIoctl bool) (*Attachment, error) {
	if prog == nil || prog.FD() < 0 {
		return nil, fmt.Errorf("attach to perf event: no program: %w", errInvalidInput)
	}
	if fd == nil || fd.Int() < 0 {
		return nil, fmt.Errorf("attach %s to perf event: closed perf event: %w", prog, errInvalidInput)
	}
	var linkErr error
	if !forceIoctl {
		raw, err := link.AttachRawLink(link.RawLinkOptions{
			Target:  fd.Int(),
			Program: prog,
			Attach:  ebpf.AttachPerfEvent,
		})
		if err == nil {
			if err := enable(fd); err != nil {
				_ = raw.Close()
				return nil, fmt.Errorf("attach %s to perf event on cpu %d: %w", prog, fd.CPU(), err)
			}
			return &Attachment{fd: fd, raw: raw, mode: ModeLink}, nil
		}
		// Before 5.15 link_create rejects BPF_PERF_EVENT with EINVAL, and
		// before 5.7 there are no links at all (ErrNotSupported). Anything
		// else is a real failure of this program or event.
		if !errors.Is(err, unix.EINVAL) && !errors.Is(err, ebpf.ErrNotSupported) {
			return nil, fmt.Errorf("attach %s to perf event on cpu %d via link: %w", prog, fd.CPU(), err)
		}
		linkErr = err
	}
	if err := unix.IoctlSetInt(fd.Int(), unix.PERF_EVENT_IOC_SET_BPF, prog.FD()); err != nil {
		if linkErr != nil {
			return nil, fmt.Errorf("attach %s to perf event on cpu %d: link: %w; ioctl: %w", prog, fd.CPU(), linkErr, err)
		}
		return nil, fmt.Errorf("attach %s to perf event on cpu %d via ioctl: %w", prog, fd.CPU(), err)
	}
	if err := enable(fd); err != nil {
		return nil, fmt.Errorf("attach %s to perf event on cpu %d: %w", prog, fd.CPU(), err)
	}
	return &Attachment{fd: fd, mode: ModeIoctl}, nil
}

func enable(fd *FD) error {
	// PERF_EVENT_IOC_ENABLE ignores its argument.
	if err := unix.IoctlSetInt(fd.Int(), unix.PERF_EVENT_IOC_ENABLE, 0); err != nil {
		return fmt.Errorf("enable perf event: %w", err)
	}
	return nil
}

// AttachSet attaches prog to every perf event in set. It takes ownership
// of the set: on success the Multi closes its events, and if any CPU fails
// every attachment made so far is closed, the rest of the set too, and the
// error names the CPU.
func AttachSet(prog *ebpf.Program, set *Set) (*Multi, error) {
	m := &Multi{}
	for i, fd := range set.FDs {
		a, err := attach(prog, fd, false)
		if err != nil {
			_ = m.Close()
			for _, rest := range set.FDs[i:] {
				_ = rest.Close()
			}
			return nil, err
		}
		m.Attachments = append(m.Attachments, a)
	}
	return m, nil
}

// AttachEvent opens ev on its CPUs and attaches prog to each, rolling
// everything back if any step fails.
func AttachEvent(prog *ebpf.Program, ev Event) (*Multi, error) {
	set, err := Open(ev)
	if err != nil {
		return nil, err
	}
	return AttachSet(prog, set)
}

// AttachTracepoint opens the trace event with tracefs ID id (see
// [OpenTracepoint]) and attaches prog to it. The program must be of type
// kprobe for kprobe/uprobe trace events and tracepoint for tracepoints.
// Close the Attachment before removing the trace event: the kernel refuses
// to remove an event that a perf event still uses (EBUSY).
func AttachTracepoint(prog *ebpf.Program, id uint64) (*Attachment, error) {
	fd, err := OpenTracepoint(id)
	if err != nil {
		return nil, err
	}
	return Attach(prog, fd)
}

// AttachTraceEvent attaches prog (of type kprobe) to a kprobe, kretprobe
// or uprobe event created with package tracefs, and takes ownership of ev
// in every case: closing the Attachment detaches the program, closes the
// perf event and then removes ev; on failure ev is removed before
// returning.
func AttachTraceEvent(prog *ebpf.Program, ev *tracefs.Event) (*Attachment, error) {
	if ev == nil {
		return nil, fmt.Errorf("attach to trace event: nil event: %w", errInvalidInput)
	}
	a, err := AttachTracepoint(prog, ev.ID)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("attach to %s event %s/%s: %w", ev.Kind, ev.Group, ev.Name, err), ev.Close())
	}
	a.event = ev
	return a, nil
}
