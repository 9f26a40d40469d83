package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/internal/testutil"
	"github.com/safebpf/safebpf/probe"
)

// result is one in-process run of the CLI.
type result struct {
	code           int
	stdout, stderr string
}

func runCLI(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return result{code, out.String(), errb.String()}
}

// runWith runs the CLI with a replayed host kernel.
func runWith(t *testing.T, k *probe.Kernel, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	a := newApp(&out, &errb)
	a.detect = func(context.Context, string, []probe.Fact) (*probe.Kernel, error) { return k.Clone(), nil }
	code := a.run(args)
	return result{code, out.String(), errb.String()}
}

// oneLineErr checks that stderr is exactly one line containing want.
func oneLineErr(t *testing.T, r result, want ...string) {
	t.Helper()
	if strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
		t.Errorf("stderr is not one line: %q", r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr %q lacks %q", r.stderr, w)
		}
	}
}

// checkJSON is the part of `check --json` the tests read.
type checkJSON struct {
	Kernel struct {
		Release       string  `json:"release"`
		Version       *string `json:"version"`
		VersionSource string  `json:"version_source"`
	} `json:"kernel"`
	Findings []struct {
		ID        string `json:"id"`
		Mechanism string `json:"mechanism"`
		Verdict   string `json:"verdict"`
		Reason    string `json:"reason"`
	} `json:"findings"`
	Decision  *decisionOut  `json:"decision"`
	Decisions []decisionOut `json:"decisions"`
}

type decisionOut struct {
	Requested string `json:"requested"`
	Chosen    string `json:"chosen"`
	Action    string `json:"action"`
	Settings  struct {
		MaxActive int `json:"maxactive"`
		PerfEvent *struct {
			Hardware  bool   `json:"hardware"`
			Frequency uint64 `json:"frequency"`
		} `json:"perf_event"`
	} `json:"settings"`
	Steps []struct {
		From, To, Action, Hazard, Missing string
		Forced                            bool
		Reason                            string
	} `json:"steps"`
	Forced      []string `json:"forced"`
	Mode        string   `json:"mode"`
	WouldChoose string   `json:"would_choose"`
	WouldAction string   `json:"would_action"`
	Error       string   `json:"error"`
	ErrorType   string   `json:"error_type"`
}

func decodeCheck(t *testing.T, r result) checkJSON {
	t.Helper()
	var c checkJSON
	if err := json.Unmarshal([]byte(r.stdout), &c); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s\nstderr: %s", err, r.stdout, r.stderr)
	}
	return c
}

func TestCheckJSON(t *testing.T) {
	ubuntu := []string{"--release", "6.8.0-53-generic", "--version-signature", "Ubuntu 6.8.0-53.55-generic 6.8.12"}
	tests := []struct {
		name        string
		args        []string
		code        int
		version     any // string or nil
		source      string
		requested   string
		chosen      string
		action      string
		stepHazards []string
		findingIDs  []string
		check       func(t *testing.T, d decisionOut)
	}{
		{
			name:    "Ubuntu 5.15 GA without signature: sublevel unknown",
			args:    []string{"--release", "5.15.0-91-generic", "--mechanism", "fentry"},
			version: "5.15", source: "release_partial",
			requested: "fentry", chosen: "kprobe", action: "downgrade",
			stepHazards: []string{"fentry-zap-pid-ns-deadlock"},
			findingIDs:  []string{"x86-text-poke-race", "fentry-zap-pid-ns-deadlock"},
		},
		{
			name:    "Ubuntu 6.8.0-53 fentry → kprobe",
			args:    append(append([]string(nil), ubuntu...), "--mechanism", "fentry"),
			version: "6.8.12", source: "version_signature",
			requested: "fentry", chosen: "kprobe", action: "downgrade",
			stepHazards: []string{"fentry-zap-pid-ns-deadlock"},
		},
		{
			// Issue 9: the cpu-clock event runs in hard IRQ and deadlocks
			// like the NMI (research C1); the refusal names the fixes.
			name:    "6.1.30 software perf event reading user memory → refused",
			args:    []string{"--release", "6.1.30", "--mechanism", "perf-event-software", "--reads-user-memory", "--user-stacks=false"},
			code:    1,
			version: "6.1.30", source: "release",
			requested: "perf-event-software", action: "refuse",
			stepHazards: []string{"nmi-user-read-deadlock"},
			findingIDs:  []string{"nmi-user-read-deadlock", "nmi-user-stack-deadlock"},
			check: func(t *testing.T, d decisionOut) {
				if d.ErrorType != "refused.nmi-user-read-deadlock" || !strings.Contains(d.Error, "fixed in 6.1.36, 6.3.10, 6.4") {
					t.Errorf("error %q (%s) does not name the fixed kernels", d.Error, d.ErrorType)
				}
			},
		},
		{
			name:    "6.1.30 hardware perf event reading user memory → refused, not moved to software",
			args:    []string{"--release", "6.1.30", "--mechanism", "perf-event-hardware", "--reads-user-memory"},
			code:    1,
			version: "6.1.30", source: "release",
			requested: "perf-event-hardware", action: "refuse",
			stepHazards: []string{"nmi-user-read-deadlock"},
			check: func(t *testing.T, d decisionOut) {
				if !strings.Contains(d.Error, "perf-event-software is no remedy") {
					t.Errorf("error %q does not say why software is no way out", d.Error)
				}
			},
		},
		{
			name:    "6.1.30 profiler that only takes user stacks is allowed (fixed in 6.0)",
			args:    []string{"--release", "6.1.30", "--mechanism", "perf-event-software", "--reads-user-memory=false", "--user-stacks"},
			version: "6.1.30", source: "release",
			requested: "perf-event-software", chosen: "perf-event-software", action: "allow",
			findingIDs: []string{"nmi-user-read-deadlock", "nmi-user-stack-deadlock"},
		},
		{
			name:    "5.19.5 profiler taking user stacks → refused",
			args:    []string{"--release", "5.19.5", "--mechanism", "perf-event-software", "--reads-user-memory=false", "--user-stacks"},
			code:    1,
			version: "5.19.5", source: "release",
			requested: "perf-event-software", action: "refuse",
			stepHazards: []string{"nmi-user-stack-deadlock"},
			check: func(t *testing.T, d decisionOut) {
				if !strings.Contains(d.Error, "fixed in 5.19.14, 6.0") {
					t.Errorf("error %q does not name the fixed kernels", d.Error)
				}
			},
		},
		{
			name:    "6.12.5 fentry with tail calls warns",
			args:    []string{"--release", "6.12.5", "--mechanism", "fentry", "--reads-user-memory=false", "--tail-calls"},
			version: "6.12.5", source: "release",
			requested: "fentry", chosen: "fentry", action: "warn",
			stepHazards: []string{"fentry-tail-call-break"},
		},
		{
			name:    "6.1.30 hardware perf event not reading user memory stays",
			args:    []string{"--release", "6.1.30", "--mechanism", "perf-event-hardware", "--reads-user-memory=false"},
			version: "6.1.30", source: "release",
			requested: "perf-event-hardware", chosen: "perf-event-hardware", action: "allow",
		},
		{
			name:    "x86 5.5 text-poke race: chain to refusal, exit 1",
			args:    []string{"--release", "5.5.3", "--mechanism", "fentry"},
			code:    1,
			version: "5.5.3", source: "release",
			requested: "fentry", chosen: "", action: "refuse",
			stepHazards: []string{"x86-text-poke-race", "x86-text-poke-race"},
			check: func(t *testing.T, d decisionOut) {
				if d.ErrorType != "refused.x86-text-poke-race" || !strings.Contains(d.Error, "SAFEBPF_FORCE=x86-text-poke-race") {
					t.Errorf("error %q (%s) does not name the force ID", d.Error, d.ErrorType)
				}
			},
		},
		{
			name:    "x86 5.5 forced",
			args:    []string{"--release", "5.5.3", "--mechanism", "kprobe", "--force", "x86-text-poke-race"},
			version: "5.5.3", source: "release",
			requested: "kprobe", chosen: "kprobe", action: "warn",
			stepHazards: []string{"x86-text-poke-race"},
			check: func(t *testing.T, d decisionOut) {
				if diff := cmp.Diff([]string{"x86-text-poke-race"}, d.Forced); diff != "" || !d.Steps[0].Forced {
					t.Errorf("forced (-want +got):\n%s; steps %+v", diff, d.Steps)
				}
			},
		},
		{
			name: "fexit → kretprobe → capped on a big 6.1 with the symbol",
			// Not reading user memory: on 6.1.30 a program that does is
			// refused on fexit and kretprobe alike (they may run in IRQ).
			args:    []string{"--release", "6.1.30", "--cpus", "128", "--mechanism", "fexit", "--kallsyms", "testdata/kallsyms-tasks-rcu", "--reads-user-memory=false"},
			version: "6.1.30", source: "release",
			requested: "fexit", chosen: "kretprobe", action: "downgrade",
			stepHazards: []string{"fentry-zap-pid-ns-deadlock", "kretprobe-contention", "kretprobe-pool-exhaustion"},
			check: func(t *testing.T, d decisionOut) {
				if d.Settings.MaxActive != 512 {
					t.Errorf("maxactive = %d, want the catalog's 512", d.Settings.MaxActive)
				}
			},
		},
		{
			name:    "warn mode keeps the request",
			args:    append(append([]string(nil), ubuntu...), "--mechanism", "fentry", "--mode", "warn"),
			version: "6.8.12", source: "version_signature",
			requested: "fentry", chosen: "fentry", action: "warn",
			stepHazards: []string{"fentry-zap-pid-ns-deadlock"},
			check: func(t *testing.T, d decisionOut) {
				if d.WouldChoose != "kprobe" || d.WouldAction != "downgrade" || d.Mode != "warn" {
					t.Errorf("would %s %s mode %s", d.WouldAction, d.WouldChoose, d.Mode)
				}
			},
		},
		{
			name:    "pinned hardware perf event on 6.1.30 refuses",
			args:    []string{"--release", "6.1.30", "--mechanism", "perf-event-hardware", "--reads-user-memory", "--pinned"},
			code:    1,
			version: "6.1.30", source: "release",
			requested: "perf-event-hardware", action: "refuse",
			stepHazards: []string{"nmi-user-read-deadlock"},
		},
		{
			name:    "kprobe reading user memory on a syscall wrapper on 6.1.30 runs in process context",
			args:    []string{"--release", "6.1.30", "--mechanism", "kprobe", "--pinned", "--attach-to", "__x64_sys_getpid"},
			version: "6.1.30", source: "release",
			requested: "kprobe", chosen: "kprobe", action: "allow",
			check: func(t *testing.T, d decisionOut) {
				if len(d.Steps) != 0 {
					t.Errorf("steps %+v, want none", d.Steps)
				}
			},
		},
		{
			name:    "kprobe on a wrapper and a function the timer calls on 6.1.30 refuses",
			args:    []string{"--release", "6.1.30", "--mechanism", "kprobe", "--pinned", "--attach-to", "__x64_sys_getpid,update_process_times"},
			code:    1,
			version: "6.1.30", source: "release",
			requested: "kprobe", action: "refuse",
			stepHazards: []string{"nmi-user-read-deadlock"},
		},
		{
			name:    "uretprobe under seccomp on 6.12 with the syscall",
			args:    []string{"--release", "6.12.5", "--mechanism", "uretprobe", "--seccomp", "--kallsyms", "testdata/kallsyms-uretprobe"},
			code:    1,
			version: "6.12.5", source: "release",
			requested: "uretprobe", action: "refuse",
			stepHazards: []string{"uretprobe-seccomp-kill"},
		},
		{
			name:    "uprobes on 6.1 are paced; many become uprobe-multi only from 6.6",
			args:    []string{"--release", "6.1.30", "--mechanism", "uprobe", "--targets", "4"},
			version: "6.1.30", source: "release",
			requested: "uprobe", chosen: "uprobe", action: "pace",
			// The first step says why the 4 targets are not batched (no
			// uprobe-multi before 6.6: a missing mechanism, no hazard).
			stepHazards: []string{"", "uprobe-mmap-lock-stall"},
		},
		{
			name:    "Debian /proc/version gives the sublevel",
			args:    []string{"--release", "6.1.0-9-amd64", "--proc-version", "Linux version 6.1.0-9-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian 6.1.30-1 (2023-05-24)", "--os-release", "testdata/os-release-debian12", "--mechanism", "tracepoint", "--reads-user-memory=false"},
			version: "6.1.30", source: "proc_version",
			requested: "tracepoint", chosen: "tracepoint", action: "allow",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, append([]string{"check", "--json"}, tt.args...)...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d; stderr %s", r.code, tt.code, r.stderr)
			}
			c := decodeCheck(t, r)
			var gotVersion any
			if c.Kernel.Version != nil {
				gotVersion = *c.Kernel.Version
			}
			if gotVersion != tt.version || c.Kernel.VersionSource != tt.source {
				t.Errorf("kernel version %v (%s), want %v (%s)", gotVersion, c.Kernel.VersionSource, tt.version, tt.source)
			}
			if c.Decision == nil {
				t.Fatalf("no decision in %s", r.stdout)
			}
			d := *c.Decision
			if d.Requested != tt.requested || d.Chosen != tt.chosen || d.Action != tt.action {
				t.Errorf("decision %s → %q (%s), want %s → %q (%s); steps %+v", d.Requested, d.Chosen, d.Action, tt.requested, tt.chosen, tt.action, d.Steps)
			}
			var hz []string
			for _, s := range d.Steps {
				hz = append(hz, s.Hazard)
			}
			if diff := cmp.Diff(tt.stepHazards, hz); diff != "" {
				t.Errorf("step hazards (-want +got):\n%s", diff)
			}
			for _, id := range tt.findingIDs {
				found := false
				for _, f := range c.Findings {
					found = found || f.ID == id && f.Verdict != "" && f.Reason != ""
				}
				if !found {
					t.Errorf("no finding %s in %+v", id, c.Findings)
				}
			}
			for _, f := range c.Findings {
				if f.Mechanism != tt.requested {
					t.Errorf("finding %s for %s, want only %s", f.ID, f.Mechanism, tt.requested)
				}
			}
			if tt.check != nil {
				tt.check(t, d)
			}
		})
	}
}

func TestCheckEveryMechanism(t *testing.T) {
	r := runCLI(t, "check", "--json", "--release", "5.4.0-150-generic", "--version-signature", "Ubuntu 5.4.0-150.167-generic 5.4.233")
	if r.code != exitRefused {
		t.Fatalf("exit %d, want 1 (kprobes refused on 5.4 x86); stderr %s", r.code, r.stderr)
	}
	c := decodeCheck(t, r)
	if c.Decision != nil || len(c.Decisions) != len(probe.Mechanisms()) {
		t.Fatalf("want one decision per mechanism, got %d (+single %v)", len(c.Decisions), c.Decision != nil)
	}
	got := map[string]string{}
	for _, d := range c.Decisions {
		got[d.Requested] = d.Action
	}
	want := map[string]string{
		"fentry": "refuse", "fexit": "refuse", "kprobe": "refuse", "kretprobe": "refuse",
		"kprobe-multi": "refuse", "kretprobe-multi": "refuse", "tracepoint": "refuse", "raw-tracepoint": "refuse",
		"uprobe": "pace", "uretprobe": "pace", "uprobe-multi": "downgrade", // to uprobe: uprobe_multi needs 6.6
		"perf-event-hardware": "allow", "perf-event-software": "allow",
		// Each needs a newer kernel than 5.4 (5.5, 5.7, 5.7, 5.8).
		// uretprobe-multi falls back to its uretprobe variant.
		"uretprobe-multi": "downgrade", "tp-btf": "refuse", "fmod-ret": "refuse", "lsm": "refuse", "iter": "refuse",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("actions per mechanism (-want +got):\n%s", diff)
	}
	mechs := map[string]bool{}
	for _, f := range c.Findings {
		mechs[f.Mechanism] = true
	}
	if len(mechs) < 10 {
		t.Errorf("findings cover only %v", mechs)
	}
}

func TestCheckHuman(t *testing.T) {
	r := runCLI(t, "check", "--release", "6.8.0-53-generic", "--version-signature", "Ubuntu 6.8.0-53.55-generic 6.8.12", "--mechanism", "fentry",
		"--proc-version", "Linux version 6.8.0-53-generic (buildd@lcy02-amd64-046) (x86_64-linux-gnu-gcc-13 (Ubuntu 13.3.0-6ubuntu2~24.04) 13.3.0, GNU ld (GNU Binutils for Ubuntu) 2.42) #55-Ubuntu SMP PREEMPT_DYNAMIC Sat Jan 11 00:26:32 UTC 2025")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	first, _, _ := strings.Cut(r.stdout, "\n")
	if first != "1 hazard applies to 6.8.0-53-generic; fentry → kprobe; no refusals" {
		t.Errorf("summary line %q", first)
	}
	for _, want := range []string{"upstream version  6.8.12 (from /proc/version_signature)", "fentry → kprobe (downgrade",
		"fentry-zap-pid-ns-deadlock: affected → downgrade", "upstream 6.8.12 in >= 6.7, < 6.9", "x86-text-poke-race: not-affected\n",
		"Assuming the program reads user memory, takes user stacks, makes tail calls", "preemption        dynamic"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "\x1b[") {
		t.Errorf("colour codes written to a non-terminal")
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"no command", nil, nil},
		{"unknown command", []string{"frobnicate"}, []string{"unknown command", "frobnicate"}},
		{"unknown flag", []string{"check", "--frob"}, []string{"unknown flag: --frob", "safebpf help check"}},
		{"single-dash long flag", []string{"check", "-json"}, []string{"unknown shorthand flag"}},
		{"unknown mechanism", []string{"check", "--release", "6.1.30", "--mechanism", "kprobes"}, []string{`unknown mechanism "kprobes"`, "fentry"}},
		{"missing release", []string{"check", "--mechanism", "fentry"}, []string{"--release, --kernel or --fleet is required"}},
		{"unparseable release", []string{"check", "--release", "banana"}, []string{"banana"}},
		{"unreadable os-release", []string{"check", "--release", "6.1.30", "--os-release", "/nonexistent/os-release"}, []string{"--os-release", "/nonexistent/os-release"}},
		{"unreadable kallsyms", []string{"check", "--release", "6.1.30", "--kallsyms", "/nonexistent/kallsyms"}, []string{"--kallsyms"}},
		{"unreadable config", []string{"check", "--release", "6.1.30", "--config", "/nonexistent/config"}, []string{"--config"}},
		{"malformed force ID", []string{"check", "--release", "6.1.30", "--force", "NO-SUCH-HAZARD"}, []string{"--force", "NO-SUCH-HAZARD", "x86-text-poke-race"}},
		{"bad mode", []string{"check", "--release", "6.1.30", "--mode", "loud"}, []string{"loud"}},
		{"bad cpus", []string{"check", "--release", "6.1.30", "--cpus", "many"}, []string{"--cpus", "many"}},
		{"unreadable policy", []string{"check", "--release", "6.1.30", "--policy", "/nonexistent/policy.yaml"}, []string{"--policy", "/nonexistent/policy.yaml"}},
		{"unreadable policy file to validate", []string{"policy", "validate", "/nonexistent/policy.yaml"}, []string{"/nonexistent/policy.yaml", "no such file"}},
		{"fleet and kernel", []string{"check", "--fleet", "f.jsonl", "--kernel", "k.json"}, []string{"--fleet"}},
		{"bad output format", []string{"hazards", "-o", "yaml"}, []string{"-o", "yaml"}},
		{"version argument", []string{"version", "extra"}, []string{"unexpected argument"}},
		{"unknown hazard", []string{"hazards", "no-such-hazard"}, []string{`unknown hazard ID "no-such-hazard"`, "nmi-user-read-deadlock", "uretprobe-seccomp-kill"}},
		{"two hazards", []string{"hazards", "a", "b"}, []string{"at most one"}},
		{"probe argument", []string{"probe", "extra"}, []string{"unexpected argument"}},
		{"policy without validate", []string{"policy"}, []string{"policy validate FILE"}},
		{"policy with another word", []string{"policy", "check", "x"}, []string{"policy validate FILE"}},
		{"policy validate without file", []string{"policy", "validate"}, []string{"exactly one FILE"}},
		{"plan without object", []string{"plan"}, []string{"OBJECT.o"}},
		{"plan unreadable object", []string{"plan", "/nonexistent/x.o"}, []string{"open ELF object", "/nonexistent/x.o"}},
		{"plan bad kernel fixture", []string{"plan", "../../examples/opensnoop/opensnoop_x86_bpfel.o", "--kernel", "/nonexistent.json"}, []string{"--kernel", "kernel description", "/nonexistent.json"}},
		{"help unknown", []string{"help", "frob"}, []string{"unknown command"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, tt.args...)
			if r.code != exitUsage {
				t.Fatalf("exit %d, want 2; stdout %q stderr %q", r.code, r.stdout, r.stderr)
			}
			if tt.want == nil {
				if !strings.Contains(r.stderr, "Usage:\n  safebpf [command]") {
					t.Errorf("no usage on stderr: %q", r.stderr)
				}
				return
			}
			oneLineErr(t, r, tt.want...)
		})
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"help", "check"}, {"check", "--help"}, {"plan", "-h"}, {"help", "policy", "validate"}} {
		r := runCLI(t, args...)
		if r.code != 0 || r.stderr != "" {
			t.Errorf("%v: exit %d stderr %q", args, r.code, r.stderr)
		}
		if !strings.Contains(r.stdout, "safebpf") {
			t.Errorf("%v: no help text: %q", args, r.stdout)
		}
	}
	r := runCLI(t, "help")
	for _, want := range []string{"0  fine", "1  a refusal", "2  usage or input error", "probe", "hazards", "check", "policy", "plan",
		"version", "bugreport", "completion", "SAFEBPF_FORCE", "SAFEBPF_HOST_ROOT"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

func TestHazardsCommand(t *testing.T) {
	r := runCLI(t, "hazards")
	wide := runCLI(t, "hazards", "-o", "wide")
	if r.code != 0 || wide.code != 0 {
		t.Fatalf("exit %d, %d: %s", r.code, wide.code, r.stderr+wide.stderr)
	}
	for _, h := range hazards.Builtin().Hazards() {
		if !strings.Contains(r.stdout, "\n"+string(h.ID)+" ") || !strings.Contains(wide.stdout, h.Title) {
			t.Errorf("list lacks %s", h.ID)
		}
	}
	for _, h := range hazards.Builtin().Hazards() {
		r := runCLI(t, "hazards", string(h.ID))
		if r.code != 0 {
			t.Fatalf("%s: exit %d: %s", h.ID, r.code, r.stderr)
		}
		for _, want := range []string{string(h.ID), "Action:", "Mechanisms:", "References:", "SAFEBPF_FORCE=" + string(h.ID)} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("%s: explanation lacks %q", h.ID, want)
			}
		}
		for _, ref := range h.References {
			if ref.Commit != "" && !strings.Contains(r.stdout, ref.Commit) {
				t.Errorf("%s: explanation lacks commit %s", h.ID, ref.Commit)
			}
		}
	}
	r = runCLI(t, "hazards", "--json", "x86-text-poke-race")
	var h hazards.Hazard
	if err := json.Unmarshal([]byte(r.stdout), &h); err != nil || h.ID != "x86-text-poke-race" || h.Action != hazards.ActionRefuse {
		t.Errorf("hazards --json ID: %v %+v", err, h)
	}
	r = runCLI(t, "hazards", "--json")
	var list struct {
		SchemaVersion int              `json:"schema_version"`
		Hazards       []hazards.Hazard `json:"hazards"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || list.SchemaVersion != 1 || len(list.Hazards) != len(hazards.Builtin().Hazards()) {
		t.Errorf("hazards --json: %v, schema %d, %d entries", err, list.SchemaVersion, len(list.Hazards))
	}
	// Ranges read as people write them, not as go-version constraints.
	r = runCLI(t, "hazards", "nmi-user-read-deadlock")
	if !strings.Contains(r.stdout, "Affected:    >= 5.19, < 6.1.36 or >= 6.2, < 6.3.10") || strings.Contains(r.stdout, "~>") {
		t.Errorf("affected ranges not rendered:\n%s", r.stdout)
	}
	// Issue 9: severity, what an unknown verdict does, the fixes, evidence
	// of every kind.
	for _, want := range []string{"Severity:    lockup", "On unknown:  refuse", "Fixed in:    6.1.36, 6.3.10, 6.4",
		"call copy_from_user_nofault->nmi_uaccess_okay (on amd64): holds"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("explanation lacks %q:\n%s", want, r.stdout)
		}
	}
	if r := runCLI(t, "hazards"); !strings.Contains(r.stdout, "in the built-in catalog (version "+hazards.Builtin().Version()+", sha256:") {
		t.Errorf("listing does not name the catalog's version:\n%s", r.stdout)
	}
}

// TestHazardsExport: --export prints the catalog as a catalog document
// that SAFEBPF_CATALOG loads back; a malformed catalog file is an input
// error.
func TestHazardsExport(t *testing.T) {
	r := runCLI(t, "hazards", "--export")
	back, err := hazards.ParseCatalog("export.json", []byte(r.stdout))
	if r.code != 0 || err != nil || len(back.Hazards()) != len(hazards.Builtin().Hazards()) || back.Version() != hazards.Builtin().Version() {
		t.Fatalf("hazards --export does not export the catalog: exit %d, %v\n%s", r.code, err, r.stderr)
	}
	path := filepath.Join(testutil.TrustedTempDir(t), "catalog.json") // as root, catalogs below /tmp are refused
	if err := os.WriteFile(path, []byte(r.stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(hazards.EnvCatalog, path)
	if r := runCLI(t, "hazards"); r.code != 0 || !strings.Contains(r.stdout, "in the catalog from "+hazards.EnvCatalog) {
		t.Errorf("hazards with %s: exit %d\n%s%s", hazards.EnvCatalog, r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, "check", "--release", "6.1.30", "--mechanism", "perf-event-software"); r.code != exitRefused {
		t.Errorf("check with the exported catalog: exit %d, want the refusal\n%s%s", r.code, r.stdout, r.stderr)
	}
	if err := os.WriteFile(path, []byte(`{"apiVersion": "safebpf/v1", "rules": []}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"hazards"}, {"check", "--release", "6.1.30"}} {
		if r := runCLI(t, args...); r.code != exitUsage || !strings.Contains(r.stderr, "missing catalog version") {
			t.Errorf("%v with a bad %s catalog: exit %d, stderr %q", args, hazards.EnvCatalog, r.code, r.stderr)
		}
	}
	if r := runCLI(t, "hazards", "--export", "--json"); r.code != exitUsage {
		t.Errorf("--export --json: exit %d, want a usage error", r.code)
	}
}

// TestProbeEvidence: the preemption model and the live witnesses'
// observations show (counted; -o wide: each with its witness), and probe
// asks Detect for the catalog's facts.
func TestProbeEvidence(t *testing.T) {
	k := fixtureKernel()
	yes := true
	k.Preemption = probe.Preemption{Preemptible: &yes, Model: probe.PreemptDynamic, Witness: "/proc/version says SMP PREEMPT_DYNAMIC"}
	k.Observations = map[string]probe.Observation{
		"call:copy_from_user_nofault->nmi_uaccess_okay": probe.Observed(true, "call nmi_uaccess_okay at copy_from_user_nofault+0x37 (kcore)"),
		"selftest:uretprobe-seccomp-kill":               probe.Unobserved("no uretprobe syscall"),
	}
	var asked []probe.Fact
	a := newApp(new(bytes.Buffer), new(bytes.Buffer))
	a.detect = func(_ context.Context, _ string, facts []probe.Fact) (*probe.Kernel, error) {
		asked = facts
		return k.Clone(), nil
	}
	var out bytes.Buffer
	a.stdout = &out
	if code := a.run([]string{"probe"}); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if diff := cmp.Diff(hazards.Builtin().Facts(), asked); diff != "" {
		t.Errorf("facts asked for (-catalog +asked):\n%s", diff)
	}
	for _, want := range []string{"preemption        dynamic\n", "evidence          2 facts observed: 1 hold, 0 do not, 1 unknown"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("probe output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := a.run([]string{"probe", "-o", "wide"}); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"dynamic (/proc/version says SMP PREEMPT_DYNAMIC)", "call:copy_from_user_nofault->nmi_uaccess_okay: holds (call nmi_uaccess_okay at"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("probe -o wide lacks %q:\n%s", want, out.String())
		}
	}
}

func TestPolicyValidate(t *testing.T) {
	dir := testutil.TrustedTempDir(t)
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// A private copy: as root, LoadPolicy rightly refuses a checkout whose
	// files are group-writable (umask 002).
	example, err := os.ReadFile("../../examples/policy/policy.yaml")
	if err != nil {
		t.Fatalf("example policy: %v", err)
	}
	good := write("policy.yaml", string(example))
	r := runCLI(t, "policy", "validate", good)
	if r.code != 0 || !strings.Contains(r.stdout, "valid") {
		t.Errorf("example policy: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}

	bad := write("bad.yaml", "apiVersion: safebpf/v1\nmode: enforce\nhazards:\n  no-such-hazard:\n    disable: true\n")
	r = runCLI(t, "policy", "validate", bad)
	if r.code != exitRefused {
		t.Errorf("invalid policy: exit %d, want 1", r.code)
	}
	oneLineErr(t, r, "bad.yaml:4", "no-such-hazard")
	r = runCLI(t, "policy", "validate", "--json", bad)
	var pr struct {
		SchemaVersion int  `json:"schema_version"`
		Valid         bool `json:"valid"`
		Error         struct {
			Line int    `json:"line"`
			Key  string `json:"key"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &pr); err != nil || r.code != exitRefused || pr.SchemaVersion != 1 || pr.Valid || pr.Error.Line != 4 || pr.Error.Key != "hazards.no-such-hazard" {
		t.Errorf("policy validate --json invalid: exit %d, %v, %+v", r.code, err, pr)
	}

	// A newer release's file: a clear error naming the version this one reads.
	v2 := write("v2.yaml", "apiVersion: safebpf/v2\nmode: warn\n")
	r = runCLI(t, "policy", "validate", v2)
	if r.code != exitRefused {
		t.Errorf("safebpf/v2 policy: exit %d, want 1", r.code)
	}
	oneLineErr(t, r, "v2.yaml:1", `unsupported apiVersion "safebpf/v2"`, `"safebpf/v1"`)
	// Unreadable is an input error: exit 2, at once for a FIFO.
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{fifo, dir, filepath.Join(dir, "missing.yaml")} {
		r = runCLI(t, "policy", "validate", path)
		if r.code != exitUsage {
			t.Errorf("policy validate %s: exit %d, want 2", path, r.code)
		}
		oneLineErr(t, r, path)
	}

	// The same code path behind check --policy, as an input error.
	r = runCLI(t, "check", "--release", "6.1.30", "--policy", bad)
	if r.code != exitUsage {
		t.Errorf("check --policy invalid: exit %d, want 2", r.code)
	}
	oneLineErr(t, r, "bad.yaml:4", "no-such-hazard")

	unknownKey := write("key.yaml", "apiVersion: safebpf/v1\nmodee: warn\n")
	r = runCLI(t, "policy", "validate", unknownKey)
	if r.code != exitRefused {
		t.Errorf("unknown key: exit %d, want 1", r.code)
	}
	oneLineErr(t, r, "key.yaml:2", "modee")

	// A policy that disables the hazard changes check's decision.
	disable := write("disable.yaml", "apiVersion: safebpf/v1\nhazards:\n  fentry-zap-pid-ns-deadlock:\n    disable: true\n")
	r = runCLI(t, "check", "--json", "--release", "6.8.0-53-generic", "--version-signature", "Ubuntu 6.8.0-53.55-generic 6.8.12", "--mechanism", "fentry", "--policy", disable)
	if c := decodeCheck(t, r); c.Decision == nil || c.Decision.Chosen != "fentry" || c.Decision.Action != "allow" {
		t.Errorf("with the hazard disabled: %+v", c.Decision)
	}

	if os.Geteuid() == 0 {
		ww := write("ww.yaml", "apiVersion: safebpf/v1\n")
		if err := os.Chmod(ww, 0o666); err != nil {
			t.Fatal(err)
		}
		r = runCLI(t, "policy", "validate", ww)
		if r.code != exitRefused {
			t.Errorf("world-writable policy as root: exit %d, want 1", r.code)
		}
		oneLineErr(t, r, "writable")
	}
}

// fixtureKernel is a replayed host: this machine's shape (KERNELS.md).
func fixtureKernel() *probe.Kernel {
	v := probe.Version{Major: 6, Minor: 18, Patch: 44, PatchKnown: true}
	k := &probe.Kernel{
		Release: "6.18.44-fc", Version: &v, VersionSource: probe.SourceRelease,
		Arch: "amd64", CPUs: 2, Mechanisms: map[probe.Mechanism]probe.Support{},
	}
	for _, m := range probe.Mechanisms() {
		k.Mechanisms[m] = probe.Supported("fixture")
	}
	k.Mechanisms[probe.Kprobe] = probe.Unsupported("CONFIG_KPROBES is not set")
	k.Mechanisms[probe.Fentry] = probe.Unsupported("EPERM")
	k.Mechanisms[probe.PerfEventHardware] = probe.Unsupported("ENOENT")
	k.Mechanisms[probe.KprobeMulti] = probe.Undecided("probe failed")
	return k
}

// probeJSON is `probe --json` as a script reads it.
type probeJSON struct {
	Kernel     map[string]any `json:"kernel"`
	Mechanisms map[string]struct {
		Available *bool   `json:"available"`
		Reason    *string `json:"reason"`
	} `json:"mechanisms"`
	Findings []struct {
		ID, Mechanism, Verdict, Reason string
	} `json:"findings"`
}

func TestProbeJSONShape(t *testing.T) {
	r := runWith(t, fixtureKernel(), "probe", "--json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var p probeJSON
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if p.Kernel["version"] != "6.18.44" || p.Kernel["version_source"] != "release" || p.Kernel["release"] != "6.18.44-fc" {
		t.Errorf("kernel = %v", p.Kernel)
	}
	if len(p.Mechanisms) != len(probe.Mechanisms()) {
		t.Errorf("%d mechanisms, want %d", len(p.Mechanisms), len(probe.Mechanisms()))
	}
	avail := func(m probe.Mechanism) any {
		s := p.Mechanisms[string(m)]
		if s.Reason == nil {
			t.Errorf("%s has no reason", m)
		}
		if s.Available == nil {
			return nil
		}
		return *s.Available
	}
	if avail(probe.Kprobe) != false || avail(probe.Fentry) != false || avail(probe.PerfEventHardware) != false || avail(probe.Uprobe) != true || avail(probe.KprobeMulti) != nil {
		t.Errorf("mechanisms = %+v", p.Mechanisms)
	}
	// Every hazard appears once per mechanism it concerns.
	want := 0
	for _, h := range hazards.Builtin().Hazards() {
		want += len(h.Mechanisms)
	}
	if len(p.Findings) != want {
		t.Errorf("%d findings, want %d", len(p.Findings), want)
	}
	for _, f := range p.Findings {
		if f.ID == "" || f.Mechanism == "" || f.Verdict == "" || f.Reason == "" {
			t.Errorf("incomplete finding %+v", f)
		}
	}

	// The version is null when unknown.
	k := fixtureKernel()
	k.Version, k.VersionSource = nil, probe.SourceNone
	r = runWith(t, k, "probe", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
		t.Fatal(err)
	}
	if v, ok := p.Kernel["version"]; !ok || v != nil {
		t.Errorf("unknown version = %v (present %v), want null", v, ok)
	}
}

func TestProbeHuman(t *testing.T) {
	// The worst case: a program that makes tail calls meets the
	// fentry-tail-call-break of 6.11.4 and later.
	r := runWith(t, fixtureKernel(), "probe")
	if r.code != 0 || !regexp.MustCompile(`fentry-tail-call-break +affected +warn`).MatchString(r.stdout) {
		t.Errorf("exit %d; no tail-call warning on 6.18.44:\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runWith(t, fixtureKernel(), "probe", "--tail-calls=false")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	// Without tail calls only kretprobe-pool-exhaustion (every kernel)
	// applies on 6.18.44.
	for _, want := range []string{"6.18.44 (from the release)", "MECHANISM", "kprobe ", "undecided", "refuse: unavailable", "1 hazard applies here"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	if !regexp.MustCompile(`kretprobe-pool-exhaustion +affected +cap +kretprobe\n`).MatchString(r.stdout) || regexp.MustCompile(`fentry-tail-call-break +affected`).MatchString(r.stdout) {
		t.Errorf("hazards that apply without tail calls: want kretprobe-pool-exhaustion only:\n%s", r.stdout)
	}
	// Columns line up: every mechanism row has its AVAILABLE column at the header's offset.
	lines := strings.Split(r.stdout, "\n")
	col := -1
	for _, l := range lines {
		if strings.Contains(l, "MECHANISM") && strings.Contains(l, "AVAILABLE") {
			col = strings.Index(l, "AVAILABLE")
			continue
		}
		if col > 0 && strings.HasPrefix(strings.TrimSpace(l), "perf-event-hardware") {
			if got := strings.Index(l, "no"); got != col {
				t.Errorf("AVAILABLE column at %d, want %d: %q", got, col, l)
			}
			break
		}
	}
}

func TestColorTable(t *testing.T) {
	var b bytes.Buffer
	tb := &table{header: []string{"A", "B", "C"}}
	tb.add(plain("x"), cell{"affected", red}, plain("z"))
	tb.add(plain("longer"), cell{"no", green}, plain("z"))
	tb.write(&printer{w: &b, color: true}, "")
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if !strings.Contains(lines[1], red+"affected"+reset) {
		t.Errorf("no colour: %q", lines[1])
	}
	strip := func(s string) string {
		for _, c := range []string{red, green, bold, reset} {
			s = strings.ReplaceAll(s, c, "")
		}
		return s
	}
	if strings.Index(strip(lines[1]), "z") != strings.Index(strip(lines[2]), "z") {
		t.Errorf("colour broke alignment:\n%s", strip(b.String()))
	}
	t.Setenv("NO_COLOR", "1")
	if useColor(os.Stdout) {
		t.Errorf("NO_COLOR set but colour used")
	}
}

func TestPlanCommand(t *testing.T) {
	obj := "../../examples/opensnoop/opensnoop_x86_bpfel.o"
	if _, err := os.Stat(obj); err != nil {
		t.Skipf("example object not present: %v", err)
	}
	fixture := filepath.Join(t.TempDir(), "ubuntu.json")
	r := runCLI(t, "check", "--json", "--release", "6.8.0-53-generic", "--version-signature", "Ubuntu 6.8.0-53.55-generic 6.8.12", "--mechanism", "fentry")
	if err := os.WriteFile(fixture, []byte(r.stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, "plan", obj, "--kernel", fixture, "--json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var out struct {
		Programs []struct {
			Program      string   `json:"program"`
			Mechanism    string   `json:"mechanism"`
			Alternatives []string `json:"alternatives"`
			Chosen       bool     `json:"chosen"`
			Decision     *struct {
				Chosen string `json:"chosen"`
				Action string `json:"action"`
			} `json:"decision"`
		} `json:"programs"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatal(err)
	}
	chosen := map[string]bool{}
	for _, p := range out.Programs {
		chosen[p.Mechanism] = p.Chosen
		if p.Decision == nil || p.Decision.Chosen != "kprobe" || p.Decision.Action != "downgrade" || len(p.Alternatives) != 1 {
			t.Errorf("program %+v", p)
		}
	}
	if !chosen["kprobe"] || chosen["fentry"] {
		t.Errorf("chosen = %v, want the kprobe variant", chosen)
	}

	// Where both variants are missing (this host's shape), plan refuses: exit 1.
	k := fixtureKernel()
	k.Mechanisms[probe.Kprobe] = probe.Unsupported("CONFIG_KPROBES is not set")
	kf := filepath.Join(t.TempDir(), "host.json")
	b, _ := json.Marshal(k)
	if err := os.WriteFile(kf, b, 0o600); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, "plan", obj, "--kernel", kf)
	if r.code != exitRefused || !strings.Contains(r.stdout, "refuse") {
		t.Errorf("exit %d, output:\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestCheckConfigFile: a gzip-compressed config (as /proc/config.gz)
// without CONFIG_HARDENED_USERCOPY clears the NMI deadlock; with it, the
// request is refused (the software clock is no way out of a hazard).
func TestCheckConfigFile(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, config, chosen string
	}{
		{"hardened usercopy off", "CONFIG_BPF=y\n# CONFIG_HARDENED_USERCOPY is not set\nCONFIG_PERF_EVENTS=y\n", "perf-event-hardware"},
		// Refused: the software clock is no way out of the hazard (issue 9).
		{"hardened usercopy on", "CONFIG_BPF=y\nCONFIG_HARDENED_USERCOPY=y\nCONFIG_PERF_EVENTS=y\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			if _, err := zw.Write([]byte(tc.config)); err != nil {
				t.Fatal(err)
			}
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".gz")
			if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			r := runCLI(t, "check", "--json", "--release", "6.1.30", "--mechanism", "perf-event-hardware", "--reads-user-memory", "--config", path)
			c := decodeCheck(t, r)
			if c.Decision == nil || c.Decision.Chosen != tc.chosen {
				t.Errorf("decision %+v, want %s", c.Decision, tc.chosen)
			}
		})
	}
}

// TestCheckKernelFixture: a kernel captured by `probe --json` is checked
// with its probed availability (this host's shape: no kprobes, no fentry).
func TestCheckKernelFixture(t *testing.T) {
	r := runWith(t, fixtureKernel(), "probe", "--json")
	path := filepath.Join(t.TempDir(), "host.json")
	if err := os.WriteFile(path, []byte(r.stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, "check", "--json", "--kernel", path, "--mechanism", "fentry")
	if r.code != exitRefused {
		t.Fatalf("exit %d, want 1: %s", r.code, r.stderr)
	}
	c := decodeCheck(t, r)
	if c.Kernel.Release != "6.18.44-fc" || c.Decision == nil || c.Decision.ErrorType != "refused.unavailable" {
		t.Errorf("kernel %+v decision %+v", c.Kernel, c.Decision)
	}
	r = runCLI(t, "check", "--json", "--kernel", path, "--mechanism", "perf-event-hardware", "--reads-user-memory")
	if c := decodeCheck(t, r); c.Decision == nil || c.Decision.Chosen != "perf-event-software" || c.Decision.Steps[0].Missing != "perf-event-hardware" {
		t.Errorf("decision %+v", c.Decision)
	}
	r = runCLI(t, "check", "--kernel", path, "--release", "6.1.30")
	if r.code != exitUsage {
		t.Errorf("--kernel with --release: exit %d, want 2", r.code)
	}
	oneLineErr(t, r, "--kernel")
}

// TestCheckRefusalNamesFixes: a refused profiler on an affected kernel is
// told which kernels carry the fix (issue 9), and one that only takes
// user stacks is allowed there.
func TestCheckRefusalNamesFixes(t *testing.T) {
	r := runCLI(t, "check", "--release", "6.1.30", "--mechanism", "perf-event-software", "--reads-user-memory")
	if r.code != exitRefused || !strings.Contains(r.stdout, "nmi-user-read-deadlock is fixed in 6.1.36, 6.3.10, 6.4") {
		t.Errorf("exit %d, want the refusal naming the fixes:\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, "check", "--release", "6.1.30", "--mechanism", "perf-event-software", "--reads-user-memory=false", "--user-stacks")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "no hazard applies to 6.1.30; no refusals") {
		t.Errorf("exit %d, want a user-stacks-only profiler allowed:\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestCheckRefusalNamesItsForceFlag: a refusal in text output says how to
// force it in an agent (the library's hint) and with this command's own
// flag, and running the command again with that flag does allow it.
func TestCheckRefusalNamesItsForceFlag(t *testing.T) {
	args := []string{"check", "--release", "6.1.30", "--mechanism", "perf-event-software", "--reads-user-memory"}
	r := runCLI(t, args...)
	if r.code != exitRefused {
		t.Fatalf("exit %d, want %d (refused)\n%s%s", r.code, exitRefused, r.stdout, r.stderr)
	}
	const hint = "--force nmi-user-read-deadlock"
	out := strings.Join(strings.Fields(r.stdout), " ") // the text is wrapped at 80 columns
	if !strings.Contains(out, hint) || !strings.Contains(out, "-safebpf-force=nmi-user-read-deadlock") {
		t.Fatalf("refusal does not name the agent's flag and %q:\n%s", hint, r.stdout)
	}
	forced := runCLI(t, append(args, strings.Fields(hint)...)...)
	if forced.code != 0 {
		t.Fatalf("with %s: exit %d, want 0\n%s%s", hint, forced.code, forced.stdout, forced.stderr)
	}
}
