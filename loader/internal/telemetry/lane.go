package telemetry

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
)

// A lane is one bounded queue of batches and the goroutine that hands
// them to one kind of sink: the logs lane to slog handlers, the otel lane
// to the tracer and meter providers. Each batch is a whole loader call's
// records, so a call of 3,000 programs is one item, not 3,000.
//
// Bounds: at most DefaultQueueSize batches and MaxPendingRecords records
// wait in a lane; a batch beyond either is dropped whole and its records
// counted (Dropped, safebpf.telemetry.dropped).
type lane struct {
	name   string
	handle func(*batch)

	ch chan *batch
	// closing is closed first by close: it wakes senders waiting for room
	// (Flush), which then release mu, so close can take it. Holding mu
	// for reading while blocked on ch would deadlock Flush against Close.
	closing   chan struct{}
	closeOnce sync.Once
	mu        sync.RWMutex // guards closed against sends on a closed ch
	closed    bool
	done      chan struct{} // closed when the goroutine has returned

	// abandon is set when a Shutdown deadline passed: the goroutine drops
	// what is left instead of calling a sink that may hang again, so it
	// returns as soon as the sink it is blocked in returns.
	abandon atomic.Bool

	pending atomic.Int64  // records queued and not yet handled
	dropped atomic.Uint64 // records dropped: lane full, closed or abandoned
	panics  atomic.Uint64 // panics of user sinks, contained
}

// Queue bounds of each lane.
const (
	// DefaultQueueSize is how many batches (loader calls, start-up
	// records, flush markers) a lane holds.
	DefaultQueueSize = 1024
	// MaxPendingRecords is how many records (decisions, log records) a
	// lane holds in all its batches.
	MaxPendingRecords = 1 << 16
)

var errClosed = errors.New("recorder closed")

func newLane(name string, size int, handle func(*batch)) *lane {
	l := &lane{
		name: name, handle: handle,
		ch:      make(chan *batch, size),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}
	go l.run()
	return l
}

func (l *lane) run() {
	defer close(l.done)
	for b := range l.ch {
		n := int64(b.records())
		if l.abandon.Load() {
			l.dropped.Add(uint64(n))
		} else {
			l.do(b)
		}
		l.pending.Add(-n)
		b.handled(l)
	}
}

// do hands b to the sink, containing a panic from a user's exporter or
// handler: telemetry must not crash the agent.
func (l *lane) do(b *batch) {
	defer func() {
		if recover() != nil {
			l.panics.Add(1)
		}
	}()
	l.handle(b)
}

// put enqueues b without blocking; it drops and counts b when the lane is
// full or closed, and reports whether b was queued.
func (l *lane) put(b *batch) bool {
	n := int64(b.records())
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		l.dropped.Add(uint64(n))
		return false
	}
	if l.pending.Add(n) > MaxPendingRecords && n > 0 {
		l.pending.Add(-n)
		l.dropped.Add(uint64(n))
		return false
	}
	select {
	case l.ch <- b:
		return true
	default:
		l.pending.Add(-n)
		l.dropped.Add(uint64(n))
		return false
	}
}

// putWait enqueues b (a marker without records), waiting for room until
// ctx is done or the lane closes.
func (l *lane) putWait(ctx context.Context, b *batch) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return errClosed
	}
	select {
	case l.ch <- b:
		return nil
	case <-l.closing:
		return errClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close stops accepting batches; the goroutine handles what is queued,
// then returns.
func (l *lane) close() {
	l.closeOnce.Do(func() {
		close(l.closing)
		l.mu.Lock()
		l.closed = true
		close(l.ch)
		l.mu.Unlock()
	})
}
