package loader

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/safebpf/safebpf/fallback"
)

// Link is an attached program: a cilium/ebpf link.Link plus the Decision
// that chose how it was attached. It implements link.Link by embedding the
// underlying link, so code written against cilium/ebpf keeps working.
//
// A perf-event attachment spans one perf event per CPU; the embedded
// link.Link is the first CPU's, and Close closes all of them.
//
// Some attachments have no BPF link to embed: in audit mode nothing is
// attached, and before kernel 5.15 a program attached to a perf event
// (software/hardware events, kretprobes with maxactive) is attached with
// an ioctl. Update, Pin, Unpin, Detach and Info then return an error
// matching ErrNotSupported.
//
// Losing the reference to a Link does not detach it immediately, but the
// garbage collector may; call Close during shutdown.
type Link struct {
	link.Link
	decision fallback.Decision
	extra    []io.Closer
	attached bool
	// skipped lists the targets of a batch with optional targets that
	// were left out.
	skipped []SkippedTarget
	// onClose runs once, before the kernel objects are released: it stops
	// telemetry reading them (waiting for a collection that is).
	onClose func()

	once sync.Once
	err  error
}

var _ link.Link = (*Link)(nil)

// add records lk: the first link is the one the Link embeds, later ones
// (one kprobe per function of a glob attached as single probes) are
// closed with it. A nil lk is ignored.
func (l *Link) add(lk link.Link) {
	if lk == nil {
		return
	}
	if l.Link == nil {
		l.Link = lk
		return
	}
	l.extra = append(l.extra, lk)
}

// PerfEvent returns the perf event of the attachment, as cilium/ebpf's
// link.PerfEvent does for kprobe, uprobe and tracepoint links. It returns
// an error matching ErrNotSupported for attachments without one.
func (l *Link) PerfEvent() (*os.File, error) {
	if pe, ok := l.Link.(link.PerfEvent); ok {
		return pe.PerfEvent()
	}
	return nil, fmt.Errorf("attachment has no perf event: %w", ErrNotSupported)
}

// Decision returns the planner's decision for this attachment.
func (l *Link) Decision() fallback.Decision { return l.decision }

// Skipped lists the targets a batch with optional targets
// (BatchOptions.Optional, CollectionOptions.Targets) left out, and why;
// nil when every target is attached. The Decision has a step saying so.
func (l *Link) Skipped() []SkippedTarget { return slices.Clone(l.skipped) }

// Attached reports whether a kernel object was attached (false in audit mode).
func (l *Link) Attached() bool { return l != nil && (l.Link != nil || l.attached) }

// errNoLink is returned by the link.Link methods of a Link without a BPF link.
var errNoLink = fmt.Errorf("attachment has no BPF link (audit mode, or an ioctl perf attachment before 5.15): %w", ErrNotSupported)

// Update replaces the attached program, as link.Link.Update.
func (l *Link) Update(prog *ebpf.Program) error {
	if l.Link == nil {
		return errNoLink
	}
	return l.Link.Update(prog)
}

// Pin pins the link to a bpffs path, as link.Link.Pin.
func (l *Link) Pin(path string) error {
	if l.Link == nil {
		return errNoLink
	}
	return l.Link.Pin(path)
}

// Unpin removes the pin, as link.Link.Unpin.
func (l *Link) Unpin() error {
	if l.Link == nil {
		return errNoLink
	}
	return l.Link.Unpin()
}

// Detach detaches the link without closing it, as link.Link.Detach.
func (l *Link) Detach() error {
	if l.Link == nil {
		return errNoLink
	}
	return l.Link.Detach()
}

// Info returns the kernel's information about the link, as link.Link.Info.
func (l *Link) Info() (*link.Info, error) {
	if l.Link == nil {
		return nil, errNoLink
	}
	return l.Link.Info()
}

// Close detaches the program and releases every kernel object of this
// attachment (links, perf events, tracefs entries). Calling it twice is safe;
// the second call returns the first call's result.
func (l *Link) Close() error {
	if l == nil {
		return nil
	}
	l.once.Do(func() {
		if l.onClose != nil {
			l.onClose()
		}
		var errs []error
		if l.Link != nil {
			errs = append(errs, l.Link.Close())
		}
		for i := len(l.extra) - 1; i >= 0; i-- {
			errs = append(errs, l.extra[i].Close())
		}
		l.err = errors.Join(errs...)
	})
	return l.err
}

// closers closes a stack of resources in reverse order; used for rollback.
type closers []io.Closer

func (c *closers) push(x io.Closer) { *c = append(*c, x) }

func (c *closers) closeAll() error {
	var errs []error
	for i := len(*c) - 1; i >= 0; i-- {
		errs = append(errs, (*c)[i].Close())
	}
	*c = nil
	return errors.Join(errs...)
}

// Iter is an attached BPF iterator: a Link whose Open creates an instance
// of the iterator, as cilium/ebpf's *link.Iter.
type Iter struct {
	*Link
	it *link.Iter
}

// Open creates a new instance of the iterator; reading it runs the
// program. It returns an error matching ErrNotSupported when nothing was
// attached (audit mode).
func (it *Iter) Open() (io.ReadCloser, error) {
	if it.it == nil {
		return nil, errNoLink
	}
	return it.it.Open()
}
