package hazards

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/safebpf/safebpf/internal/testutil"
	"github.com/safebpf/safebpf/internal/trust"
	"github.com/safebpf/safebpf/probe"
)

const examplePolicy = "../examples/policy/policy.yaml"

func TestParsePolicyExample(t *testing.T) {
	data, err := os.ReadFile(examplePolicy)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePolicy("policy.yaml", data)
	if err != nil {
		t.Fatalf("ParsePolicy: %v", err)
	}
	want := &Policy{
		APIVersion: "safebpf/v1",
		Mode:       Enforce,
		Force:      []ID{"uprobe-mmap-lock-stall"},
		Hazards: map[ID]Override{
			"kretprobe-contention": {MinCPUs: 32, Params: Params{MaxActive: 1024, MaxActiveCeiling: 2048}},
			"x86-text-poke-race":   {Action: ActionWarn},
		},
		Kernels: []KernelAssertion{{
			Release: `^6\.1\.0-[0-9]+-cloud-amd64$`,
			Fixed:   []ID{"fentry-zap-pid-ns-deadlock"},
			Reason:  "our vendor backported 1612160b9127 (ticket OPS-1234)",
		}},
		Rules: []Hazard{{
			ID:         "acme-vendor-kprobe-oops",
			Title:      "kprobes oops on our vendor's 5.15 build",
			Summary:    "Vendor kernels 5.15.0-1050 to -1059 oops when kprobes are detached under load.",
			References: []Reference{{Link: "https://example.com/tickets/OPS-987", Note: "internal incident report"}},
			Mechanisms: []probe.Mechanism{probe.Kprobe, probe.Kretprobe},
			Arch:       []string{"amd64"},
			Distros: []DistroRange{{
				Distro: "ubuntu", Upstream: "~> 5.15.0", Build: ">= 1050, < 1060",
				Verdict: Affected, Reason: "vendor build range from the incident report",
			}},
			Action: ActionRefuse,
		}},
		Uprobes: UprobePacing{Interval: Duration(25 * time.Millisecond), Concurrency: 2, Batch: 20},
	}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("parsed example (-want +got):\n%s", diff)
	}
	if !p.Forces("uprobe-mmap-lock-stall") || p.Forces("x86-text-poke-race") || p.EffectiveMode() != Enforce {
		t.Errorf("Forces/EffectiveMode disagree with the file")
	}
}

func TestParsePolicyJSON(t *testing.T) {
	p, err := ParsePolicy("p.json", []byte(`{"apiVersion": "safebpf/v1", "mode": "audit",
  "force": ["all"], "uprobes": {"interval": "5ms"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if p.Mode != Audit || !p.Forces("kretprobe-contention") || p.Uprobes.Interval != Duration(5*time.Millisecond) {
		t.Errorf("got %+v", p)
	}
	_, err = ParsePolicy("p.json", []byte(`{"apiVersion": "safebpf/v1",
  "mode": 3}`))
	checkPolicyError(t, err, 2, "mode", "want a string, got integer 3")
}

func checkPolicyError(t *testing.T, err error, line int, key, msg string) {
	t.Helper()
	var pe *PolicyError
	if !errors.As(err, &pe) {
		t.Fatalf("got %v (%T), want *PolicyError", err, err)
	}
	if !errors.Is(err, ErrInvalidPolicy) {
		t.Errorf("%v does not match ErrInvalidPolicy", err)
	}
	if pe.Line != line || pe.Key != key || !strings.Contains(pe.Msg, msg) {
		t.Errorf("got line %d key %q msg %q, want line %d key %q msg containing %q", pe.Line, pe.Key, pe.Msg, line, key, msg)
	}
}

func TestParsePolicyErrors(t *testing.T) {
	const head = "apiVersion: safebpf/v1\n"
	for _, tc := range []struct {
		name string
		doc  string
		line int
		key  string
		msg  string
	}{
		{"unknown top-level key", head + "mod: enforce\n", 2, "mod", `unknown key "mod" (known: apiVersion, catalog, force, hazards, kernels, mode, rules, uprobes)`},
		{"unknown nested key", head + "hazards:\n  kretprobe-contention:\n    maxactive: 3\n", 4, "hazards.kretprobe-contention.maxactive", `unknown key "maxactive"`},
		{"bad apiVersion", "apiVersion: safebpf/v2\n", 1, "apiVersion", `unsupported apiVersion "safebpf/v2": want "safebpf/v1"`},
		{"missing apiVersion", "mode: warn\n", 1, "apiVersion", "missing apiVersion"},
		{"wrong type: mode list", head + "mode: [enforce]\n", 2, "mode", "want a string, got a list"},
		{"wrong type: min_cpus string", head + "hazards:\n  kretprobe-contention:\n    min_cpus: many\n", 4, "hazards.kretprobe-contention.min_cpus", `want an integer, got string "many"`},
		{"wrong type: disable", head + "hazards:\n  kretprobe-contention:\n    disable: yes please\n", 4, "hazards.kretprobe-contention.disable", "want true or false"},
		{"wrong type: force scalar", head + "force: x86-text-poke-race\n", 2, "force", "want a list"},
		{"bad mode", head + "mode: loud\n", 2, "mode", `unknown mode "loud"`},
		{"unknown hazard in hazards", head + "\nhazards:\n  foo:\n    disable: true\n", 4, "hazards.foo", `unknown hazard ID "foo" (known: nmi-user-read-deadlock, `},
		{"unknown hazard in force", head + "force:\n  - kretprobe-contention\n  - nope\n", 4, "force[1]", `unknown hazard ID "nope"`},
		{"force ALL", head + "force: [ALL]\n", 2, "force[0]", `"all" must be spelled in lower case`},
		{"unknown hazard in kernels", head + "kernels:\n  - release: '^5\\.'\n    fixed: [bogus]\n", 4, "kernels[0].fixed[0]", `unknown hazard ID "bogus"`},
		{"bad release regexp", head + "kernels:\n  - release: '5.4('\n    fixed: [x86-text-poke-race]\n", 3, "kernels[0].release", "bad regular expression"},
		{"fixed and affected", head + "kernels:\n  - release: x\n    fixed: [x86-text-poke-race]\n    affected: [x86-text-poke-race]\n", 5, "kernels[0].affected[0]", "both fixed and affected"},
		{"bad override action", head + "hazards:\n  x86-text-poke-race:\n    action: ignore\n", 4, "hazards.x86-text-poke-race.action", `unknown action "ignore"`},
		{"maxactive above kernel limit", head + "hazards:\n  kretprobe-contention:\n    params:\n      maxactive: 5000\n", 5, "hazards.kretprobe-contention.params.maxactive", "out of range 0..4096"},
		{"bad duration", head + "uprobes:\n  interval: soon\n", 3, "uprobes.interval", `parse duration "soon"`},
		{"duplicate key", head + "mode: warn\nmode: audit\n", 3, "mode", "duplicate key (first at line 2)"},
		{"yaml syntax", head + "mode: warn\n  force: []\n", 3, "", "parse YAML: mapping values are not allowed"},
		{"empty", "", 0, "", "empty document"},
		{"two documents", head + "---\n" + head, 2, "", "more than one YAML document"},
		{"merge key", head + "hazards:\n  kretprobe-contention:\n    <<: {min_cpus: 2}\n", 4, "hazards.kretprobe-contention", "merge keys (<<) are not supported"},
		{"alias", head + "force: &f [all]\nmode: *f\n", 2, "force", "anchors and aliases"},
		{"rule: bad version constraint", head + rule("x-bug", `affected: [">= 5.4, <<6"]`), 9, "rules[0].affected[0]", `bad version constraint ">= 5.4, <<6"`},
		{"rule: prerelease constraint", head + rule("x-bug", `affected: [">= 5.4-rc1"]`), 9, "rules[0].affected[0]", "prerelease"},
		{"rule: duplicate ID", head + rule("x-bug", "") + strings.TrimPrefix(rule("x-bug", ""), "rules:\n"), 9, "rules[1].id", `duplicate rule ID "x-bug" (first at rules[0])`},
		{"rule: collides with built-in", head + rule("kretprobe-contention", ""), 3, "rules[0].id", "collides with a built-in hazard"},
		{"rule: id not kebab-case", head + rule("X_Bug", ""), 3, "rules[0].id", "must be kebab-case"},
		{"rule: id all", head + rule("all", ""), 3, "rules[0].id", "reserved"},
		{"rule: bad mechanism", head + strings.Replace(rule("x-bug", ""), "[kprobe]", "[kprobes]", 1), 7, "rules[0].mechanisms[0]", `unknown mechanism "kprobes"`},
		{"rule: bad action", head + strings.Replace(rule("x-bug", ""), "action: warn", "action: panic", 1), 8, "rules[0].action", `unknown action "panic"`},
		{"rule: bad verdict", head + rule("x-bug", "distros: [{distro: ubuntu, build: '>= 3', verdict: fixed}]"), 9, "rules[0].distros[0].verdict", `verdict "fixed"`},
		{"rule: bad commit", head + strings.Replace(rule("x-bug", ""), "{link: https://example.com/bug}", "{commit: abc}", 1), 6, "rules[0].references[0].commit", "12 to 40 lower-case hex"},
		{"rule: unknown arch", head + rule("x-bug", "arch: [x86_64]"), 9, "rules[0].arch[0]", `unknown arch "x86_64"`},
		{"rule: unknown key", head + rule("x-bug", "fixed: [\"6.1\"]"), 9, "rules[0].fixed", `unknown key "fixed"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePolicy("policy.yaml", []byte(tc.doc))
			if err == nil {
				t.Fatalf("ParsePolicy accepted:\n%s\ngot %+v", tc.doc, p)
			}
			checkPolicyError(t, err, tc.line, tc.key, tc.msg)
			if tc.line > 0 && !strings.HasPrefix(err.Error(), "policy.yaml:") {
				t.Errorf("error %q does not start with the file name", err)
			}
		})
	}
}

// rule returns a "rules:" list holding one valid user rule, plus extra (a
// YAML line of the rule's mapping, at line 9 counting the head) if given.
func rule(id, extra string) string {
	s := "rules:\n" +
		"  - id: " + id + "\n" +
		"    title: a bug\n" +
		"    summary: a bug we know about\n" +
		"    references: [{link: https://example.com/bug}]\n" +
		"    mechanisms: [kprobe]\n" +
		"    action: warn\n"
	if extra != "" {
		s += "    " + extra + "\n"
	}
	return s
}

func TestPolicyErrorFormat(t *testing.T) {
	_, err := ParsePolicy("policy.yaml", []byte("apiVersion: safebpf/v1\nhazards:\n  foo: {}\n"))
	want := `policy.yaml:3: hazards.foo: unknown hazard ID "foo" (known: ` + strings.Join(idStrings(ValidIDs()), ", ") + ")"
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
	var ue *UnknownIDError
	if !errors.As(err, &ue) || !errors.Is(err, ErrUnknownHazard) || ue.ID != "foo" {
		t.Errorf("%v does not unwrap to *UnknownIDError for foo", err)
	}
}

func idStrings(ids []ID) []string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = string(id)
	}
	return s
}

func TestLoadPolicyPermissions(t *testing.T) {
	data, err := os.ReadFile(examplePolicy)
	if err != nil {
		t.Fatal(err)
	}
	dir := testutil.TrustedTempDir(t)
	root := trust.Process{EUID: 0, Privileged: true}
	capUser := trust.Process{EUID: uint32(os.Geteuid()), Privileged: true}
	for _, tc := range []struct {
		mode    os.FileMode
		p       trust.Process
		wantErr string
	}{
		{0o644, root, ""},
		{0o600, root, ""},
		{0o664, root, "(owner uid 0, mode 0664) is writable by group;"},
		{0o646, root, "(owner uid 0, mode 0646) is writable by others;"},
		{0o666, capUser, "writable by group and others"}, // CAP_BPF without root: same rule
		{0o666, trust.Process{EUID: 1000}, ""},           // unprivileged: nobody gains privileges through it
	} {
		if tc.p.Privileged && os.Geteuid() != 0 {
			t.Logf("%v %+v: skipped: a trusted directory needs root to create", tc.mode, tc.p)
			continue
		}
		path := filepath.Join(dir, "policy-"+tc.mode.String()+".yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, tc.mode); err != nil {
			t.Fatal(err)
		}
		_, err := loadPolicy(path, tc.p)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%v %+v: %v", tc.mode, tc.p, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "chmod go-w "+path)):
			t.Errorf("%v %+v: got %v, want an error containing %q and the fix", tc.mode, tc.p, err, tc.wantErr)
		case tc.wantErr != "" && (!errors.Is(err, ErrUntrustedFile) || !errors.Is(err, ErrInvalidPolicy)):
			t.Errorf("%v: %v does not match both ErrUntrustedFile and ErrInvalidPolicy", tc.mode, err)
		}
	}
	// The exported entry point applies the check when the test runs as root.
	if os.Geteuid() == 0 {
		path := filepath.Join(dir, "world.yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0o666); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadPolicy(path); err == nil {
			t.Error("LoadPolicy as root accepted a world-writable file")
		}
	}
	if _, err := LoadPolicy(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: got %v, want os.ErrNotExist", err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, make([]byte, maxDocument+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPolicy(big); err == nil || !strings.Contains(err.Error(), "1 MiB limit") {
		t.Errorf("policy over 1 MiB: got %v, want a refusal naming the limit", err)
	}
}

func TestWithPolicy(t *testing.T) {
	data, err := os.ReadFile(examplePolicy)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePolicy("policy.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Builtin().WithPolicy(p)
	if err != nil {
		t.Fatal(err)
	}
	// Overrides.
	h, _ := c.Lookup("kretprobe-contention")
	if h.Requires.MinCPUs != 32 || h.Params.MaxActive != 1024 || h.Params.MaxActiveCeiling != 2048 {
		t.Errorf("kretprobe-contention after overrides: %+v %+v", h.Requires, h.Params)
	}
	if orig, _ := Builtin().Lookup("kretprobe-contention"); orig.Requires.MinCPUs != 64 || orig.Params.MaxActive != 512 {
		t.Errorf("WithPolicy modified the built-in catalog: %+v", orig)
	}
	if h, _ := c.Lookup("x86-text-poke-race"); h.Action != ActionWarn {
		t.Errorf("x86-text-poke-race action = %s, want warn", h.Action)
	}
	k := &probe.Kernel{Release: "5.10.0-30-cloud-amd64", Version: &probe.Version{Major: 5, Minor: 10, Patch: 200, PatchKnown: true}, Arch: "amd64", CPUs: 40}
	f := findingFor(t, c, k, Attachment{Mechanism: probe.Kretprobe}, "kretprobe-contention")
	if f.Verdict != Affected {
		t.Errorf("40 CPUs with min_cpus 32: %+v", f)
	}
	if f := findingFor(t, Builtin(), k, Attachment{Mechanism: probe.Kretprobe}, "kretprobe-contention"); f.Verdict != NotAffected {
		t.Errorf("40 CPUs with the built-in min_cpus 64: %+v", f)
	}

	// Kernel assertion beats the version range and the evidence.
	k61 := &probe.Kernel{Release: "6.1.0-18-cloud-amd64", Version: &probe.Version{Major: 6, Minor: 1, Patch: 76, PatchKnown: true}, Arch: "amd64",
		Kallsyms: probe.Kallsyms{Readable: true, DataSymbols: true, Symbols: map[string]bool{"tasks_rcu_exit_srcu": true}}}
	f = findingFor(t, c, k61, Attachment{Mechanism: probe.Fentry}, "fentry-zap-pid-ns-deadlock")
	if f.Verdict != NotAffected || !strings.Contains(f.Reason, "policy kernel assertion") || !strings.Contains(f.Reason, "OPS-1234") {
		t.Errorf("asserted kernel: %+v", f)
	}
	if f := findingFor(t, Builtin(), k61, Attachment{Mechanism: probe.Fentry}, "fentry-zap-pid-ns-deadlock"); f.Verdict != Affected {
		t.Errorf("built-in on the same kernel: %+v", f)
	}

	// User rule: distro build range.
	ubuntu := func(abi int) *probe.Kernel {
		return &probe.Kernel{Release: "5.15.0-x-aws", VersionSignature: "Ubuntu 5.15.0-x-aws 5.15.150", Arch: "amd64",
			Version: &probe.Version{Major: 5, Minor: 15, Patch: 150, PatchKnown: true}, Distro: probe.Distro{ID: "ubuntu", UbuntuABI: abi}}
	}
	for abi, want := range map[int]Verdict{1049: NotAffected, 1050: Affected, 1059: Affected, 1060: NotAffected, 0: Unknown} {
		f := findingFor(t, c, ubuntu(abi), Attachment{Mechanism: probe.Kprobe}, "acme-vendor-kprobe-oops")
		if f.Verdict != want {
			t.Errorf("user rule on ABI %d: %+v, want %s", abi, f, want)
		}
	}

	// Disable.
	d, err := Builtin().WithPolicy(&Policy{APIVersion: "safebpf/v1", Hazards: map[ID]Override{"uprobe-mmap-lock-stall": {Disable: true}}})
	if err != nil {
		t.Fatal(err)
	}
	f = findingFor(t, d, k, Attachment{Mechanism: probe.Uprobe}, "uprobe-mmap-lock-stall")
	if f.Verdict != NotAffected || !strings.Contains(f.Reason, "disabled by policy") || !d.Disabled("uprobe-mmap-lock-stall") {
		t.Errorf("disabled hazard: %+v", f)
	}

	// Invalid programmatic policies are rejected with the same checks.
	_, err = Builtin().WithPolicy(&Policy{APIVersion: "safebpf/v1", Force: []ID{"nope"}})
	if !errors.Is(err, ErrUnknownHazard) {
		t.Errorf("unknown force ID: got %v", err)
	}
	if same, err := Builtin().WithPolicy(nil); err != nil || same != Builtin() {
		t.Errorf("nil policy: %v", err)
	}
}

func findingFor(t *testing.T, c *Catalog, k *probe.Kernel, a Attachment, id ID) Finding {
	t.Helper()
	for _, f := range c.Evaluate(k, a) {
		if f.ID == id {
			return f
		}
	}
	t.Fatalf("no finding for %s", id)
	return Finding{}
}

// TestOnUnknownOverride: the policy sets what an unknown verdict does, per
// hazard; the finding carries it.
func TestOnUnknownOverride(t *testing.T) {
	p, err := ParsePolicy("p.yaml", []byte("apiVersion: safebpf/v1\nhazards:\n  nmi-user-read-deadlock:\n    on_unknown: warn\n"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Builtin().WithPolicy(p)
	if err != nil {
		t.Fatal(err)
	}
	k := &probe.Kernel{Release: "6.1.25", Version: &probe.Version{Major: 6, Minor: 1, Patch: 25, PatchKnown: true}, Arch: "amd64"}
	f := findingFor(t, c, k, Attachment{Mechanism: probe.Kprobe, ReadsUserMemory: true}, "nmi-user-read-deadlock")
	if f.Verdict != Unknown || f.OnUnknown != OnUnknownWarn {
		t.Errorf("kprobe on 6.1.25 with on_unknown warn: %+v", f)
	}
	if f := findingFor(t, Builtin(), k, Attachment{Mechanism: probe.Kprobe, ReadsUserMemory: true}, "nmi-user-read-deadlock"); f.OnUnknown != OnUnknownRefuse {
		t.Errorf("built-in on_unknown: %s, want refuse", f.OnUnknown)
	}
	_, err = ParsePolicy("p.yaml", []byte("apiVersion: safebpf/v1\nhazards:\n  nmi-user-read-deadlock:\n    on_unknown: maybe\n"))
	checkPolicyError(t, err, 4, "hazards.nmi-user-read-deadlock.on_unknown", `unknown on_unknown "maybe" (known: refuse, warn, allow)`)
}

// TestLoadCatalog: an operator loads a newer catalog without rebuilding,
// from the policy's catalog key or SAFEBPF_CATALOG; it is parsed as
// strictly as the built-in one and must be trusted like the policy.
func TestLoadCatalog(t *testing.T) {
	dir := testutil.TrustedTempDir(t)
	exported, err := json.Marshal(Builtin())
	if err != nil {
		t.Fatal(err)
	}
	newer := strings.Replace(string(exported), `"version":"`+Builtin().Version()+`"`, `"version":"2099.1.1"`, 1)
	newer = strings.Replace(newer, `"rules":[`, `"rules":[{"id":"new-bug","title":"a bug found after the build","severity":"crash","references":[{"link":"https://example.com/new-bug","note":"report"}],"mechanisms":["kprobe"],"affected":[">= 6.1"],"action":"refuse"},`, 1)
	catPath := filepath.Join(dir, "catalog.json")
	if err := os.WriteFile(catPath, []byte(newer), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := LoadCatalog(catPath)
	if err != nil {
		t.Fatalf("LoadCatalog: %v", err)
	}
	if c.Version() != "2099.1.1" || c.IDs()[0] != "new-bug" || len(c.IDs()) != len(Builtin().IDs())+1 {
		t.Errorf("loaded catalog %s %v", c.Version(), c.IDs())
	}

	// A policy names it (relative to the policy file) and may refer to
	// the new hazard.
	polPath := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(polPath, []byte("apiVersion: safebpf/v1\ncatalog: catalog.json\nforce: [new-bug]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvCatalog, "")
	p, err := LoadPolicy(polPath)
	if err != nil {
		t.Fatalf("LoadPolicy: %v", err)
	}
	if p.Catalog != catPath {
		t.Errorf("policy catalog = %q, want the absolute %q", p.Catalog, catPath)
	}
	base, err := CatalogFor(p)
	if err != nil || base.Version() != "2099.1.1" {
		t.Fatalf("CatalogFor = %v, %v", base.Version(), err)
	}
	if _, err := base.WithPolicy(p); err != nil {
		t.Errorf("policy does not apply to its own catalog: %v", err)
	}
	if _, err := ParsePolicy("policy.yaml", []byte("apiVersion: safebpf/v1\ncatalog: catalog.json\n")); err == nil || !strings.Contains(err.Error(), "LoadPolicy") {
		t.Errorf("ParsePolicy with a catalog key = %v, want an error pointing at LoadPolicy", err)
	}
	if b, err := CatalogFor(nil); err != nil || b != Builtin() {
		t.Errorf("CatalogFor(nil) = %v, %v; want the built-in catalog", b, err)
	}

	// SAFEBPF_CATALOG wins over the policy's key and applies without one.
	envPath := filepath.Join(dir, "env.json")
	if err := os.WriteFile(envPath, []byte(strings.Replace(string(exported), `"version":"`+Builtin().Version()+`"`, `"version":"2098.1.1"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvCatalog, envPath)
	if b, err := CatalogFor(nil); err != nil || b.Version() != "2098.1.1" {
		t.Errorf("CatalogFor(nil) with %s = %v, %v", EnvCatalog, b.Version(), err)
	}
	if _, err := LoadPolicy(polPath); !errors.Is(err, ErrUnknownHazard) {
		t.Errorf("policy forcing new-bug against the env catalog = %v, want an unknown hazard", err)
	}
	t.Setenv(EnvCatalog, filepath.Join(dir, "missing.json"))
	if _, err := CatalogFor(nil); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), EnvCatalog) {
		t.Errorf("missing env catalog: %v", err)
	}
	t.Setenv(EnvCatalog, "")

	// As strict as the built-in catalog.
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: safebpf/v1\nversion: 2099.1.1\nrules:\n  - id: x\n    title: t\n    mechanisms: [kprobe]\n    action: refuse\n    affected: ['>= 6.1']\n    evidance: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadCatalog(bad)
	checkPolicyError(t, err, 9, "rules[0].evidance", `unknown key "evidance"`)
	if err := os.WriteFile(polPath, []byte("apiVersion: safebpf/v1\ncatalog: bad.yaml\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPolicy(polPath); err == nil || !strings.Contains(err.Error(), "policy.yaml:2: catalog:") || !strings.Contains(err.Error(), "evidance") {
		t.Errorf("policy naming a bad catalog: %v", err)
	}

	// Trusted like the policy: while privileged, a group-writable catalog
	// is refused, and a policy naming one fails.
	if err := os.Chmod(catPath, 0o664); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		root := trust.Process{EUID: 0, Privileged: true}
		if _, err := loadCatalog(catPath, root); !errors.Is(err, ErrUntrustedFile) || !strings.Contains(err.Error(), "writable by group") {
			t.Errorf("group-writable catalog as root: %v", err)
		}
		if err := os.WriteFile(polPath, []byte("apiVersion: safebpf/v1\ncatalog: catalog.json\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := loadPolicy(polPath, root); !errors.Is(err, ErrUntrustedFile) {
			t.Errorf("policy naming a group-writable catalog, as root: %v", err)
		}
	}
	if _, err := loadCatalog(dir, trust.Process{EUID: uint32(os.Geteuid())}); err == nil {
		t.Errorf("a directory loaded as a catalog")
	}
}
