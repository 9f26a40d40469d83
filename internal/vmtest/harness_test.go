package vmtest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// guestProgBuild builds the guest init and one program from
// testdata/guestprogs as the only "test binary" of a Build.
func guestProgBuild(t *testing.T, root, prog string) *Build {
	t.Helper()
	out := t.TempDir()
	b := &Build{Root: root, Init: filepath.Join(out, "init")}
	if err := buildInit(context.Background(), root, b.Init); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(out, prog)
	if msg, err := goCmd(context.Background(), root, "build", "-o", bin, "./internal/vmtest/testdata/guestprogs/"+prog); err != nil {
		t.Fatalf("build %s: %v\n%s", prog, err, msg)
	}
	b.Tests = []TestBinary{{Pkg: prog, Path: bin}}
	return b
}

// TestGuestCrashRetried boots a real kernel whose guest crashes it with
// SysRq-c: the harness must report the Oops lines, retry once, and fail the
// kernel's result.
func TestGuestCrashRetried(t *testing.T) {
	matrixEnabled(t)
	root, kernels, _ := matrixSetup(t)
	k := kernels[0]
	b := guestProgBuild(t, root, "crash")
	r := RunKernel(context.Background(), b, k, RunOptions{
		WorkDir: t.TempDir(),
		Boot:    BootOptions{Timeout: 3 * time.Minute},
		Logf:    t.Logf,
	})
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	if len(r.Boots) != 2 {
		t.Fatalf("got %d boots, want 2 (crash, then one retry)", len(r.Boots))
	}
	for i, boot := range r.Boots {
		c := boot.Console
		if !c.Crashed() {
			t.Fatalf("boot %d: crash not detected; console tail:\n%s", i+1, strings.Join(c.Tail(30), "\n"))
		}
		if !strings.Contains(strings.Join(c.Oops, "\n"), "sysrq") {
			t.Errorf("boot %d: Oops lines do not name the sysrq crash:\n%s", i+1, strings.Join(c.Oops, "\n"))
		}
		if boot.TimedOut {
			t.Errorf("boot %d: timed out instead of ending at the panic", i+1)
		}
		if s := c.Step("crash"); s == nil || s.Ended {
			t.Errorf("boot %d: crash step = %+v, want started and not ended", i+1, s)
		}
	}
	problems := strings.Join(r.Problems(b), "\n")
	if !strings.Contains(problems, "kernel crashed (2 boots)") {
		t.Errorf("Problems() = %q, want a kernel crash report", problems)
	}
	// Keep a real crash console for the parser's unit tests.
	if os.Getenv("SAFEBPF_VM_UPDATE_FIXTURES") == "1" {
		dst := filepath.Join("testdata", "console", k.Name+"-sysrq-crash.log")
		if err := os.WriteFile(dst, []byte(strings.Join(r.Boots[0].Console.Lines, "\n")+"\n"), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// TestGuestHangTimesOut boots a guest whose only step never exits: the boot
// must end at the timeout with the console tail, not hang the host test.
func TestGuestHangTimesOut(t *testing.T) {
	matrixEnabled(t)
	root, kernels, _ := matrixSetup(t)
	k := kernels[0]
	b := guestProgBuild(t, root, "hang")
	start := time.Now()
	r := RunKernel(context.Background(), b, k, RunOptions{
		WorkDir: t.TempDir(),
		Guest:   GuestConfig{StepTimeout: 10 * time.Minute},
		Boot:    BootOptions{Timeout: 45 * time.Second},
		Logf:    t.Logf,
	})
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	if d := time.Since(start); d > 2*time.Minute {
		t.Errorf("hung guest took %s to end, want about the 45s timeout", d)
	}
	boot := r.Last()
	if !boot.TimedOut || len(r.Boots) != 1 {
		t.Fatalf("TimedOut=%v after %d boots, want a single timed-out boot", boot.TimedOut, len(r.Boots))
	}
	s := boot.Console.Step("hang")
	if s == nil || s.Ended || !strings.Contains(strings.Join(s.Output, "\n"), "hang: sleeping forever") {
		t.Fatalf("hang step = %+v, want started, printing, not ended", s)
	}
	problems := strings.Join(r.Problems(b), "\n")
	if !strings.Contains(problems, "guest timed out") || !strings.Contains(problems, "hang: sleeping forever") {
		t.Errorf("Problems() = %q, want the timeout and the console tail", problems)
	}
}
