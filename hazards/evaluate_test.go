package hazards_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/probe"
)

// kern builds a kernel with upstream version v ("6.1.35", or "5.4" for an
// unknown sublevel, or "" for unknown), amd64, 8 CPUs, config unknown.
func kern(t testing.TB, v string, edits ...func(*probe.Kernel)) *probe.Kernel {
	t.Helper()
	k := &probe.Kernel{Release: v + "-test", Arch: "amd64", CPUs: 8}
	if v != "" {
		var pv probe.Version
		if err := pv.UnmarshalText([]byte(v)); err != nil {
			t.Fatal(err)
		}
		k.Version = &pv
	}
	for _, e := range edits {
		e(k)
	}
	return k
}

func arch(a string) func(*probe.Kernel) { return func(k *probe.Kernel) { k.Arch = a } }
func cpus(n int) func(*probe.Kernel)    { return func(k *probe.Kernel) { k.CPUs = n } }
func config(kv ...string) func(*probe.Kernel) {
	return func(k *probe.Kernel) {
		k.Config = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			k.Config[kv[i]] = kv[i+1]
		}
	}
}
func syms(data bool, present map[string]bool) func(*probe.Kernel) {
	return func(k *probe.Kernel) {
		k.Kallsyms = probe.Kallsyms{Readable: true, DataSymbols: data, Symbols: present}
	}
}
func ubuntu(abi int) func(*probe.Kernel) {
	return func(k *probe.Kernel) {
		k.Distro = probe.Distro{ID: "ubuntu", UbuntuABI: abi}
	}
}

// verdictOf evaluates and returns the finding for id, failing if absent.
func verdictOf(t *testing.T, c *hazards.Catalog, k *probe.Kernel, a hazards.Attachment, id hazards.ID) hazards.Finding {
	t.Helper()
	for _, f := range c.Evaluate(k, a) {
		if f.ID == id {
			return f
		}
	}
	t.Fatalf("no finding for %s on %s", id, a.Mechanism)
	return hazards.Finding{}
}

func TestEvaluate(t *testing.T) {
	hw := hazards.Attachment{Mechanism: probe.PerfEventHardware, ReadsUserMemory: true}
	kp := hazards.Attachment{Mechanism: probe.Kprobe}
	fe := hazards.Attachment{Mechanism: probe.Fentry}
	kr := hazards.Attachment{Mechanism: probe.Kretprobe}
	up := hazards.Attachment{Mechanism: probe.Uprobe}
	ur := hazards.Attachment{Mechanism: probe.Uretprobe, Seccomp: true}
	for _, tc := range []struct {
		name   string
		k      *probe.Kernel
		a      hazards.Attachment
		id     hazards.ID
		want   hazards.Verdict
		reason string // substring of the reason
	}{
		{"nmi 5.18.19", kern(t, "5.18.19"), hw, "nmi-user-read-deadlock", hazards.NotAffected, "upstream 5.18.19 outside"},
		{"nmi 5.19.0", kern(t, "5.19.0"), hw, "nmi-user-read-deadlock", hazards.Affected, "upstream 5.19.0 in 5.19.y"},
		{"nmi 6.0.19", kern(t, "6.0.19"), hw, "nmi-user-read-deadlock", hazards.Affected, "in 6.0.y"},
		{"nmi 6.1.35", kern(t, "6.1.35"), hw, "nmi-user-read-deadlock", hazards.Affected, "upstream 6.1.35 in >= 6.1, < 6.1.36"},
		{"nmi 6.1.36", kern(t, "6.1.36"), hw, "nmi-user-read-deadlock", hazards.NotAffected, "upstream 6.1.36 outside"},
		{"nmi 6.2.16", kern(t, "6.2.16"), hw, "nmi-user-read-deadlock", hazards.Affected, "in 6.2.y"},
		{"nmi 6.3.9", kern(t, "6.3.9"), hw, "nmi-user-read-deadlock", hazards.Affected, "< 6.3.10"},
		{"nmi 6.3.10", kern(t, "6.3.10"), hw, "nmi-user-read-deadlock", hazards.NotAffected, "outside"},
		{"nmi 6.4.0", kern(t, "6.4.0"), hw, "nmi-user-read-deadlock", hazards.NotAffected, "outside"},
		{"nmi 6.1 sublevel unknown", kern(t, "6.1"), hw, "nmi-user-read-deadlock", hazards.Unknown, "6.1 sublevel unknown"},
		{"nmi 6.2 sublevel unknown", kern(t, "6.2"), hw, "nmi-user-read-deadlock", hazards.Affected, "in 6.2.y"},
		{"nmi 5.15 sublevel unknown", kern(t, "5.15"), hw, "nmi-user-read-deadlock", hazards.NotAffected, "upstream 5.15 outside"},
		{"nmi version unknown", kern(t, ""), hw, "nmi-user-read-deadlock", hazards.Unknown, "version unknown"},
		{"nmi no hardened usercopy", kern(t, "6.1.35", config("CONFIG_KPROBES", "y")), hw, "nmi-user-read-deadlock", hazards.NotAffected, "CONFIG_HARDENED_USERCOPY not set"},
		{"nmi hardened usercopy set", kern(t, "6.1.35", config("CONFIG_HARDENED_USERCOPY", "y")), hw, "nmi-user-read-deadlock", hazards.Affected, "6.1.35"},
		{"nmi program reads no user memory", kern(t, "6.1.35"), hazards.Attachment{Mechanism: probe.PerfEventHardware}, "nmi-user-read-deadlock", hazards.NotAffected, "does not read user memory"},

		{"text poke 5.1.21", kern(t, "5.1.21"), kp, "x86-text-poke-race", hazards.NotAffected, "outside"},
		{"text poke 5.2.0", kern(t, "5.2.0"), kp, "x86-text-poke-race", hazards.Affected, ">= 5.2, < 5.6"},
		{"text poke 5.4 line", kern(t, "5.4"), kp, "x86-text-poke-race", hazards.Affected, "upstream 5.4 in"},
		{"text poke 5.5.19", kern(t, "5.5.19"), fe, "x86-text-poke-race", hazards.Affected, "5.5.19"},
		{"text poke 5.6.0", kern(t, "5.6.0"), kp, "x86-text-poke-race", hazards.NotAffected, "outside"},
		{"text poke arm64", kern(t, "5.4.0", arch("arm64")), kp, "x86-text-poke-race", hazards.NotAffected, "arch arm64 not in [amd64 386]"},
		{"text poke 386", kern(t, "5.4.0", arch("386")), kp, "x86-text-poke-race", hazards.Affected, "5.4.0"},
		{"text poke arch unknown", kern(t, "5.4.0", arch("")), kp, "x86-text-poke-race", hazards.Unknown, "arch unknown"},

		{"fentry 5.4.0", kern(t, "5.4.0"), fe, "fentry-zap-pid-ns-deadlock", hazards.NotAffected, "outside"},
		{"fentry 5.10.173 partial fix", kern(t, "5.10.173"), fe, "fentry-zap-pid-ns-deadlock", hazards.Affected, "5.10.173 in >= 5.5, < 6.6.107"},
		{"fentry 6.6.106", kern(t, "6.6.106"), fe, "fentry-zap-pid-ns-deadlock", hazards.Affected, "6.6.106"},
		{"fentry 6.6.107", kern(t, "6.6.107"), fe, "fentry-zap-pid-ns-deadlock", hazards.NotAffected, "outside"},
		{"fentry 6.8.12", kern(t, "6.8.12"), fe, "fentry-zap-pid-ns-deadlock", hazards.Affected, ">= 6.7, < 6.9"},
		{"fentry 6.9.0", kern(t, "6.9.0"), fe, "fentry-zap-pid-ns-deadlock", hazards.NotAffected, "outside"},
		{"fexit 6.1.50", kern(t, "6.1.50"), hazards.Attachment{Mechanism: probe.Fexit}, "fentry-zap-pid-ns-deadlock", hazards.Affected, "6.1.50"},
		{"fentry ubuntu 6.8.0-85", kern(t, "6.8.12", ubuntu(85)), fe, "fentry-zap-pid-ns-deadlock", hazards.Affected, "upstream 6.8.12 in >= 6.7, < 6.9"},
		{"fentry ubuntu 6.8.0-86", kern(t, "6.8.12", ubuntu(86)), fe, "fentry-zap-pid-ns-deadlock", hazards.NotAffected, "ubuntu upstream 6.8.12 in 6.8.y, build 86 >= 86, < 1000"},
		{"fentry ubuntu 6.8.0-1021-aws", kern(t, "6.8.12", ubuntu(1021)), fe, "fentry-zap-pid-ns-deadlock", hazards.Affected, "upstream 6.8.12 in >= 6.7, < 6.9"},
		{"fentry rhel 8 backports", kern(t, "4.18", func(k *probe.Kernel) { k.Distro = probe.Distro{ID: "rhel", RHEL: "el8", RHELBuild: "477.10.1"} }), fe, "fentry-zap-pid-ns-deadlock", hazards.Unknown, "rhel upstream 4.18 in 4.18.y (RHEL 8 backports"},
		{"fentry rhel 8 symbol absent", kern(t, "4.18", func(k *probe.Kernel) { k.Distro = probe.Distro{ID: "rhel", RHEL: "el8", RHELBuild: "553.1.1"} }, syms(true, map[string]bool{"tasks_rcu_exit_srcu": false})), fe, "fentry-zap-pid-ns-deadlock", hazards.NotAffected, "absent from kallsyms"},
		{"fentry symbol present", kern(t, "6.9.0", syms(true, map[string]bool{"tasks_rcu_exit_srcu": true})), fe, "fentry-zap-pid-ns-deadlock", hazards.Affected, "tasks_rcu_exit_srcu present in kallsyms"},
		{"fentry symbol present beats ubuntu backport", kern(t, "6.8.12", ubuntu(90), syms(false, map[string]bool{"tasks_rcu_exit_srcu": true})), fe, "fentry-zap-pid-ns-deadlock", hazards.Affected, "present in kallsyms"},
		{"fentry symbol absent with data symbols", kern(t, "6.1.50", syms(true, map[string]bool{"tasks_rcu_exit_srcu": false})), fe, "fentry-zap-pid-ns-deadlock", hazards.NotAffected, "tasks_rcu_exit_srcu absent from kallsyms"},
		{"fentry symbol absent without data symbols", kern(t, "6.1.50", syms(false, map[string]bool{"tasks_rcu_exit_srcu": false})), fe, "fentry-zap-pid-ns-deadlock", hazards.Affected, "absence inconclusive"},

		{"kretprobe 96 cpus 5.10", kern(t, "5.10.200", cpus(96)), kr, "kretprobe-contention", hazards.Affected, "< 5.11"},
		{"kretprobe 96 cpus 6.6", kern(t, "6.6.50", cpus(96)), kr, "kretprobe-contention", hazards.Affected, ">= 5.11, < 6.7"},
		{"kretprobe 96 cpus 6.7", kern(t, "6.7.0", cpus(96)), kr, "kretprobe-contention", hazards.NotAffected, "outside"},
		{"kretprobe 63 cpus", kern(t, "5.10.200", cpus(63)), kr, "kretprobe-contention", hazards.NotAffected, "63 CPUs < min_cpus 64"},
		{"kretprobe 64 cpus", kern(t, "5.10.200", cpus(64)), kr, "kretprobe-contention", hazards.Affected, "5.10.200"},
		{"kretprobe cpus unknown", kern(t, "5.10.200", cpus(0)), kr, "kretprobe-contention", hazards.Unknown, "CPU count unknown"},
		{"kretprobe cpus unknown, fixed kernel", kern(t, "6.12.0", cpus(0)), kr, "kretprobe-contention", hazards.NotAffected, "outside"},

		{"uprobe 6.13.12", kern(t, "6.13.12"), up, "uprobe-mmap-lock-stall", hazards.Affected, "< 6.14"},
		{"uprobe 6.14.0", kern(t, "6.14.0"), up, "uprobe-mmap-lock-stall", hazards.NotAffected, "outside"},

		{"uretprobe 6.10.14", kern(t, "6.10.14"), ur, "uretprobe-seccomp-kill", hazards.NotAffected, "outside"},
		{"uretprobe 6.11.0", kern(t, "6.11.0"), ur, "uretprobe-seccomp-kill", hazards.Affected, ">= 6.11, < 6.13.3"},
		{"uretprobe 6.12.40", kern(t, "6.12.40"), ur, "uretprobe-seccomp-kill", hazards.Affected, "6.12.40"},
		{"uretprobe 6.13.2", kern(t, "6.13.2"), ur, "uretprobe-seccomp-kill", hazards.Affected, "6.13.2"},
		{"uretprobe 6.13.3", kern(t, "6.13.3"), ur, "uretprobe-seccomp-kill", hazards.NotAffected, "outside"},
		{"uretprobe 6.13 line", kern(t, "6.13"), ur, "uretprobe-seccomp-kill", hazards.Unknown, "sublevel unknown"},
		{"uretprobe no seccomp", kern(t, "6.12.40"), hazards.Attachment{Mechanism: probe.Uretprobe}, "uretprobe-seccomp-kill", hazards.NotAffected, "not under seccomp"},
		{"uretprobe arm64", kern(t, "6.12.40", arch("arm64")), ur, "uretprobe-seccomp-kill", hazards.NotAffected, "arch arm64"},
		{"uretprobe syscall absent", kern(t, "6.12.40", syms(false, map[string]bool{"__x64_sys_uretprobe": false})), ur, "uretprobe-seccomp-kill", hazards.NotAffected, "__x64_sys_uretprobe absent"},
		{"uretprobe syscall present decides nothing", kern(t, "6.14.1", syms(false, map[string]bool{"__x64_sys_uretprobe": true})), ur, "uretprobe-seccomp-kill", hazards.NotAffected, "outside"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := verdictOf(t, hazards.Builtin(), tc.k, tc.a, tc.id)
			if f.Verdict != tc.want || !strings.Contains(f.Reason, tc.reason) {
				t.Errorf("got %s %q, want %s containing %q", f.Verdict, f.Reason, tc.want, tc.reason)
			}
			if !strings.HasPrefix(f.Reason, string(tc.id)+": ") {
				t.Errorf("reason %q does not name the rule", f.Reason)
			}
			if f.Hazard == nil || f.Hazard.ID != tc.id || f.Action != f.Hazard.Action || f.Mechanism != tc.a.Mechanism {
				t.Errorf("finding fields inconsistent: %+v", f)
			}
		})
	}
}

// TestEvaluateConcerns checks that only hazards concerning the mechanism
// produce findings, in catalog order.
func TestEvaluateConcerns(t *testing.T) {
	k := kern(t, "5.4.0")
	for _, tc := range []struct {
		m    probe.Mechanism
		want []hazards.ID
	}{
		{probe.Fentry, []hazards.ID{"x86-text-poke-race", "fentry-zap-pid-ns-deadlock"}},
		{probe.Kretprobe, []hazards.ID{"x86-text-poke-race", "kretprobe-contention"}},
		{probe.Uretprobe, []hazards.ID{"uprobe-mmap-lock-stall", "uretprobe-seccomp-kill"}},
		{probe.PerfEventHardware, []hazards.ID{"nmi-user-read-deadlock"}},
		{probe.PerfEventSoftware, nil},
	} {
		var got []hazards.ID
		for _, f := range hazards.Builtin().Evaluate(k, hazards.Attachment{Mechanism: tc.m}) {
			got = append(got, f.ID)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: findings (-want +got):\n%s", tc.m, diff)
		}
	}
	if got := hazards.Builtin().Evaluate(nil, hazards.Attachment{Mechanism: probe.Fentry}); len(got) != 2 || got[1].Verdict != hazards.Unknown {
		t.Errorf("nil kernel: got %+v, want two findings, unknown", got)
	}
	var zero hazards.Catalog
	if got := zero.Evaluate(k, hazards.Attachment{Mechanism: probe.Fentry}); got != nil {
		t.Errorf("zero catalog: got %+v", got)
	}
}
