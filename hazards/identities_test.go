package hazards_test

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/probe"
)

// identity is one row of probe/testdata/identities.json (the fields the
// hazards tests need).
type identity struct {
	Name             string `json:"name"`
	Release          string `json:"release"`
	ProcVersion      string `json:"proc_version"`
	VersionSignature string `json:"version_signature"`
	OSRelease        string `json:"os_release"`
	Arch             string `json:"arch"`
	CPUs             int    `json:"cpus"`
	WantVersion      string `json:"want_version"`
	WantSource       string `json:"want_source"`
}

// TestVerdictsOverIdentities describes every real kernel identity offline
// and checks every built-in hazard's verdict against
// testdata/verdicts.json. Each hazard is evaluated for its first mechanism
// with the worst-case attachment (reads user memory, target under seccomp),
// as the loader assumes when it cannot tell.
func TestVerdictsOverIdentities(t *testing.T) {
	var ids []identity
	readJSON(t, "../probe/testdata/identities.json", &ids)
	var want map[string]map[hazards.ID]hazards.Verdict
	readJSON(t, "testdata/verdicts.json", &want)

	c := hazards.Builtin()
	checked := 0
	for _, id := range ids {
		if id.WantSource == string(probe.SourceVDSO) {
			// A Description has no vDSO, so Describe cannot reach this
			// row's version; probe's own tests cover it.
			continue
		}
		t.Run(id.Name, func(t *testing.T) {
			wantV, ok := want[id.Name]
			if !ok {
				t.Fatalf("testdata/verdicts.json has no row for identity %q", id.Name)
			}
			k, err := probe.Describe(probe.Description{
				Release: id.Release, ProcVersion: id.ProcVersion,
				VersionSignature: id.VersionSignature, OSRelease: id.OSRelease,
				Arch: id.Arch, CPUs: id.CPUs,
			})
			if err != nil {
				t.Fatalf("Describe: %v", err)
			}
			if k.Version == nil || k.Version.String() != id.WantVersion {
				t.Fatalf("Describe trusted version %v, the fixture says %s: verdicts would test the wrong kernel", k.Version, id.WantVersion)
			}
			got := map[hazards.ID]hazards.Verdict{}
			reasons := map[hazards.ID]string{}
			for _, h := range c.Hazards() {
				a := hazards.Attachment{Mechanism: h.Mechanisms[0], ReadsUserMemory: true, Seccomp: true}
				for _, f := range c.Evaluate(k, a) {
					if f.ID == h.ID {
						got[f.ID] = f.Verdict
						reasons[f.ID] = f.Reason
					}
				}
			}
			if diff := cmp.Diff(wantV, got); diff != "" {
				t.Errorf("%s (%s, upstream %s): verdicts (-want +got):\n%s\nreasons: %v", id.Name, id.Release, k.Version, diff, reasons)
			}
		})
		checked++
	}
	if checked < 40 {
		t.Errorf("only %d identities checked, want at least 40", checked)
	}
	if len(want) != checked {
		t.Errorf("verdicts.json has %d rows, %d identities were checked: stale rows?", len(want), checked)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestEvidenceThroughDescribe feeds kallsyms excerpts through
// probe.Describe, so the catalog's evidence symbols are checked against
// what probe actually scans for.
func TestEvidenceThroughDescribe(t *testing.T) {
	var facts []probe.Fact
	for _, s := range hazards.Builtin().EvidenceSymbols() {
		facts = append(facts, probe.Fact{Kind: probe.FactSymbol, Name: s, Data: s == "tasks_rcu_exit_srcu"})
	}
	const (
		text    = "ffffffff81000000 T _stext\nffffffff81234560 T copy_from_user_nofault\n"
		data    = "ffffffff82a00000 D init_task\n"
		srcu    = "ffffffff82b3c4e0 d tasks_rcu_exit_srcu\n"
		uretsys = "ffffffff810f1230 T __x64_sys_uretprobe\n"
	)
	for _, tc := range []struct {
		name, release, sig, kallsyms string
		m                            probe.Mechanism
		id                           hazards.ID
		want                         hazards.Verdict
	}{
		// Ubuntu 6.8.0-86 is cleared by the distro row, but the symbol beats it.
		{"ubuntu 6.8.0-86 symbol present", "6.8.0-86-generic", "Ubuntu 6.8.0-86.87-generic 6.8.12", text + data + srcu, probe.Fentry, "fentry-zap-pid-ns-deadlock", hazards.Affected},
		{"ubuntu 6.8.0-86 symbol absent", "6.8.0-86-generic", "Ubuntu 6.8.0-86.87-generic 6.8.12", text + data, probe.Fentry, "fentry-zap-pid-ns-deadlock", hazards.NotAffected},
		// 6.1.76 is in the upstream range; a kallsyms with data symbols and no
		// tasks_rcu_exit_srcu clears it, one without data symbols does not.
		{"6.1.76 symbol absent, data symbols listed", "6.1.76", "", text + data, probe.Fexit, "fentry-zap-pid-ns-deadlock", hazards.NotAffected},
		{"6.1.76 symbol absent, no data symbols", "6.1.76", "", text, probe.Fexit, "fentry-zap-pid-ns-deadlock", hazards.Affected},
		{"6.12.38 no uretprobe syscall", "6.12.38", "", text, probe.Uretprobe, "uretprobe-seccomp-kill", hazards.NotAffected},
		{"6.12.38 uretprobe syscall", "6.12.38", "", text + uretsys, probe.Uretprobe, "uretprobe-seccomp-kill", hazards.Affected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := probe.Describe(probe.Description{Release: tc.release, VersionSignature: tc.sig, Kallsyms: tc.kallsyms, Arch: "amd64", Facts: facts,
				OSRelease: map[bool]string{true: "ID=ubuntu\nVERSION_ID=\"24.04\"\n", false: ""}[tc.sig != ""]})
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range hazards.Builtin().Evaluate(k, hazards.Attachment{Mechanism: tc.m, ReadsUserMemory: true, Seccomp: true}) {
				if f.ID == tc.id {
					if f.Verdict != tc.want {
						t.Errorf("got %s (%s), want %s", f.Verdict, f.Reason, tc.want)
					}
					return
				}
			}
			t.Fatalf("no finding for %s", tc.id)
		})
	}
}
