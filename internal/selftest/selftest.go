// Package selftest runs live self-tests: it provokes a kernel behaviour in
// a throw-away process and watches the outcome. A self-test is the first
// witness for a hazard (before machine code, kallsyms or versions) when it
// can be run safely.
//
// # uretprobe under seccomp
//
// Since 6.11 (ff474a78cef5 "uprobe: Add uretprobe syscall to speed up
// return probe") the x86-64 uretprobe trampoline makes a system call
// (uretprobe, 335). A process whose seccomp filter does not allow it is
// killed when a probed function returns (SIGSEGV when the filter returns an
// errno, as Docker's default profile does; SIGSYS when it kills), until
// cf6cb56ef244 "seccomp: passthrough uretprobe systemcall without
// filtering" (6.14; 6.13.3, 6.12.14). [RunUretprobeSeccomp] runs a helper
// (a static executable generated in memory: no compiler, no file on disk)
// under a seccomp filter, attaches a counting uretprobe to one of its
// functions with cilium/ebpf, lets it call the function and reports whether
// it survived and how often the probe fired. A control run of the same
// helper and filter without the probe must exit cleanly first, so a kill
// is the probe's doing.
//
// The test runs on x86-64 only, needs root (CAP_BPF, CAP_PERFMON and
// CAP_SYS_ADMIN for the uprobe) and a kernel with uprobes, is bounded in
// time and leaves nothing behind: the helper is reaped, the link, program
// and map are closed, the memfd holding the helper is closed. Callers
// decide whether it can matter (the kernel has __x64_sys_uretprobe).
// [UretprobeSeccomp] runs the default variant once per process.
package selftest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"
)

// ErrNotSupported is wrapped by errors for self-tests that cannot run
// here (another architecture or operating system).
var ErrNotSupported = errors.New("self-test not supported here")

// Filter selects the helper's seccomp filter.
type Filter int

// The filters.
const (
	// FilterAllowList allows only the syscalls the helper makes (getpid,
	// exit_group, exit, rt_sigreturn) and fails every other with EPERM, as
	// container runtimes' default profiles do: the uretprobe syscall is not
	// allowed. This is the self-test proper.
	FilterAllowList Filter = iota
	// FilterKillAfterReturn is FilterAllowList, except that getpid, which
	// the helper calls right after the probed function returned, kills the
	// process: it shows the harness notices a kill that happens after the
	// uretprobe fired.
	FilterKillAfterReturn
	// FilterDenyUretprobe allows everything but the uretprobe syscall,
	// which kills the process. A fixed kernel passes the syscall through
	// seccomp, so the helper survives.
	FilterDenyUretprobe
	// FilterNone installs no filter (a control: the uretprobe fires and
	// the helper survives on every kernel).
	FilterNone
)

func (f Filter) String() string {
	switch f {
	case FilterAllowList:
		return "allow-list (EPERM for everything else)"
	case FilterKillAfterReturn:
		return "allow-list, getpid kills"
	case FilterDenyUretprobe:
		return "uretprobe syscall kills, everything else allowed"
	case FilterNone:
		return "no filter"
	}
	return fmt.Sprintf("Filter(%d)", int(f))
}

// filter returns the classic BPF program of f, nil for FilterNone.
func (f Filter) filter() ([]sockFilter, error) {
	allow := map[uint32]uint32{sysGetpid: retAllow, sysExitGroup: retAllow, sysExit: retAllow, sysRtSigreturn: retAllow}
	switch f {
	case FilterAllowList:
		return seccompFilter(allow, retErrno|errnoEPERM), nil
	case FilterKillAfterReturn:
		allow[sysGetpid] = retKillProcess
		return seccompFilter(allow, retErrno|errnoEPERM), nil
	case FilterDenyUretprobe:
		return seccompFilter(map[uint32]uint32{sysUretprobe: retKillProcess}, retAllow), nil
	case FilterNone:
		return nil, nil
	}
	return nil, fmt.Errorf("unknown seccomp filter %d", int(f))
}

// helperRun is how one run of the helper ended.
type helperRun struct {
	Outcome  Outcome
	ExitCode int
	Signal   syscall.Signal
}

func (r helperRun) String() string {
	if r.Outcome == Killed {
		return fmt.Sprintf("killed by %s", r.Signal)
	}
	return fmt.Sprintf("exit %d", r.ExitCode)
}

// control is how the helper ends under f without a probe: it exits 0,
// except under FilterKillAfterReturn, whose getpid rule kills it.
func (f Filter) control() helperRun {
	if f == FilterKillAfterReturn {
		return helperRun{Outcome: Killed, Signal: syscall.SIGSYS}
	}
	return helperRun{Outcome: Survived, ExitCode: exitOK}
}

// UretprobeOptions configures [RunUretprobeSeccomp]. A nil *UretprobeOptions
// means the self-test proper: FilterAllowList, a uretprobe attached,
// a 10-second bound.
type UretprobeOptions struct {
	// Filter is the helper's seccomp filter; the zero value is
	// FilterAllowList.
	Filter Filter
	// NoProbe runs the helper without attaching the uretprobe (the
	// control run on its own).
	NoProbe bool
	// DirectSyscall makes the helper issue the uretprobe syscall itself
	// instead of calling the probed function. Outside the trampoline the
	// kernel answers it with SIGILL, once seccomp lets it through: under
	// FilterDenyUretprobe, SIGILL means the passthrough fix is in and
	// SIGSYS that the filter saw the call. No probe is attached.
	DirectSyscall bool
	// Timeout bounds the whole self-test; the helper is killed when it
	// expires. Zero means 10 seconds.
	Timeout time.Duration
}

func (o *UretprobeOptions) opts() UretprobeOptions {
	if o == nil {
		return UretprobeOptions{Timeout: 10 * time.Second}
	}
	c := *o
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	return c
}

// Outcome is how the helper ended.
type Outcome int

// The outcomes.
const (
	// Survived: the helper exited on its own (see ExitCode).
	Survived Outcome = iota + 1
	// Killed: a signal ended the helper (see Signal).
	Killed
)

func (o Outcome) String() string {
	switch o {
	case Survived:
		return "survived"
	case Killed:
		return "killed"
	}
	return "unknown"
}

// UretprobeResult is what a run of the self-test saw.
type UretprobeResult struct {
	Filter  Filter
	Probed  bool // a uretprobe was attached
	Outcome Outcome
	// ExitCode is the helper's exit code when it survived: 0 returned
	// normally, 3 could not install its filter, 4 the probed function's
	// value came back wrong, 5 the direct syscall returned.
	ExitCode int
	// Signal is the signal that killed the helper.
	Signal syscall.Signal
	// Fired counts the runs of the uretprobe program.
	Fired uint64
	// Control says how the control run (same helper and filter, no probe)
	// ended; empty when there was none.
	Control string
	// Elapsed is the wall time of the whole self-test.
	Elapsed time.Duration
}

// String describes the result: "survived: exit 0, uretprobe fired 1 time
// (control without probe: exit 0) in 12ms". The text is not a stable
// interface.
func (r UretprobeResult) String() string {
	s := r.Outcome.String()
	switch r.Outcome {
	case Survived:
		s += fmt.Sprintf(": exit %d", r.ExitCode)
	case Killed:
		s += fmt.Sprintf(" by %s (%d)", r.Signal, int(r.Signal))
	}
	if r.Probed {
		s += fmt.Sprintf(", uretprobe fired %d time(s)", r.Fired)
	}
	s += ", seccomp filter: " + r.Filter.String()
	if r.Control != "" {
		s += " (control without probe: " + r.Control + ")"
	}
	return s + fmt.Sprintf(" in %s", r.Elapsed.Round(100*time.Microsecond))
}

var uretprobeOnce struct {
	sync.Mutex
	done bool
	r    UretprobeResult
	err  error
}

// UretprobeSeccomp runs the self-test proper (nil options) once per
// process and returns the cached result afterwards. A run cut short by
// ctx is not cached.
func UretprobeSeccomp(ctx context.Context) (UretprobeResult, error) {
	uretprobeOnce.Lock()
	defer uretprobeOnce.Unlock()
	if uretprobeOnce.done {
		return uretprobeOnce.r, uretprobeOnce.err
	}
	r, err := RunUretprobeSeccomp(ctx, nil)
	if ctx.Err() == nil {
		uretprobeOnce.done, uretprobeOnce.r, uretprobeOnce.err = true, r, err
	}
	return r, err
}
