package hazards

import (
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

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
		"nmi-user-read-deadlock", "x86-text-poke-race", "fentry-zap-pid-ns-deadlock",
		"kretprobe-contention", "uprobe-mmap-lock-stall", "uretprobe-seccomp-kill",
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
			if h.Params.MaxActive <= 0 || h.Params.MaxActiveCeiling <= 0 || h.Params.MaxActiveCeiling > MaxActiveLimit {
				t.Errorf("%s: cap needs maxactive and a ceiling <= %d, got %+v", h.ID, MaxActiveLimit, h.Params)
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

// TestBuiltinMechanismCoverage pins which mechanisms each hazard concerns, as
// issue 2 specifies them.
func TestBuiltinMechanismCoverage(t *testing.T) {
	want := map[ID][]probe.Mechanism{
		"nmi-user-read-deadlock":     {probe.PerfEventHardware},
		"x86-text-poke-race":         {probe.Kprobe, probe.Kretprobe, probe.Fentry, probe.Fexit, probe.Tracepoint, probe.RawTracepoint, probe.KprobeMulti, probe.KretprobeMulti},
		"fentry-zap-pid-ns-deadlock": {probe.Fentry, probe.Fexit},
		"kretprobe-contention":       {probe.Kretprobe, probe.KretprobeMulti},
		"uprobe-mmap-lock-stall":     {probe.Uprobe, probe.Uretprobe, probe.UprobeMulti},
		"uretprobe-seccomp-kill":     {probe.Uretprobe},
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
}

func probeMechanisms() []probe.Mechanism { return probe.Mechanisms() }

func TestParseCatalogStrict(t *testing.T) {
	for _, tc := range []struct {
		doc, key, msg string
	}{
		{"apiVersion: safebpf/v1\nmode: warn\n", "mode", `unknown key "mode" (known: apiVersion, rules)`},
		{"apiVersion: safebpf/v1\nrules:\n  - id: a-b\n    title: t\n    mechanisms: [uprobe]\n    action: warn\n  - id: a-b\n    title: t\n    mechanisms: [uprobe]\n    action: warn\n", "rules[1].id", `duplicate rule ID "a-b"`},
		{"apiVersion: safebpf/v1\nrules:\n  - id: a-b\n    title: t\n    mechanisms: [uprobe]\n    action: cap\n    params: {maxactive: 100, maxactive_ceiling: 50}\n", "rules[0].params.maxactive", "above maxactive_ceiling"},
		{"apiVersion: safebpf/v1\nrules:\n  - id: a-b\n    title: t\n    mechanisms: [uprobe]\n    action: warn\n    evidence: [{symbol: foo}]\n", "rules[0].evidence[0]", "needs a verdict"},
		{"apiVersion: safebpf/v1\nrules:\n  - id: a-b\n    title: t\n    mechanisms: [uprobe]\n    action: warn\n    config: [{name: HARDENED_USERCOPY}]\n", "rules[0].config[0].name", "CONFIG_NAME"},
		{"apiVersion: safebpf/v1\nrules:\n  - id: a-b\n    title: t\n    mechanisms: [uprobe]\n    action: warn\n    requires: {context: irq}\n", "rules[0].requires.context", `unknown context "irq"`},
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
