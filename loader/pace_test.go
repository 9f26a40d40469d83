package loader

import (
	"context"
	"errors"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/safebpf/safebpf/fallback"
)

func TestPacer(t *testing.T) {
	const interval = 25 * time.Millisecond
	tests := []struct {
		name        string
		pacing      *fallback.Pacing
		wantMaxBusy int32
		wantSpacing time.Duration
	}{
		{"serialised and spaced", &fallback.Pacing{Interval: interval, Concurrency: 1}, 1, interval},
		{"two at a time, spaced", &fallback.Pacing{Interval: interval, Concurrency: 2}, 2, interval},
		{"unpaced", nil, 6, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pc := newPacer()
			var busy, maxBusy atomic.Int32
			var mu sync.Mutex
			var starts []time.Time
			var wg sync.WaitGroup
			release := make(chan struct{})
			for range 6 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := pc.do(context.Background(), tt.pacing, func() error {
						n := busy.Add(1)
						for {
							m := maxBusy.Load()
							if n <= m || maxBusy.CompareAndSwap(m, n) {
								break
							}
						}
						mu.Lock()
						starts = append(starts, time.Now())
						mu.Unlock()
						if tt.pacing == nil {
							<-release // hold all six at once
						} else {
							time.Sleep(40 * time.Millisecond) // longer than the interval
						}
						busy.Add(-1)
						return nil
					})
					if err != nil {
						t.Error(err)
					}
				}()
			}
			if tt.pacing == nil {
				deadline := time.Now().Add(2 * time.Second)
				for busy.Load() < 6 && time.Now().Before(deadline) {
					time.Sleep(time.Millisecond)
				}
				close(release)
			}
			wg.Wait()
			if got := maxBusy.Load(); got != tt.wantMaxBusy {
				t.Errorf("max concurrent registrations = %d, want %d", got, tt.wantMaxBusy)
			}
			sort.Slice(starts, func(i, j int) bool { return starts[i].Before(starts[j]) })
			for i := 1; i < len(starts); i++ {
				// Allow 2ms of timer slack.
				if gap := starts[i].Sub(starts[i-1]); gap < tt.wantSpacing-2*time.Millisecond {
					t.Errorf("start %d came %s after the previous, want >= %s (starts %v)", i, gap, tt.wantSpacing, starts)
				}
			}
		})
	}
}

func TestPacerCancel(t *testing.T) {
	pc := newPacer()
	p := &fallback.Pacing{Interval: time.Hour, Concurrency: 1}
	if _, err := pc.do(context.Background(), p, func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	ran := false
	_, err := pc.do(ctx, p, func() error { ran = true; return nil })
	if !errors.Is(err, context.DeadlineExceeded) || ran {
		t.Errorf("got %v (ran %v), want DeadlineExceeded without running", err, ran)
	}
}
