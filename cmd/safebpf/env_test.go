package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/internal/testutil"
	"github.com/safebpf/safebpf/loader"
)

// TestEnvironmentAsForAgents: the command honours SAFEBPF_FORCE,
// SAFEBPF_POLICY and SAFEBPF_HOST_ROOT exactly as an agent resolving them
// with loader.Flags does, a flag beating its variable (issue 12, 9).
func TestEnvironmentAsForAgents(t *testing.T) {
	t.Setenv(loader.EnvForce, "")
	t.Setenv(loader.EnvPolicy, "")
	t.Setenv(loader.EnvHostRoot, "")
	kprobe55 := []string{"check", "--json", "--release", "5.5.3", "--mechanism", "kprobe"}

	t.Setenv(loader.EnvForce, "x86-text-poke-race")
	var agent loader.Options
	if err := (*loader.Flags)(nil).Apply(&agent); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, kprobe55...)
	c := decodeCheck(t, r)
	if r.code != 0 || c.Decision.Action != "warn" || !slices.Equal(c.Decision.Forced, []string{"x86-text-poke-race"}) {
		t.Errorf("SAFEBPF_FORCE: exit %d, decision %+v", r.code, c.Decision)
	}
	if !slices.Equal(agent.Force, []hazards.ID{"x86-text-poke-race"}) {
		t.Errorf("the agent resolved %v from the same environment", agent.Force)
	}
	// The flag beats the variable.
	r = runCLI(t, append(kprobe55, "--force", "uprobe-mmap-lock-stall")...)
	if c := decodeCheck(t, r); r.code != exitRefused || c.Decision.Action != "refuse" {
		t.Errorf("--force beats SAFEBPF_FORCE: exit %d, decision %+v", r.code, c.Decision)
	}

	// Version skew: an ID this release does not know warns and forces
	// nothing; the known one still forces.
	t.Setenv(loader.EnvForce, "x86-text-poke-race,a-hazard-from-a-newer-release")
	r = runCLI(t, kprobe55...)
	var doc struct {
		Decision decisionOut `json:"decision"`
		Policy   struct {
			Ignored []string `json:"ignored_force"`
			Force   []string `json:"force"`
		} `json:"policy"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	if r.code != 0 || doc.Decision.Action != "warn" || !slices.Equal(doc.Policy.Ignored, []string{"a-hazard-from-a-newer-release"}) {
		t.Errorf("unknown ID from the environment: exit %d, %+v, stderr %q", r.code, doc, r.stderr)
	}
	oneLineErr(t, r, "warning", loader.EnvForce, `"a-hazard-from-a-newer-release"`, "forces nothing")
	// A malformed ID is still an error, naming where it came from.
	t.Setenv(loader.EnvForce, "X86-TEXT-POKE-RACE")
	r = runCLI(t, kprobe55...)
	if r.code != exitUsage {
		t.Errorf("malformed SAFEBPF_FORCE: exit %d, want 2", r.code)
	}
	oneLineErr(t, r, loader.EnvForce, "X86-TEXT-POKE-RACE")
	t.Setenv(loader.EnvForce, "")

	// SAFEBPF_POLICY: a policy disabling the fentry deadlock keeps fentry.
	dir := testutil.TrustedTempDir(t) // as root, policies below /tmp are refused
	disable := filepath.Join(dir, "disable.yaml")
	if err := os.WriteFile(disable, []byte("apiVersion: safebpf/v1\nhazards:\n  fentry-zap-pid-ns-deadlock:\n    disable: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.yaml")
	if err := os.WriteFile(empty, []byte("apiVersion: safebpf/v1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fentry68 := []string{"check", "--json", "--release", "6.8.0-53-generic", "--version-signature", "Ubuntu 6.8.0-53.55-generic 6.8.12", "--mechanism", "fentry"}
	t.Setenv(loader.EnvPolicy, disable)
	if c := decodeCheck(t, runCLI(t, fentry68...)); c.Decision.Chosen != "fentry" {
		t.Errorf("SAFEBPF_POLICY: chose %q, want fentry (hazard disabled)", c.Decision.Chosen)
	}
	if c := decodeCheck(t, runCLI(t, append(fentry68, "--policy", empty)...)); c.Decision.Chosen != "kprobe" {
		t.Errorf("--policy beats SAFEBPF_POLICY: chose %q, want kprobe", c.Decision.Chosen)
	}
	t.Setenv(loader.EnvPolicy, filepath.Join(dir, "missing.yaml"))
	r = runCLI(t, fentry68...)
	if r.code != exitUsage {
		t.Errorf("missing SAFEBPF_POLICY: exit %d, want 2", r.code)
	}
	oneLineErr(t, r, loader.EnvPolicy, "missing.yaml")
	t.Setenv(loader.EnvPolicy, "")

	// SAFEBPF_HOST_ROOT: the host's os-release, this kernel.
	root := filepath.Join(dir, "host")
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/os-release"), []byte("ID=the-hosts-distro\nVERSION_ID=42\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(loader.EnvHostRoot, root)
	r = runCLI(t, "probe", "--json")
	var pr struct {
		HostRoot string `json:"host_root"`
		Kernel   struct {
			Distro struct {
				ID string `json:"id"`
			} `json:"distro"`
		} `json:"kernel"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &pr); err != nil || pr.Kernel.Distro.ID != "the-hosts-distro" || pr.HostRoot != root {
		t.Errorf("SAFEBPF_HOST_ROOT: %v %+v; stderr %s", err, pr, r.stderr)
	}
	r = runCLI(t, "probe", "--json", "--host-root", "/")
	if err := json.Unmarshal([]byte(r.stdout), &pr); err != nil || pr.Kernel.Distro.ID == "the-hosts-distro" {
		t.Errorf("--host-root beats SAFEBPF_HOST_ROOT: %v %+v", err, pr)
	}
	t.Setenv(loader.EnvHostRoot, filepath.Join(dir, "nowhere"))
	r = runCLI(t, "probe")
	if r.code != exitUsage {
		t.Errorf("missing SAFEBPF_HOST_ROOT: exit %d, want 2", r.code)
	}
	oneLineErr(t, r, loader.EnvHostRoot, "nowhere")
	if !strings.Contains(r.stderr, "no such file") {
		t.Errorf("stderr %q", r.stderr)
	}
}
