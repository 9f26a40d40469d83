package vmtest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"time"
)

// BootOptions configures one QEMU boot. The zero value is usable.
type BootOptions struct {
	// QEMU is the emulator binary; empty means SAFEBPF_QEMU or
	// qemu-system-x86_64.
	QEMU string
	// Timeout ends a guest that has not powered off; zero means 6 minutes
	// (TCG is slow).
	Timeout time.Duration
	// OopsGrace is how long the console is still read after the first
	// Oops/panic line before the guest is killed; zero means 10 seconds.
	OopsGrace time.Duration
	// Memory in MiB (zero: 1024) and CPUs (zero: 2).
	Memory, CPUs int
	// MaxCPUs, when above CPUs, makes the rest hot-pluggable: the guest's
	// possible CPUs (num_possible_cpus(), /sys/devices/system/cpu/possible)
	// are MaxCPUs while CPUs are online. Zero means CPUs.
	MaxCPUs int
	// MultiThreadTCG runs each vCPU on its own host thread
	// (-accel tcg,thread=multi). False is single-threaded TCG: see QEMUArgs.
	MultiThreadTCG bool
	// Append is added to the kernel command line.
	Append string
	// Console, when not nil, receives the raw serial console as it arrives.
	Console io.Writer
	// EndAfter, when set, ends the guest EndGrace after the first console
	// line it matches (the hazard lab ends a locked-up guest this way);
	// zero EndGrace means 30 seconds. Nil means only the timeout and an
	// Oops end a guest early.
	EndAfter *regexp.Regexp
	EndGrace time.Duration
}

// Boot is the outcome of one boot.
type Boot struct {
	Console *Console
	// Duration is wall time from starting QEMU to its exit.
	Duration time.Duration
	// TimedOut is set when the guest was killed at the timeout.
	TimedOut bool
	// KilledAfterOops is set when the guest was killed after an Oops.
	KilledAfterOops bool
	// Ended is set when the guest was ended after a line matching
	// BootOptions.EndAfter.
	Ended bool
	// QEMUErr is QEMU's own failure (non-zero exit not caused by us), with
	// its stderr.
	QEMUErr error
}

// QEMUArgs returns the emulator arguments for booting vmlinuz with initrd:
// TCG (nested KVM hangs on the project's machines), `-cpu max`, the serial
// console on stdout and no reboot, so a guest panic ends QEMU.
func QEMUArgs(vmlinuz, initrd string, o BootOptions) []string {
	mem, cpus := o.Memory, o.CPUs
	if mem == 0 {
		mem = 1024
	}
	if cpus == 0 {
		cpus = 2
	}
	// no_timer_check: under TCG a loaded host can make the kernel's early
	// IO-APIC timer check fail ("IO-APIC + timer doesn't work" panic at boot).
	cmdline := "console=ttyS0 quiet panic=-1 no_timer_check rdinit=/init"
	if o.Append != "" {
		cmdline += " " + o.Append
	}
	smp := fmt.Sprint(cpus)
	if o.MaxCPUs > cpus {
		smp += fmt.Sprintf(",maxcpus=%d", o.MaxCPUs)
	}
	accel := "tcg,thread=single"
	if o.MultiThreadTCG {
		accel = "tcg,thread=multi"
	}
	return []string{
		// -cx16: Debian 6.12 guests double-faulted, with EFLAGS holding a
		// pointer, right after the per-CPU cmpxchg16b in __kmalloc_noprof
		// whenever sampling perf events were busy (QEMU 7.2 TCG; single-
		// threaded TCG did not help). Without CX16 the kernel takes SLUB's
		// locked slow path, which is not what these tests are about.
		// thread=single: with multi-threaded TCG, guests occasionally hit
		// "Oops: int3" in syscall_trace_enter while a tracepoint's static
		// key was being patched with the other vCPU running (KERNELS.md).
		"-accel", accel, "-cpu", "max,-cx16",
		"-smp", smp, "-m", fmt.Sprint(mem),
		"-nographic", "-monitor", "none", "-no-reboot", "-nodefaults", "-serial", "stdio",
		"-kernel", vmlinuz, "-initrd", initrd,
		"-append", cmdline,
	}
}

// BootGuest boots vmlinuz with initrd, reads the serial console until QEMU
// exits, and parses it. It ends the guest at the timeout, or shortly after a
// kernel Oops or panic; neither is an error (see Boot). The error is for
// failing to start QEMU or to read its output.
func BootGuest(ctx context.Context, vmlinuz, initrd string, o BootOptions) (*Boot, error) {
	qemu := o.QEMU
	if qemu == "" {
		qemu = os.Getenv("SAFEBPF_QEMU")
	}
	if qemu == "" {
		qemu = "qemu-system-x86_64"
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = 6 * time.Minute
	}
	grace := o.OopsGrace
	if grace == 0 {
		grace = 10 * time.Second
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, QEMUArgs(vmlinuz, initrd, o)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdin = nil
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start qemu: %w", err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start qemu: %w", err)
	}
	var (
		mu                     sync.Mutex
		timedOut, oopsK, ended bool
	)
	timer := time.AfterFunc(timeout, func() {
		mu.Lock()
		timedOut = true
		mu.Unlock()
		cancel()
	})
	defer timer.Stop()

	var raw bytes.Buffer
	var oopsTimer, endTimer *time.Timer
	endGrace := o.EndGrace
	if endGrace == 0 {
		endGrace = 30 * time.Second
	}
	r := bufio.NewReader(out)
	for {
		line, rerr := r.ReadString('\n')
		if line != "" {
			raw.WriteString(line)
			if o.Console != nil {
				_, _ = io.WriteString(o.Console, line)
			}
			if oopsTimer == nil && len(FindOops([]string{strings.TrimRight(line, "\r\n")})) > 0 {
				oopsTimer = time.AfterFunc(grace, func() {
					mu.Lock()
					oopsK = true
					mu.Unlock()
					cancel()
				})
				defer oopsTimer.Stop()
			}
			if endTimer == nil && o.EndAfter != nil && o.EndAfter.MatchString(line) {
				endTimer = time.AfterFunc(endGrace, func() {
					mu.Lock()
					ended = true
					mu.Unlock()
					cancel()
				})
				defer endTimer.Stop()
			}
		}
		if rerr != nil {
			break
		}
	}
	werr := cmd.Wait()
	b := &Boot{Duration: time.Since(start)}
	mu.Lock()
	b.TimedOut, b.KilledAfterOops, b.Ended = timedOut, oopsK, ended
	mu.Unlock()
	if werr != nil && !b.TimedOut && !b.KilledAfterOops && !b.Ended && ctx.Err() == nil {
		b.QEMUErr = fmt.Errorf("qemu: %w: %s", werr, strings.TrimSpace(stderr.String()))
	}
	c, err := ParseConsole(&raw)
	if err != nil {
		return nil, err
	}
	b.Console = c
	return b, nil
}
