package fallback_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/probe"
)

// Real kernel identities, described offline the way `safebpf check` does.
var (
	ubuntu2404OSRelease = "NAME=\"Ubuntu\"\nID=ubuntu\nVERSION_ID=\"24.04\"\n"
	ubuntu2004OSRelease = "NAME=\"Ubuntu\"\nID=ubuntu\nVERSION_ID=\"20.04\"\n"
	debianOSRelease     = "NAME=\"Debian GNU/Linux\"\nID=debian\nVERSION_ID=\"12\"\n"

	// Ubuntu 24.04 GA kernel before the RCU-tasks backport (Datadog hit the hang here).
	ubuntu680_53 = probe.Description{Release: "6.8.0-53-generic", VersionSignature: "Ubuntu 6.8.0-53.55-generic 6.8.12", OSRelease: ubuntu2404OSRelease, CPUs: 8}
	// Ubuntu 24.04 with the backport (ABI 86).
	ubuntu680_86 = probe.Description{Release: "6.8.0-86-generic", VersionSignature: "Ubuntu 6.8.0-86.87-generic 6.8.12", OSRelease: ubuntu2404OSRelease, CPUs: 8}
	// Upstream 5.5.19: trampolines exist, inside the INT3 text_poke race.
	upstream5519 = probe.Description{Release: "5.5.19", CPUs: 4}
	// Ubuntu 20.04 GA kernel: 5.4 line, inside the text_poke race, before fentry.
	ubuntu540 = probe.Description{Release: "5.4.0-150-generic", VersionSignature: "Ubuntu 5.4.0-150.167-generic 5.4.233", OSRelease: ubuntu2004OSRelease, CPUs: 4}
	// Debian 12 point release with the NMI user-read deadlock.
	debian6130 = probe.Description{Release: "6.1.0-9-amd64", ProcVersion: "Linux version 6.1.0-9-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.30-1 (2023-05-24)", OSRelease: debianOSRelease, CPUs: 4}
	debian6136 = probe.Description{Release: "6.1.0-10-amd64", ProcVersion: "Linux version 6.1.0-10-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.37-1 (2023-07-03)", OSRelease: debianOSRelease, CPUs: 4}
	// A big 6.1.30 machine whose kallsyms still has the RCU-tasks exit SRCU.
	big6130 = probe.Description{Release: "6.1.30", CPUs: 128, Kallsyms: "0000000000000000 d tasks_rcu_exit_srcu\n0000000000000000 T copy_from_user_nofault\n", Facts: hazards.Builtin().Facts()}
	big612  = probe.Description{Release: "6.12.10", CPUs: 128}
	// 6.6.107 carries the RCU-tasks fix (fexit safe) but still has the kretprobe freelist.
	big66107 = probe.Description{Release: "6.6.107", CPUs: 128}
	// 6.12 with the uretprobe syscall.
	k6125  = probe.Description{Release: "6.12.5", CPUs: 4, Kallsyms: "0000000000000000 T __x64_sys_uretprobe\n", Facts: hazards.Builtin().Facts()}
	k61214 = probe.Description{Release: "6.12.14", CPUs: 4, Kallsyms: "0000000000000000 T __x64_sys_uretprobe\n", Facts: hazards.Builtin().Facts()}
	// 5.10.20 (before e21aa341785c reached 5.10.28), built without
	// preemption; without kprobes in the second form.
	k51020       = probe.Description{Release: "5.10.20", ProcVersion: "Linux version 5.10.20 (root@box) (gcc (Debian 10.2.1-6) 10.2.1 20210110, GNU ld (GNU Binutils for Debian) 2.35.2) #1 SMP Tue Mar  2 10:00:00 UTC 2021", CPUs: 128}
	k51020NoKprb = probe.Description{Release: "5.10.20", ProcVersion: k51020.ProcVersion, CPUs: 128, Config: "# CONFIG_KPROBES is not set\nCONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS=y\nCONFIG_HARDENED_USERCOPY=y\n"}
	k51028NoKprb = probe.Description{Release: "5.10.28", ProcVersion: strings.Replace(k51020.ProcVersion, "5.10.20", "5.10.28", 1), CPUs: 128, Config: k51020NoKprb.Config}
	k6140        = probe.Description{Release: "6.14.0", CPUs: 4}
	k51019       = probe.Description{Release: "5.10.19", CPUs: 4}
	arm5419      = probe.Description{Release: "5.4.19", Arch: "arm64", CPUs: 4}
)

func describe(tb testing.TB, d probe.Description) *probe.Kernel {
	tb.Helper()
	k, err := probe.Describe(d)
	if err != nil {
		tb.Fatalf("describe %q: %v", d.Release, err)
	}
	return k
}

type stepKey struct {
	From, To probe.Mechanism
	Action   fallback.Action
	Hazard   hazards.ID
	Missing  probe.Mechanism
	Forced   bool
}

func stepKeys(ss []fallback.Step) []stepKey {
	var out []stepKey
	for _, s := range ss {
		out = append(out, stepKey{s.From, s.To, s.Action, s.Hazard, s.Missing, s.Forced})
	}
	return out
}

func alt(ms ...probe.Mechanism) []probe.Mechanism { return ms }

func TestPlanBuiltinCatalog(t *testing.T) {
	hw99 := &fallback.PerfEvent{Hardware: true, Frequency: 99}
	tests := []struct {
		name       string
		k          probe.Description
		req        fallback.Request
		pol        *hazards.Policy
		chosen     probe.Mechanism
		action     fallback.Action
		settings   fallback.Settings
		steps      []stepKey
		refusedBy  []hazards.ID
		errHas     []string
		forced     []hazards.ID
		findingIDs []hazards.ID // hazards that must be among the findings
	}{
		{
			name: "fentry-zap-pid-ns-deadlock: Ubuntu 6.8.0-53 fentry → kprobe",
			k:    ubuntu680_53, req: fallback.Request{Mechanism: probe.Fentry, Target: "do_unlinkat", Alternatives: alt(probe.Kprobe)},
			chosen: probe.Kprobe, action: fallback.Downgrade,
			steps:      []stepKey{{From: probe.Fentry, To: probe.Kprobe, Action: fallback.Downgrade, Hazard: "fentry-zap-pid-ns-deadlock"}},
			findingIDs: []hazards.ID{"fentry-zap-pid-ns-deadlock", "x86-text-poke-race"},
		},
		{
			name: "fentry-zap-pid-ns-deadlock: Ubuntu 6.8.0-86 carries the fix",
			k:    ubuntu680_86, req: fallback.Request{Mechanism: probe.Fentry, Alternatives: alt(probe.Kprobe)},
			chosen: probe.Fentry, action: fallback.Allow,
		},
		{
			name: "fentry-zap-pid-ns-deadlock: no kprobe variant → refusal",
			k:    ubuntu680_53, req: fallback.Request{Mechanism: probe.Fentry, Target: "do_unlinkat"},
			action:    fallback.Refuse,
			steps:     []stepKey{{From: probe.Fentry, Action: fallback.Refuse, Hazard: "fentry-zap-pid-ns-deadlock"}},
			refusedBy: []hazards.ID{"fentry-zap-pid-ns-deadlock"},
			errHas:    []string{`attach fentry to "do_unlinkat" refused`, "6.8.0-53-generic", "upstream 6.8.12", "-safebpf-force=fentry-zap-pid-ns-deadlock", "SAFEBPF_FORCE=fentry-zap-pid-ns-deadlock", "no kprobe variant"},
		},
		{
			name: "fentry-zap-pid-ns-deadlock: fexit → kretprobe, then kretprobe-contention caps (chain)",
			k:    big6130, req: fallback.Request{Mechanism: probe.Fexit, Target: "vfs_read", Alternatives: alt(probe.Kretprobe)},
			chosen: probe.Kretprobe, action: fallback.Downgrade, settings: fallback.Settings{MaxActive: 512},
			steps: []stepKey{
				{From: probe.Fexit, To: probe.Kretprobe, Action: fallback.Downgrade, Hazard: "fentry-zap-pid-ns-deadlock"},
				{From: probe.Kretprobe, To: probe.Kretprobe, Action: fallback.Cap, Hazard: "kretprobe-contention"}, {From: probe.Kretprobe, To: probe.Kretprobe, Action: fallback.Cap, Hazard: "kretprobe-pool-exhaustion"},
			},
		},
		{
			name: "kretprobe-contention: few CPUs; the default pool still runs out → cap (kretprobe-pool-exhaustion)",
			k:    debian6130, req: fallback.Request{Mechanism: probe.Kretprobe},
			chosen: probe.Kretprobe, action: fallback.Cap, settings: fallback.Settings{MaxActive: 512},
			steps:      []stepKey{{From: probe.Kretprobe, To: probe.Kretprobe, Action: fallback.Cap, Hazard: "kretprobe-pool-exhaustion"}},
			findingIDs: []hazards.ID{"kretprobe-contention"},
		},
		{
			name: "kretprobe-contention: safe fexit on 6.6.107 → upgrade",
			k:    big66107, req: fallback.Request{Mechanism: probe.Kretprobe, Alternatives: alt(probe.Fexit)},
			chosen: probe.Fexit, action: fallback.Upgrade,
			steps: []stepKey{{From: probe.Kretprobe, To: probe.Fexit, Action: fallback.Upgrade, Hazard: "kretprobe-contention"}},
		},
		{
			name: "kretprobe-contention: no fexit variant → cap the requested maxactive",
			k:    big66107, req: fallback.Request{Mechanism: probe.Kretprobe, MaxActive: 8000},
			chosen: probe.Kretprobe, action: fallback.Cap, settings: fallback.Settings{MaxActive: 4096},
			steps: []stepKey{{From: probe.Kretprobe, To: probe.Kretprobe, Action: fallback.Cap, Hazard: "kretprobe-contention"}, {From: probe.Kretprobe, To: probe.Kretprobe, Action: fallback.Cap, Hazard: "kretprobe-pool-exhaustion"}},
		},
		{
			name: "kretprobe-contention: policy maxactive override",
			k:    big66107, req: fallback.Request{Mechanism: probe.Kretprobe},
			pol: &hazards.Policy{APIVersion: "safebpf/v1", Hazards: map[hazards.ID]hazards.Override{
				"kretprobe-contention":      {Params: hazards.Params{MaxActive: 256}},
				"kretprobe-pool-exhaustion": {Params: hazards.Params{MaxActive: 256}},
			}},
			chosen: probe.Kretprobe, action: fallback.Cap, settings: fallback.Settings{MaxActive: 256},
			steps: []stepKey{{From: probe.Kretprobe, To: probe.Kretprobe, Action: fallback.Cap, Hazard: "kretprobe-contention"}, {From: probe.Kretprobe, To: probe.Kretprobe, Action: fallback.Cap, Hazard: "kretprobe-pool-exhaustion"}},
		},
		{
			name: "kretprobe-contention: two caps, the larger wins",
			k:    big66107, req: fallback.Request{Mechanism: probe.Kretprobe},
			pol:    &hazards.Policy{APIVersion: "safebpf/v1", Hazards: map[hazards.ID]hazards.Override{"kretprobe-contention": {Params: hazards.Params{MaxActive: 1024}}}},
			chosen: probe.Kretprobe, action: fallback.Cap, settings: fallback.Settings{MaxActive: 1024},
			steps: []stepKey{{From: probe.Kretprobe, To: probe.Kretprobe, Action: fallback.Cap, Hazard: "kretprobe-contention"}, {From: probe.Kretprobe, To: probe.Kretprobe, Action: fallback.Cap, Hazard: "kretprobe-pool-exhaustion"}},
		},
		{
			name: "kretprobe-contention: min_cpus override makes 4 CPUs count",
			k:    debian6136, req: fallback.Request{Mechanism: probe.Kretprobe},
			pol:    &hazards.Policy{APIVersion: "safebpf/v1", Hazards: map[hazards.ID]hazards.Override{"kretprobe-contention": {MinCPUs: 4}}},
			chosen: probe.Kretprobe, action: fallback.Cap, settings: fallback.Settings{MaxActive: 512},
			steps: []stepKey{{From: probe.Kretprobe, To: probe.Kretprobe, Action: fallback.Cap, Hazard: "kretprobe-contention"}, {From: probe.Kretprobe, To: probe.Kretprobe, Action: fallback.Cap, Hazard: "kretprobe-pool-exhaustion"}},
		},
		{
			name: "nmi-user-read-deadlock: Debian 6.1.30 hardware perf reading user memory → refused, naming the fixes",
			k:    debian6130, req: fallback.Request{Mechanism: probe.PerfEventHardware, Target: "cycles", PerfEvent: hw99, ReadsUserMemory: true},
			action:    fallback.Refuse,
			steps:     []stepKey{{From: probe.PerfEventHardware, Action: fallback.Refuse, Hazard: "nmi-user-read-deadlock"}},
			refusedBy: []hazards.ID{"nmi-user-read-deadlock"},
			errHas:    []string{"fixed in 6.1.36, 6.3.10, 6.4", "perf-event-software is no remedy for a hazard", "SAFEBPF_FORCE=nmi-user-read-deadlock"},
		},
		{
			name: "nmi-user-read-deadlock: the software cpu-clock event deadlocks too (C1) → refused",
			k:    debian6130, req: fallback.Request{Mechanism: probe.PerfEventSoftware, PerfEvent: &fallback.PerfEvent{Frequency: 99}, ReadsUserMemory: true},
			action:    fallback.Refuse,
			steps:     []stepKey{{From: probe.PerfEventSoftware, Action: fallback.Refuse, Hazard: "nmi-user-read-deadlock"}},
			refusedBy: []hazards.ID{"nmi-user-read-deadlock"},
			errHas:    []string{"fixed in 6.1.36"},
		},
		{
			name: "nmi-user-stack-deadlock: a profiler that only takes user stacks keeps hardware on 6.1 (fixed in 6.0)",
			k:    debian6130, req: fallback.Request{Mechanism: probe.PerfEventHardware, PerfEvent: hw99, ReadsUserStacks: true},
			chosen: probe.PerfEventHardware, action: fallback.Allow, settings: fallback.Settings{PerfEvent: hw99},
			findingIDs: []hazards.ID{"nmi-user-read-deadlock", "nmi-user-stack-deadlock"},
		},
		{
			name: "nmi-user-read-deadlock: a kprobe reading user memory may run in IRQ → unknown, refused by default",
			k:    debian6130, req: fallback.Request{Mechanism: probe.Kprobe, Target: "do_sys_openat2", ReadsUserMemory: true, Alternatives: alt(probe.Fentry)},
			action: fallback.Refuse,
			steps: []stepKey{
				{From: probe.Kprobe, To: probe.Fentry, Action: fallback.Upgrade, Hazard: "nmi-user-read-deadlock"},
				{From: probe.Fentry, Action: fallback.Refuse, Hazard: "nmi-user-read-deadlock"},
			},
			refusedBy: []hazards.ID{"nmi-user-read-deadlock", "fentry-zap-pid-ns-deadlock"},
			errHas:    []string{"verdict unknown, treated as not safe", "run in interrupt context only when what they trace does"},
		},
		{
			name: "nmi-user-read-deadlock: the same kprobe on a syscall wrapper runs only in process context → allowed",
			k:    debian6130, req: fallback.Request{Mechanism: probe.Kprobe, Target: "__x64_sys_openat", AttachTo: []string{"__x64_sys_openat"}, ReadsUserMemory: true, Alternatives: alt(probe.Fentry)},
			chosen: probe.Kprobe, action: fallback.Allow,
			findingIDs: []hazards.ID{"nmi-user-read-deadlock"},
		},
		{
			name: "nmi-user-read-deadlock: a kprobe-multi on wrappers and one other function → unknown, refused",
			k:    debian6130, req: fallback.Request{Mechanism: probe.KprobeMulti, AttachTo: []string{"__x64_sys_openat", "do_sys_openat2"}, Targets: 2, ReadsUserMemory: true},
			action:    fallback.Refuse,
			steps:     []stepKey{{From: probe.KprobeMulti, Action: fallback.Refuse, Hazard: "nmi-user-read-deadlock"}},
			refusedBy: []hazards.ID{"nmi-user-read-deadlock"},
			errHas:    []string{`"do_sys_openat2" is not a syscall entry point`},
		},
		{
			name: "nmi-user-read-deadlock: a syscall tracepoint reading user memory → allowed",
			k:    debian6130, req: fallback.Request{Mechanism: probe.Tracepoint, AttachTo: []string{"syscalls/sys_enter_openat"}, ReadsUserMemory: true},
			chosen: probe.Tracepoint, action: fallback.Allow,
			findingIDs: []hazards.ID{"nmi-user-read-deadlock"},
		},
		{
			name: "nmi-user-read-deadlock: on_unknown warn lets the kprobe attach with a warning",
			k:    debian6130, req: fallback.Request{Mechanism: probe.Kprobe, ReadsUserMemory: true},
			pol:    &hazards.Policy{APIVersion: "safebpf/v1", Hazards: map[hazards.ID]hazards.Override{"nmi-user-read-deadlock": {OnUnknown: hazards.OnUnknownWarn}}},
			chosen: probe.Kprobe, action: fallback.Warn,
			steps: []stepKey{{From: probe.Kprobe, To: probe.Kprobe, Action: fallback.Warn, Hazard: "nmi-user-read-deadlock"}},
		},
		{
			name: "nmi-user-read-deadlock: on_unknown allow attaches silently, the finding stays",
			k:    debian6130, req: fallback.Request{Mechanism: probe.Kprobe, ReadsUserMemory: true},
			pol:    &hazards.Policy{APIVersion: "safebpf/v1", Hazards: map[hazards.ID]hazards.Override{"nmi-user-read-deadlock": {OnUnknown: hazards.OnUnknownAllow}}},
			chosen: probe.Kprobe, action: fallback.Allow,
			findingIDs: []hazards.ID{"nmi-user-read-deadlock"},
		},
		{
			name: "fexit-sleeping-detach-crash: kretprobe contention does not upgrade to fexit on 5.10.20 → cap",
			k:    k51020, req: fallback.Request{Mechanism: probe.Kretprobe, Alternatives: alt(probe.Fexit)},
			chosen: probe.Kretprobe, action: fallback.Cap, settings: fallback.Settings{MaxActive: 512},
			steps:      []stepKey{{From: probe.Kretprobe, To: probe.Kretprobe, Action: fallback.Cap, Hazard: "kretprobe-contention"}, {From: probe.Kretprobe, To: probe.Kretprobe, Action: fallback.Cap, Hazard: "kretprobe-pool-exhaustion"}},
			findingIDs: []hazards.ID{"fexit-sleeping-detach-crash"},
		},
		{
			name: "fexit-sleeping-detach-crash: no kprobes, fexit affected → refused",
			k:    k51020NoKprb, req: fallback.Request{Mechanism: probe.Kretprobe, Alternatives: alt(probe.Fexit)},
			action: fallback.Refuse,
			steps: []stepKey{
				{From: probe.Kretprobe, To: probe.Fexit, Action: fallback.Upgrade, Missing: probe.Kretprobe},
				{From: probe.Fexit, Action: fallback.Refuse, Hazard: "fexit-sleeping-detach-crash"},
			},
			refusedBy: []hazards.ID{"fexit-sleeping-detach-crash"},
			errHas:    []string{"kretprobe is not available", "fixed in 5.10.28, 5.11.11, 5.12"},
		},
		{
			name: "fexit-sleeping-detach-crash: 5.10.28 carries the fix → upgrade to fexit",
			k:    k51028NoKprb, req: fallback.Request{Mechanism: probe.Kretprobe, Alternatives: alt(probe.Fexit)},
			chosen: probe.Fexit, action: fallback.Upgrade,
			steps: []stepKey{{From: probe.Kretprobe, To: probe.Fexit, Action: fallback.Upgrade, Missing: probe.Kretprobe}},
		},
		{
			name: "fentry-tail-call-break: a tail-calling fentry program on 6.12 attaches with a warning",
			k:    k61214, req: fallback.Request{Mechanism: probe.Fentry, TailCalls: true, Alternatives: alt(probe.Kprobe)},
			chosen: probe.Fentry, action: fallback.Warn,
			steps: []stepKey{{From: probe.Fentry, To: probe.Fentry, Action: fallback.Warn, Hazard: "fentry-tail-call-break"}},
		},
		{
			name: "x86-text-poke-race: tp-btf → raw-tracepoint → tracepoint, all patch text (chain to refusal)",
			k:    upstream5519, req: fallback.Request{Mechanism: probe.TpBTF, Target: "sched_switch", Alternatives: alt(probe.RawTracepoint, probe.Tracepoint)},
			action: fallback.Refuse,
			steps: []stepKey{
				{From: probe.TpBTF, To: probe.RawTracepoint, Action: fallback.Downgrade, Hazard: "x86-text-poke-race"},
				{From: probe.RawTracepoint, To: probe.Tracepoint, Action: fallback.Downgrade, Hazard: "x86-text-poke-race"},
				{From: probe.Tracepoint, Action: fallback.Refuse, Hazard: "x86-text-poke-race"},
			},
			refusedBy: []hazards.ID{"x86-text-poke-race"},
			errHas:    []string{"tried tp-btf then raw-tracepoint then tracepoint"},
		},
		{
			name: "nmi-user-read-deadlock: not reading user memory → hardware",
			k:    debian6130, req: fallback.Request{Mechanism: probe.PerfEventHardware, PerfEvent: hw99},
			chosen: probe.PerfEventHardware, action: fallback.Allow, settings: fallback.Settings{PerfEvent: hw99},
			findingIDs: []hazards.ID{"nmi-user-read-deadlock"},
		},
		{
			name: "nmi-user-read-deadlock: Debian 6.1.37 is fixed",
			k:    debian6136, req: fallback.Request{Mechanism: probe.PerfEventHardware, PerfEvent: hw99, ReadsUserMemory: true},
			chosen: probe.PerfEventHardware, action: fallback.Allow, settings: fallback.Settings{PerfEvent: hw99},
		},
		{
			name: "nmi-user-read-deadlock: pinned → refusal",
			k:    debian6130, req: fallback.Request{Mechanism: probe.PerfEventHardware, PerfEvent: hw99, ReadsUserMemory: true, Pinned: true},
			action:    fallback.Refuse,
			steps:     []stepKey{{From: probe.PerfEventHardware, Action: fallback.Refuse, Hazard: "nmi-user-read-deadlock"}},
			refusedBy: []hazards.ID{"nmi-user-read-deadlock"},
			errHas:    []string{"pinned"},
		},
		{
			name: "x86-text-poke-race: fentry refused → kprobe refused too (chain to refusal)",
			k:    upstream5519, req: fallback.Request{Mechanism: probe.Fentry, Target: "do_unlinkat", Alternatives: alt(probe.Kprobe)},
			action: fallback.Refuse,
			steps: []stepKey{
				{From: probe.Fentry, To: probe.Kprobe, Action: fallback.Downgrade, Hazard: "x86-text-poke-race"},
				{From: probe.Kprobe, Action: fallback.Refuse, Hazard: "x86-text-poke-race"},
			},
			refusedBy: []hazards.ID{"x86-text-poke-race", "fentry-zap-pid-ns-deadlock"},
			errHas:    []string{"tried fentry then kprobe", "x86-text-poke-race blocks fentry and kprobe", ">= 5.3, < 5.6", "fixed in 5.6", "-safebpf-force=x86-text-poke-race"},
		},
		{
			name: "x86-text-poke-race forced: fentry still downgraded by the zap deadlock, kprobe forced",
			k:    upstream5519, req: fallback.Request{Mechanism: probe.Fentry, Alternatives: alt(probe.Kprobe)},
			pol:    &hazards.Policy{APIVersion: "safebpf/v1", Force: []hazards.ID{"x86-text-poke-race"}},
			chosen: probe.Kprobe, action: fallback.Downgrade, forced: []hazards.ID{"x86-text-poke-race"},
			steps: []stepKey{
				{From: probe.Fentry, To: probe.Kprobe, Action: fallback.Downgrade, Hazard: "fentry-zap-pid-ns-deadlock"},
				{From: probe.Kprobe, To: probe.Kprobe, Action: fallback.Warn, Hazard: "x86-text-poke-race", Forced: true},
			},
		},
		{
			name: "x86-text-poke-race: Ubuntu 5.4 kprobe refused, fentry absent",
			k:    ubuntu540, req: fallback.Request{Mechanism: probe.Kprobe, Alternatives: alt(probe.Fentry)},
			action: fallback.Refuse,
			steps: []stepKey{
				{From: probe.Kprobe, To: probe.Fentry, Action: fallback.Upgrade, Hazard: "x86-text-poke-race"},
				{From: probe.Fentry, Action: fallback.Refuse, Missing: probe.Fentry},
			},
			refusedBy: []hazards.ID{"x86-text-poke-race"},
			errHas:    []string{"fentry is not available"},
		},
		{
			name: "x86-text-poke-race: uprobes stay allowed on 5.4 (paced)",
			k:    ubuntu540, req: fallback.Request{Mechanism: probe.Uprobe},
			chosen: probe.Uprobe, action: fallback.Pace, settings: fallback.Settings{Pacing: &fallback.Pacing{Interval: time.Millisecond, Concurrency: 1}},
			steps: []stepKey{{From: probe.Uprobe, To: probe.Uprobe, Action: fallback.Pace, Hazard: "uprobe-mmap-lock-stall"}},
		},
		{
			name: "x86-text-poke-race: arm64 5.4 kprobe allowed",
			k:    arm5419, req: fallback.Request{Mechanism: probe.Kprobe},
			chosen: probe.Kprobe, action: fallback.Allow,
			findingIDs: []hazards.ID{"x86-text-poke-race"},
		},
		{
			name: "uprobe-mmap-lock-stall: policy pacing",
			k:    k6125, req: fallback.Request{Mechanism: probe.Uprobe},
			pol:    &hazards.Policy{APIVersion: "safebpf/v1", Uprobes: hazards.UprobePacing{Interval: hazards.Duration(25 * time.Millisecond), Concurrency: 2}},
			chosen: probe.Uprobe, action: fallback.Pace, settings: fallback.Settings{Pacing: &fallback.Pacing{Interval: 25 * time.Millisecond, Concurrency: 2}},
			steps: []stepKey{{From: probe.Uprobe, To: probe.Uprobe, Action: fallback.Pace, Hazard: "uprobe-mmap-lock-stall"}},
		},
		{
			name: "uprobe-mmap-lock-stall: 6.14 is fixed",
			k:    k6140, req: fallback.Request{Mechanism: probe.Uprobe},
			chosen: probe.Uprobe, action: fallback.Allow,
		},
		{
			name: "many uprobes on 6.12 → uprobe-multi, paced",
			k:    k6125, req: fallback.Request{Mechanism: probe.Uprobe, Targets: 4, Alternatives: alt(probe.UprobeMulti)},
			chosen: probe.UprobeMulti, action: fallback.Upgrade, settings: fallback.Settings{Multi: true, Pacing: &fallback.Pacing{Interval: time.Millisecond, Concurrency: 1, Batch: 50}},
			steps: []stepKey{
				{From: probe.Uprobe, To: probe.UprobeMulti, Action: fallback.Upgrade},
				{From: probe.UprobeMulti, To: probe.UprobeMulti, Action: fallback.Pace, Hazard: "uprobe-mmap-lock-stall"},
			},
		},
		{
			name: "kretprobe-contention: 6.12 has objpool; the default pool still runs out → cap (kretprobe-pool-exhaustion)",
			k:    big612, req: fallback.Request{Mechanism: probe.Kretprobe},
			chosen: probe.Kretprobe, action: fallback.Cap, settings: fallback.Settings{MaxActive: 512},
			steps:      []stepKey{{From: probe.Kretprobe, To: probe.Kretprobe, Action: fallback.Cap, Hazard: "kretprobe-pool-exhaustion"}},
			findingIDs: []hazards.ID{"kretprobe-contention"},
		},
		{
			name: "kretprobe-pool-exhaustion: safe fexit on 6.12 → upgrade (hazard lab scenario 2)",
			k:    big612, req: fallback.Request{Mechanism: probe.Kretprobe, Alternatives: alt(probe.Fexit)},
			chosen: probe.Fexit, action: fallback.Upgrade,
			steps: []stepKey{{From: probe.Kretprobe, To: probe.Fexit, Action: fallback.Upgrade, Hazard: "kretprobe-pool-exhaustion"}},
		},
		{
			name: "many kprobes on 6.12 → kprobe-multi",
			k:    big612, req: fallback.Request{Mechanism: probe.Kprobe, Targets: 10, Alternatives: alt(probe.KprobeMulti)},
			chosen: probe.KprobeMulti, action: fallback.Upgrade, settings: fallback.Settings{Multi: true},
			steps: []stepKey{{From: probe.Kprobe, To: probe.KprobeMulti, Action: fallback.Upgrade}},
		},
		{
			name: "many kprobes on 5.10 → no multi link, and the decision says so",
			k:    k51019, req: fallback.Request{Mechanism: probe.Kprobe, Targets: 10, Alternatives: alt(probe.KprobeMulti)},
			chosen: probe.Kprobe, action: fallback.Allow,
			steps: []stepKey{{From: probe.Kprobe, To: probe.Kprobe, Action: fallback.Allow, Missing: probe.KprobeMulti}},
		},
		{
			name: "many kprobes without a kprobe-multi form → one link each, and the decision says so",
			k:    big612, req: fallback.Request{Mechanism: probe.Kprobe, Targets: 10},
			chosen: probe.Kprobe, action: fallback.Allow,
			steps: []stepKey{{From: probe.Kprobe, To: probe.Kprobe, Action: fallback.Allow}},
		},
		{
			name: "uretprobe-seccomp-kill: 6.12 with the syscall, traced process under seccomp → refusal",
			k:    k6125, req: fallback.Request{Mechanism: probe.Uretprobe, Target: "/usr/bin/bash:readline", Seccomp: true},
			action:    fallback.Refuse,
			steps:     []stepKey{{From: probe.Uretprobe, Action: fallback.Refuse, Hazard: "uretprobe-seccomp-kill"}},
			refusedBy: []hazards.ID{"uretprobe-seccomp-kill"},
			errHas:    []string{"SAFEBPF_FORCE=uretprobe-seccomp-kill"},
		},
		{
			name: "uretprobe-seccomp-kill: 6.12.14 carries the fix (C3) → attach, paced",
			k:    k61214, req: fallback.Request{Mechanism: probe.Uretprobe, Seccomp: true},
			chosen: probe.Uretprobe, action: fallback.Pace, settings: fallback.Settings{Pacing: &fallback.Pacing{Interval: time.Millisecond, Concurrency: 1}},
			steps:      []stepKey{{From: probe.Uretprobe, To: probe.Uretprobe, Action: fallback.Pace, Hazard: "uprobe-mmap-lock-stall"}},
			findingIDs: []hazards.ID{"uretprobe-seccomp-kill"},
		},
		{
			name: "uretprobe-seccomp-kill: uretprobe-multi under seccomp → uretprobe, refused too",
			k:    k6125, req: fallback.Request{Mechanism: probe.UretprobeMulti, Seccomp: true, Alternatives: alt(probe.Uretprobe)},
			action: fallback.Refuse,
			steps: []stepKey{
				{From: probe.UretprobeMulti, To: probe.Uretprobe, Action: fallback.Downgrade, Hazard: "uretprobe-seccomp-kill"},
				{From: probe.Uretprobe, Action: fallback.Refuse, Hazard: "uretprobe-seccomp-kill"},
			},
			refusedBy: []hazards.ID{"uretprobe-seccomp-kill"},
			errHas:    []string{"fixed in 6.12.14, 6.13.3, 6.14"},
		},
		{
			name: "many uretprobes on 6.12.14 → uretprobe-multi, paced",
			k:    k61214, req: fallback.Request{Mechanism: probe.Uretprobe, Targets: 3, Alternatives: alt(probe.UretprobeMulti)},
			chosen: probe.UretprobeMulti, action: fallback.Upgrade, settings: fallback.Settings{Multi: true, Pacing: &fallback.Pacing{Interval: time.Millisecond, Concurrency: 1, Batch: 50}},
			steps: []stepKey{
				{From: probe.Uretprobe, To: probe.UretprobeMulti, Action: fallback.Upgrade},
				{From: probe.UretprobeMulti, To: probe.UretprobeMulti, Action: fallback.Pace, Hazard: "uprobe-mmap-lock-stall"},
			},
		},
		{
			name: "uretprobe-seccomp-kill: no seccomp → attach, paced",
			k:    k6125, req: fallback.Request{Mechanism: probe.Uretprobe},
			chosen: probe.Uretprobe, action: fallback.Pace, settings: fallback.Settings{Pacing: &fallback.Pacing{Interval: time.Millisecond, Concurrency: 1}},
			steps:      []stepKey{{From: probe.Uretprobe, To: probe.Uretprobe, Action: fallback.Pace, Hazard: "uprobe-mmap-lock-stall"}},
			findingIDs: []hazards.ID{"uretprobe-seccomp-kill"},
		},
		{
			name: "policy disables a hazard",
			k:    ubuntu680_53, req: fallback.Request{Mechanism: probe.Fentry, Alternatives: alt(probe.Kprobe)},
			pol:    &hazards.Policy{APIVersion: "safebpf/v1", Hazards: map[hazards.ID]hazards.Override{"fentry-zap-pid-ns-deadlock": {Disable: true}}},
			chosen: probe.Fentry, action: fallback.Allow,
		},
		{
			name: "policy kernel assertion: fleet kernel carries the fix",
			k:    ubuntu680_53, req: fallback.Request{Mechanism: probe.Fentry, Alternatives: alt(probe.Kprobe)},
			pol:    &hazards.Policy{APIVersion: "safebpf/v1", Kernels: []hazards.KernelAssertion{{Release: `^6\.8\.0-53-generic$`, Fixed: []hazards.ID{"fentry-zap-pid-ns-deadlock"}, Reason: "vendor backport"}}},
			chosen: probe.Fentry, action: fallback.Allow,
		},
		{
			name: "warn mode on Ubuntu 6.8.0-53: fentry attaches, downgrade recorded",
			k:    ubuntu680_53, req: fallback.Request{Mechanism: probe.Fentry, Alternatives: alt(probe.Kprobe)},
			pol:    &hazards.Policy{APIVersion: "safebpf/v1", Mode: hazards.Warn},
			chosen: probe.Fentry, action: fallback.Warn,
			steps: []stepKey{{From: probe.Fentry, To: probe.Kprobe, Action: fallback.Downgrade, Hazard: "fentry-zap-pid-ns-deadlock"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := describe(t, tt.k)
			d, err := fallback.Plan(k, mustWithPolicy(t, hazards.Builtin(), tt.pol), tt.req, tt.pol)
			if d.Chosen != tt.chosen || d.Action != tt.action {
				t.Errorf("chosen %q action %q, want %q %q; steps %+v", d.Chosen, d.Action, tt.chosen, tt.action, d.Steps)
			}
			if diff := cmp.Diff(tt.settings, d.Settings, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("settings (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.steps, stepKeys(d.Steps), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("steps (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.forced, d.Forced, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("forced (-want +got):\n%s", diff)
			}
			for _, id := range tt.findingIDs {
				found := false
				for _, f := range d.Findings {
					found = found || f.ID == id
				}
				if !found {
					t.Errorf("finding %s not among %+v", id, d.Findings)
				}
			}
			if tt.refusedBy == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var re *fallback.RefusedError
			if !errors.As(err, &re) || !errors.Is(err, fallback.ErrRefused) {
				t.Fatalf("err = %v, want a *RefusedError matching ErrRefused", err)
			}
			if diff := cmp.Diff(tt.refusedBy, re.Hazards()); diff != "" {
				t.Errorf("blocking hazards (-want +got):\n%s", diff)
			}
			msg := err.Error()
			for _, s := range tt.errHas {
				if !strings.Contains(msg, s) {
					t.Errorf("error %q lacks %q", msg, s)
				}
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error is not one line: %q", msg)
			}
		})
	}
}

// TestPlanUnknownKernel: with nothing known, nothing is treated as safe.
func TestPlanUnknownKernel(t *testing.T) {
	k := &probe.Kernel{Release: "mystery", Arch: "amd64", VersionSource: probe.SourceNone, Mechanisms: map[probe.Mechanism]probe.Support{}}
	for _, m := range probe.Mechanisms() {
		k.Mechanisms[m] = probe.Supported("test: assume available")
	}
	d, err := fallback.Plan(k, nil, fallback.Request{Mechanism: probe.Fentry, Alternatives: alt(probe.Kprobe)}, nil)
	var re *fallback.RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want refusal on an unknown kernel", err)
	}
	if d.Action != fallback.Refuse {
		t.Errorf("action = %s", d.Action)
	}
	for _, s := range d.Steps {
		if !strings.Contains(s.Reason, "unknown") {
			t.Errorf("step reason %q does not say the verdict is unknown", s.Reason)
		}
	}
	if !strings.Contains(err.Error(), "verdict unknown") {
		t.Errorf("error %q does not say the verdict is unknown", err)
	}

	// Tracepoints are concerned only by the x86 race: refused while unknown on amd64 ...
	if _, err := fallback.Plan(k, nil, fallback.Request{Mechanism: probe.Tracepoint}, nil); !errors.Is(err, fallback.ErrRefused) {
		t.Errorf("tracepoint on unknown amd64 kernel: err = %v, want refusal", err)
	}
	// ... and allowed on arm64, where the race does not apply.
	k.Arch = "arm64"
	if d, err := fallback.Plan(k, nil, fallback.Request{Mechanism: probe.Tracepoint}, nil); err != nil || d.Chosen != probe.Tracepoint {
		t.Errorf("tracepoint on unknown arm64 kernel: %+v, %v", d, err)
	}
}

// TestPlanThisHost mirrors KERNELS.md: no kprobes, no fentry, no hardware
// perf events on a 6.18 guest.
func TestPlanThisHost(t *testing.T) {
	k := describe(t, probe.Description{Release: "6.18.0", CPUs: 2})
	k.Mechanisms[probe.Kprobe] = probe.Unsupported("CONFIG_KPROBES is not set")
	k.Mechanisms[probe.Kretprobe] = probe.Unsupported("CONFIG_KPROBES is not set")
	k.Mechanisms[probe.Fentry] = probe.Unsupported("BPF_PROG_LOAD tracing: EPERM")
	k.Mechanisms[probe.Fexit] = probe.Unsupported("BPF_PROG_LOAD tracing: EPERM")
	k.Mechanisms[probe.PerfEventHardware] = probe.Unsupported("perf_event_open(PERF_TYPE_HARDWARE): ENOENT")

	_, err := fallback.Plan(k, nil, fallback.Request{Mechanism: probe.Fentry, Target: "do_unlinkat", Alternatives: alt(probe.Kprobe)}, nil)
	var re *fallback.RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("fentry+kprobe: err = %v, want refusal", err)
	}
	if re.ErrorType() != "refused.unavailable" || re.ForceHint != "" || len(re.Missing) != 2 {
		t.Errorf("refusal = %+v", re)
	}
	for _, s := range []string{"EPERM", "CONFIG_KPROBES", "no force can help"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}

	d, err := fallback.Plan(k, nil, fallback.Request{Mechanism: probe.PerfEventHardware, PerfEvent: &fallback.PerfEvent{Hardware: true, Frequency: 99}, ReadsUserMemory: true}, nil)
	if err != nil || d.Chosen != probe.PerfEventSoftware || d.Steps[0].Missing != probe.PerfEventHardware {
		t.Errorf("hardware perf: %+v, %v", d, err)
	}
}

// TestPlanPolicyRules: a user rule from a parsed policy refuses once the
// policy is applied to the catalog (once, by the caller); a catalog that
// does not carry the policy's edits is an error, never a plan that
// silently ignores them.
func TestPlanPolicyRules(t *testing.T) {
	pol, err := hazards.ParsePolicy("policy.yaml", []byte(`apiVersion: safebpf/v1
rules:
  - id: fleet-tracepoint-bug
    title: Our vendor kernel oopses on this tracepoint
    summary: Seen on the fleet's 6.12 vendor build.
    references:
      - link: https://example.com/incident/42
    mechanisms: [tracepoint]
    affected: [">= 6.12, < 6.13"]
    action: refuse
`))
	if err != nil {
		t.Fatal(err)
	}
	k := describe(t, k6125)
	req := fallback.Request{Mechanism: probe.Tracepoint, Target: "syscalls/sys_enter_openat"}
	applied := mustWithPolicy(t, hazards.Builtin(), pol)
	for i := range 2 {
		d, err := fallback.Plan(k, applied, req, pol)
		var re *fallback.RefusedError
		if !errors.As(err, &re) || re.ErrorType() != "refused.fleet-tracepoint-bug" {
			t.Fatalf("plan %d: err = %v, want refusal by fleet-tracepoint-bug", i, err)
		}
		if d.Target != req.Target || d.Requested != req.Mechanism || d.Mode != hazards.Enforce {
			t.Errorf("plan %d: decision %+v lacks the request's target, mechanism or the mode", i, d)
		}
	}
	d, err := fallback.Plan(k, hazards.Builtin(), req, pol)
	if err == nil || errors.Is(err, fallback.ErrRefused) || !strings.Contains(err.Error(), "WithPolicy") {
		t.Errorf("base catalog with an editing policy: %v, want an error naming WithPolicy", err)
	}
	if d.Target != req.Target || d.Requested != req.Mechanism || d.Mode != hazards.Enforce {
		t.Errorf("decision of an invalid call %+v lacks the request's target, mechanism or the mode", d)
	}
	if d, err := fallback.Plan(k, nil, req, nil); err != nil || d.Chosen != probe.Tracepoint {
		t.Errorf("without the policy: %+v, %v", d, err)
	}
}

func mustWithPolicy(tb testing.TB, c *hazards.Catalog, p *hazards.Policy) *hazards.Catalog {
	tb.Helper()
	n, err := c.WithPolicy(p)
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// TestPlanEveryHazardActs checks that each built-in hazard, on some real
// kernel, changes a decision (so no catalog entry is dead for the planner).
func TestPlanEveryHazardActs(t *testing.T) {
	cases := map[hazards.ID]struct {
		k   probe.Description
		req fallback.Request
	}{
		"nmi-user-read-deadlock":      {debian6130, fallback.Request{Mechanism: probe.PerfEventHardware, ReadsUserMemory: true}},
		"nmi-user-stack-deadlock":     {probe.Description{Release: "5.19.5"}, fallback.Request{Mechanism: probe.PerfEventSoftware, ReadsUserStacks: true}},
		"fexit-sleeping-detach-crash": {k51020, fallback.Request{Mechanism: probe.Fexit, Alternatives: alt(probe.Kretprobe)}},
		"fentry-tail-call-break":      {k61214, fallback.Request{Mechanism: probe.Fentry, TailCalls: true}},
		"x86-text-poke-race":          {ubuntu540, fallback.Request{Mechanism: probe.Tracepoint}},
		"fentry-zap-pid-ns-deadlock":  {ubuntu680_53, fallback.Request{Mechanism: probe.Fexit, Alternatives: alt(probe.Kretprobe)}},
		"kretprobe-contention":        {big6130, fallback.Request{Mechanism: probe.Kretprobe}},
		"kretprobe-pool-exhaustion":   {debian6130, fallback.Request{Mechanism: probe.Kretprobe}},
		"uprobe-mmap-lock-stall":      {debian6130, fallback.Request{Mechanism: probe.Uprobe}},
		"uretprobe-seccomp-kill":      {k6125, fallback.Request{Mechanism: probe.Uretprobe, Seccomp: true}},
	}
	for _, h := range hazards.Builtin().Hazards() {
		t.Run(string(h.ID), func(t *testing.T) {
			c, ok := cases[h.ID]
			if !ok {
				t.Fatalf("no planner case for built-in hazard %s: add one", h.ID)
			}
			d, _ := fallback.Plan(describe(t, c.k), nil, c.req, nil)
			acted := false
			for _, s := range d.Steps {
				acted = acted || s.Hazard == h.ID
			}
			if !acted {
				t.Errorf("%s did not act: %+v", h.ID, d.Steps)
			}
			// Forcing it removes its effect.
			d, _ = fallback.Plan(describe(t, c.k), nil, c.req, &hazards.Policy{Force: []hazards.ID{h.ID}})
			for _, s := range d.Steps {
				if s.Hazard == h.ID && !s.Forced {
					t.Errorf("forced %s still acted: %+v", h.ID, s)
				}
			}
			if !containsID(d.Forced, h.ID) {
				t.Errorf("Forced = %v, want %s", d.Forced, h.ID)
			}
		})
	}
}

func containsID(ids []hazards.ID, id hazards.ID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

func BenchmarkPlan(b *testing.B) {
	cat := hazards.Builtin()
	for _, bc := range []struct {
		name string
		k    probe.Description
		req  fallback.Request
	}{
		{"allow", k6140, fallback.Request{Mechanism: probe.Tracepoint}},
		{"downgrade", ubuntu680_53, fallback.Request{Mechanism: probe.Fentry, Alternatives: alt(probe.Kprobe)}},
		{"chain-cap", big6130, fallback.Request{Mechanism: probe.Fexit, Alternatives: alt(probe.Kretprobe)}},
		{"refuse", upstream5519, fallback.Request{Mechanism: probe.Fentry, Alternatives: alt(probe.Kprobe)}},
	} {
		k := describe(b, bc.k)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = fallback.Plan(k, cat, bc.req, nil)
			}
		})
	}
}
