package loader

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/internal/testutil"
	"github.com/safebpf/safebpf/internal/tracefs"
	"github.com/safebpf/safebpf/probe"
)

// hungHandler is a slog handler whose Handle blocks until released, like
// one writing to a full pipe or a collector that stopped reading.
type hungHandler struct {
	entered chan struct{}
	release chan struct{}
	got     chan string
}

func newHungHandler(t *testing.T) *hungHandler {
	h := &hungHandler{entered: make(chan struct{}, 1), release: make(chan struct{}), got: make(chan string, 1024)}
	t.Cleanup(func() { close(h.release) })
	return h
}

func (h *hungHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *hungHandler) Handle(_ context.Context, r slog.Record) error {
	select {
	case h.entered <- struct{}{}:
	default:
	}
	<-h.release
	select {
	case h.got <- r.Message:
	default:
	}
	return nil
}
func (h *hungHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *hungHandler) WithGroup(string) slog.Handler      { return h }

// TestNewWithHungLogger is issue 12's finding 6 for New: the records New
// writes itself (stale tracefs events removed at start, the force set)
// must not block it when the slog handler hangs — exactly the
// restart-after-crash path, where stale events exist. Close must return
// within its deadline too.
func TestNewWithHungLogger(t *testing.T) {
	testutil.RequirePrivileged(t)
	mountTracefs(t)
	fs, err := tracefs.Find()
	if err != nil {
		t.Skipf("tracefs: %v", err)
	}
	bin := buildTarget(t)
	dead := exec.Command(bin.Path)
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	self, err := tracefs.Self()
	if err != nil {
		t.Fatal(err)
	}
	owner := self
	owner.PID, owner.Start = dead.Process.Pid, self.Start+1
	ev, err := fs.Uprobe(bin.Path, 0x1000, &tracefs.UprobeOptions{Owner: &owner})
	testutil.SkipIfNotSupported(t, "uprobe_events", err)
	t.Cleanup(func() { ev.Close() })

	h := newHungHandler(t)
	k := describe(t, probe.Description{Release: "6.1.30", CPUs: 4})
	type result struct {
		l   *Loader
		err error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		l, err := New(&Options{Kernel: k, Logger: slog.New(h), Force: []hazards.ID{hazards.ForceAll}})
		done <- result{l, err}
	}()
	var l *Loader
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatal(r.err)
		}
		l = r.l
	case <-time.After(5 * time.Second):
		t.Fatal("New still blocked on a hung slog handler after 5s")
	}
	t.Logf("New returned in %s with the slog handler hung", time.Since(start).Round(time.Millisecond))
	select {
	case <-h.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("nothing was handed to the logger")
	}
	b, _ := os.ReadFile(fs.Path() + "/uprobe_events")
	if strings.Contains(string(b), ev.Group+"/"+ev.Name) {
		t.Errorf("New left the stale event %s/%s", ev.Group, ev.Name)
	}
	start = time.Now()
	err = l.Close()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %s with the handler hung", d)
	}
	t.Logf("Close returned in %s: %v", time.Since(start).Round(time.Millisecond), err)
}

// TestNewWithHungLoggerUnknownForce: the warning about force IDs this
// release does not know goes through the start-up log too.
func TestNewWithHungLoggerUnknownForce(t *testing.T) {
	h := newHungHandler(t)
	k := describe(t, probe.Description{Release: "6.1.30", CPUs: 4})
	done := make(chan error, 1)
	go func() {
		l, err := New(&Options{Kernel: k, Logger: slog.New(h), Force: []hazards.ID{"hazard-from-a-newer-release"}})
		if err == nil {
			l.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("New (with an unknown force ID) still blocked on a hung slog handler after 5s")
	}
}
