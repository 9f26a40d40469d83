package telemetry

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// A lane is one bounded queue of batches and the goroutine that hands
// them to one kind of sink: the logs lane to slog handlers, the otel lane
// to the tracer and meter providers. Each batch is a whole loader call's
// records, so a call of 3,000 programs is one item, not 3,000.
//
// Bounds: at most DefaultQueueSize batches and MaxPendingRecords records
// wait in a lane; a batch beyond either is dropped whole and its records
// counted (Dropped, safebpf.telemetry.dropped).
//
// Wake-ups: the goroutine never waits on ch itself, so a send does not
// wake it. The first batch after a drain kicks it; it then lingers for
// Linger, so that every call of a burst shares that one wake-up, and
// drains. Waking a goroutine costs a futex call and, on a busy machine, a
// context switch: more than safebpf's own work for an attach, and as much
// again as the kernel's part of the cheapest ones. A batch somebody waits
// for (a failed call's records, a Flush marker) and a lane half full skip
// the linger.
type lane struct {
	name   string
	handle func(*batch)

	ch chan *batch
	// kick wakes the goroutine for a batch; armed is set from the kick
	// until the goroutine starts draining, so that only the first batch
	// after a drain sends one. urgent wakes it without lingering.
	kick, urgent chan struct{}
	armed        atomic.Bool
	linger       time.Duration
	wakes        atomic.Uint64 // times the goroutine woke to drain
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
	// Linger is how long a lane waits, once kicked by a batch nobody
	// waits for, before it hands what has queued to the sinks.
	Linger = 10 * time.Millisecond
)

var errClosed = errors.New("recorder closed")

func newLane(name string, size int, linger time.Duration, handle func(*batch)) *lane {
	l := &lane{
		name: name, handle: handle, linger: linger,
		ch:      make(chan *batch, size),
		kick:    make(chan struct{}, 1),
		urgent:  make(chan struct{}, 1),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}
	go l.run()
	return l
}

func (l *lane) run() {
	defer close(l.done)
	t := time.NewTimer(l.linger)
	t.Stop()
	for {
		select {
		case <-l.kick:
			t.Reset(l.linger)
			select {
			case <-t.C:
			case <-l.urgent:
				t.Stop()
			case <-l.closing:
				t.Stop()
			}
		case <-l.urgent:
		case <-l.closing:
			for b := range l.ch {
				l.process(b)
			}
			return
		}
		l.wakes.Add(1)
		l.armed.Store(false)
		l.drain()
	}
}

// drain hands every queued batch to the sink, without waiting for more.
func (l *lane) drain() {
	for {
		select {
		case b, ok := <-l.ch:
			if !ok {
				return
			}
			l.process(b)
		default:
			return
		}
	}
}

func (l *lane) process(b *batch) {
	n := int64(b.records())
	if l.abandon.Load() {
		l.dropped.Add(uint64(n))
	} else {
		l.do(b)
	}
	l.pending.Add(-n)
	b.handled(l)
}

// wake tells the goroutine that b was queued: at once when somebody waits
// for b or the lane is half full, else after Linger, kicking it only if
// no kick is pending since its last drain.
func (l *lane) wake(b *batch) {
	if b.awaited() || len(l.ch) >= cap(l.ch)/2 || l.pending.Load() >= MaxPendingRecords/2 {
		signal(l.urgent)
		return
	}
	if l.armed.CompareAndSwap(false, true) {
		signal(l.kick)
	}
}

// signal sends on a channel of capacity 1 without blocking: a signal
// already pending is enough.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
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
		l.wake(b)
		return true
	default:
		l.pending.Add(-n)
		l.dropped.Add(uint64(n))
		signal(l.urgent)
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
	signal(l.urgent) // make room, if the lane is full
	select {
	case l.ch <- b:
		l.wake(b)
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
