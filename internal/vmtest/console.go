package vmtest

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/safebpf/safebpf/internal/vmtest/vmproto"
)

// Outcome is the result of one test.
type Outcome string

// The outcomes of a test in a guest.
const (
	Pass Outcome = "pass"
	Fail Outcome = "fail"
	Skip Outcome = "skip"
)

// TestResult is one test (or subtest) parsed from `go test -v` output.
type TestResult struct {
	// Name is the test's full name ("TestAttach/fentry").
	Name    string
	Outcome Outcome
	// Reason is the skip message for skipped tests, and for failed tests the
	// last message they logged (or why no result line was seen).
	Reason  string
	Elapsed time.Duration
	// Output holds the lines the test logged (indentation removed).
	Output []string
}

// Step is one program's run in the guest, bracketed by BEGIN/END markers.
type Step struct {
	Name string
	// Ended is false when the console stopped before the END marker (a
	// crash, a hang or a lost console).
	Ended bool
	// ExitCode is the exit status (-1: killed or not started; see Note).
	ExitCode int
	// Note carries the END marker's extra fields (signal, timeout, elapsed).
	Note string
	// Output holds the console lines between the markers.
	Output []string
	// Data is the decoded DATA payload of steps run with vmproto.Step.Data.
	Data []byte
	// Tests holds the parsed go test results, in the order they finished.
	Tests []TestResult
}

// Failed reports whether the step failed: it did not end, exited non-zero,
// or a test in it failed.
func (s *Step) Failed() bool {
	if !s.Ended || s.ExitCode != 0 {
		return true
	}
	for _, t := range s.Tests {
		if t.Outcome == Fail {
			return true
		}
	}
	return false
}

// Console is everything the harness learned from one boot's serial console.
type Console struct {
	// Release and ProcVersion are the guest's uname -r and /proc/version.
	Release     string
	ProcVersion string
	CPUs        int
	Steps       []*Step
	// Errors are ERROR markers printed by the guest's PID 1.
	Errors []string
	// Done is set when PID 1 printed DONE (all steps ran).
	Done bool
	// Oops holds the kernel's Oops/BUG/panic report lines, if any.
	Oops []string
	// Lab holds the hazard lab's records (LAB markers), in console order.
	Lab []vmproto.LabRecord
	// Lines is the whole console, carriage returns removed.
	Lines []string
}

// Crashed reports whether the kernel Oopsed or panicked.
func (c *Console) Crashed() bool { return len(c.Oops) > 0 }

// Step returns the named step, or nil.
func (c *Console) Step(name string) *Step {
	for _, s := range c.Steps {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Tail returns the last n console lines.
func (c *Console) Tail(n int) []string {
	if len(c.Lines) <= n {
		return c.Lines
	}
	return c.Lines[len(c.Lines)-n:]
}

// ParseConsole reads a guest's serial console to the end and parses it. It
// only fails when r fails; a console that stops early yields steps with
// Ended unset.
func ParseConsole(r io.Reader) (*Console, error) {
	c := &Console{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		c.Lines = append(c.Lines, strings.TrimRight(sc.Text(), "\r"))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read console: %w", err)
	}
	c.parse()
	return c, nil
}

func (c *Console) parse() {
	var cur *Step
	var data strings.Builder
	finish := func() {
		if cur == nil {
			return
		}
		if data.Len() > 0 {
			b, err := base64.StdEncoding.DecodeString(data.String())
			if err != nil {
				c.Errors = append(c.Errors, fmt.Sprintf("step %s: decode data: %v", cur.Name, err))
			}
			cur.Data = b
			data.Reset()
		}
		cur.Tests = ParseGoTest(cur.Output)
		if !cur.Ended {
			markUnfinished(cur)
		}
		cur = nil
	}
	for _, line := range c.Lines {
		i := strings.Index(line, vmproto.Prefix)
		if i < 0 {
			if cur != nil {
				cur.Output = append(cur.Output, line)
			}
			continue
		}
		// A marker may follow kernel text on the same line.
		tag, rest, _ := strings.Cut(line[i+len(vmproto.Prefix):], " ")
		switch tag {
		case vmproto.KernelTag:
			c.Release = rest
		case vmproto.VersionTag:
			c.ProcVersion = rest
		case vmproto.CPUsTag:
			c.CPUs, _ = strconv.Atoi(rest)
		case vmproto.BeginTag:
			finish()
			cur = &Step{Name: rest, ExitCode: -1}
			c.Steps = append(c.Steps, cur)
		case vmproto.EndTag:
			name, code, note, err := vmproto.ParseEnd(rest)
			if err != nil || cur == nil || cur.Name != name {
				c.Errors = append(c.Errors, fmt.Sprintf("unexpected end marker %q", line))
				continue
			}
			cur.Ended, cur.ExitCode, cur.Note = true, code, note
			finish()
		case vmproto.DataTag:
			name, chunk, _ := strings.Cut(rest, " ")
			if cur != nil && cur.Name == name {
				data.WriteString(strings.TrimSpace(chunk))
			}
		case vmproto.LabTag:
			var rec vmproto.LabRecord
			if err := json.Unmarshal([]byte(rest), &rec); err != nil {
				c.Errors = append(c.Errors, fmt.Sprintf("decode lab record %q: %v", rest, err))
				continue
			}
			c.Lab = append(c.Lab, rec)
			if cur != nil {
				cur.Output = append(cur.Output, line)
			}
		case vmproto.ErrorTag:
			c.Errors = append(c.Errors, rest)
		case vmproto.DoneTag:
			finish()
			c.Done = true
		default:
			if cur != nil {
				cur.Output = append(cur.Output, line)
			}
		}
	}
	finish()
	c.Oops = FindOops(c.Lines)
}

// markUnfinished records a failure for the test that was running when the
// step's output stopped.
func markUnfinished(s *Step) {
	done := make(map[string]bool, len(s.Tests))
	for _, t := range s.Tests {
		done[t.Name] = true
	}
	for _, name := range startedTests(s.Output) {
		if !done[name] {
			s.Tests = append(s.Tests, TestResult{Name: name, Outcome: Fail, Reason: "no result: the guest stopped while it ran"})
		}
	}
}

var (
	// "=== RUN   TestX", "=== CONT  TestX", "=== NAME  TestX", "=== PAUSE TestX"
	headerRE = regexp.MustCompile(`^=== (RUN|CONT|NAME|PAUSE)\s+(\S+)`)
	// "--- PASS: TestX (0.01s)", indented four spaces per subtest level.
	resultRE = regexp.MustCompile(`^\s*--- (PASS|FAIL|SKIP): (\S+) \(([0-9.]+)s\)`)
	// "    file_test.go:42: message"
	logRE = regexp.MustCompile(`^\s*[\w./-]+\.go:\d+: (.*)$`)
)

func startedTests(lines []string) []string {
	var names []string
	seen := map[string]bool{}
	for _, l := range lines {
		if m := headerRE.FindStringSubmatch(l); m != nil && m[1] == "RUN" && !seen[m[2]] {
			seen[m[2]] = true
			names = append(names, m[2])
		}
	}
	return names
}

// ParseGoTest parses the output of a test binary run with -test.v into
// results, in the order the results were printed. Log lines are attributed
// to the test named by the latest "=== RUN/CONT/NAME" header. A test that
// started but printed no result is not reported here (see [Step.Failed]).
func ParseGoTest(lines []string) []TestResult {
	var results []TestResult
	logs := map[string][]string{}
	cur := ""
	for _, l := range lines {
		if m := headerRE.FindStringSubmatch(l); m != nil {
			if m[1] != "PAUSE" {
				cur = m[2]
			}
			continue
		}
		if m := resultRE.FindStringSubmatch(l); m != nil {
			secs, _ := strconv.ParseFloat(m[3], 64)
			r := TestResult{
				Name:    m[2],
				Outcome: map[string]Outcome{"PASS": Pass, "FAIL": Fail, "SKIP": Skip}[m[1]],
				Elapsed: time.Duration(secs * float64(time.Second)),
				Output:  logs[m[2]],
			}
			if r.Outcome != Pass {
				r.Reason = lastMessage(r.Output)
			}
			results = append(results, r)
			continue
		}
		if cur != "" && strings.TrimSpace(l) != "" && !isSummary(l) {
			logs[cur] = append(logs[cur], strings.TrimSpace(l))
		}
	}
	return results
}

// isSummary reports lines the test binary prints after all tests.
func isSummary(l string) bool {
	switch strings.TrimSpace(l) {
	case "PASS", "FAIL":
		return true
	}
	return strings.HasPrefix(l, "ok  \t") || strings.HasPrefix(l, "FAIL\t")
}

// lastMessage returns the last t.Log/t.Skip/t.Error message in a test's
// output, with the file:line prefix removed and continuation lines joined.
func lastMessage(out []string) string {
	for i := len(out) - 1; i >= 0; i-- {
		if m := logRE.FindStringSubmatch(out[i]); m != nil {
			msg := []string{m[1]}
			msg = append(msg, out[i+1:]...)
			return strings.Join(msg, " ")
		}
	}
	if len(out) > 0 {
		return out[len(out)-1]
	}
	return ""
}

// oopsRE matches the first line of a kernel crash report.
var oopsRE = regexp.MustCompile(`(Oops:|Oops\[|BUG:|Kernel panic - not syncing|general protection fault|kernel BUG at|Unable to handle kernel)`)

// endTraceRE matches the line that closes a kernel crash report.
var endTraceRE = regexp.MustCompile(`---\[ end (trace|Kernel panic)`)

// FindOops returns the lines of every kernel Oops, BUG or panic report on the
// console: from each first line through its "---[ end trace" line, at most
// 60 lines each. It returns nil for a clean console.
func FindOops(lines []string) []string {
	var out []string
	for i := 0; i < len(lines); i++ {
		if !oopsRE.MatchString(lines[i]) || strings.Contains(lines[i], vmproto.Prefix) || isGoTestLine(lines[i]) {
			continue
		}
		j := i
		for ; j < len(lines) && j < i+60; j++ {
			out = append(out, lines[j])
			if endTraceRE.MatchString(lines[j]) {
				break
			}
		}
		i = j
	}
	return out
}

// isGoTestLine reports lines that come from a test binary rather than the
// kernel, so a test that logs "BUG:" is not taken for a kernel crash.
func isGoTestLine(l string) bool {
	return logRE.MatchString(l) || resultRE.MatchString(l) || headerRE.MatchString(l)
}
