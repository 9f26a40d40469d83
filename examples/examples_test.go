//go:build linux && (386 || amd64)

// Tests for the example agents: they build, their committed bpf2go output
// matches their C sources, and (as root) they run for real on this kernel.
package examples_test

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/internal/testutil"
	"github.com/safebpf/safebpf/probe"
)

// examples lists every example agent folder.
var examples = []string{"opensnoop", "profiler", "latency", "readline"}

func goTool(tb testing.TB) string {
	tb.Helper()
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	p, err := exec.LookPath("go")
	if err != nil {
		tb.Skipf("needs the go command to build the examples: %v", err)
	}
	return p
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// buildExamples builds every example once per test binary into a
// temporary directory and returns it.
//
// Inside the kernel-matrix guests, which have no go tool, the harness has
// built them already: SAFEBPF_VM_PREBUILT/examples/bin.
func buildExamples(tb testing.TB) string {
	tb.Helper()
	if dir := os.Getenv("SAFEBPF_VM_PREBUILT"); dir != "" {
		pre := filepath.Join(dir, "examples", "bin")
		if fileExists(filepath.Join(pre, examples[0])) {
			return pre
		}
	}
	goCmd := goTool(tb)
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "safebpf-examples-")
		if buildErr != nil {
			return
		}
		args := []string{"build", "-o", binDir + string(filepath.Separator)}
		for _, e := range examples {
			args = append(args, "./"+e)
		}
		cmd := exec.Command(goCmd, args...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// TestBuild builds every example, and checks each folder has what
// examples/README.md promises: a README, the C source, a go:generate line
// and the committed bpf2go output.
func TestBuild(t *testing.T) {
	dir := buildExamples(t)
	for _, e := range examples {
		t.Run(e, func(t *testing.T) {
			if !fileExists(filepath.Join(dir, e)) {
				t.Errorf("no binary %s after go build", e)
			}
			for _, f := range []string{"README.md", e + ".c", "main.go", e + "_x86_bpfel.go", e + "_x86_bpfel.o"} {
				if !fileExists(filepath.Join(e, f)) {
					t.Errorf("missing %s/%s", e, f)
				}
			}
			if _, err := generateArgs(e); err != nil {
				t.Error(err)
			}
		})
	}
	index, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range examples {
		if !bytes.Contains(index, []byte("("+e+"/)")) {
			t.Errorf("README.md does not link %s/", e)
		}
	}
}

// generateArgs returns the bpf2go arguments of an example's go:generate line.
func generateArgs(example string) ([]string, error) {
	src, err := os.ReadFile(filepath.Join(example, "gen.go"))
	if err != nil {
		return nil, err
	}
	const prefix = "//go:generate go tool bpf2go "
	for _, line := range strings.Split(string(src), "\n") {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			return splitWords(rest)
		}
	}
	return nil, fmt.Errorf("%s/gen.go has no %q line", example, prefix)
}

// splitWords splits s at spaces, keeping double-quoted words together, as
// go generate does.
func splitWords(s string) ([]string, error) {
	var (
		words  []string
		cur    strings.Builder
		quoted bool
		inWord bool
	)
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
			inWord = true
		case r == ' ' && !quoted:
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

func TestSplitWords(t *testing.T) {
	got, err := splitWords(`-tags linux -cflags "-O2 -g" x x.c`)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"-tags", "linux", "-cflags", "-O2 -g", "x", "x.c"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("splitWords = %q, want %q", got, want)
	}
	if _, err := splitWords(`a "b`); err == nil {
		t.Error("splitWords accepted an unterminated quote")
	}
}

// TestGeneratedUpToDate regenerates every example's bpf2go output into a
// temporary directory with the example's own go:generate arguments and
// compares it byte for byte with the committed files.
func TestGeneratedUpToDate(t *testing.T) {
	for _, tool := range []string{"clang", "llvm-strip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s to regenerate the BPF objects (Debian: apt-get install clang llvm libbpf-dev)", tool)
		}
	}
	if !fileExists("/usr/include/bpf/bpf_helpers.h") {
		t.Skip("needs libbpf's headers (/usr/include/bpf/bpf_helpers.h; Debian: libbpf-dev)")
	}
	goCmd := goTool(t)
	for _, e := range examples {
		t.Run(e, func(t *testing.T) {
			args, err := generateArgs(e)
			if err != nil {
				t.Fatal(err)
			}
			out := t.TempDir()
			cmd := exec.Command(goCmd, append([]string{"tool", "bpf2go", "-output-dir", out}, args...)...)
			cmd.Dir = e
			cmd.Env = append(os.Environ(), "GOPACKAGE=main")
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("bpf2go: %v\n%s", err, b)
			}
			fresh, err := filepath.Glob(filepath.Join(out, "*"))
			if err != nil || len(fresh) == 0 {
				t.Fatalf("bpf2go wrote nothing to %s (%v)", out, err)
			}
			for _, f := range fresh {
				want, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				committed := filepath.Join(e, filepath.Base(f))
				got, err := os.ReadFile(committed)
				if err != nil {
					t.Errorf("%s is generated but not committed: %v", committed, err)
					continue
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s is stale: run go generate ./examples/%s", committed, e)
				}
			}
		})
	}
}

// agent is a running example with its output collected.
type agent struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	err  error
}

func (a *agent) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.out.Write(p)
}

func (a *agent) output() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.out.String()
}

// startAgent runs an example binary; it is killed at the end of the test
// if still running.
func startAgent(t *testing.T, name string, args ...string) *agent {
	t.Helper()
	a := &agent{cmd: exec.Command(filepath.Join(buildExamples(t), name), args...), done: make(chan struct{})}
	a.cmd.Stdout = a
	a.cmd.Stderr = a
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		a.err = a.cmd.Wait()
		close(a.done)
	}()
	t.Cleanup(func() {
		select {
		case <-a.done:
		default:
			a.cmd.Process.Kill()
			<-a.done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, a.output())
		}
	})
	return a
}

// waitFor waits until the output contains s, or the agent exits, or the
// timeout passes. It reports whether s was seen.
func (a *agent) waitFor(s string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(a.output(), s) {
			return true
		}
		select {
		case <-a.done:
			return strings.Contains(a.output(), s)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return false
}

// stop sends sig and waits for a clean exit.
func (a *agent) stop(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := a.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
	select {
	case <-a.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("no exit 10s after %v", sig)
	}
	if a.err != nil {
		t.Errorf("exit after %v: %v, want status 0", sig, a.err)
	}
	if !strings.Contains(a.output(), "Detaching.") {
		t.Errorf("no %q after %v", "Detaching.", sig)
	}
}

// exited waits up to d for the agent to exit by itself.
func (a *agent) exited(d time.Duration) bool {
	select {
	case <-a.done:
		return true
	case <-time.After(d):
		return false
	}
}

// TestReadline runs the readline example on /bin/bash, feeds an
// interactive bash lines through a pipe (bash -i uses readline even then),
// and expects every line back, with pacing in the decision (the policy file
// asserts uprobe-mmap-lock-stall). It stops the agent with SIGTERM.
func TestReadline(t *testing.T) {
	testutil.RequirePrivileged(t)
	const bash = "/bin/bash"
	if !hasSymbol(t, bash, "readline") {
		t.Skipf("needs %s with readline built in (it may link libreadline instead)", bash)
	}
	args := []string{"-binary", bash, "-safebpf-policy", trustedCopy(t, filepath.Join("readline", "pacing-policy.yaml"))}
	// On kernels with the uretprobe syscall and no seccomp passthrough
	// (6.11 to 6.12.13, 6.13 to 6.13.2), the agent must refuse and say how
	// to force; forced, it must then trace. The kernel is judged on the
	// same evidence the agent sees.
	k, err := probe.Detect(context.Background(), &probe.Options{Facts: hazards.Builtin().Facts()})
	if err != nil {
		t.Fatal(err)
	}
	const seccompKill = "uretprobe-seccomp-kill"
	for _, f := range hazards.Builtin().Evaluate(k, hazards.Attachment{Mechanism: probe.Uretprobe, Seccomp: true}) {
		if f.ID != seccompKill || f.Verdict == hazards.NotAffected {
			continue
		}
		out, err := exec.Command(filepath.Join(buildExamples(t), "readline"), args...).CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("on %s (%s: %s) the agent must refuse with exit code 1, got %v:\n%s", k.Release, seccompKill, f.Verdict, err, out)
		}
		if !strings.Contains(string(out), "-safebpf-force="+seccompKill) {
			t.Errorf("the refusal does not say how to force %s:\n%s", seccompKill, out)
		}
		args = append(args, "-safebpf-force="+seccompKill)
	}
	a := startAgent(t, "readline", args...)
	if !a.waitFor("Tracing readline", 20*time.Second) {
		t.Fatal("the agent did not start tracing")
	}
	out := a.output()
	for _, want := range []string{"uretprobe", "uprobe registrations paced one at a time, 25ms apart"} {
		if !strings.Contains(out, want) {
			t.Errorf("decisions lack %q", want)
		}
	}

	nonce := fmt.Sprintf("safebpf-readline-%d", time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sh := exec.CommandContext(ctx, bash, "--norc", "--noprofile", "-i")
	stdin, err := sh.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	sh.Stdout, sh.Stderr = io.Discard, io.Discard
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for i := range 3 {
		line := fmt.Sprintf("echo %s-%d", nonce, i)
		lines = append(lines, line)
		fmt.Fprintln(stdin, line)
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Fprintln(stdin, "exit")
	stdin.Close()
	if err := sh.Wait(); err != nil {
		t.Errorf("bash: %v", err)
	}
	for _, line := range lines {
		if !a.waitFor(line, 5*time.Second) {
			t.Errorf("no event for %q", line)
		}
	}
	// Events carry the shell's pid and comm.
	want := fmt.Sprintf("%-7d %-16s %s", sh.Process.Pid, "bash", lines[0])
	if !strings.Contains(a.output(), want) {
		t.Errorf("no event line %q", want)
	}
	a.stop(t, syscall.SIGTERM)
}

// hasSymbol reports whether the ELF file at path defines symbol.
func hasSymbol(t *testing.T, path, symbol string) bool {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Logf("open %s: %v", path, err)
		return false
	}
	defer f.Close()
	for _, load := range []func() ([]elf.Symbol, error){f.DynamicSymbols, f.Symbols} {
		syms, _ := load()
		for _, s := range syms {
			if s.Name == symbol && s.Value != 0 {
				return true
			}
		}
	}
	return false
}

// burnForProfiler spins on the CPU until stop is closed, so that the
// profiler finds it on top.
//
//go:noinline
func burnForProfiler(stop <-chan struct{}) uint64 {
	var x uint64
	for {
		for i := 0; i < 1_000_000; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
		select {
		case <-stop:
			return x
		default:
		}
	}
}

// hardwareCyclesAvailable opens a hardware cycles counter on CPU 0, the way
// a profiler would, independently of safebpf's own probe.
func hardwareCyclesAvailable(t *testing.T) bool {
	attr := unix.PerfEventAttr{Type: unix.PERF_TYPE_HARDWARE, Config: unix.PERF_COUNT_HW_CPU_CYCLES,
		Sample: 99, Bits: unix.PerfBitFreq | unix.PerfBitDisabled}
	attr.Size = uint32(unsafe.Sizeof(attr))
	fd, err := unix.PerfEventOpen(&attr, -1, 0, -1, unix.PERF_FLAG_FD_CLOEXEC)
	if err != nil {
		t.Logf("hardware cycles event: %v", err)
		return false
	}
	unix.Close(fd)
	return true
}

// TestProfiler profiles this test process while it burns CPU in
// burnForProfiler, stops the agent with SIGINT, and expects the hardware
// request to land where it should and the burner's name in the top stacks.
func TestProfiler(t *testing.T) {
	testutil.RequirePrivileged(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); burnForProfiler(stop) }()
	defer func() { close(stop); wg.Wait() }()

	a := startAgent(t, "profiler", "-pid", fmt.Sprint(os.Getpid()), "-top", "5")
	if !a.waitFor("Profiling pid", 20*time.Second) {
		t.Fatal("the agent did not start profiling")
	}
	out := a.output()
	// The program only takes user stacks: the agent says which path that
	// is and how both deadlocks were judged.
	for _, want := range []string{"User memory: profile takes user stacks and reads no other user memory", "nmi-user-stack-deadlock: ", "nmi-user-read-deadlock: not-affected"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if hardwareCyclesAvailable(t) {
		// Hardware cycles work here: kept (a hazard would refuse, not move it).
		if !strings.Contains(out, "perf-event-hardware (as requested)") {
			t.Error("no decision for the hardware cycles request")
		}
	} else {
		for _, want := range []string{
			"perf-event-hardware → perf-event-software (downgrade)",
			"perf-event-hardware unavailable",
			"perf event software cpu-clock at 99 Hz",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("decisions lack %q", want)
			}
		}
	}
	time.Sleep(5 * time.Second)
	a.stop(t, os.Interrupt)

	out = a.output()
	report := out[strings.Index(out, "Profiled "):]
	var samples, stacks int
	if _, err := fmt.Sscanf(report, "Profiled %s %d samples in %d distinct stacks.", new(string), &samples, &stacks); err != nil {
		t.Fatalf("no report line: %v", err)
	}
	// 99 Hz while the burner is on a CPU: ~500 samples in 5s on an idle
	// machine, far fewer on a loaded one; a handful proves sampling works.
	if samples < 5 {
		t.Errorf("%d samples in 5s at 99 Hz, want at least 5", samples)
	}
	if fn := "examples_test.burnForProfiler+0x"; !strings.Contains(report, fn) {
		t.Errorf("top stacks do not name %s", fn)
	}
	if want := fmt.Sprintf("pid %d ", os.Getpid()); !strings.Contains(report, want) {
		t.Errorf("top stacks lack %q", want)
	}
}

// kernelSupport detects the running kernel through safebpf's probe, for
// the examples whose outcome depends on it.
func kernelSupport(t *testing.T) *probe.Kernel {
	t.Helper()
	k, err := probe.Detect(context.Background(), nil)
	if err != nil {
		t.Fatalf("detect kernel: %v", err)
	}
	return k
}

// checkRefusalOrRun handles the examples that need fentry/fexit or
// kprobes: where the kernel has neither, the agent must refuse, naming both
// mechanisms; elsewhere it must run. It returns true when the agent runs.
func checkRefusalOrRun(t *testing.T, a *agent, started string, primary, alternative probe.Mechanism) bool {
	t.Helper()
	k := kernelSupport(t)
	neither := k.Support(primary).No() && k.Support(alternative).No()
	if !a.waitFor(started, 20*time.Second) {
		if !a.exited(10 * time.Second) {
			t.Fatalf("the agent neither started nor exited")
		}
		out := a.output()
		var exit *exec.ExitError
		if !errors.As(a.err, &exit) || exit.ExitCode() != 1 {
			t.Errorf("exit: %v, want status 1 for a refusal", a.err)
		}
		for _, want := range []string{"safebpf refused to attach", string(primary), string(alternative)} {
			if !strings.Contains(out, want) {
				t.Errorf("refusal lacks %q", want)
			}
		}
		if !neither {
			t.Errorf("refused although %s is %v and %s is %v", primary, k.Support(primary), alternative, k.Support(alternative))
		}
		return false
	}
	if neither {
		t.Errorf("attached although neither %s nor %s is available", primary, alternative)
	}
	return true
}

// TestOpensnoop runs opensnoop. On this project's host kernel (no kprobes,
// no fentry) it must refuse clearly; elsewhere it must report a file this
// test opens.
func TestOpensnoop(t *testing.T) {
	testutil.RequirePrivileged(t)
	a := startAgent(t, "opensnoop")
	if !checkRefusalOrRun(t, a, "Tracing file opens", probe.Fentry, probe.Kprobe) {
		return
	}
	name := filepath.Join(t.TempDir(), fmt.Sprintf("safebpf-opensnoop-%d", time.Now().UnixNano()))
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(a.output(), name) && time.Now().Before(deadline) {
		if f, err := os.Create(name); err == nil {
			f.Close()
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(a.output(), name) {
		t.Errorf("no open event for %s", name)
	}
	a.stop(t, syscall.SIGTERM)
}

// TestLatency runs the latency histogram. On this project's host kernel it
// must refuse clearly; elsewhere it must print a histogram of reads.
func TestLatency(t *testing.T) {
	testutil.RequirePrivileged(t)
	a := startAgent(t, "latency")
	if !checkRefusalOrRun(t, a, "Timing vfs_read", probe.Fexit, probe.Kretprobe) {
		return
	}
	// Reads to time.
	for range 50 {
		if _, err := os.ReadFile("/proc/self/stat"); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(500 * time.Millisecond)
	a.stop(t, os.Interrupt)
	sc := bufio.NewScanner(strings.NewReader(a.output()))
	found := false
	for sc.Scan() {
		if strings.Contains(sc.Text(), " -> ") && strings.Contains(sc.Text(), "|*") {
			found = true
		}
	}
	if !found {
		t.Error("no histogram bar in the output")
	}
}
