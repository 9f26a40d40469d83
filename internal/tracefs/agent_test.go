//go:build linux

package tracefs

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The test binary doubles as a tracing agent (and as the PID 1 that
// starts agents inside a PID namespace), so the PID-namespace tests run
// real processes: see TestMain.
const (
	agentRoleEnv   = "SAFEBPF_TRACEFS_AGENT"   // "agent" or "init"
	agentKindEnv   = "SAFEBPF_AGENT_KIND"      // "uprobe" or "kretprobe"
	agentTargetEnv = "SAFEBPF_AGENT_TARGET"    // uprobe: PATH:OFFSET
	agentEventsEnv = "SAFEBPF_AGENT_EVENTS"    // how many events to create
	agentCleanEnv  = "SAFEBPF_AGENT_CLEANUP"   // "1": CleanupStale first
	agentProcEnv   = "SAFEBPF_AGENT_MOUNTPROC" // "1": mount a private /proc
)

func TestMain(m *testing.M) {
	switch os.Getenv(agentRoleEnv) {
	case "agent":
		os.Exit(runAgent())
	case "init":
		os.Exit(runInit())
	}
	os.Exit(m.Run())
}

// mountProc gives a process that is PID 1 of a new PID namespace (and
// in a new mount namespace) the /proc of its namespace, as a container
// runtime does.
func mountProc() error {
	if os.Getenv(agentProcEnv) != "1" {
		return nil
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %w", err)
	}
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount proc: %w", err)
	}
	return nil
}

// runAgent is one agent: it optionally cleans stale events, creates
// events, prints what it did, and lives until stdin closes or it is
// killed. Its events are never closed: a SIGKILL leaks them.
func runAgent() int {
	if err := mountProc(); err != nil {
		fmt.Println("FATAL", err)
		return 1
	}
	f, err := Find()
	if err != nil {
		fmt.Println("FATAL", err)
		return 1
	}
	if os.Getenv(agentCleanEnv) == "1" {
		agentCleanup(f)
	}
	n, _ := strconv.Atoi(os.Getenv(agentEventsEnv))
	var keep []*Event
	for i := 0; i < n; i++ {
		ev, err := agentCreate(f)
		if err != nil {
			fmt.Printf("ERROR %v\n", strings.ReplaceAll(err.Error(), "\n", " "))
			continue
		}
		keep = append(keep, ev)
		fmt.Printf("EVENT %s/%s\n", ev.Group, ev.Name)
	}
	fmt.Printf("READY %d\n", os.Getpid())
	bufio.NewReader(os.Stdin).ReadString('\n') // wait for the parent
	for _, ev := range keep {
		ev.cleanup.Stop() // leave the events: the parent removes them
	}
	return 0
}

func agentCreate(f *FS) (*Event, error) {
	switch os.Getenv(agentKindEnv) {
	case "kretprobe":
		return f.Kprobe("vfs_read", &KprobeOptions{Return: true, MaxActive: 8})
	default:
		path, off, _ := strings.Cut(os.Getenv(agentTargetEnv), ":")
		o, err := strconv.ParseUint(off, 10, 64)
		if err != nil {
			return nil, err
		}
		return f.Uprobe(path, o, nil)
	}
}

// runInit is PID 1 of a PID namespace that starts agents inside it on
// command, one line each on stdin:
//
//	spawn [cleanup]   start an agent, relay its output up to READY
//	kill              SIGKILL the last agent and reap it
//	lastpid N         make the next pid N+1 (/proc/sys/kernel/ns_last_pid)
func runInit() int {
	if err := mountProc(); err != nil {
		fmt.Println("FATAL", err)
		return 1
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Println("FATAL", err)
		return 1
	}
	var agent *exec.Cmd
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		cmd := strings.Fields(in.Text())
		if len(cmd) == 0 {
			continue
		}
		switch cmd[0] {
		case "spawn":
			agent = exec.Command(exe)
			env := append(os.Environ(), agentRoleEnv+"=agent", agentProcEnv+"=0", agentCleanEnv+"=0")
			if len(cmd) > 1 && cmd[1] == "cleanup" {
				env = append(env, agentCleanEnv+"=1")
			}
			agent.Env = env
			agent.Stdin, _ = os.Open("/dev/null")
			pr, err := agent.StdoutPipe()
			if err == nil {
				err = agent.Start()
			}
			if err != nil {
				fmt.Println("FATAL", err)
				return 1
			}
			// Keep the agent's stdin open: it lives until killed.
			sc := bufio.NewScanner(pr)
			for sc.Scan() {
				fmt.Println(sc.Text())
				if strings.HasPrefix(sc.Text(), "READY ") || strings.HasPrefix(sc.Text(), "FATAL ") {
					break
				}
			}
			go func() {
				for sc.Scan() {
					fmt.Println(sc.Text())
				}
			}()
		case "kill":
			if agent != nil {
				agent.Process.Signal(syscall.SIGKILL)
				agent.Wait()
			}
			fmt.Println("KILLED")
		case "lastpid":
			if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(cmd[1]), 0); err != nil {
				fmt.Println("FATAL", err)
				return 1
			}
			fmt.Println("OK")
		}
	}
	return 0
}

// agentProc is a running agent (or init) seen from the test.
type agentProc struct {
	t     *testing.T
	cmd   *exec.Cmd
	stdin interface{ Close() error }
	w     *os.File
	lines chan string
}

type agentOpts struct {
	kind, target string
	events       int
	cleanup      bool
	role         string // "agent" (default) or "init"
	newPIDNS     bool   // PID 1 of a new PID (and mount) namespace
}

func startAgent(t *testing.T, o agentOpts) *agentProc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	role := o.role
	if role == "" {
		role = "agent"
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(),
		agentRoleEnv+"="+role, agentKindEnv+"="+o.kind, agentTargetEnv+"="+o.target,
		agentEventsEnv+"="+strconv.Itoa(o.events))
	if o.cleanup {
		cmd.Env = append(cmd.Env, agentCleanEnv+"=1")
	}
	if o.newPIDNS {
		cmd.Env = append(cmd.Env, agentProcEnv+"=1")
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID | syscall.CLONE_NEWNS}
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin = r
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	a := &agentProc{t: t, cmd: cmd, w: w, lines: make(chan string, 1024)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			a.lines <- sc.Text()
		}
		close(a.lines)
	}()
	t.Cleanup(a.kill)
	return a
}

// send writes one command line to the agent's stdin.
func (a *agentProc) send(line string) {
	a.t.Helper()
	if _, err := fmt.Fprintln(a.w, line); err != nil {
		a.t.Fatal(err)
	}
}

// until collects output lines up to one starting with prefix.
func (a *agentProc) until(prefix string) []string {
	a.t.Helper()
	var got []string
	timeout := time.After(60 * time.Second)
	for {
		select {
		case l, ok := <-a.lines:
			if !ok {
				a.t.Fatalf("agent exited before %q; output:\n%s", prefix, strings.Join(got, "\n"))
			}
			got = append(got, l)
			if strings.HasPrefix(l, "FATAL ") {
				a.t.Fatalf("agent: %s", l)
			}
			if strings.HasPrefix(l, prefix) {
				return got
			}
		case <-timeout:
			a.t.Fatalf("no %q from the agent after 60s; output:\n%s", prefix, strings.Join(got, "\n"))
		}
	}
}

// kill SIGKILLs the agent (and, for a PID 1, its whole namespace).
func (a *agentProc) kill() {
	if a.cmd.ProcessState != nil {
		return
	}
	a.cmd.Process.Signal(syscall.SIGKILL)
	a.cmd.Wait()
	a.w.Close()
}

// events returns the group/name of every EVENT line, and the ERROR lines.
func events(lines []string) (evs, errs []string) {
	for _, l := range lines {
		if rest, ok := strings.CutPrefix(l, "EVENT "); ok {
			evs = append(evs, rest)
		}
		if rest, ok := strings.CutPrefix(l, "ERROR "); ok {
			errs = append(errs, rest)
		}
	}
	return evs, errs
}
