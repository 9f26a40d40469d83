package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/internal/testutil"
	"github.com/safebpf/safebpf/internal/testutil/fixtures"
	"github.com/safebpf/safebpf/probe"
)

const opensnoopObject = "../../examples/opensnoop/opensnoop_x86_bpfel.o"

// guestFixtures returns the paths of the kernels captured in the
// kernel-matrix guests, by name.
func guestFixtures(t *testing.T) map[string]string {
	t.Helper()
	paths, err := filepath.Glob("../../testdata/kernels/*.json")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no guest fixtures in testdata/kernels: %v", err)
	}
	out := map[string]string{}
	for _, p := range paths {
		out[strings.TrimSuffix(filepath.Base(p), ".json")] = p
	}
	return out
}

// invocation is one command line of the CLI, run on a replayed host
// kernel (host) or on this machine (host nil).
type invocation struct {
	args []string
	host *probe.Kernel
	// noJSON marks commands without --json (help).
	noJSON bool
}

// everyCommand lists a run of every command and mode over the guest
// fixtures, this host and the catalog.
func everyCommand(t *testing.T) []invocation {
	t.Helper()
	dir := testutil.TrustedTempDir(t) // as root, policies below /tmp are refused
	example, err := os.ReadFile("../../examples/policy/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, example, 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: safebpf/v1\nhazards:\n  no-such-hazard-with-a-long-name-to-wrap-the-line-past-eighty-columns:\n    disable: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fleet := filepath.Join(dir, "fleet.jsonl")
	var lines []string
	var invs []invocation
	kernels := fixtures.GuestFixtures(t, "../..")
	for name, path := range guestFixtures(t) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var compact strings.Builder
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		c, _ := json.Marshal(v)
		compact.Write(c)
		lines = append(lines, compact.String())
		k := kernels[name].Kernel
		invs = append(invs,
			invocation{args: []string{"probe"}, host: &k},
			invocation{args: []string{"probe", "--policy", policy, "--reads-user-memory=false"}, host: &k},
			invocation{args: []string{"plan", opensnoopObject}, host: &k},
			invocation{args: []string{"check", "--kernel", path}},
			invocation{args: []string{"plan", opensnoopObject, "--kernel", path, "--policy", policy}},
		)
	}
	// One mechanism at a time, on a described Debian 6.1 with many CPUs
	// and the fentry deadlock's symbol: most hazards have something to say.
	for _, m := range probe.Mechanisms() {
		invs = append(invs, invocation{args: []string{"check", "--release", "6.1.0-9-amd64", "--proc-version",
			"Linux version 6.1.0-9-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian 6.1.27-1 (2023-05-08)",
			"--cpus", "128", "--kallsyms", "testdata/kallsyms-tasks-rcu", "--mechanism", string(m)}})
	}
	if err := os.WriteFile(fleet, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	invs = append(invs,
		invocation{args: []string{"probe"}},
		invocation{args: []string{"plan", opensnoopObject}},
		invocation{args: []string{"check", "--release", "5.4.0-150-generic", "--version-signature", "Ubuntu 5.4.0-150.167-generic 5.4.233", "--cpus", "96"}},
		invocation{args: []string{"check", "--release", "5.5.3", "--mechanism", "fentry", "--force", "fentry-zap-pid-ns-deadlock"}},
		invocation{args: []string{"check", "--release", "6.8.0-53-generic", "--mechanism", "fentry", "--mode", "warn"}},
		invocation{args: []string{"check", "--fleet", fleet}},
		invocation{args: []string{"check", "--fleet", fleet, "--mechanism", "fentry"}},
		invocation{args: []string{"check", "--fleet", "../../probe/testdata/identities.json"}},
		invocation{args: []string{"check", "--fleet", "../../probe/testdata/identities.json", "--mechanism", "kretprobe"}},
		invocation{args: []string{"hazards"}},
		invocation{args: []string{"hazards", "--policy", policy}},
		invocation{args: []string{"policy", "validate", policy}},
		invocation{args: []string{"policy", "validate", bad}},
		invocation{args: []string{"version"}},
		invocation{args: []string{"bugreport", "-o", filepath.Join(dir, "bundle.json")}},
	)
	for _, h := range hazards.Builtin().Hazards() {
		invs = append(invs, invocation{args: []string{"hazards", string(h.ID)}})
	}
	invs = append(invs, invocation{args: []string{"help"}, noJSON: true})
	for _, c := range newApp(nil, nil).rootCommand().Commands() {
		invs = append(invs, invocation{args: []string{"help", c.Name()}, noJSON: true})
		for _, sub := range c.Commands() {
			invs = append(invs, invocation{args: []string{"help", c.Name(), sub.Name()}, noJSON: true})
		}
	}
	return invs
}

func (inv invocation) run(t *testing.T, extra ...string) result {
	t.Helper()
	args := append(append([]string(nil), inv.args...), extra...)
	if inv.host != nil {
		return runWith(t, inv.host, args...)
	}
	return runCLI(t, args...)
}

// TestEveryCommandFits80Columns runs every command on the guest fixtures,
// this host and the catalog: without -o wide no line of output exceeds 80
// columns; --json always prints one JSON object with schema_version 1.
// Diagnostics on stderr stay one whole line each.
func TestEveryCommandFits80Columns(t *testing.T) {
	longest := 0
	wideSeen := map[string]bool{}
	for _, inv := range everyCommand(t) {
		name := strings.Join(inv.args, " ")
		r := inv.run(t)
		if r.code == exitUsage {
			t.Errorf("%s: exit 2: %s", name, r.stderr)
			continue
		}
		// stdout fits; stderr holds diagnostics, one line each, whole
		// (an error names the file, line and key; it is not cut).
		for _, l := range strings.Split(r.stdout, "\n") {
			n := utf8.RuneCountInString(l)
			longest = max(longest, n)
			if n > width {
				t.Errorf("%s: %d columns: %q", name, n, l)
			}
		}
		for _, l := range strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n") {
			if l != "" && !strings.HasPrefix(l, "safebpf ") {
				t.Errorf("%s: stderr line is not a diagnostic: %q", name, l)
			}
		}
		if inv.noJSON {
			continue
		}
		// -o wide once per command (its lines may be long, so only the
		// exit status is checked; TestWideIsWider checks the content).
		if cmd := inv.args[0]; !wideSeen[cmd] && cmd != "bugreport" { // bugreport's -o is the bundle's file
			wideSeen[cmd] = true
			if wide := inv.run(t, "-o", "wide"); wide.code != r.code {
				t.Errorf("%s -o wide: exit %d, default %d: %s", name, wide.code, r.code, wide.stderr)
			}
		}
		j := inv.run(t, "--json")
		var doc map[string]any
		if err := json.Unmarshal([]byte(j.stdout), &doc); err != nil {
			t.Errorf("%s --json: not one JSON object: %v\n%s", name, err, j.stdout)
			continue
		}
		if doc["schema_version"] != float64(schemaVersion) {
			t.Errorf("%s --json: schema_version %v", name, doc["schema_version"])
		}
		if j.code != r.code {
			t.Errorf("%s --json: exit %d, default %d", name, j.code, r.code)
		}
	}
	t.Logf("longest line without -o wide: %d columns", longest)
}

// TestWideIsWider: -o wide prints the text the default truncates.
func TestWideIsWider(t *testing.T) {
	k := fixtures.GuestFixtures(t, "../..")["debian-6.1"].Kernel
	def := runWith(t, &k, "probe")
	wide := runWith(t, &k, "probe", "-o", "wide")
	longest := 0
	for _, l := range strings.Split(wide.stdout, "\n") {
		longest = max(longest, utf8.RuneCountInString(l))
	}
	if longest <= width || len(wide.stdout) <= len(def.stdout) {
		t.Errorf("-o wide: longest line %d, %d bytes against %d", longest, len(wide.stdout), len(def.stdout))
	}
	for _, want := range []string{"AVAILABILITY", "Hazard verdicts", "tasks_rcu_exit_srcu present in kallsyms"} {
		if !strings.Contains(wide.stdout, want) {
			t.Errorf("-o wide lacks %q", want)
		}
	}
}
