package hazards

import (
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/safebpf/safebpf/probe"
)

// TestBuiltinCatalog walks every built-in entry so that a typo in
// catalog.yaml fails here rather than in a user's process.
func TestBuiltinCatalog(t *testing.T) {
	c, err := ParseCatalog("catalog.yaml", catalogYAML)
	if err != nil {
		t.Fatalf("parse built-in catalog: %v", err)
	}
	wantIDs := []ID{
		"nmi-user-read-deadlock", "nmi-user-stack-deadlock", "x86-text-poke-race", "fentry-zap-pid-ns-deadlock",
		"fexit-sleeping-detach-crash", "fentry-tail-call-break",
		"kretprobe-contention", "uprobe-mmap-lock-stall", "uretprobe-seccomp-kill",
	}
	if !versionRE.MatchString(c.Version()) {
		t.Errorf("built-in catalog version %q", c.Version())
	}
	for _, id := range wantIDs {
		if _, ok := c.Lookup(id); !ok {
			t.Errorf("built-in catalog lacks %q", id)
		}
	}
	kebab := regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	hex := regexp.MustCompile(`^[0-9a-f]{12,40}$`)
	seen := map[ID]bool{}
	for i, h := range c.Hazards() {
		if seen[h.ID] {
			t.Errorf("entry %d: duplicate ID %q", i, h.ID)
		}
		seen[h.ID] = true
		if !kebab.MatchString(string(h.ID)) {
			t.Errorf("%s: ID is not kebab-case", h.ID)
		}
		if h.Title == "" || strings.TrimSpace(h.Summary) == "" {
			t.Errorf("%s: missing title or summary", h.ID)
		}
		if len(h.References) == 0 {
			t.Errorf("%s: no references", h.ID)
		}
		commits := 0
		for _, r := range h.References {
			switch {
			case r.Commit != "":
				commits++
				if !hex.MatchString(r.Commit) || r.Subject == "" {
					t.Errorf("%s: reference %+v needs a 12+ hex commit and its subject", h.ID, r)
				}
			case !strings.HasPrefix(r.Link, "https://"):
				t.Errorf("%s: reference %+v has neither commit nor https link", h.ID, r)
			}
			if r.Note == "" {
				t.Errorf("%s: reference %+v says nothing about what it establishes", h.ID, r)
			}
		}
		if commits == 0 {
			t.Errorf("%s: no upstream commit cited", h.ID)
		}
		if len(h.Mechanisms) == 0 {
			t.Errorf("%s: no mechanisms", h.ID)
		}
		for _, m := range h.Mechanisms {
			if !m.Valid() {
				t.Errorf("%s: invalid mechanism %q", h.ID, m)
			}
		}
		if !h.Action.Valid() {
			t.Errorf("%s: invalid action %q", h.ID, h.Action)
		}
		if !h.Severity.Valid() {
			t.Errorf("%s: every built-in hazard needs a severity, got %q", h.ID, h.Severity)
		}
		if len(h.Affected) == 0 {
			t.Errorf("%s: no affected version ranges", h.ID)
		}
		for _, s := range h.Affected {
			if _, err := parseConstraint(s); err != nil {
				t.Errorf("%s: %v", h.ID, err)
			}
		}
		switch h.Action {
		case ActionCap:
			if h.Params.MaxActive <= 0 || h.Params.MaxActiveCeiling < 0 || h.Params.MaxActiveCeiling > MaxActiveLimit {
				t.Errorf("%s: cap needs maxactive and a ceiling <= %d (0: the kernel's), got %+v", h.ID, MaxActiveLimit, h.Params)
			}
		case ActionPace:
			if h.Params.PaceInterval <= 0 || h.Params.PaceConcurrency <= 0 {
				t.Errorf("%s: pace needs interval and concurrency, got %+v", h.ID, h.Params)
			}
		}
	}
	if Builtin() != Builtin() {
		t.Error("Builtin() is not parsed once")
	}
	if got := ValidIDs(); !slices.Equal(got, c.IDs()) {
		t.Errorf("ValidIDs() = %v, want %v", got, c.IDs())
	}
}

// TestBuiltinMechanismCoverage pins which mechanisms each hazard concerns,
// as issue 9 specifies them: the user-memory deadlocks cover both perf
// events and every mechanism that may run in interrupt context (never
// uprobes), the trampoline hazards every trampoline, the text-patching race
// everything that patches kernel text.
func TestBuiltinMechanismCoverage(t *testing.T) {
	irq := []probe.Mechanism{probe.PerfEventHardware, probe.PerfEventSoftware, probe.Kprobe, probe.Kretprobe, probe.KprobeMulti, probe.KretprobeMulti,
		probe.Fentry, probe.Fexit, probe.FmodRet, probe.LSM, probe.Tracepoint, probe.RawTracepoint, probe.TpBTF}
	want := map[ID][]probe.Mechanism{
		"nmi-user-read-deadlock":      irq,
		"nmi-user-stack-deadlock":     irq,
		"x86-text-poke-race":          {probe.Kprobe, probe.Kretprobe, probe.Fentry, probe.Fexit, probe.FmodRet, probe.LSM, probe.Tracepoint, probe.RawTracepoint, probe.TpBTF, probe.KprobeMulti, probe.KretprobeMulti},
		"fentry-zap-pid-ns-deadlock":  {probe.Fentry, probe.Fexit, probe.FmodRet, probe.LSM},
		"fexit-sleeping-detach-crash": {probe.Fexit, probe.FmodRet},
		"fentry-tail-call-break":      {probe.Fentry, probe.Fexit, probe.FmodRet, probe.LSM},
		"kretprobe-contention":        {probe.Kretprobe, probe.KretprobeMulti},
		"uprobe-mmap-lock-stall":      {probe.Uprobe, probe.Uretprobe, probe.UprobeMulti, probe.UretprobeMulti},
		"uretprobe-seccomp-kill":      {probe.Uretprobe, probe.UretprobeMulti},
	}
	for id, ms := range want {
		h, ok := Builtin().Lookup(id)
		if !ok {
			t.Fatalf("missing %s", id)
		}
		a, b := slices.Clone(h.Mechanisms), slices.Clone(ms)
		slices.Sort(a)
		slices.Sort(b)
		if !slices.Equal(a, b) {
			t.Errorf("%s mechanisms = %v, want %v", id, a, b)
		}
	}
	// Every mechanism that patches kernel text is covered by the race;
	// every trampoline by the detach deadlock.
	poke, _ := Builtin().Lookup("x86-text-poke-race")
	zap, _ := Builtin().Lookup("fentry-zap-pid-ns-deadlock")
	for _, m := range probe.Mechanisms() {
		if m.PatchesKernelText() != slices.Contains(poke.Mechanisms, m) {
			t.Errorf("%s: PatchesKernelText %v but x86-text-poke-race coverage %v", m, m.PatchesKernelText(), !m.PatchesKernelText())
		}
		if m.Trampoline() != slices.Contains(zap.Mechanisms, m) {
			t.Errorf("%s: Trampoline %v but fentry-zap-pid-ns-deadlock coverage %v", m, m.Trampoline(), !m.Trampoline())
		}
	}
}

// TestFixedInConsistent holds every fixed_in release against the hazard's
// own ranges: the release itself is not affected, and (for a stable
// sublevel) the one before it is.
func TestFixedInConsistent(t *testing.T) {
	for i, h := range Builtin().Hazards() {
		r := &Builtin().rules[i]
		for _, s := range h.FixedIn {
			var v probe.Version
			if err := v.UnmarshalText([]byte(s)); err != nil {
				t.Fatalf("%s: %v", h.ID, err)
			}
			v.PatchKnown = true
			if got, why := rangeVerdict(r, v); got != NotAffected {
				t.Errorf("%s: fixed_in %s but the ranges say %s (%s)", h.ID, s, got, why)
			}
			if v.Patch > 0 {
				prev := v
				prev.Patch--
				if got, why := rangeVerdict(r, prev); got == NotAffected {
					t.Errorf("%s: fixed_in %s but %s is not affected either (%s)", h.ID, s, prev, why)
				}
			}
		}
	}
}

func probeMechanisms() []probe.Mechanism { return probe.Mechanisms() }

func TestParseCatalogStrict(t *testing.T) {
	for _, tc := range []struct {
		doc, key, msg string
	}{
		{"apiVersion: safebpf/v1\nversion: 2026.12.1\nmode: warn\n", "mode", `unknown key "mode" (known: apiVersion, rules, version)`},
		{"apiVersion: safebpf/v1\nrules: []\n", "version", "missing catalog version"},
		{"apiVersion: safebpf/v1\nversion: \"2.0\"\nrules: []\n", "version", "must be YYYY.MM.N"},
		{"apiVersion: safebpf/v1\nversion: 2026.12.1\nrules:\n  - id: a-b\n    title: t\n    mechanisms: [uprobe]\n    action: warn\n    evidence: [{symbol: foo, call: a -> b, present: affected}]\n", "rules[0].evidence[0]", "exactly one of selftest, call, symbol, btf"},
		{"apiVersion: safebpf/v1\nversion: 2026.12.1\nrules:\n  - id: a-b\n    title: t\n    mechanisms: [uprobe]\n    action: warn\n    evidence: [{call: copy_from_user_nofault, present: affected}]\n", "rules[0].evidence[0].call", "function -> callee"},
		{"apiVersion: safebpf/v1\nversion: 2026.12.1\nrules:\n  - id: a-b\n    title: t\n    mechanisms: [uprobe]\n    action: warn\n    evidence: [{btf: bpf_map, present: affected}]\n", "rules[0].evidence[0].btf", "member path"},
		{"apiVersion: safebpf/v1\nversion: 2026.12.1\nrules:\n  - id: a-b\n    title: t\n    mechanisms: [uprobe]\n    action: warn\n    evidence: [{call: a -> b, data: true, present: affected}]\n", "rules[0].evidence[0].data", "symbol evidence only"},
		{"apiVersion: safebpf/v1\nversion: 2026.12.1\nrules:\n  - id: a-b\n    title: t\n    mechanisms: [uprobe]\n    action: warn\n    evidence: [{selftest: Kill, present: affected}]\n", "rules[0].evidence[0].selftest", "kebab-case"},
		{"apiVersion: safebpf/v1\nversion: 2026.12.1\nrules:\n  - id: a-b\n    title: t\n    mechanisms: [uprobe]\n    action: warn\n    severity: bad\n", "rules[0].severity", `unknown severity "bad"`},
		{"apiVersion: safebpf/v1\nversion: 2026.12.1\nrules:\n  - id: a-b\n    title: t\n    mechanisms: [uprobe]\n    action: warn\n    on_unknown: ignore\n", "rules[0].on_unknown", `unknown on_unknown "ignore"`},
		{"apiVersion: safebpf/v1\nversion: 2026.12.1\nrules:\n  - id: a-b\n    title: t\n    mechanisms: [uprobe]\n    action: warn\n    unknown: [\">= 5.x\"]\n", "rules[0].unknown[0]", "bad version constraint"},
		{"apiVersion: safebpf/v1\nversion: 2026.12.1\nrules:\n  - id: a-b\n    title: t\n    mechanisms: [uprobe]\n    action: warn\n    fixed_in: [\"6.x\"]\n", "rules[0].fixed_in[0]", "X.Y or X.Y.Z"},
		{"apiVersion: safebpf/v1\nversion: 2026.12.1\nrules:\n  - id: a-b\n    title: t\n    mechanisms: [uprobe]\n    action: warn\n  - id: a-b\n    title: t\n    mechanisms: [uprobe]\n    action: warn\n", "rules[1].id", `duplicate rule ID "a-b"`},
		{"apiVersion: safebpf/v1\nversion: 2026.12.1\nrules:\n  - id: a-b\n    title: t\n    mechanisms: [uprobe]\n    action: cap\n    params: {maxactive: 100, maxactive_ceiling: 50}\n", "rules[0].params.maxactive", "above maxactive_ceiling"},
		{"apiVersion: safebpf/v1\nversion: 2026.12.1\nrules:\n  - id: a-b\n    title: t\n    mechanisms: [uprobe]\n    action: warn\n    evidence: [{symbol: foo}]\n", "rules[0].evidence[0]", "needs a verdict"},
		{"apiVersion: safebpf/v1\nversion: 2026.12.1\nrules:\n  - id: a-b\n    title: t\n    mechanisms: [uprobe]\n    action: warn\n    config: [{name: HARDENED_USERCOPY}]\n", "rules[0].config[0].name", "CONFIG_NAME"},
		{"apiVersion: safebpf/v1\nversion: 2026.12.1\nrules:\n  - id: a-b\n    title: t\n    mechanisms: [uprobe]\n    action: warn\n    requires: {context: irq}\n", "rules[0].requires.context", `unknown context "irq"`},
	} {
		_, err := ParseCatalog("c.yaml", []byte(tc.doc))
		var pe *PolicyError
		if !errors.As(err, &pe) || pe.Key != tc.key || !strings.Contains(pe.Msg, tc.msg) {
			t.Errorf("ParseCatalog(%q) = %v, want key %s and %q", tc.doc, err, tc.key, tc.msg)
		}
	}
}

func TestDurationText(t *testing.T) {
	var d Duration
	if err := d.UnmarshalText([]byte("1m30s")); err != nil || d != Duration(90*time.Second) {
		t.Fatalf("got %v, %v", d, err)
	}
	b, _ := d.MarshalText()
	if string(b) != "1m30s" {
		t.Errorf("MarshalText = %s", b)
	}
	for _, bad := range []string{"-1s", "10", "soon", ""} {
		if err := d.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) accepted", bad)
		}
	}
	j, err := json.Marshal(Params{PaceInterval: Duration(10 * time.Millisecond)})
	if err != nil || string(j) != `{"interval":"10ms"}` {
		t.Errorf("JSON = %s, %v", j, err)
	}
}

// TestCatalogJSONRoundTrip: the JSON export is a catalog document that
// ParseCatalog reads back to the same hazards, version and facts.
func TestCatalogJSONRoundTrip(t *testing.T) {
	b, err := json.Marshal(Builtin())
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		APIVersion string            `json:"apiVersion"`
		Version    string            `json:"version"`
		Rules      []json.RawMessage `json:"rules"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.APIVersion != "safebpf/v1" || doc.Version != Builtin().Version() || len(doc.Rules) != len(Builtin().Hazards()) {
		t.Errorf("export head: %s %s, %d rules", doc.APIVersion, doc.Version, len(doc.Rules))
	}
	back, err := ParseCatalog("export.json", b)
	if err != nil {
		t.Fatalf("the export does not parse as a catalog: %v", err)
	}
	if diff := cmp.Diff(Builtin().Hazards(), back.Hazards()); diff != "" {
		t.Errorf("round trip (-built-in +exported):\n%s", diff)
	}
	if back.Version() != Builtin().Version() || !slices.Equal(back.Facts(), Builtin().Facts()) {
		t.Error("round trip lost the version or the facts")
	}
	var empty Catalog
	if b, err := json.Marshal(&empty); err != nil || !strings.Contains(string(b), `"rules":[]`) {
		t.Errorf("empty catalog: %s %v", b, err)
	}
}

// TestCatalogFacts: the facts are exactly those the evidence names, once
// each, with the keys the witnesses answer to.
func TestCatalogFacts(t *testing.T) {
	var keys []string
	for _, f := range Builtin().Facts() {
		if err := f.Valid(); err != nil {
			t.Error(err)
		}
		keys = append(keys, f.Key())
	}
	want := []string{
		"call:__check_object_size->find_vmap_area", "call:copy_from_user_nofault->nmi_uaccess_okay",
		"call:copy_from_user_nmi->__check_object_size", "symbol:bp_desc", "symbol:tasks_rcu_exit_srcu",
		"symbol:__bpf_tramp_image_put_rcu", "btf:bpf_map.owner.attach_func_proto",
		"selftest:uretprobe-seccomp-kill", "symbol:__x64_sys_uretprobe",
	}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("facts (-want +got):\n%s", diff)
	}
	for _, f := range Builtin().Facts() {
		if f.Name == "tasks_rcu_exit_srcu" && !f.Data || f.Name == "__x64_sys_uretprobe" && f.Data {
			t.Errorf("%s: data flag %v", f, f.Data)
		}
	}
	p, err := ParsePolicy("p.yaml", []byte("apiVersion: safebpf/v1\nrules:\n  - id: my-bug\n    title: t\n    mechanisms: [kprobe]\n    action: warn\n    evidence: [{symbol: my_fixed_fn, present: not-affected}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Builtin().WithPolicy(p)
	if err != nil {
		t.Fatal(err)
	}
	if fs := c.Facts(); len(fs) != len(want)+1 || fs[len(fs)-1].Key() != "symbol:my_fixed_fn" {
		t.Errorf("a policy rule's evidence is not among the facts: %v", fs)
	}
}

// TestChangelogCoversVersion: the catalog's version has its section in
// CHANGELOG.md with at least one hazard's entry, and every built-in hazard
// has an entry in that section or an earlier one (the first versioned
// catalog, 2026.12.1, lists them all).
func TestChangelogCoversVersion(t *testing.T) {
	b, err := os.ReadFile("CHANGELOG.md")
	if err != nil {
		t.Fatal(err)
	}
	log := string(b)
	head := "\n## " + Builtin().Version() + "\n"
	i := strings.Index(log, head)
	if i < 0 {
		t.Fatalf("CHANGELOG.md has no section %q for the catalog's version", strings.TrimSpace(head))
	}
	section := log[i+len(head):]
	if j := strings.Index(section, "\n## "); j >= 0 {
		section = section[:j]
	}
	named := false
	for _, id := range Builtin().IDs() {
		named = named || strings.Contains(section, "**"+string(id)+"**")
		if !strings.Contains(log[i:], "**"+string(id)+"**") {
			t.Errorf("CHANGELOG.md has no entry for %s in section %s or an earlier one", id, Builtin().Version())
		}
	}
	if !named {
		t.Errorf("CHANGELOG.md section %s names no hazard", Builtin().Version())
	}
}

// TestCatalogFactsFor: the facts of a mechanism are all that its
// evaluation reads. For every mechanism, a kernel that records only
// FactsFor(m) (each fact held, then each not held) gets the same findings
// for m as one that also records every other fact of the catalog, with the
// opposite answer; and a fact some hazard of m names is never left out.
func TestCatalogFactsFor(t *testing.T) {
	c := Builtin()
	v := probe.Version{Major: 6, Minor: 1, Patch: 100, PatchKnown: true}
	record := func(k *probe.Kernel, facts []probe.Fact, holds bool) {
		for _, f := range facts {
			if f.Kind == probe.FactSymbol {
				k.Kallsyms.Symbols[f.Name] = holds
				continue
			}
			k.Observations[f.Key()] = probe.Observed(holds, "test: "+f.String())
		}
	}
	kernel := func() *probe.Kernel {
		return &probe.Kernel{Release: "6.1.100", Version: &v, VersionSource: probe.SourceRelease, Arch: "amd64", CPUs: 64,
			Kallsyms: probe.Kallsyms{Readable: true, DataSymbols: true, Symbols: map[string]bool{}}, Observations: map[string]probe.Observation{}}
	}
	all := c.Facts()
	for _, m := range probe.Mechanisms() {
		own := c.FactsFor(m)
		var others []probe.Fact
		for _, f := range all {
			if !slices.ContainsFunc(own, func(g probe.Fact) bool { return g.Key() == f.Key() }) {
				others = append(others, f)
			}
		}
		for _, h := range c.Hazards() {
			if !slices.Contains(h.Mechanisms, m) {
				continue
			}
			for _, e := range h.Evidence {
				if !slices.ContainsFunc(own, func(g probe.Fact) bool { return g.Key() == e.Fact().Key() }) {
					t.Errorf("%s: hazard %s asks %s, not in FactsFor", m, h.ID, e.Fact())
				}
			}
		}
		a := Attachment{Mechanism: m, ReadsUserMemory: true, ReadsUserStacks: true, TailCalls: true, Seccomp: true}
		for _, holds := range []bool{true, false} {
			narrow, wide := kernel(), kernel()
			record(narrow, own, holds)
			record(wide, own, holds)
			record(wide, others, !holds)
			got, want := c.Evaluate(narrow, a), c.Evaluate(wide, a)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s (own facts hold: %v): the facts outside FactsFor change the findings (-all facts +own facts):\n%s", m, holds, diff)
			}
		}
	}
	if got := c.FactsFor(); !slices.Equal(got, all) {
		t.Errorf("FactsFor() = %v, want Facts() %v", got, all)
	}
	// The point of asking per mechanism: a uprobe's hazards need no
	// uretprobe self-test.
	if got := c.FactsFor(probe.Uprobe); slices.ContainsFunc(got, func(f probe.Fact) bool { return f.Kind == probe.FactSelfTest }) {
		t.Errorf("FactsFor(uprobe) = %v: asks for a self-test only uretprobe hazards need", got)
	}
}
