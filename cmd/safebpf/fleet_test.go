package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fleetOut is `check --fleet --json` as a script reads it.
type fleetOut struct {
	SchemaVersion int `json:"schema_version"`
	Summary       struct {
		Kernels int            `json:"kernels"`
		Hazards map[string]int `json:"hazards"`
	} `json:"summary"`
	Kernels []struct {
		Name          string        `json:"name"`
		At            string        `json:"at"`
		Release       string        `json:"release"`
		Version       *string       `json:"version"`
		VersionSource string        `json:"version_source"`
		Decisions     []decisionOut `json:"decisions"`
		Summary       struct {
			Hazards []string `json:"hazards_applying"`
		} `json:"summary"`
	} `json:"kernels"`
}

// identity is the part of probe/testdata/identities.json the test reads:
// real machines' release strings with the version they run.
type identity struct {
	Name        string `json:"name"`
	Release     string `json:"release"`
	WantVersion string `json:"want_version"`
	WantSource  string `json:"want_source"`
}

// TestFleet runs the fleet check over the kernels captured in the
// kernel-matrix guests (JSON lines of 'probe --json') and the real
// machines' identities of probe/testdata/identities.json (one JSON array,
// described kernels), in one file.
func TestFleet(t *testing.T) {
	b, err := os.ReadFile("../../probe/testdata/identities.json")
	if err != nil {
		t.Fatal(err)
	}
	var ids []identity
	if err := json.Unmarshal(b, &ids); err != nil {
		t.Fatal(err)
	}
	guests := guestFixtures(t)
	names := make([]string, 0, len(guests))
	for n := range guests {
		names = append(names, n)
	}
	slices.Sort(names)
	var lines []string
	for _, n := range names {
		raw, err := os.ReadFile(guests[n])
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		c, _ := json.Marshal(v)
		lines = append(lines, string(c))
	}
	fleet := filepath.Join(t.TempDir(), "fleet.jsonl")
	// A blank line, then the identities' array spread over many lines.
	text := strings.Join(lines, "\n") + "\n\n" + string(b)
	if err := os.WriteFile(fleet, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}

	r := runCLI(t, "check", "--fleet", fleet, "--json", "--mechanism", "fentry")
	var out fleetOut
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, r.stderr)
	}
	if want := len(names) + len(ids); len(out.Kernels) != want || out.Summary.Kernels != want {
		t.Fatalf("%d kernels (summary %d), want %d", len(out.Kernels), out.Summary.Kernels, want)
	}
	// The guests, in file order, each on its line; what they decided when
	// attaching for real in the kernel matrix: 5.10 (no
	// tasks_rcu_exit_srcu) keeps fentry, 6.1 moves to kprobe.
	for i, n := range names {
		k := out.Kernels[i]
		if k.At != fmt.Sprintf("%s:%d", fleet, i+1) {
			t.Errorf("%s at %q, want line %d", n, k.At, i+1)
		}
		want := map[string]string{"debian-5.10": "fentry", "debian-6.1": "kprobe"}[n]
		if want != "" && k.Decisions[0].Chosen != want {
			t.Errorf("%s: fentry → %q, the guest attached %s", n, k.Decisions[0].Chosen, want)
		}
	}
	// The identities: the version each real machine runs.
	for i, id := range ids {
		k := out.Kernels[len(names)+i]
		if k.Name != id.Name || k.Release != id.Release {
			t.Errorf("kernel %d is %s (%s), want %s", len(names)+i, k.Name, k.Release, id.Name)
			continue
		}
		var got string
		if k.Version != nil {
			got = *k.Version
		}
		if got != id.WantVersion || k.VersionSource != id.WantSource {
			t.Errorf("%s: version %q from %s, want %q from %s", id.Name, got, k.VersionSource, id.WantVersion, id.WantSource)
		}
		if want := fmt.Sprintf("%s:%d[%d]", fleet, len(lines)+2, i); k.At != want {
			t.Errorf("%s at %q, want %q", id.Name, k.At, want)
			break
		}
	}
	// A row per kernel, and the same decisions as checking each kernel
	// alone.
	human := runCLI(t, "check", "--fleet", fleet, "--mechanism", "fentry")
	for _, k := range out.Kernels {
		prefix := string([]rune(k.Name)[:min(12, len([]rune(k.Name)))])
		if !strings.Contains(human.stdout, "\n"+prefix) {
			t.Errorf("no row for %s", k.Name)
		}
	}
	for i, n := range names {
		single := decodeCheck(t, runCLI(t, "check", "--json", "--kernel", guests[n], "--mechanism", "fentry"))
		if diff := cmp.Diff(*single.Decision, out.Kernels[i].Decisions[0]); diff != "" {
			t.Errorf("%s: fleet and check --kernel differ (-check +fleet):\n%s", n, diff)
		}
	}
	if human.code != r.code {
		t.Errorf("exit %d human, %d JSON", human.code, r.code)
	}
	// Every mechanism: one decision per mechanism per kernel.
	r = runCLI(t, "check", "--fleet", fleet, "--json")
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatal(err)
	}
	for _, k := range out.Kernels {
		if len(k.Decisions) != 18 {
			t.Errorf("%s: %d decisions", k.Name, len(k.Decisions))
		}
	}
	if out.Summary.Hazards["fentry-zap-pid-ns-deadlock"] == 0 || out.Summary.Hazards["x86-text-poke-race"] == 0 {
		t.Errorf("hazards across the fleet: %v", out.Summary.Hazards)
	}
}

func TestFleetErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name, text string
		want       []string
	}{
		{"empty", "\n\n", []string{"no kernel"}},
		{"broken JSON on line 2", `{"release":"6.1.0"}` + "\n{\"release\":\n", []string{"unexpected EOF"}},
		{"unparseable release", `{"release":"6.1.0"}` + "\n" + `{"release":"banana"}`, []string{":2:", "banana"}},
		{"not an object", `{"release":"6.1.0"}` + "\n42\n", []string{":2:", "want a JSON object"}},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
		if err := os.WriteFile(p, []byte(tt.text), 0o600); err != nil {
			t.Fatal(err)
		}
		r := runCLI(t, "check", "--fleet", p)
		if r.code != exitUsage {
			t.Errorf("%s: exit %d, want 2", tt.name, r.code)
			continue
		}
		oneLineErr(t, r, append([]string{"--fleet", p}, tt.want...)...)
	}
}
