package telemetry

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// TestLaneWakeups: batches nobody waits for share one wake-up of the
// lane's goroutine (the attach path does not wake it per call) and still
// reach the sink without a Flush; a batch somebody waits for is handed
// over at once, with everything queued before it.
func TestLaneWakeups(t *testing.T) {
	t.Run("a burst shares one wake-up", func(t *testing.T) {
		var handled atomic.Int64
		l := newLane(laneLogs, DefaultQueueSize, time.Second, func(*batch) { handled.Add(1) })
		defer l.close()
		// Calls spaced as an agent's attaches are: each one far apart
		// enough for a woken goroutine to have run in between.
		const n = 20
		for range n {
			if !l.put(&batch{decisions: make([]decision, 1)}) {
				t.Fatal("put dropped a batch on an empty lane")
			}
			time.Sleep(2 * time.Millisecond)
		}
		deadline := time.Now().Add(10 * time.Second)
		for handled.Load() < n && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if got := handled.Load(); got != n {
			t.Fatalf("%d of %d batches reached the sink without a Flush", got, n)
		}
		// The 20 puts take ~40 ms of the 1 s linger; a test goroutine
		// descheduled for the rest may split them over a second one.
		if w := l.wakes.Load(); w > 2 {
			t.Errorf("%d wake-ups for one burst of %d batches, want 1 (2 if the burst was preempted)", w, n)
		}
	})
	t.Run("an awaited batch skips the linger", func(t *testing.T) {
		var handled atomic.Int64
		l := newLane(laneLogs, DefaultQueueSize, time.Hour, func(*batch) { handled.Add(1) })
		defer l.close()
		l.put(&batch{decisions: make([]decision, 1)})
		// A failed call's batch (Call.End waits for the logs lane).
		marker := &batch{decisions: make([]decision, 1), logged: make(chan struct{})}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if !l.put(marker) {
			t.Fatal("put dropped a batch on an empty lane")
		}
		select {
		case <-marker.logged:
		case <-ctx.Done():
			t.Fatal("an awaited batch waited for the lane's hour-long linger")
		}
		if got := handled.Load(); got != 2 {
			t.Fatalf("%d batches handled, want the plain one queued before the marker and the marker", got)
		}
	})
	t.Run("close drains a lingering lane", func(t *testing.T) {
		var handled atomic.Int64
		l := newLane(laneLogs, DefaultQueueSize, time.Hour, func(*batch) { handled.Add(1) })
		for range 3 {
			l.put(&batch{decisions: make([]decision, 1)})
		}
		l.close()
		select {
		case <-l.done:
		case <-time.After(10 * time.Second):
			t.Fatal("the lane's goroutine did not return after close")
		}
		if got := handled.Load(); got != 3 {
			t.Fatalf("%d of 3 batches handled by close", got)
		}
	})
}
