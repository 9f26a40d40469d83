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
	Name string `json:"name"`
	probe.Description
	WantVersion     string `json:"want_version"`
	WantSource      string `json:"want_source"`
	WantPreemptible *bool  `json:"want_preemptible"`
}

// TestVerdictsOverIdentities describes every real kernel identity offline
// and checks every built-in hazard's verdict against
// testdata/verdicts.json. Each hazard is evaluated for its first mechanism
// with the worst-case attachment (reads user memory, takes user stacks,
// makes tail calls, target under seccomp), as the loader assumes when it
// cannot tell.
func TestVerdictsOverIdentities(t *testing.T) {
	var ids []identity
	readJSON(t, "../probe/testdata/identities.json", &ids)
	var want map[string]map[hazards.ID]hazards.Verdict
	readJSON(t, "testdata/verdicts.json", &want)

	c := hazards.Builtin()
	checked := 0
	for _, id := range ids {
		t.Run(id.Name, func(t *testing.T) {
			wantV, ok := want[id.Name]
			if !ok {
				t.Fatalf("testdata/verdicts.json has no row for identity %q", id.Name)
			}
			k, err := probe.Describe(id.Description)
			if err != nil {
				t.Fatalf("Describe: %v", err)
			}
			if k.Version == nil || k.Version.String() != id.WantVersion {
				t.Fatalf("Describe trusted version %v, the fixture says %s: verdicts would test the wrong kernel", k.Version, id.WantVersion)
			}
			got := map[hazards.ID]hazards.Verdict{}
			reasons := map[hazards.ID]string{}
			for _, h := range c.Hazards() {
				a := hazards.Attachment{Mechanism: h.Mechanisms[0], ReadsUserMemory: true, ReadsUserStacks: true, TailCalls: true, Seccomp: true}
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
// probe.Describe with the catalog's own facts, so the catalog's evidence
// symbols are checked against what probe actually scans for.
func TestEvidenceThroughDescribe(t *testing.T) {
	facts := hazards.Builtin().Facts()
	const (
		text    = "ffffffff81000000 T _stext\nffffffff81234560 T copy_from_user_nofault\n"
		data    = "ffffffff82a00000 D init_task\n"
		srcu    = "ffffffff82b3c4e0 d tasks_rcu_exit_srcu\n"
		stall   = "ffffffff82b3c500 d tasks_rcu_exit_srcu_stall_timer\n"
		uretsys = "ffffffff810f1230 T __x64_sys_uretprobe\n"
		tramp   = "ffffffff8120a0c0 t __bpf_tramp_image_put_rcu\n"
		bpDesc  = "ffffffff82c01a88 b bp_desc\n"
	)
	for _, tc := range []struct {
		name, release, sig, pv, kallsyms string
		m                                probe.Mechanism
		id                               hazards.ID
		want                             hazards.Verdict
	}{
		// Ubuntu 6.8.0-86 is cleared by the distro row, but the symbol beats it.
		{"ubuntu 6.8.0-86 symbol present", "6.8.0-86-generic", "Ubuntu 6.8.0-86.87-generic 6.8.12", "", text + data + srcu, probe.Fentry, "fentry-zap-pid-ns-deadlock", hazards.Affected},
		{"ubuntu 6.8.0-86 symbol absent", "6.8.0-86-generic", "Ubuntu 6.8.0-86.87-generic 6.8.12", "", text + data, probe.Fentry, "fentry-zap-pid-ns-deadlock", hazards.NotAffected},
		// 6.1.76 is in the upstream range; a kallsyms with data symbols and no
		// tasks_rcu_exit_srcu clears it, one without data symbols does not.
		{"6.1.76 symbol absent, data symbols listed", "6.1.76", "", "", text + data, probe.Fexit, "fentry-zap-pid-ns-deadlock", hazards.NotAffected},
		{"6.1.76 symbol absent, no data symbols, preemptible", "6.1.76", "", "Linux version 6.1.76 (root@box) (gcc) #1 SMP PREEMPT_DYNAMIC Thu Feb  1 10:00:00 UTC 2024", text, probe.Fexit, "fentry-zap-pid-ns-deadlock", hazards.Affected},
		// C4: the look-alike survives the fix; only the exact name counts.
		{"6.1.76 look-alike only", "6.1.76", "", "", text + data + stall, probe.Fentry, "fentry-zap-pid-ns-deadlock", hazards.NotAffected},
		{"6.12.5 no uretprobe syscall", "6.12.5", "", "", text, probe.Uretprobe, "uretprobe-seccomp-kill", hazards.NotAffected},
		{"6.12.5 uretprobe syscall", "6.12.5", "", "", text + uretsys, probe.Uretprobe, "uretprobe-seccomp-kill", hazards.Affected},
		{"5.10.20 with the fexit fix", "5.10.20", "", "", text + tramp, probe.Fexit, "fexit-sleeping-detach-crash", hazards.NotAffected},
		{"6.1.76 without the fexit fix's symbol", "6.1.76", "", "", text + data, probe.Fexit, "fexit-sleeping-detach-crash", hazards.Affected},
		{"5.4.0 with bp_desc", "5.4.0", "", "", text + data + bpDesc, probe.Kprobe, "x86-text-poke-race", hazards.NotAffected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := probe.Describe(probe.Description{Release: tc.release, VersionSignature: tc.sig, ProcVersion: tc.pv, Kallsyms: tc.kallsyms, Arch: "amd64", Facts: facts,
				OSRelease: map[bool]string{true: "ID=ubuntu\nVERSION_ID=\"24.04\"\n", false: ""}[tc.sig != ""]})
			if err != nil {
				t.Fatal(err)
			}
			if k.Preemption.Preemptible == nil {
				yes := true
				k.Preemption = probe.Preemption{Preemptible: &yes}
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

// TestIdentityClasses judges the classes of machine issue 9 names, each
// described from the strings it prints, for the attachments that matter,
// with the verdict the research notes give (section 0 first).
func TestIdentityClasses(t *testing.T) {
	byName := map[string]identity{}
	var ids []identity
	readJSON(t, "../probe/testdata/identities.json", &ids)
	for _, id := range ids {
		byName[id.Name] = id
	}
	describe := func(t *testing.T, name string) *probe.Kernel {
		id, ok := byName[name]
		if !ok {
			t.Fatalf("no identity %q", name)
		}
		k, err := probe.Describe(id.Description)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	fentry := hazards.Attachment{Mechanism: probe.Fentry}
	profilerSW := hazards.Attachment{Mechanism: probe.PerfEventSoftware, ReadsUserMemory: true}
	stacksHW := hazards.Attachment{Mechanism: probe.PerfEventHardware, ReadsUserStacks: true}
	uretSeccomp := hazards.Attachment{Mechanism: probe.Uretprobe, Seccomp: true}
	kprobe := hazards.Attachment{Mechanism: probe.Kprobe}
	for _, tc := range []struct {
		identity string
		a        hazards.Attachment
		id       hazards.ID
		want     hazards.Verdict
		why      string
	}{
		// C4: no Tasks RCU without CONFIG_PREEMPTION; /proc/version says so.
		{"ubuntu-24.04-6.8.0-1012-aws", fentry, "fentry-zap-pid-ns-deadlock", hazards.NotAffected, "#13-Ubuntu SMP: aws flavour not preemptible"},
		{"ubuntu-22.04-5.15-ga", fentry, "fentry-zap-pid-ns-deadlock", hazards.NotAffected, "Ubuntu generic <= 5.15 not preemptible"},
		{"ubuntu-20.04-5.4-ga", fentry, "fentry-zap-pid-ns-deadlock", hazards.NotAffected, "Ubuntu generic <= 5.15 (and 5.4 has no trampolines in range anyway)"},
		{"amzn2-5.10.205", fentry, "fentry-zap-pid-ns-deadlock", hazards.NotAffected, "Amazon Linux 2 not preemptible"},
		{"debian-11-5.10", fentry, "fentry-zap-pid-ns-deadlock", hazards.NotAffected, "Debian 11 not preemptible"},
		{"rhel-8.8-4.18.0-477", fentry, "fentry-zap-pid-ns-deadlock", hazards.NotAffected, "RHEL 8 not preemptible"},
		{"talos-1.8-6.6.54", fentry, "fentry-zap-pid-ns-deadlock", hazards.NotAffected, "Talos CONFIG_PREEMPT_NONE"},
		{"wsl2-5.15.90.1", fentry, "fentry-zap-pid-ns-deadlock", hazards.NotAffected, "WSL2 5.15 not preemptible"},
		{"ubuntu-24.04-6.8.0-53", fentry, "fentry-zap-pid-ns-deadlock", hazards.Affected, "Datadog hung on 6.8.0-53-generic (PREEMPT_DYNAMIC)"},
		{"debian-12-6.1", fentry, "fentry-zap-pid-ns-deadlock", hazards.Affected, "C10: Debian 6.1 with only the partial fix still hangs"},
		// C3: the seccomp fix is in 6.12.14 and 6.13.3.
		{"debian-13-6.12-cloud", uretSeccomp, "uretprobe-seccomp-kill", hazards.NotAffected, "6.12.38 is past 6.12.14"},
		{"vanilla-6.12.13-boundary", uretSeccomp, "uretprobe-seccomp-kill", hazards.Affected, "6.12.13 precedes the fix"},
		{"vanilla-6.12.14-boundary", uretSeccomp, "uretprobe-seccomp-kill", hazards.NotAffected, "[PATCH 6.12 189/422] is in 6.12.14"},
		{"fedora-41-6.13.2-boundary", uretSeccomp, "uretprobe-seccomp-kill", hazards.Affected, "6.13.3 is the fix"},
		// C1: the software cpu-clock event deadlocks too (parca-agent #1675, AL2023 6.1.25).
		{"al2023-6.1.25", profilerSW, "nmi-user-read-deadlock", hazards.Affected, "cpu-clock runs in hard IRQ"},
		{"al2023-6.1.115", profilerSW, "nmi-user-read-deadlock", hazards.NotAffected, "past 6.1.36"},
		// C2: user stacks go through copy_from_user_nmi, fixed in 6.0 and 5.19.14.
		{"al2023-6.1.25", stacksHW, "nmi-user-stack-deadlock", hazards.NotAffected, "user-stack path fixed in 6.0"},
		{"vanilla-5.19.0-boundary", stacksHW, "nmi-user-stack-deadlock", hazards.Affected, "5.19.0 precedes 5.19.14"},
		{"ubuntu-22.04-5.19-hwe", stacksHW, "nmi-user-stack-deadlock", hazards.NotAffected, "5.19.17 carries 59298997df89"},
		// C5: SUSE shipped the text-poke fix; 5.2 and el7 are unknown.
		{"sles-15-sp2-5.3.18-24.107", kprobe, "x86-text-poke-race", hazards.NotAffected, "bsc#1152489"},
		{"sles-15-sp3-5.3.18-150300.59.63", kprobe, "x86-text-poke-race", hazards.NotAffected, "bsc#1152489"},
		{"opensuse-leap-15.2-5.3.18-lp152.106", kprobe, "x86-text-poke-race", hazards.NotAffected, "openSUSE-2021-393"},
		{"vanilla-5.2.21-boundary", kprobe, "x86-text-poke-race", hazards.Unknown, "nothing puts the race in 5.2"},
		{"vanilla-5.3.0-boundary", kprobe, "x86-text-poke-race", hazards.Affected, "c0213b0ac03c is in 5.3"},
		{"centos-7-3.10.0-1160", kprobe, "x86-text-poke-race", hazards.Unknown, "el7 builds unidentified"},
		{"rhel-7.9-3.10.0-1160.108.1", kprobe, "x86-text-poke-race", hazards.Unknown, "el7 builds unidentified"},
	} {
		t.Run(tc.identity+"/"+string(tc.id), func(t *testing.T) {
			k := describe(t, tc.identity)
			for _, f := range hazards.Builtin().Evaluate(k, tc.a) {
				if f.ID == tc.id {
					if f.Verdict != tc.want {
						t.Errorf("%s on %s: %s (%s), want %s: %s", tc.id, k.Release, f.Verdict, f.Reason, tc.want, tc.why)
					}
					return
				}
			}
			t.Fatalf("no finding for %s on %s", tc.id, tc.a.Mechanism)
		})
	}
}
