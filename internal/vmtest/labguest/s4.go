//go:build linux && amd64

package main

// Scenario 4: uretprobe under seccomp (HAZARDS-RESEARCH.md §6 and C3).
// Since 6.11 the x86-64 uretprobe trampoline returns through the uretprobe
// system call (335); a process whose seccomp filter does not allow it is
// killed when a uretprobed function returns, until cf6cb56ef244 lets the
// call pass every filter (6.12.14, 6.13.3, 6.14).
//
// The victim (`labguest s4-victim`) installs a filter that kills the process
// on syscall 335 (on every thread: TSYNC) and calls uretTarget, an assembly
// leaf in this binary, -calls times. The uretprobe goes on uretTarget. The
// "filter" arm is the control: the same victim calls 335 directly, which
// must end it — by SIGSYS where the filter sees 335, by SIGILL where the
// kernel passes 335 through the filter (cf6cb56ef244) and sys_uretprobe
// refuses a caller that is not its trampoline.

import (
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
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/safebpf/safebpf/fallback"
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
	case "filter":
		args = append(args, "-direct")
		r.Mechanism = "none (control: the victim calls syscall 335 itself)"
	case "naive":
		prog, err := counterProg("lab_s4", ebpf.Kprobe, 0, "", m, 0, 0)
		if err != nil {
			return failed(r, "%v", err)
		}
		defer prog.Close()
		ex, err := link.OpenExecutable(self)
		if err != nil {
			return failed(r, "%v", err)
		}
		l, err := ex.Uretprobe(uretTargetSymbol, prog, nil)
		if err != nil {
			return failed(r, "uretprobe %s: %v", uretTargetSymbol, err)
		}
		defer l.Close()
		r.Mechanism = "uretprobe"
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
		if arm == "filter" {
			switch ws.Signal() {
			case unix.SIGSYS:
				r.Summary = "filter works: a direct syscall 335 is killed by the filter (SIGSYS)"
			case unix.SIGILL:
				r.Summary = "syscall 335 passes the filter (cf6cb56ef244): sys_uretprobe kills the non-trampoline caller (SIGILL)"
			}
		}
	case ws.ExitStatus() == 0 && arm != "filter":
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

// s4Victim installs the seccomp filter and calls uretTarget (or, with
// -direct, syscall 335 itself).
func s4Victim(args []string) {
	calls, direct := 100, false
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "-calls":
			if i+1 < len(args) {
				calls, _ = strconv.Atoi(args[i+1])
				i++
			}
		case "-direct":
			direct = true
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
	if direct {
		_, _, errno := unix.RawSyscall(sysUretprobe, 0, 0, 0)
		fmt.Printf("syscall 335 returned to the caller: errno %d\n", errno)
		os.Exit(3)
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
