package vmtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func parseFile(t *testing.T, name string) *Console {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "console", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := ParseConsole(f)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func outcomes(tests []TestResult, want Outcome) []string {
	var names []string
	for _, t := range tests {
		if t.Outcome == want {
			names = append(names, t.Name)
		}
	}
	return names
}

// TestParseConsoleFailures parses a real console: Debian's 6.1 kernel
// running an early hazards test binary whose tests could not find files
// outside their package (before the harness shipped the whole source tree).
func TestParseConsoleFailures(t *testing.T) {
	c := parseFile(t, "debian-6.1-hazards-fail.log")
	if c.Release != "6.1.0-56-cloud-amd64" || c.CPUs != 2 || !c.Done || c.Crashed() || len(c.Errors) != 0 {
		t.Errorf("Release=%q CPUs=%d Done=%v Oops=%q Errors=%q", c.Release, c.CPUs, c.Done, c.Oops, c.Errors)
	}
	if !strings.Contains(c.ProcVersion, "Debian 6.1.192-2") {
		t.Errorf("ProcVersion = %q", c.ProcVersion)
	}
	if len(c.Steps) != 1 {
		t.Fatalf("got %d steps, want 1", len(c.Steps))
	}
	s := c.Steps[0]
	if s.Name != "hazards" || !s.Ended || s.ExitCode != 1 || s.Note != "elapsed=1.2s" || !s.Failed() {
		t.Errorf("step = %q ended=%v exit=%d note=%q failed=%v", s.Name, s.Ended, s.ExitCode, s.Note, s.Failed())
	}
	wantFail := []string{"TestParsePolicyExample", "TestLoadPolicyPermissions", "TestWithPolicy",
		"TestSchemaAcceptsExamples", "TestSchemaRejectsBadExamples", "TestSchemaMatchesTypes"}
	if diff := cmp.Diff(wantFail, outcomes(s.Tests, Fail)); diff != "" {
		t.Errorf("failed tests (-want +got):\n%s", diff)
	}
	if n := len(outcomes(s.Tests, Pass)); n != 99 {
		t.Errorf("got %d passing tests, want 99", n)
	}
	for _, r := range s.Tests {
		switch r.Name {
		case "TestParsePolicyExample":
			if want := "open ../examples/policy/policy.yaml: no such file or directory"; r.Reason != want {
				t.Errorf("reason = %q, want %q", r.Reason, want)
			}
		case "TestEvaluateConcerns":
			if r.Elapsed != 20*time.Millisecond {
				t.Errorf("elapsed = %s, want 20ms", r.Elapsed)
			}
		}
	}
}

func TestParseGoTest(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []TestResult
	}{
		{
			name: "skip with reason",
			input: `=== RUN   TestKprobe
    kprobe_test.go:31: kernel lacks kprobe: not supported
--- SKIP: TestKprobe (0.00s)
PASS`,
			want: []TestResult{{Name: "TestKprobe", Outcome: Skip, Reason: "kernel lacks kprobe: not supported",
				Output: []string{"kprobe_test.go:31: kernel lacks kprobe: not supported"}}},
		},
		{
			name: "subtests report after their parent",
			input: `=== RUN   TestAttach
=== RUN   TestAttach/fentry
    attach_test.go:40: decision: fentry -> kprobe
=== RUN   TestAttach/uprobe
--- FAIL: TestAttach (1.50s)
    --- FAIL: TestAttach/fentry (1.00s)
    --- PASS: TestAttach/uprobe (0.50s)
FAIL`,
			want: []TestResult{
				{Name: "TestAttach", Outcome: Fail, Elapsed: 1500 * time.Millisecond},
				{Name: "TestAttach/fentry", Outcome: Fail, Elapsed: time.Second, Reason: "decision: fentry -> kprobe",
					Output: []string{"attach_test.go:40: decision: fentry -> kprobe"}},
				{Name: "TestAttach/uprobe", Outcome: Pass, Elapsed: 500 * time.Millisecond},
			},
		},
		{
			name: "parallel tests attribute output by NAME and CONT headers",
			input: `=== RUN   TestA
=== PAUSE TestA
=== RUN   TestB
=== PAUSE TestB
=== CONT  TestA
=== CONT  TestB
    b_test.go:9: from B
=== NAME  TestA
    a_test.go:5: from A
    continued
--- SKIP: TestA (0.00s)
--- PASS: TestB (0.00s)`,
			want: []TestResult{
				{Name: "TestA", Outcome: Skip, Reason: "from A continued", Output: []string{"a_test.go:5: from A", "continued"}},
				{Name: "TestB", Outcome: Pass, Output: []string{"b_test.go:9: from B"}},
			},
		},
		{
			name: "a test that never finished has no result",
			input: `=== RUN   TestHang
panic: test timed out after 3m36s`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ParseGoTest(strings.Split(tt.input, "\n"))
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ParseGoTest (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseConsoleTruncated cuts the real console inside a test: the step
// must be unfinished and the running test reported as failed.
func TestParseConsoleTruncated(t *testing.T) {
	full := parseFile(t, "debian-6.1-hazards-fail.log")
	var cut []string
	for _, l := range full.Lines {
		cut = append(cut, l)
		if strings.HasPrefix(l, "=== RUN   TestEvaluate/nmi_6.0.19") {
			break
		}
	}
	c, err := ParseConsole(strings.NewReader(strings.Join(cut, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	if c.Done || len(c.Steps) != 1 {
		t.Fatalf("Done=%v steps=%d, want an unfinished single step", c.Done, len(c.Steps))
	}
	s := c.Steps[0]
	if s.Ended || !s.Failed() || s.ExitCode != -1 {
		t.Errorf("ended=%v failed=%v exit=%d, want unfinished and failed", s.Ended, s.Failed(), s.ExitCode)
	}
	unfinished := []string{"TestEvaluate", "TestEvaluate/nmi_5.18.19", "TestEvaluate/nmi_5.19.0", "TestEvaluate/nmi_6.0.19"}
	got := outcomes(s.Tests, Fail)
	if diff := cmp.Diff(unfinished, got[len(got)-len(unfinished):]); diff != "" {
		t.Errorf("unfinished tests (-want +got):\n%s", diff)
	}
}

func TestFindOops(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  []string
	}{
		{
			name: "int3 oops in syscall_trace_enter ends at end trace",
			lines: []string{
				"=== RUN   TestTracepoint",
				"[   41.202311] int3: 0000 [#1] PREEMPT SMP NOPTI",
				"[   41.202500] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI",
				"[   41.202901] RIP: 0010:syscall_trace_enter.constprop.0+0x1/0x1a0",
				"[   41.203400] ---[ end trace 0000000000000000 ]---",
				"--- PASS: TestTracepoint (0.10s)",
			},
			want: []string{
				"[   41.202500] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI",
				"[   41.202901] RIP: 0010:syscall_trace_enter.constprop.0+0x1/0x1a0",
				"[   41.203400] ---[ end trace 0000000000000000 ]---",
			},
		},
		{
			name: "test output mentioning BUG is not a kernel crash",
			lines: []string{
				"    loader_test.go:12: BUG: decision was kprobe",
				"--- FAIL: TestX (0.00s)",
				"=== VMTEST ERROR BUG: nothing",
			},
		},
		{
			name:  "panic line",
			lines: []string{"[    3.1] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000000"},
			want:  []string{"[    3.1] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000000"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, FindOops(tt.lines)); diff != "" {
				t.Errorf("FindOops (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFindOopsRealCrash parses a real console of a guest crashed with
// SysRq-c (captured by TestGuestCrashRetried).
func TestFindOopsRealCrash(t *testing.T) {
	matches, _ := filepath.Glob(filepath.Join("testdata", "console", "*-sysrq-crash.log"))
	if len(matches) == 0 {
		t.Fatal("no testdata/console/*-sysrq-crash.log fixture")
	}
	for _, m := range matches {
		c := parseFile(t, filepath.Base(m))
		if !c.Crashed() {
			t.Errorf("%s: crash not detected", m)
			continue
		}
		if !strings.Contains(c.Oops[0], "sysrq") && !strings.Contains(c.Oops[0], "BUG:") {
			t.Errorf("%s: first Oops line = %q", m, c.Oops[0])
		}
		if c.Done {
			t.Errorf("%s: Done set on a crashed guest", m)
		}
		if s := c.Step("crash"); s == nil || s.Ended || !s.Failed() {
			t.Errorf("%s: crash step = %+v, want unfinished", m, s)
		}
	}
}

// TestParseConsoleLab reads the hazard lab's records, also one that follows
// kernel text on its line, and reports one a kernel message corrupted.
func TestParseConsoleLab(t *testing.T) {
	console := strings.Join([]string{
		"=== VMTEST BEGIN s2-naive",
		`=== VMTEST LAB {"scenario":"2","arm":"naive","outcome":"missed","summary":"128 of 256","numbers":{"missed":128}}`,
		"=== VMTEST END s2-naive exit=0 elapsed=8.3s",
		`[   12.5] rcu: stall=== VMTEST LAB {"scenario":"5","arm":"repro","outcome":"lockup","summary":"LOCKUP"}`,
		`=== VMTEST LAB {"scenario":"5","arm":"re[   13.1] watchdog: BUG: soft lockup`,
	}, "\n")
	c, err := ParseConsole(strings.NewReader(console))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Lab) != 2 || c.Lab[0].Arm != "naive" || c.Lab[0].Numbers["missed"] != 128 || c.Lab[1].Outcome != "lockup" {
		t.Errorf("lab records = %+v", c.Lab)
	}
	if s := c.Step("s2-naive"); s == nil || len(s.Output) != 1 {
		t.Errorf("step s2-naive = %+v, want the record in its output", s)
	}
	if len(c.Errors) != 1 || !strings.Contains(c.Errors[0], "decode lab record") {
		t.Errorf("errors = %q, want the corrupted record reported", c.Errors)
	}
}
