//go:build !linux

package perf

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/safebpf/safebpf/internal/tracefs"
)

// OnlineCPUs fails: perf events exist only on Linux.
func OnlineCPUs() ([]int, error) {
	return nil, fmt.Errorf("read online CPUs: %w", ebpf.ErrNotSupported)
}

// Open fails with an error wrapping [ebpf.ErrNotSupported].
func Open(ev Event) (*Set, error) {
	return nil, fmt.Errorf("open perf event %s: %w", ev.Name(), ebpf.ErrNotSupported)
}

// OpenTracepoint fails with an error wrapping [ebpf.ErrNotSupported].
func OpenTracepoint(id uint64) (*FD, error) {
	return nil, fmt.Errorf("open tracepoint perf event %d: %w", id, ebpf.ErrNotSupported)
}

// Attach closes fd and fails with an error wrapping [ebpf.ErrNotSupported].
func Attach(prog *ebpf.Program, fd *FD) (*Attachment, error) {
	_ = fd.Close()
	return nil, fmt.Errorf("attach to perf event: %w", ebpf.ErrNotSupported)
}

// AttachSet closes set and fails with an error wrapping
// [ebpf.ErrNotSupported].
func AttachSet(prog *ebpf.Program, set *Set) (*Multi, error) {
	_ = set.Close()
	return nil, fmt.Errorf("attach to perf events: %w", ebpf.ErrNotSupported)
}

// AttachEvent fails with an error wrapping [ebpf.ErrNotSupported].
func AttachEvent(prog *ebpf.Program, ev Event) (*Multi, error) {
	return nil, fmt.Errorf("attach to perf event %s: %w", ev.Name(), ebpf.ErrNotSupported)
}

// AttachTracepoint fails with an error wrapping [ebpf.ErrNotSupported].
func AttachTracepoint(prog *ebpf.Program, id uint64) (*Attachment, error) {
	return nil, fmt.Errorf("attach to trace event %d: %w", id, ebpf.ErrNotSupported)
}

// AttachTraceEvent removes ev and fails with an error wrapping
// [ebpf.ErrNotSupported].
func AttachTraceEvent(prog *ebpf.Program, ev *tracefs.Event) (*Attachment, error) {
	return nil, errors.Join(fmt.Errorf("attach to trace event: %w", ebpf.ErrNotSupported), ev.Close())
}
