package perf

import (
	"errors"
	"fmt"
	"sync"

	"github.com/cilium/ebpf/link"
	"github.com/safebpf/safebpf/internal/tracefs"
	"golang.org/x/sys/unix"
)

// FD is one open perf event. Losing the reference does not close it;
// call Close.
type FD struct {
	mu  sync.Mutex
	fd  int
	cpu int
}

// Int returns the file descriptor, or -1 after Close.
func (f *FD) Int() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fd
}

// CPU returns the CPU the event was opened on (-1: any CPU).
func (f *FD) CPU() int { return f.cpu }

// Close closes the perf event. Closing twice, or a nil *FD, is a no-op.
func (f *FD) Close() error {
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fd < 0 {
		return nil
	}
	err := unix.Close(f.fd)
	f.fd = -1
	if err != nil {
		return fmt.Errorf("close perf event on cpu %d: %w", f.cpu, err)
	}
	return nil
}

// Set is one perf event opened on several CPUs.
type Set struct {
	// Event is what was opened, with CPUs filled in.
	Event Event
	// FDs holds one perf event per CPU, in the order of Event.CPUs.
	FDs []*FD
}

// Close closes every perf event in the set and joins their errors.
func (s *Set) Close() error {
	if s == nil {
		return nil
	}
	var errs []error
	for _, fd := range s.FDs {
		errs = append(errs, fd.Close())
	}
	return errors.Join(errs...)
}

// Mode is how a program was attached to a perf event.
type Mode int

// Attachment modes.
const (
	// ModeLink is a BPF perf link (BPF_LINK_TYPE_PERF_EVENT, 5.15+).
	ModeLink Mode = iota + 1
	// ModeIoctl is PERF_EVENT_IOC_SET_BPF, for kernels before 5.15.
	ModeIoctl
)

// String returns "link" or "ioctl".
func (m Mode) String() string {
	switch m {
	case ModeLink:
		return "link"
	case ModeIoctl:
		return "ioctl"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Attachment is a program attached to one perf event. It owns the perf
// event: Close detaches the program and closes the event.
type Attachment struct {
	mu    sync.Mutex
	fd    *FD
	raw   *link.RawLink
	mode  Mode
	event *tracefs.Event // removed after the perf event is closed; may be nil
}

// Mode reports how the program was attached.
func (a *Attachment) Mode() Mode { return a.mode }

// CPU returns the CPU of the perf event.
func (a *Attachment) CPU() int { return a.fd.CPU() }

// Event returns the tracefs event the Attachment owns (see
// [AttachTraceEvent]), or nil. Use it to read miss counts; do not close it.
func (a *Attachment) Event() *tracefs.Event { return a.event }

// Link returns the BPF link in [ModeLink], nil in [ModeIoctl]. The
// Attachment keeps owning it.
func (a *Attachment) Link() *link.RawLink { return a.raw }

// Close detaches the program, closes the perf event and then removes the
// owned tracefs event, if any. Closing twice, or a nil *Attachment, is a
// no-op.
func (a *Attachment) Close() error {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	if a.raw != nil {
		if err := a.raw.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close perf link on cpu %d: %w", a.fd.CPU(), err))
		}
		a.raw = nil
	}
	errs = append(errs, a.fd.Close())
	if a.event != nil {
		// Only after the perf event is gone: the kernel refuses to remove
		// an event in use (EBUSY).
		errs = append(errs, a.event.Close())
	}
	return errors.Join(errs...)
}

// Multi is a program attached to the same event on several CPUs.
type Multi struct {
	// Attachments holds one attachment per CPU.
	Attachments []*Attachment
}

// Close detaches and closes every attachment and joins their errors.
// Closing twice, or a nil *Multi, is a no-op.
func (m *Multi) Close() error {
	if m == nil {
		return nil
	}
	var errs []error
	for _, a := range m.Attachments {
		errs = append(errs, a.Close())
	}
	return errors.Join(errs...)
}
