package loader

import (
	"context"
	"sync"
	"time"

	"github.com/safebpf/safebpf/fallback"
)

// pacer spaces uprobe registrations Loader-wide: at most Concurrency run at
// once (1 serialises them), and consecutive starts are at least Interval
// apart. It exists for kernels with uprobe-mmap-lock-stall, where a burst of
// registrations stalls every process's mmap lock.
type pacer struct {
	mu    sync.Mutex // guards last and sem
	last  time.Time
	sem   chan struct{}
	slots int
}

func newPacer() *pacer { return &pacer{} }

// do runs fn under the pacing p. A nil p runs fn at once. It returns how
// long fn waited for its turn.
func (pc *pacer) do(ctx context.Context, p *fallback.Pacing, fn func() error) (time.Duration, error) {
	if p == nil || (p.Interval <= 0 && p.Concurrency <= 0) {
		return 0, fn()
	}
	begin := time.Now()
	sem := pc.semaphore(p.Concurrency)
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return time.Since(begin), ctx.Err()
	}
	defer func() { <-sem }()

	// Take the next start slot: the start itself is recorded under the
	// lock, so consecutive starts are at least Interval apart even when a
	// sleeper wakes late.
	for {
		pc.mu.Lock()
		now := time.Now()
		next := pc.last.Add(p.Interval)
		if !now.Before(next) {
			pc.last = now
			pc.mu.Unlock()
			break
		}
		pc.mu.Unlock()
		t := time.NewTimer(next.Sub(now))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return time.Since(begin), ctx.Err()
		}
	}
	waited := time.Since(begin)
	return waited, fn()
}

func (pc *pacer) semaphore(concurrency int) chan struct{} {
	if concurrency <= 0 {
		concurrency = 1
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.sem == nil || pc.slots != concurrency {
		// A change of concurrency starts a new semaphore; registrations
		// holding the old one finish under the old bound.
		pc.sem = make(chan struct{}, concurrency)
		pc.slots = concurrency
	}
	return pc.sem
}
