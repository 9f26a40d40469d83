package tracefs

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/safebpf/safebpf/internal/testutil"
)

// mountTracefs returns the host tracefs, mounting it if needed (root only).
func mountTracefs(t *testing.T) *FS {
	t.Helper()
	testutil.RequirePrivileged(t)
	f, err := Mount()
	if errors.Is(err, ErrNotMounted) {
		t.Skipf("kernel lacks tracefs: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func hasProbe(t *testing.T, f *FS, file, group, event string) (Probe, bool) {
	t.Helper()
	probes, err := f.Probes(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range probes {
		if p.Group == group && p.Event == event {
			return p, true
		}
	}
	return Probe{}, false
}

// deadPID returns the PID of a process that has exited and been reaped.
func deadPID(t *testing.T) int {
	t.Helper()
	// Re-run the test binary with no tests: it exists wherever we run,
	// unlike /bin/true in a minimal VM.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if alive(pid) {
		t.Fatalf("pid %d of an exited process is alive (reused?)", pid)
	}
	return pid
}

func TestUprobeCreateRemove(t *testing.T) {
	f := mountTracefs(t)
	exe, off := testutil.LibcSymbol(t, "__libc_start_main")

	for _, ret := range []bool{false, true} {
		ev, err := f.Uprobe(exe, off, &UprobeOptions{Return: ret})
		testutil.SkipIfNotSupported(t, "uprobe_events", err)
		self, err := Self()
		if err != nil {
			t.Fatal(err)
		}
		owner, _, ok := ParseGroup(ev.Group)
		if !ok || owner != self || owner.PID != os.Getpid() {
			t.Errorf("group %q carries %+v; want this process %+v", ev.Group, owner, self)
		}
		wantKind := Uprobe
		if ret {
			wantKind = Uretprobe
		}
		if ev.Kind != wantKind {
			t.Errorf("Kind = %v; want %v", ev.Kind, wantKind)
		}
		id, err := f.EventID(ev.Group, ev.Name)
		if err != nil || id != ev.ID || id == 0 {
			t.Errorf("EventID = %d, %v; want %d", id, err, ev.ID)
		}
		p, ok := hasProbe(t, f, UprobeEventsFile, ev.Group, ev.Name)
		if !ok {
			t.Fatalf("%s/%s not listed in uprobe_events", ev.Group, ev.Name)
		}
		if p.Return != ret || !strings.HasPrefix(p.Target, exe+":0x") {
			t.Errorf("listed as %+v; want return=%v target %s:0x…", p, ret, exe)
		}
		if _, err := ev.Missed(); !errors.Is(err, ebpf.ErrNotSupported) {
			t.Errorf("Missed on a uprobe = %v; want ErrNotSupported", err)
		}
		if err := ev.Close(); err != nil {
			t.Fatal(err)
		}
		if err := ev.Close(); err != nil {
			t.Errorf("second Close = %v; want nil", err)
		}
		if _, ok := hasProbe(t, f, UprobeEventsFile, ev.Group, ev.Name); ok {
			t.Errorf("%s/%s still listed after Close", ev.Group, ev.Name)
		}
		if _, err := f.EventID(ev.Group, ev.Name); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("EventID after Close = %v; want ErrNotExist", err)
		}
	}
}

func TestUprobeMissingFile(t *testing.T) {
	f := mountTracefs(t)
	_, err := f.Uprobe("/nonexistent/safebpf-test-binary", 0x10, nil)
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Uprobe on a missing file = %v; want ErrNotExist", err)
	}
}

func TestCleanupStale(t *testing.T) {
	f := mountTracefs(t)
	exe, off := testutil.LibcSymbol(t, "__libc_start_main")
	self, err := Self()
	if err != nil {
		t.Fatal(err)
	}

	// A process in this namespace that has exited: its pid is gone.
	dead := self
	dead.PID, dead.Start = deadPID(t), self.Start+1
	stale, err := f.Uprobe(exe, off, &UprobeOptions{Owner: &dead})
	testutil.SkipIfNotSupported(t, "uprobe_events", err)
	defer stale.Close()
	// This process's pid with another start time: a predecessor that had
	// the same pid.
	reused := self
	reused.Start = self.Start - 100
	staleReused, err := f.Uprobe(exe, off, &UprobeOptions{Owner: &reused})
	if err != nil {
		t.Fatal(err)
	}
	defer staleReused.Close()
	live, err := f.Uprobe(exe, off, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()

	res, err := f.CleanupStale()
	if err != nil {
		t.Fatalf("CleanupStale: %v", err)
	}
	found := map[string]bool{}
	for _, r := range res.Removed {
		if r.Owner == self {
			t.Errorf("removed an event of the live test process: %+v", r)
		}
		found[r.Probe.Group+"/"+r.Probe.Event] = true
		if r.Probe.Group == stale.Group && (r.Owner != dead || r.File != UprobeEventsFile || r.Err != nil || !strings.Contains(r.Why, "holds no liveness lock")) {
			t.Errorf("removed %+v; want owner %+v in %s without error, because it holds no liveness lock", r, dead, UprobeEventsFile)
		}
		if r.Probe.Group == staleReused.Group && !strings.Contains(r.Why, "holds no liveness lock") {
			t.Errorf("removed %+v; want the reason that the owner holds no liveness lock", r)
		}
	}
	for _, ev := range []*Event{stale, staleReused} {
		if !found[ev.Group+"/"+ev.Name] {
			t.Errorf("CleanupStale did not report %s/%s; got %+v", ev.Group, ev.Name, res)
		}
		if _, ok := hasProbe(t, f, UprobeEventsFile, ev.Group, ev.Name); ok {
			t.Errorf("stale %s/%s still listed", ev.Group, ev.Name)
		}
	}
	if _, ok := hasProbe(t, f, UprobeEventsFile, live.Group, live.Name); !ok {
		t.Errorf("live %s/%s was removed", live.Group, live.Name)
	}
	if res.Live < 1 {
		t.Errorf("Live = %d; want at least this process's event", res.Live)
	}
	// The stale event is gone already; closing it is not an error.
	if err := stale.Close(); err != nil {
		t.Errorf("Close of a cleaned-up event = %v; want nil", err)
	}
}

func TestKretprobeMaxActive(t *testing.T) {
	f := mountTracefs(t)
	ev, err := f.Kprobe("vfs_read", &KprobeOptions{Return: true, MaxActive: 17})
	if _, statErr := os.Stat(f.Path() + "/" + KprobeEventsFile); errors.Is(statErr, os.ErrNotExist) {
		// No CONFIG_KPROBE_EVENTS: the error must say "not supported".
		if !errors.Is(err, ebpf.ErrNotSupported) {
			t.Fatalf("Kprobe without kprobe_events = %v; want ErrNotSupported", err)
		}
		t.Skipf("kernel lacks kprobe_events (CONFIG_KPROBE_EVENTS): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	p, ok := hasProbe(t, f, KprobeEventsFile, ev.Group, ev.Name)
	if !ok {
		t.Fatalf("%s/%s not listed in kprobe_events", ev.Group, ev.Name)
	}
	if !p.Return || p.MaxActive != 17 {
		t.Errorf("listed as %+v; want a kretprobe with maxactive 17", p)
	}
	if _, err := ev.Missed(); err != nil {
		t.Errorf("Missed: %v", err)
	}
	if err := ev.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := hasProbe(t, f, KprobeEventsFile, ev.Group, ev.Name); ok {
		t.Errorf("%s/%s still listed after Close", ev.Group, ev.Name)
	}

	_, err = f.Kprobe("safebpf_no_such_symbol", nil)
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Kprobe on an unknown symbol = %v; want ErrNotExist", err)
	}
}

func TestKprobeInvalidInput(t *testing.T) {
	f := New(t.TempDir())
	for _, tc := range []struct {
		symbol string
		opts   *KprobeOptions
	}{
		{"", nil},
		{"vfs_read", &KprobeOptions{MaxActive: 4}},
		{"vfs_read", &KprobeOptions{Return: true, MaxActive: -1}},
		{"vfs_read", &KprobeOptions{Return: true, MaxActive: MaxActiveLimit + 1}},
	} {
		if _, err := f.Kprobe(tc.symbol, tc.opts); !errors.Is(err, errInvalidInput) {
			t.Errorf("Kprobe(%q, %+v) = %v; want errInvalidInput", tc.symbol, tc.opts, err)
		}
	}
	if _, err := f.Uprobe("relative/path", 0, nil); !errors.Is(err, errInvalidInput) {
		t.Errorf("Uprobe on a relative path = %v; want errInvalidInput", err)
	}
	// A directory without kprobe_events is a kernel without kprobe events.
	if _, err := f.Kprobe("vfs_read", nil); !errors.Is(err, ebpf.ErrNotSupported) || errors.Is(err, os.ErrNotExist) {
		t.Errorf("Kprobe without kprobe_events = %v; want ErrNotSupported and not ErrNotExist", err)
	}
}
