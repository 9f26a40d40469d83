//go:build linux && amd64

package main

// Scenario 1: fentry/fexit detach vs an exiting pid-namespace init
// (HAZARDS-RESEARCH.md §3 and C10). The variant from Datadog's incident:
// B is the init of a new PID namespace; A, B's child inside it, attaches
// fentry (or fexit) to a kernel function nothing else traces; SIGKILL B.
// A's exit closes the link → synchronize_rcu_tasks() waits for B's SRCU read
// section while B, in zap_pid_ns_processes(), waits for A.
//
// Process tree: labguest s1 (P, outside) → s1-init (B, pid 1 of the new
// namespace, started with CLONE_NEWPID) → s1-agent (A). P never waits on
// stuck tasks: after hang-after it reads their stacks twice and reports.

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/internal/vmtest/vmproto"
	"github.com/safebpf/safebpf/loader"
	"github.com/safebpf/safebpf/probe"
)

// s1Symbol is the traced kernel function: a syscall nothing else in the
// guest traces, which the agent triggers to show its program runs.
const s1Symbol = "__x64_sys_getpgid"

// agentReady is what A reports to P through the ready file.
type agentReady struct {
	PID       int    `json:"pid"` // A's pid in the initial namespace
	Mechanism string `json:"mechanism"`
	Decision  string `json:"decision,omitempty"`
	Fired     uint64 `json:"fired"`
	Error     string `json:"error,omitempty"`
	Refused   bool   `json:"refused,omitempty"`
}

func s1(arm string, hangAfter, recheck time.Duration) vmproto.LabRecord {
	r := vmproto.LabRecord{Scenario: "1", Arm: arm, Safebpf: strings.HasPrefix(arm, "safebpf-"), Numbers: map[string]float64{}}
	switch arm {
	case "naive-fentry", "naive-fexit", "safebpf-fentry", "safebpf-fexit":
	default:
		return failed(r, "unknown arm %q", arm)
	}
	r.Evidence = symbolWitnesses("tasks_rcu_exit_srcu", "exit_tasks_rcu_stop")
	self, err := os.Executable()
	if err != nil {
		return failed(r, "find own executable: %v", err)
	}
	ready := filepath.Join(os.TempDir(), fmt.Sprintf("lab-s1-%d.json", os.Getpid()))
	b := exec.Command(self, "s1-init", "-arm", arm, "-ready", ready)
	b.Stdout, b.Stderr = os.Stderr, os.Stderr
	b.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
	if err := b.Start(); err != nil {
		return failed(r, "start namespace init: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- b.Wait() }()

	// The safebpf arms probe the kernel first, which takes a while under TCG.
	var a agentReady
	deadline := time.After(3 * time.Minute)
wait:
	for {
		select {
		case err := <-done:
			return failed(r, "namespace init exited before the agent attached: %v", err)
		case <-deadline:
			_ = b.Process.Kill()
			return failed(r, "agent did not attach within 3m")
		case <-time.After(50 * time.Millisecond):
			buf, err := os.ReadFile(ready)
			if err != nil {
				continue
			}
			if err := json.Unmarshal(buf, &a); err != nil {
				return failed(r, "decode agent report: %v", err)
			}
			break wait
		}
	}
	r.Mechanism, r.Decision = a.Mechanism, a.Decision
	r.Numbers["fired"] = float64(a.Fired)
	if a.Error != "" {
		_ = b.Process.Kill()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
		}
		if a.Refused {
			r.Outcome, r.Summary = "refused", "refused: "+a.Error
			return r
		}
		return failed(r, "agent: %s", a.Error)
	}
	r.Evidence = append(r.Evidence, fmt.Sprintf("agent pid %d attached %s to %s; its program ran %d times", a.PID, a.Mechanism, s1Symbol, a.Fired))

	start := time.Now()
	if err := b.Process.Signal(syscall.SIGKILL); err != nil {
		return failed(r, "SIGKILL namespace init: %v", err)
	}
	select {
	case <-done:
		d := time.Since(start)
		r.Numbers["exit_ms"] = ms(d)
		r.Outcome = "exited"
		r.Summary = fmt.Sprintf("%s: namespace gone %.0f ms after SIGKILL of its init", a.Mechanism, ms(d))
		return r
	case <-time.After(hangAfter):
	}
	first := inspectTasks(map[string]int{"init": b.Process.Pid, "agent": a.PID})
	time.Sleep(recheck)
	second := inspectTasks(map[string]int{"init": b.Process.Pid, "agent": a.PID})
	unchanged := first.signature() == second.signature()
	r.Numbers["hang_s"] = (hangAfter + recheck).Seconds()
	r.Numbers["blocked_threads"] = float64(second.blocked)
	if unchanged {
		r.Numbers["unchanged"] = 1
	}
	if second.rcuTasks {
		r.Numbers["in_synchronize_rcu_tasks"] = 1
	}
	r.Evidence = append(r.Evidence, second.lines...)
	r.Outcome = "hang"
	wchan := second.agentWchan
	if wchan == "" {
		wchan = "?"
	}
	r.Summary = fmt.Sprintf("%s: HANG, namespace init not reaped %s after SIGKILL; %d thread(s) in D, agent wchan %s, %s %s later",
		a.Mechanism, hangAfter, second.blocked, wchan, map[bool]string{true: "unchanged", false: "changed"}[unchanged], recheck)
	// Never wait on the stuck tasks: they outlive this process, and the
	// guest powers off after the remaining steps.
	return r
}

// s1Init is B: the init of the new PID namespace. It starts A and waits.
func s1Init(args []string) {
	fs := flag.NewFlagSet("s1-init", flag.ExitOnError)
	arm := fs.String("arm", "", "")
	ready := fs.String("ready", "", "")
	fs.Parse(args)
	self, err := os.Executable()
	if err != nil {
		logf("s1-init: %v", err)
		os.Exit(1)
	}
	a := exec.Command(self, "s1-agent", "-arm", *arm, "-ready", *ready)
	a.Stdout, a.Stderr = os.Stderr, os.Stderr
	if err := a.Run(); err != nil {
		logf("s1-init (pid %d in its namespace): agent: %v", os.Getpid(), err)
	}
	os.Exit(1) // only reached when the agent ends by itself
}

// keep holds A's link for the life of the process, so only A's exit closes it.
var keep []any

// s1Agent is A: it attaches, proves the program runs, reports and sleeps
// until the namespace's death kills it.
func s1Agent(args []string) {
	fs := flag.NewFlagSet("s1-agent", flag.ExitOnError)
	arm := fs.String("arm", "", "")
	ready := fs.String("ready", "", "")
	fs.Parse(args)
	rep := agentReady{}
	if p, err := os.Readlink("/proc/self"); err == nil {
		rep.PID, _ = strconv.Atoi(p)
	}
	report := func() {
		b, _ := json.Marshal(rep)
		tmp := *ready + ".tmp"
		if err := os.WriteFile(tmp, b, 0o644); err == nil {
			_ = os.Rename(tmp, *ready)
		}
	}
	if err := s1Attach(*arm, &rep); err != nil {
		rep.Error, rep.Refused = err.Error(), errors.Is(err, fallback.ErrRefused)
		report()
		os.Exit(1)
	}
	report()
	for {
		time.Sleep(time.Hour)
	}
}

func s1Attach(arm string, rep *agentReady) error {
	m, err := counters()
	if err != nil {
		return err
	}
	keep = append(keep, m)
	exitSide := strings.HasSuffix(arm, "-fexit")
	at, kt := ebpf.AttachTraceFEntry, ebpf.Kprobe
	tramp, alt := "fentry", "kprobe"
	if exitSide {
		at, tramp, alt = ebpf.AttachTraceFExit, "fexit", "kretprobe"
	}
	tp, err := counterProg("lab_s1_"+tramp, ebpf.Tracing, at, s1Symbol, m, 0, 0)
	if err != nil {
		return err
	}
	keep = append(keep, tp)
	var lk link.Link
	if strings.HasPrefix(arm, "naive-") {
		lk, err = link.AttachTracing(link.TracingOptions{Program: tp, AttachType: at})
		if err != nil {
			return fmt.Errorf("attach %s to %s: %w", tramp, s1Symbol, err)
		}
		rep.Mechanism = tramp
	} else {
		kp, err := counterProg("lab_s1_"+alt, kt, 0, "", m, 0, 0)
		if err != nil {
			return err
		}
		keep = append(keep, kp)
		l, err := loader.New(nil)
		if err != nil {
			return fmt.Errorf("safebpf loader: %w", err)
		}
		keep = append(keep, l)
		// The kprobe (kretprobe) variant an agent ships beside its
		// trampoline program; the spec tells the loader the target.
		altMech := probe.Kprobe
		if exitSide {
			altMech = probe.Kretprobe
		}
		sl, err := l.AttachTracing(link.TracingOptions{Program: tp, AttachType: at}, &loader.Extra{
			Variants: map[probe.Mechanism]*ebpf.Program{altMech: kp},
			Spec:     counterSpec("lab_s1_"+tramp, ebpf.Tracing, at, s1Symbol, m, 0, 0),
		})
		if err != nil {
			rep.Decision = decisionOf(err)
			return fmt.Errorf("safebpf %s on %s: %w", tramp, s1Symbol, err)
		}
		rep.Decision = loader.Explain(sl.Decision())
		rep.Mechanism = string(sl.Decision().Chosen)
		lk = sl
	}
	keep = append(keep, lk)
	for range 3 {
		_, _ = unix.Getpgid(0)
	}
	rep.Fired = count(m, 0)
	if rep.Fired == 0 {
		return fmt.Errorf("%s attached to %s but its program never ran", rep.Mechanism, s1Symbol)
	}
	return nil
}

// taskReport is what /proc says about the tasks of a stuck namespace.
type taskReport struct {
	lines      []string
	blocked    int    // threads in D state
	rcuTasks   bool   // a stack passes through synchronize_rcu_tasks
	agentWchan string // wchan of the agent's first D-state thread
}

func (t taskReport) signature() string { return strings.Join(t.lines, "\n") }

// inspectTasks reads state, wchan and kernel stack of every thread of the
// named processes (the Go init and agent have several threads each).
func inspectTasks(pids map[string]int) taskReport {
	var t taskReport
	for _, role := range []string{"init", "agent"} {
		pid := pids[role]
		if pid == 0 {
			continue
		}
		dir := fmt.Sprintf("/proc/%d/task", pid)
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.lines = append(t.lines, fmt.Sprintf("%s pid %d: gone (%v)", role, pid, err))
			continue
		}
		var quiet int
		for _, e := range ents {
			tid := e.Name()
			state := taskState(filepath.Join(dir, tid, "stat"))
			wchan, _ := os.ReadFile(filepath.Join(dir, tid, "wchan"))
			stack := stackFrames(filepath.Join(dir, tid, "stack"))
			joined := strings.Join(stack, " < ")
			interesting := state == "D" || state == "Z" || strings.Contains(joined, "zap_pid_ns_processes") ||
				strings.Contains(joined, "synchronize_rcu_tasks") || strings.Contains(joined, "do_exit")
			if state == "D" {
				t.blocked++
				if role == "agent" && t.agentWchan == "" {
					t.agentWchan = string(wchan)
				}
			}
			if strings.Contains(joined, "synchronize_rcu_tasks") {
				t.rcuTasks = true
			}
			if !interesting {
				quiet++
				continue
			}
			t.lines = append(t.lines, fmt.Sprintf("%s pid %d tid %s state %s wchan %s stack %s", role, pid, tid, state, wchan, joined))
		}
		if quiet > 0 {
			t.lines = append(t.lines, fmt.Sprintf("%s pid %d: %d more thread(s) not in D and not exiting", role, pid, quiet))
		}
	}
	return t
}

// taskState returns the state letter of /proc/PID/task/TID/stat.
func taskState(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "?"
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return "?"
	}
	return s[i+2 : i+3]
}

// stackFrames returns the function names of a kernel stack file
// ("[<0>] __wait_rcu_gp+0x12a/0x160" → "__wait_rcu_gp"), at most 16.
func stackFrames(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return []string{"(stack unreadable: " + err.Error() + ")"}
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(f[1], "+")
		out = append(out, name)
		if len(out) == 16 {
			break
		}
	}
	return out
}
