package vmtest

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Result is one kernel's run in the matrix.
type Result struct {
	Kernel Kernel
	// Boots holds every boot, the last one being the one reported; there
	// are two when the first crashed (Oops or panic) and was retried.
	Boots []*Boot
	// InitramfsSize is the compressed initramfs size in bytes.
	InitramfsSize int64
	// Err is a harness failure (could not build the initramfs or start
	// QEMU); the guest results are then missing.
	Err error
}

// Last returns the reported boot, or nil.
func (r *Result) Last() *Boot {
	if len(r.Boots) == 0 {
		return nil
	}
	return r.Boots[len(r.Boots)-1]
}

// Duration is the total time spent booting this kernel (all attempts).
func (r *Result) Duration() time.Duration {
	var d time.Duration
	for _, b := range r.Boots {
		d += b.Duration
	}
	return d
}

// Problems lists why this kernel's run failed, empty when it passed: harness
// errors, crashes, timeouts, missing or failing steps, failed tests.
func (r *Result) Problems(b *Build) []string {
	if r.Err != nil {
		return []string{r.Err.Error()}
	}
	boot := r.Last()
	if boot == nil {
		return []string{"not booted"}
	}
	var p []string
	c := boot.Console
	if boot.QEMUErr != nil {
		p = append(p, boot.QEMUErr.Error())
	}
	if c.Crashed() {
		p = append(p, fmt.Sprintf("kernel crashed (%d boots):\n\t%s", len(r.Boots), strings.Join(c.Oops, "\n\t")))
	}
	if boot.TimedOut {
		p = append(p, fmt.Sprintf("guest timed out after %s; console tail:\n\t%s", boot.Duration.Round(time.Second), strings.Join(c.Tail(40), "\n\t")))
	}
	for _, e := range c.Errors {
		p = append(p, "guest init: "+e)
	}
	want := []string{}
	for _, t := range b.Tests {
		want = append(want, t.Pkg)
	}
	if b.CLI != "" {
		want = append(want, FixtureStep)
	}
	for _, name := range want {
		s := c.Step(name)
		switch {
		case s == nil:
			p = append(p, fmt.Sprintf("%s: did not run", name))
		case !s.Ended:
			p = append(p, fmt.Sprintf("%s: did not finish; output tail:\n\t%s", name, strings.Join(tail(s.Output, 30), "\n\t")))
		case s.Failed():
			var failed []string
			for _, t := range s.Tests {
				if t.Outcome == Fail {
					failed = append(failed, fmt.Sprintf("--- FAIL %s: %s\n\t\t%s", t.Name, t.Reason, strings.Join(t.Output, "\n\t\t")))
				}
			}
			msg := fmt.Sprintf("%s: exit=%d %s", name, s.ExitCode, s.Note)
			if len(failed) > 0 {
				msg += "\n\t" + strings.Join(failed, "\n\t")
			} else {
				msg += "; output tail:\n\t" + strings.Join(tail(s.Output, 30), "\n\t")
			}
			p = append(p, msg)
		}
	}
	return p
}

func tail(l []string, n int) []string {
	if len(l) <= n {
		return l
	}
	return l[len(l)-n:]
}

// RunOptions configures [RunKernel].
type RunOptions struct {
	Guest GuestConfig
	Boot  BootOptions
	// WorkDir holds the initramfs and console logs (<kernel>.cpio.gz,
	// <kernel>.console[.N].log).
	WorkDir string
	// Logf reports progress; nil discards it.
	Logf func(format string, args ...any)
	// NoRetry keeps a crashed boot as it is (the hazard lab's kernel is
	// meant to lock up); false boots once more after an Oops or panic.
	NoRetry bool
}

func (o *RunOptions) logf(format string, args ...any) {
	if o.Logf != nil {
		o.Logf(format, args...)
	}
}

// RunKernel builds k's initramfs and boots it, retrying once when the guest
// kernel crashes (an Oops or panic seen on the console).
func RunKernel(ctx context.Context, b *Build, k Kernel, o RunOptions) *Result {
	r := &Result{Kernel: k}
	files, err := GuestFiles(b, k, o.Guest)
	if err != nil {
		r.Err = err
		return r
	}
	initrd := filepath.Join(o.WorkDir, k.Name+".cpio.gz")
	if err := writeFile(initrd, func(w io.Writer) error { return WriteInitramfs(w, files) }); err != nil {
		r.Err = fmt.Errorf("build initramfs for %s: %w", k.Name, err)
		return r
	}
	if st, err := os.Stat(initrd); err == nil {
		r.InitramfsSize = st.Size()
	}
	for attempt := 1; attempt <= 2; attempt++ {
		logPath := filepath.Join(o.WorkDir, fmt.Sprintf("%s.console.%d.log", k.Name, attempt))
		lf, err := os.Create(logPath)
		if err != nil {
			r.Err = fmt.Errorf("create console log: %w", err)
			return r
		}
		bo := o.Boot
		bo.Console = lf
		o.logf("%s: boot %d (%s), console in %s", k.Name, attempt, k.Package+" "+k.Version, logPath)
		boot, err := BootGuest(ctx, k.Vmlinuz, initrd, bo)
		lf.Close()
		if err != nil {
			r.Err = fmt.Errorf("boot %s: %w", k.Name, err)
			return r
		}
		r.Boots = append(r.Boots, boot)
		o.logf("%s: boot %d ended after %s (done=%v crashed=%v timeout=%v)", k.Name, attempt,
			boot.Duration.Round(100*time.Millisecond), boot.Console.Done, boot.Console.Crashed(), boot.TimedOut)
		if !boot.Console.Crashed() || o.NoRetry {
			break
		}
		o.logf("%s: guest kernel crashed, retrying once:\n\t%s", k.Name, strings.Join(boot.Console.Oops, "\n\t"))
	}
	return r
}

func writeFile(name string, fn func(io.Writer) error) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := fn(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
