//go:build linux && amd64

package main

// Scenario 4: uretprobe under seccomp (HAZARDS-RESEARCH.md §6 and C3).
// Since 6.11 the x86-64 uretprobe trampoline returns through the uretprobe
// system call (335); a process whose seccomp filter does not allow it is
// killed when a uretprobed function returns, until cf6cb56ef244 lets the
// call pass every filter (6.12.14, 6.13.3, 6.14).
//
// The naive arms are the project's own self-test (internal/selftest): a
// helper generated in memory runs under a seccomp filter while a counting
// uretprobe sits on one of its functions, after a control run without the
// probe. "naive" uses the allow-list filter container runtimes use (335 is
// not allowed: EPERM), "naive-deny" a filter that kills on 335 only. The
// "filter" control makes the helper call 335 itself under the deny filter:
// SIGSYS where the filter sees 335, SIGILL where the kernel passes 335
// through every filter (cf6cb56ef244) and sys_uretprobe refuses a caller
// that is not its trampoline.
//
// The safebpf arm needs a target the loader can open by path: the victim
// (`labguest s4-victim`) installs the kill-on-335 filter on all its threads
// and calls uretTarget, an assembly leaf in this binary, -calls times.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/internal/selftest"
	"github.com/safebpf/safebpf/internal/vmtest/vmproto"
	"github.com/safebpf/safebpf/loader"
)

const sysUretprobe = 335 // __NR_uretprobe on x86-64

func s4(arm string, calls int) vmproto.LabRecord {
	r := vmproto.LabRecord{Scenario: "4", Arm: arm, Safebpf: arm == "safebpf", Numbers: map[string]float64{}}
	r.Evidence = symbolWitnesses("__x64_sys_uretprobe")
	self, err := os.Executable()
	if err != nil {
		return failed(r, "find own executable: %v", err)
	}
	m, err := counters()
	if err != nil {
		return failed(r, "%v", err)
	}
	defer m.Close()
	args := []string{"s4-victim", "-calls", strconv.Itoa(calls)}
	switch arm {
	case "filter", "naive", "naive-deny":
		return s4SelfTest(r, arm)
	case "safebpf":
		prog, err := counterProg("lab_s4", ebpf.Kprobe, 0, "", m, 0, 0)
		if err != nil {
			return failed(r, "%v", err)
		}
		defer prog.Close()
		l, err := loader.New(nil)
		if err != nil {
			return failed(r, "safebpf loader: %v", err)
		}
		defer l.Close()
		ex, err := l.OpenExecutable(self)
		if err != nil {
			return failed(r, "%v", err)
		}
		// Options nil: whether the traced process runs under seccomp is
		// unknown, as it is for most agents.
		lk, err := ex.Uretprobe(uretTargetSymbol, prog, nil)
		if err != nil {
			r.Decision = decisionOf(err)
			if !errors.Is(err, fallback.ErrRefused) {
				return failed(r, "safebpf uretprobe %s: %v", uretTargetSymbol, err)
			}
			r.Outcome = "refused"
			r.Summary = "refused, the victim is not traced: " + r.Decision
			return r
		}
		defer lk.Close()
		r.Decision = loader.Explain(lk.Decision())
		r.Mechanism = string(lk.Decision().Chosen)
	default:
		return failed(r, "unknown arm %q", arm)
	}

	cmd := exec.Command(self, args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return failed(r, "start victim: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return failed(r, "victim did not finish within 60s: %s", out.String())
	}
	r.Numbers["victim_ms"] = ms(time.Since(start))
	fired := count(m, 0)
	r.Numbers["uretprobe_hits"] = float64(fired)
	r.Numbers["calls"] = float64(calls)
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	victimOut := strings.TrimSpace(out.String())
	if victimOut != "" {
		r.Evidence = append(r.Evidence, "victim: "+victimOut)
	}
	switch {
	case ws.Signaled():
		r.Outcome = "killed"
		r.Numbers["signal"] = float64(ws.Signal())
		r.Summary = fmt.Sprintf("victim killed by %s after %d uretprobe hits", unix.SignalName(ws.Signal()), fired)
	case ws.ExitStatus() == 0:
		r.Outcome = "survived"
		r.Summary = fmt.Sprintf("victim under seccomp survived %d returns through the uretprobe (%d hits)", calls, fired)
		if fired < uint64(calls) {
			r.Outcome = "error"
			r.Error = fmt.Sprintf("the uretprobe fired %d times for %d calls", fired, calls)
		}
	default:
		r.Outcome = "error"
		r.Error = fmt.Sprintf("victim exited with status %d", ws.ExitStatus())
		r.Summary = r.Error
	}
	return r
}

// s4Victim installs the seccomp filter and calls uretTarget -calls times.
func s4Victim(args []string) {
	calls := 100
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "-calls" {
			calls, _ = strconv.Atoi(args[i+1])
		}
	}
	if err := denyUretprobeSyscall(); err != nil {
		fmt.Printf("install seccomp filter: %v\n", err)
		os.Exit(4)
	}
	// Let the kernel's signals end the victim as they would a C program:
	// the Go runtime would catch SIGILL and SIGSEGV and exit with status 2.
	for _, sig := range []syscall.Signal{unix.SIGILL, unix.SIGSEGV, unix.SIGBUS} {
		var act [4]uint64 // struct sigaction: handler SIG_DFL, no flags, restorer, mask
		_, _, _ = unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0)
	}
	var sum int64
	for i := range calls {
		sum += uretTarget(int64(i))
	}
	fmt.Printf("%d calls returned (sum %d)\n", calls, sum)
}

// denyUretprobeSyscall installs, on every thread, a seccomp filter that
// kills the process on syscall 335 and allows the rest (x86-64 only).
func denyUretprobeSyscall() error {
	filter := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 4}, // seccomp_data.arch
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 1, Jf: 0, K: unix.AUDIT_ARCH_X86_64},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_KILL_PROCESS},
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0}, // seccomp_data.nr
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 1, K: sysUretprobe},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_KILL_PROCESS},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	if _, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC,
		uintptr(unsafe.Pointer(&prog))); errno != 0 {
		return fmt.Errorf("seccomp: %w", errno)
	}
	return nil
}

// s4SelfTest runs internal/selftest's uretprobe-under-seccomp self-test:
// the naive arms attach the probe with cilium/ebpf, the filter arm is the
// direct-syscall control.
func s4SelfTest(r vmproto.LabRecord, arm string) vmproto.LabRecord {
	opts := &selftest.UretprobeOptions{Filter: selftest.FilterAllowList, Timeout: time.Minute}
	r.Mechanism = "uretprobe (internal/selftest helper, allow-list filter without 335)"
	switch arm {
	case "naive-deny":
		opts.Filter = selftest.FilterDenyUretprobe
		r.Mechanism = "uretprobe (internal/selftest helper, filter killing on 335)"
	case "filter":
		opts.Filter, opts.DirectSyscall = selftest.FilterDenyUretprobe, true
		r.Mechanism = "none (control: the helper calls syscall 335 itself under the filter killing on 335)"
	}
	res, err := selftest.RunUretprobeSeccomp(context.Background(), opts)
	r.Evidence = append(r.Evidence, "self-test: "+res.String())
	if err != nil {
		return failed(r, "%v", err)
	}
	r.Numbers["uretprobe_hits"] = float64(res.Fired)
	r.Numbers["self_test_ms"] = ms(res.Elapsed)
	switch res.Outcome {
	case selftest.Killed:
		r.Outcome = "killed"
		r.Numbers["signal"] = float64(res.Signal)
		r.Summary = fmt.Sprintf("helper under %s killed by %s after %d uretprobe hits", res.Filter, unix.SignalName(res.Signal), res.Fired)
		if arm == "filter" {
			switch res.Signal {
			case unix.SIGSYS:
				r.Summary = "filter works: a direct syscall 335 is killed by the filter (SIGSYS)"
			case unix.SIGILL:
				r.Summary = "syscall 335 passes the filter (cf6cb56ef244): sys_uretprobe kills the non-trampoline caller (SIGILL)"
			}
		}
	case selftest.Survived:
		if arm == "filter" {
			return failed(r, "the helper survived its own syscall 335 (exit %d)", res.ExitCode)
		}
		r.Outcome = "survived"
		r.Summary = fmt.Sprintf("helper under %s survived with a uretprobe (%d hits; control: %s)", res.Filter, res.Fired, res.Control)
	default:
		return failed(r, "self-test ended without an outcome: %s", res)
	}
	return r
}
