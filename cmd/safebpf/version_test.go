package main

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"

	"github.com/safebpf/safebpf/hazards"
)

// TestVersion: the module version and Go toolchain from the build, the
// catalog's size and a digest that tells catalogs apart.
func TestVersion(t *testing.T) {
	r := runCLI(t, "version", "--json")
	var v versionJSON
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || r.code != 0 {
		t.Fatalf("exit %d, %v", r.code, err)
	}
	if v.SchemaVersion != 1 || v.GoVersion != runtime.Version() || v.Version == "" || v.Catalog.Hazards != len(hazards.Builtin().Hazards()) ||
		!strings.HasPrefix(v.Catalog.Digest, "sha256:") || len(v.Catalog.Digest) != len("sha256:")+64 {
		t.Errorf("version %+v", v)
	}
	if again := catalogInfo(hazards.Builtin()); again != v.Catalog {
		t.Errorf("digest not stable: %+v then %+v", v.Catalog, again)
	}
	human := runCLI(t, "version")
	if !strings.HasPrefix(human.stdout, "safebpf "+v.Version+" ("+runtime.Version()) {
		t.Errorf("version %q", human.stdout)
	}
}

// TestCompletion: cobra's shell completion, for every shell.
func TestCompletion(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish", "powershell"} {
		r := runCLI(t, "completion", sh)
		if r.code != 0 || !strings.Contains(r.stdout, "safebpf") {
			t.Errorf("completion %s: exit %d, %d bytes: %s", sh, r.code, len(r.stdout), r.stderr)
		}
	}
	// Hazard IDs complete.
	r := runCLI(t, "__complete", "hazards", "fentry")
	if !strings.Contains(r.stdout, "fentry-zap-pid-ns-deadlock") {
		t.Errorf("completion of hazard IDs: %q", r.stdout)
	}
	r = runCLI(t, "__complete", "check", "--mechanism", "kret")
	if !strings.Contains(r.stdout, "kretprobe-multi") {
		t.Errorf("completion of mechanisms: %q", r.stdout)
	}
}
