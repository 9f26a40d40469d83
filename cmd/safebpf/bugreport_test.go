package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/google/go-cmp/cmp"

	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/internal/testutil"
	"github.com/safebpf/safebpf/internal/testutil/fixtures"
	"github.com/safebpf/safebpf/loader"
)

// bundle is the part of a support bundle the tests read.
type bundle struct {
	SchemaVersion int               `json:"schema_version"`
	Kind          string            `json:"kind"`
	Version       versionJSON       `json:"version"`
	Environment   map[string]string `json:"environment"`
	Policy        struct {
		Source  string          `json:"source"`
		Path    string          `json:"path"`
		Error   string          `json:"error"`
		Content *hazards.Policy `json:"content"`
	} `json:"policy"`
	Probe *struct {
		Kernel struct {
			Release string `json:"release"`
		} `json:"kernel"`
		Decisions []decisionOut `json:"decisions"`
	} `json:"probe"`
	Decisions struct {
		Source  string            `json:"source"`
		Records []json.RawMessage `json:"records"`
		Lines   int               `json:"lines_read"`
	} `json:"decisions"`
}

func readBundle(t *testing.T, path string) bundle {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var bu bundle
	if err := json.Unmarshal(b, &bu); err != nil {
		t.Fatalf("bundle is not JSON: %v", err)
	}
	return bu
}

// TestBugreportDecisions runs a real agent's loader (audit mode: it plans
// the opensnoop object on the Debian 6.1 guest's kernel without loading
// anything) logging JSON as an agent does, and checks that the bundle
// carries exactly the safebpf records of that log.
func TestBugreportDecisions(t *testing.T) {
	t.Setenv(loader.EnvPolicy, "")
	t.Setenv(loader.EnvForce, "")
	t.Setenv(loader.EnvHostRoot, "")
	dir := t.TempDir()
	logPath := filepath.Join(dir, "agent.log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, `{"time":"2025-01-01T00:00:00Z","level":"INFO","msg":"agent starting"}`)
	k := fixtures.GuestFixtures(t, "../..")["debian-6.1"].Kernel
	l, err := loader.New(&loader.Options{
		Kernel: &k, Mode: hazards.Audit,
		Force:  []hazards.ID{"a-hazard-from-a-newer-release"},
		Logger: slog.New(slog.NewJSONHandler(f, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	spec, err := ebpf.LoadCollectionSpec(opensnoopObject)
	if err != nil {
		t.Fatal(err)
	}
	coll, err := l.LoadAndAttach(spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil { // drains the log queue
		t.Fatal(err)
	}
	fmt.Fprintln(f, `time=2025-01-01T00:00:01Z level=WARN msg="safebpf decision" requested=fentry chosen=kprobe`)
	fmt.Fprintln(f, "not a log line")
	f.Close()

	// What the agent logged, read independently.
	raw, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	var want []any
	decisions := 0
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil {
			if msg, _ := rec["msg"].(string); strings.HasPrefix(msg, "safebpf") {
				want = append(want, rec)
				if msg == "safebpf decision" {
					decisions++
					if rec["requested"] != "fentry" || rec["chosen"] != string(coll.Decisions[0].Chosen) {
						t.Errorf("logged decision %v, the loader decided %s", rec, loader.Explain(coll.Decisions[0]))
					}
				}
			}
		} else if strings.Contains(line, `msg="safebpf`) {
			want = append(want, line)
		}
	}
	if decisions == 0 || coll.Decisions[0].Chosen != "kprobe" {
		t.Fatalf("the agent logged %d decisions, decided %v", decisions, coll.Decisions)
	}

	out := filepath.Join(dir, "bundle.json")
	r := runCLI(t, "bugreport", "--decisions", logPath, "-o", out)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if summary := strings.Join(strings.Fields(r.stdout), " "); !strings.HasPrefix(summary, "Wrote "+out+" (") ||
		!strings.Contains(summary, fmt.Sprintf("%d safebpf records from %s", len(want), logPath)) {
		t.Errorf("summary %q", r.stdout)
	}
	bu := readBundle(t, out)
	var got []any
	for _, rec := range bu.Decisions.Records {
		var v any
		if err := json.Unmarshal(rec, &v); err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("bundle records differ from the agent's log (-log +bundle):\n%s", diff)
	}
	if !strings.Contains(string(bu.Decisions.Records[0]), "a-hazard-from-a-newer-release") {
		t.Errorf("the ignored force warning is not the first record: %s", bu.Decisions.Records[0])
	}
	host, err := detectHost(t.Context(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if bu.SchemaVersion != 1 || bu.Kind != "safebpf-bugreport" || bu.Probe == nil || bu.Probe.Kernel.Release != host.Release ||
		len(bu.Probe.Decisions) != 18 || bu.Version.Catalog.Hazards != len(hazards.Builtin().Hazards()) || bu.Version.GoVersion != runtime.Version() {
		t.Errorf("bundle %+v", bu)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("bundle mode %v, %v; want 0600", fi.Mode(), err)
	}

	// From stdin ("kubectl logs POD | safebpf bugreport --decisions -").
	var stdout, stderr bytes.Buffer
	a := newApp(&stdout, &stderr)
	a.stdin = bytes.NewReader(raw)
	if code := a.run([]string{"bugreport", "--decisions", "-", "-o", "-"}); code != 0 {
		t.Fatalf("stdin: exit %d: %s", code, stderr.String())
	}
	var fromStdin bundle
	if err := json.Unmarshal(stdout.Bytes(), &fromStdin); err != nil || len(fromStdin.Decisions.Records) != len(want) || fromStdin.Decisions.Source != "-" {
		t.Errorf("stdin: %v, %d records from %q", err, len(fromStdin.Decisions.Records), fromStdin.Decisions.Source)
	}
}

// TestBugreportRecordsBadPolicy: the bundle is most needed when something
// is wrong; an invalid SAFEBPF_POLICY is recorded with its source, the
// probe still runs and the command succeeds.
func TestBugreportRecordsBadPolicy(t *testing.T) {
	t.Setenv(loader.EnvForce, "")
	t.Setenv(loader.EnvHostRoot, "")
	dir := testutil.TrustedTempDir(t) // as root, policies below /tmp are refused
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: safebpf/v1\nmodee: warn\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(loader.EnvPolicy, bad)
	out := filepath.Join(dir, "bundle.json")
	r := runCLI(t, "bugreport", "-o", out, "--json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var res bugreportResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res.File != out || !res.Probed || res.PolicySource != loader.EnvPolicy {
		t.Errorf("result %+v, %v", res, err)
	}
	bu := readBundle(t, out)
	if bu.Policy.Source != loader.EnvPolicy || bu.Policy.Path != bad || !strings.Contains(bu.Policy.Error, "modee") || bu.Probe == nil {
		t.Errorf("policy %+v, probed %v", bu.Policy, bu.Probe != nil)
	}
	if bu.Environment[loader.EnvPolicy] != bad {
		t.Errorf("environment %v", bu.Environment)
	}

	// A valid policy is recorded with its content.
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte("apiVersion: safebpf/v1\nmode: warn\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, "bugreport", "-o", out, "--policy", good)
	if bu := readBundle(t, out); r.code != 0 || bu.Policy.Source != "--policy" || bu.Policy.Content == nil || bu.Policy.Content.Mode != hazards.Warn {
		t.Errorf("exit %d, policy %+v", r.code, bu.Policy)
	}
}

// TestBugreportLogTail: of a log larger than the limit, the newest part is
// read (a long-lived agent's newest decisions are at its end), starting at
// a whole line.
func TestBugreportLogTail(t *testing.T) {
	var log strings.Builder
	for i := range 50 {
		fmt.Fprintf(&log, `{"level":"WARN","msg":"safebpf decision","requested":"fentry","n":%d}`+"\n", i)
	}
	path := filepath.Join(t.TempDir(), "agent.log")
	if err := os.WriteFile(path, []byte(log.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	old := maxLogSize
	maxLogSize = int64(log.Len() / 5) // about ten lines
	defer func() { maxLogSize = old }()
	d, err := readDecisions(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(d.Records); n < 8 || n > 10 || !strings.Contains(d.Note, "last") {
		t.Fatalf("%d records, note %q", n, d.Note)
	}
	for i, rec := range d.Records {
		var r struct{ N int }
		if err := json.Unmarshal(rec, &r); err != nil {
			t.Fatalf("record %d is not whole: %s", i, rec)
		}
		if want := 50 - len(d.Records) + i; r.N != want {
			t.Errorf("record %d is line %d, want %d", i, r.N, want)
		}
	}
}
