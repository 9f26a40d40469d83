package probe

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// identity is one row of testdata/identities.json (see testdata/README.md).
type identity struct {
	Name string `json:"name"`
	Description
	WantVersion string `json:"want_version"`
	WantSource  string `json:"want_source"`
	WantDistro  Distro `json:"want_distro"`
	// WantPreemptible is what the /proc/version line says about
	// CONFIG_PREEMPTION (null: no line).
	WantPreemptible *bool `json:"want_preemptible"`
}

func loadIdentities(tb testing.TB) []identity {
	tb.Helper()
	b, err := os.ReadFile("testdata/identities.json")
	if err != nil {
		tb.Fatal(err)
	}
	var ids []identity
	dec := json.NewDecoder(bytesReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ids); err != nil {
		tb.Fatalf("decode identities.json: %v", err)
	}
	return ids
}

func TestIdentitiesFixture(t *testing.T) {
	ids := loadIdentities(t)
	if len(ids) < 45 {
		t.Fatalf("identities.json has %d identities, want at least 45", len(ids))
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if id.Name == "" || id.Release == "" || id.WantSource == "" || id.Arch == "" {
			t.Errorf("identity %+v lacks name, release, arch or want_source", id)
		}
		if seen[id.Name] {
			t.Errorf("duplicate identity name %q", id.Name)
		}
		seen[id.Name] = true
	}
}

func TestIdentitiesResolveVersion(t *testing.T) {
	for _, id := range loadIdentities(t) {
		t.Run(id.Name, func(t *testing.T) {
			v, src, note := ResolveVersion(VersionSources{
				Release: id.Release, ProcVersion: id.ProcVersion,
				VersionSignature: id.VersionSignature, VDSO: id.VDSO,
			})
			got := "<nil>"
			if v != nil {
				got = v.String()
			}
			if got != id.WantVersion || string(src) != id.WantSource {
				t.Errorf("ResolveVersion = %s from %s (%s), want %s from %s", got, src, note, id.WantVersion, id.WantSource)
			}
			if note == "" {
				t.Error("ResolveVersion gave no note")
			}
			if v != nil && !v.PatchKnown && src != SourceReleasePartial {
				t.Errorf("unknown sublevel from source %s, want only from %s", src, SourceReleasePartial)
			}
		})
	}
}

func TestIdentitiesDescribe(t *testing.T) {
	for _, id := range loadIdentities(t) {
		t.Run(id.Name, func(t *testing.T) {
			k, err := Describe(id.Description)
			if err != nil {
				t.Fatalf("Describe: %v", err)
			}
			if diff := cmp.Diff(id.WantDistro, k.Distro); diff != "" {
				t.Errorf("Distro mismatch (-want +got):\n%s", diff)
			}
			if k.Arch != id.Arch || k.CPUs != id.CPUs || k.Release != id.Release {
				t.Errorf("Describe kept arch %q cpus %d release %q, want %q %d %q", k.Arch, k.CPUs, k.Release, id.Arch, id.CPUs, id.Release)
			}
			if k.Version == nil || k.Version.String() != id.WantVersion || string(k.VersionSource) != id.WantSource {
				t.Errorf("Describe version = %v from %s, want %s from %s", k.Version, k.VersionSource, id.WantVersion, id.WantSource)
			}
			for _, m := range allMechanisms {
				if _, ok := k.Mechanisms[m]; !ok {
					t.Errorf("Describe left mechanism %s out", m)
				}
			}
		})
	}
}

// TestIdentitiesPreemption describes every identity and checks the
// preemption model read from its /proc/version line: plain "SMP" is a
// kernel built without CONFIG_PREEMPTION (Ubuntu generic up to 5.15 and
// its cloud flavours, Amazon Linux 2, Debian 11, RHEL 8, WSL2 5.15,
// Talos); "PREEMPT", "PREEMPT_DYNAMIC" and "PREEMPT_RT" are preemptible.
func TestIdentitiesPreemption(t *testing.T) {
	for _, id := range loadIdentities(t) {
		t.Run(id.Name, func(t *testing.T) {
			k, err := Describe(id.Description)
			if err != nil {
				t.Fatal(err)
			}
			got := k.Preemption.Preemptible
			if (got == nil) != (id.WantPreemptible == nil) || got != nil && *got != *id.WantPreemptible {
				t.Errorf("Preemption = %+v (%s), want preemptible %v", k.Preemption, k.Preemption.Witness, fmtHolds(id.WantPreemptible))
			}
			if got != nil && k.Preemption.Witness == "" {
				t.Error("a known preemption model without a witness")
			}
		})
	}
}

// TestPreemptionFromConfig: without a /proc/version line the config
// decides, and an excerpt that shows none of the preemption choices says
// nothing.
func TestPreemptionFromConfig(t *testing.T) {
	for _, tt := range []struct {
		config string
		want   *bool
		model  string
	}{
		{"CONFIG_PREEMPT_VOLUNTARY=y\nCONFIG_PREEMPT_DYNAMIC=y\nCONFIG_PREEMPTION=y\nCONFIG_TASKS_RCU=y\n", ptr(true), PreemptDynamic},
		{"CONFIG_PREEMPT_VOLUNTARY=y\n# CONFIG_PREEMPT is not set\n", ptr(false), PreemptNone},
		{"CONFIG_PREEMPT_NONE=y\n", ptr(false), PreemptNone},
		{"CONFIG_PREEMPT_RT=y\nCONFIG_PREEMPTION=y\n", ptr(true), PreemptRT},
		{"CONFIG_PREEMPT=y\n", ptr(true), PreemptFull},
		{"CONFIG_KPROBES=y\n", nil, ""},
	} {
		k, err := Describe(Description{Release: "6.1.0-18-amd64", Config: tt.config})
		if err != nil {
			t.Fatal(err)
		}
		got := k.Preemption
		if (got.Preemptible == nil) != (tt.want == nil) || got.Preemptible != nil && *got.Preemptible != *tt.want || got.Model != tt.model {
			t.Errorf("config %q: Preemption = %+v, want %v %q", tt.config, got, fmtHolds(tt.want), tt.model)
		}
	}
}
