//go:build linux

// Command guestinit is PID 1 in the kernel-matrix guests (see package
// vmtest). It mounts the pseudo filesystems cilium/ebpf and the tests need,
// raises RLIMIT_MEMLOCK, runs every step of the plan at vmproto.PlanPath as a
// child process with its output bracketed by markers on the console, and
// powers the machine off.
//
// The mounts happen here, before any step runs: cilium/ebpf reads
// /proc/self/mountinfo the first time it loads a program, so a process that
// mounted tracefs after that would not be seen.
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/safebpf/safebpf/internal/vmtest/vmproto"
)

func main() {
	// Stdout is /dev/console (the serial port); write markers unbuffered.
	if err := run(); err != nil {
		say(vmproto.ErrorTag, err.Error())
	}
	say(vmproto.DoneTag, "")
	unix.Sync()
	if os.Getpid() == 1 {
		_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
		// Only reached if power-off failed; exiting PID 1 panics the
		// kernel, and panic=-1 with -no-reboot ends QEMU.
	}
}

func say(tag, rest string) {
	line := vmproto.Prefix + tag
	if rest != "" {
		line += " " + rest
	}
	fmt.Fprintln(os.Stdout, line)
}

type mount struct {
	source, target, fstype string
	optional               bool
}

var mounts = []mount{
	{"proc", "/proc", "proc", false},
	{"sysfs", "/sys", "sysfs", false},
	{"devtmpfs", "/dev", "devtmpfs", true},
	{"tmpfs", "/run", "tmpfs", true},
	{"tracefs", "/sys/kernel/tracing", "tracefs", false},
	{"debugfs", "/sys/kernel/debug", "debugfs", false},
	{"bpf", "/sys/fs/bpf", "bpf", false},
	{"cgroup2", "/sys/fs/cgroup", "cgroup2", true},
	{"securityfs", "/sys/kernel/security", "securityfs", true},
}

func mountAll() error {
	for _, m := range mounts {
		if err := os.MkdirAll(m.target, 0o755); err != nil && !m.optional {
			return fmt.Errorf("create mount point %s: %w", m.target, err)
		}
		err := unix.Mount(m.source, m.target, m.fstype, 0, "")
		if err != nil && !errors.Is(err, unix.EBUSY) {
			if m.optional {
				say(vmproto.ErrorTag, fmt.Sprintf("mount %s on %s (optional): %v", m.fstype, m.target, err))
				continue
			}
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.target, err)
		}
	}
	return nil
}

func run() error {
	if err := mountAll(); err != nil {
		return err
	}
	inf := unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}
	if err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &inf); err != nil {
		return fmt.Errorf("raise RLIMIT_MEMLOCK: %w", err)
	}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err == nil {
		say(vmproto.KernelTag, unix.ByteSliceToString(uts.Release[:]))
	}
	if b, err := os.ReadFile("/proc/version"); err == nil {
		say(vmproto.VersionTag, strings.TrimSpace(string(b)))
	}
	say(vmproto.CPUsTag, fmt.Sprint(runtime.NumCPU()))

	b, err := os.ReadFile(vmproto.PlanPath)
	if err != nil {
		return fmt.Errorf("read plan: %w", err)
	}
	var plan vmproto.Plan
	if err := json.Unmarshal(b, &plan); err != nil {
		return fmt.Errorf("decode plan: %w", err)
	}
	env := append([]string{
		"PATH=/bin:/usr/bin:/sbin:/usr/sbin",
		"HOME=/root",
		"TMPDIR=/tmp",
		"SAFEBPF_VM_KERNEL=" + plan.Kernel,
	}, plan.Env...)
	for _, d := range []string{"/tmp", "/root"} {
		_ = os.MkdirAll(d, 0o1777)
	}
	for _, s := range plan.Steps {
		runStep(s, env)
	}
	return nil
}

func runStep(s vmproto.Step, env []string) {
	fmt.Fprintln(os.Stdout, vmproto.Begin(s.Name))
	ctx := context.Background()
	if s.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.Timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, s.Path, s.Args...)
	cmd.Dir = s.Dir
	if cmd.Dir == "" {
		cmd.Dir = "/"
	}
	cmd.Env = env
	cmd.Stderr = os.Stdout
	var data bytes.Buffer
	if s.Data {
		cmd.Stdout = &data
	} else {
		cmd.Stdout = os.Stdout
	}
	// Kill the whole process group on timeout: test binaries may have
	// started children (uprobe targets).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return unix.Kill(-cmd.Process.Pid, unix.SIGKILL) }
	start := time.Now()
	err := cmd.Run()
	if s.Data {
		enc := base64.StdEncoding.EncodeToString(data.Bytes())
		for len(enc) > 0 {
			n := min(len(enc), vmproto.DataLineLen)
			say(vmproto.DataTag, s.Name+" "+enc[:n])
			enc = enc[n:]
		}
	}
	code, note := 0, ""
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			note = "signal=" + ws.Signal().String()
		}
	default:
		code, note = -1, "error="+strings.ReplaceAll(err.Error(), " ", "_")
	}
	if ctx.Err() != nil {
		note = strings.TrimSpace(note + " timeout=" + s.Timeout.String())
	}
	note = strings.TrimSpace(note + fmt.Sprintf(" elapsed=%.1fs", time.Since(start).Seconds()))
	fmt.Fprintln(os.Stdout, vmproto.End(s.Name, code, note))
}
