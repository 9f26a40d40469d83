//go:build linux

package selftest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/safebpf/safebpf/internal/kernel"
	"github.com/safebpf/safebpf/internal/testutil"
)

func requireAMD64(tb testing.TB) {
	tb.Helper()
	if runtime.GOARCH != "amd64" {
		tb.Skipf("the helper is x86-64 code; this is %s", runtime.GOARCH)
	}
}

// hasUretprobeSyscall reports whether the running kernel has the uretprobe
// syscall (6.11+ on x86-64). Names are in kallsyms even without root.
func hasUretprobeSyscall(tb testing.TB) bool {
	tb.Helper()
	s, err := (&kernel.Host{}).Kallsyms([]string{"__x64_sys_uretprobe"})
	if err != nil || s.Lines == 0 {
		tb.Skipf("cannot read kallsyms: %v", err)
	}
	return s.Found["__x64_sys_uretprobe"]
}

// noLeaks fails tb when the test leaves a child process, an open file or
// a goroutine behind.
func noLeaks(tb testing.TB) {
	tb.Helper()
	fds, kids, goroutines := openFDs(tb), children(), runtime.NumGoroutine()
	tb.Cleanup(func() {
		if k := children(); k != kids {
			tb.Errorf("child processes left behind: %q (before: %q)", k, kids)
		}
		if f := openFDs(tb); f > fds {
			tb.Errorf("%d file descriptors open, %d before", f, fds)
		}
		// Goroutines of finished work may take a moment to exit.
		for i := 0; runtime.NumGoroutine() > goroutines && i < 100; i++ {
			time.Sleep(10 * time.Millisecond)
		}
		if g := runtime.NumGoroutine(); g > goroutines {
			tb.Errorf("%d goroutines, %d before", g, goroutines)
		}
	})
}

// noProgramLeft fails tb while the kernel still holds a BPF program
// called name (freed asynchronously after its last file and link close).
func noProgramLeft(tb testing.TB, name string) {
	tb.Helper()
	for try := 0; ; try++ {
		var left []ebpf.ProgramID
		for id, err := ebpf.ProgramGetNextID(0); err == nil; id, err = ebpf.ProgramGetNextID(id) {
			p, err := ebpf.NewProgramFromID(id)
			if err != nil {
				continue
			}
			if info, err := p.Info(); err == nil && info.Name == name {
				left = append(left, id)
			}
			p.Close()
		}
		if len(left) == 0 {
			return
		}
		if try == 100 {
			tb.Errorf("BPF programs %q left in the kernel: ids %v", name, left)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func openFDs(tb testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		tb.Fatal(err)
	}
	return len(ents)
}

func children() string {
	files, _ := filepath.Glob("/proc/self/task/*/children")
	var kids []string
	for _, f := range files {
		b, _ := os.ReadFile(f)
		kids = append(kids, strings.Fields(string(b))...)
	}
	return strings.Join(kids, " ")
}

// TestHelperUnderFilters runs the helper without a probe under each filter
// (no privileges needed): the helper and its filters behave as designed.
func TestHelperUnderFilters(t *testing.T) {
	requireAMD64(t)
	noLeaks(t)
	syscallExists := hasUretprobeSyscall(t)
	tests := []struct {
		opts    UretprobeOptions
		outcome Outcome
		code    int
		signal  syscall.Signal
	}{
		{UretprobeOptions{Filter: FilterAllowList, NoProbe: true}, Survived, exitOK, 0},
		{UretprobeOptions{Filter: FilterDenyUretprobe, NoProbe: true}, Survived, exitOK, 0},
		{UretprobeOptions{Filter: FilterNone, NoProbe: true}, Survived, exitOK, 0},
		{UretprobeOptions{Filter: FilterKillAfterReturn, NoProbe: true}, Killed, 0, syscall.SIGSYS},
	}
	if syscallExists {
		// sys_uretprobe called from outside the trampoline raises SIGILL.
		tests = append(tests, struct {
			opts    UretprobeOptions
			outcome Outcome
			code    int
			signal  syscall.Signal
		}{UretprobeOptions{Filter: FilterNone, DirectSyscall: true}, Killed, 0, syscall.SIGILL})
	} else {
		tests = append(tests, struct {
			opts    UretprobeOptions
			outcome Outcome
			code    int
			signal  syscall.Signal
		}{UretprobeOptions{Filter: FilterNone, DirectSyscall: true}, Survived, exitSyscallBack, 0}) // ENOSYS
	}
	for _, tt := range tests {
		r, err := RunUretprobeSeccomp(context.Background(), &tt.opts)
		if err != nil {
			t.Fatalf("%+v: %v", tt.opts, err)
		}
		t.Logf("%+v: %s", tt.opts, r)
		if r.Outcome != tt.outcome || r.ExitCode != tt.code || r.Signal != tt.signal || r.Probed {
			t.Errorf("%+v: %s, want %v exit %d signal %v", tt.opts, r, tt.outcome, tt.code, tt.signal)
		}
	}
}

// TestSeccompPassthrough shows whether the kernel lets the uretprobe
// syscall through seccomp without a probe: under a filter that kills on
// syscall 335, a fixed kernel (cf6cb56ef244) passes the call to
// sys_uretprobe, which answers a call from outside the trampoline with
// SIGILL; an affected kernel's filter kills with SIGSYS. No privileges
// needed.
func TestSeccompPassthrough(t *testing.T) {
	requireAMD64(t)
	noLeaks(t)
	if !hasUretprobeSyscall(t) {
		t.Skip("kernel has no uretprobe syscall (6.11+): nothing passes through")
	}
	// Every kernel this test runs on is fixed: 6.12.117 (the matrix) and
	// 6.18 (the development host). An affected one (6.11–6.12.13,
	// 6.13–6.13.2) would end with SIGSYS under the killing filter and
	// exit 5 (the syscall returned EPERM) under the allow-list.
	for _, f := range []Filter{FilterDenyUretprobe, FilterAllowList} {
		r, err := RunUretprobeSeccomp(context.Background(), &UretprobeOptions{Filter: f, DirectSyscall: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("uretprobe syscall issued directly: %s", r)
		if r.Outcome != Killed || r.Signal != syscall.SIGILL {
			t.Errorf("%s, want killed by SIGILL (passed through to sys_uretprobe)", r)
		}
	}
}

// TestSeccompFilterSeesSyscall335 shows the filter itself works on syscall
// 335 where the kernel has no such syscall: seccomp runs before the
// syscall table, so the killing rule kills (SIGSYS).
func TestSeccompFilterSeesSyscall335(t *testing.T) {
	requireAMD64(t)
	noLeaks(t)
	if hasUretprobeSyscall(t) {
		t.Skip("kernel has the uretprobe syscall: seccomp passes it through when fixed")
	}
	r, err := RunUretprobeSeccomp(context.Background(), &UretprobeOptions{Filter: FilterDenyUretprobe, DirectSyscall: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(r)
	if r.Outcome != Killed || r.Signal != syscall.SIGSYS {
		t.Errorf("%s, want killed by SIGSYS", r)
	}
}

// TestUretprobeSelfTest runs the self-test proper, then the variants that
// show the harness can tell survival from a kill.
func TestUretprobeSelfTest(t *testing.T) {
	requireAMD64(t)
	testutil.RequirePrivileged(t)
	noLeaks(t)
	t.Cleanup(func() { noProgramLeft(t, "safebpf_st_ret") })
	syscallExists := hasUretprobeSyscall(t)

	t.Run("self-test proper", func(t *testing.T) {
		r, err := RunUretprobeSeccomp(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s (uretprobe syscall: %v)", r, syscallExists)
		// Fixed (6.12.117, 6.18) or without the syscall (5.10, 6.1): the
		// helper lives and the probe fired once.
		if r.Outcome != Survived || r.ExitCode != exitOK || r.Fired != 1 || !r.Probed || r.Control != "exit 0" {
			t.Errorf("%s, want survival after one uretprobe hit", r)
		}
	})
	t.Run("a kill after the probe fired is noticed", func(t *testing.T) {
		r, err := RunUretprobeSeccomp(context.Background(), &UretprobeOptions{Filter: FilterKillAfterReturn})
		if err != nil {
			t.Fatal(err)
		}
		t.Log(r)
		if r.Outcome != Killed || r.Signal != syscall.SIGSYS || r.Fired != 1 {
			t.Errorf("%s, want killed by SIGSYS after one uretprobe hit", r)
		}
	})
	t.Run("a filter that kills the uretprobe syscall", func(t *testing.T) {
		r, err := RunUretprobeSeccomp(context.Background(), &UretprobeOptions{Filter: FilterDenyUretprobe})
		if err != nil {
			t.Fatal(err)
		}
		t.Log(r)
		// Fixed kernels pass the syscall through; kernels without it never make it.
		if r.Outcome != Survived || r.Fired != 1 {
			t.Errorf("%s, want survival after one uretprobe hit", r)
		}
	})
	t.Run("no filter", func(t *testing.T) {
		r, err := RunUretprobeSeccomp(context.Background(), &UretprobeOptions{Filter: FilterNone})
		if err != nil {
			t.Fatal(err)
		}
		if r.Outcome != Survived || r.Fired != 1 {
			t.Errorf("%s, want survival after one uretprobe hit", r)
		}
	})
	t.Run("bounded", func(t *testing.T) {
		start := time.Now()
		_, err := RunUretprobeSeccomp(context.Background(), &UretprobeOptions{Timeout: time.Nanosecond})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want a deadline error", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("took %s past a 1ns bound", d)
		}
	})
	t.Run("cached", func(t *testing.T) {
		r1, err1 := UretprobeSeccomp(context.Background())
		start := time.Now()
		r2, err2 := UretprobeSeccomp(context.Background())
		if d := time.Since(start); d > time.Millisecond {
			t.Errorf("second call took %s: not cached", d)
		}
		if r1 != r2 || (err1 == nil) != (err2 == nil) {
			t.Errorf("second call: %v %v, first %v %v", r2, err2, r1, err1)
		}
	})
}

func BenchmarkUretprobeSelfTest(b *testing.B) {
	requireAMD64(b)
	testutil.RequirePrivileged(b)
	for b.Loop() {
		if _, err := RunUretprobeSeccomp(context.Background(), nil); err != nil {
			b.Fatal(err)
		}
	}
}
