package hazards_test

import (
	"fmt"
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

// observed records live observations by fact key ("call:a->b"): true
// holds, false does not.
func observed(facts map[string]bool) func(*probe.Kernel) {
	return func(k *probe.Kernel) {
		k.Observations = map[string]probe.Observation{}
		for key, holds := range facts {
			k.Observations[key] = probe.Observed(holds, fmt.Sprintf("witness says %s %v", key, holds))
		}
	}
}

// preempt sets the preemption model as /proc/version would state it.
func preempt(yes bool) func(*probe.Kernel) {
	return func(k *probe.Kernel) {
		w := "/proc/version says SMP without PREEMPT"
		if yes {
			w = "/proc/version says SMP PREEMPT_DYNAMIC"
		}
		k.Preemption = probe.Preemption{Preemptible: &yes, Witness: w}
	}
}

func ubuntu(abi int) func(*probe.Kernel) {
	return func(k *probe.Kernel) {
		k.Distro = probe.Distro{ID: "ubuntu", UbuntuABI: abi}
	}
}

func distro(id string) func(*probe.Kernel) {
	return func(k *probe.Kernel) { k.Distro = probe.Distro{ID: id} }
}

func rhel(tag, build string) func(*probe.Kernel) {
	return func(k *probe.Kernel) { k.Distro = probe.Distro{ID: "rhel", RHEL: tag, RHELBuild: build} }
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

// The fact keys of the built-in evidence.
const (
	vmapCall   = "call:__check_object_size->find_vmap_area"
	nofaultFix = "call:copy_from_user_nofault->nmi_uaccess_okay"
	nmiCheck   = "call:copy_from_user_nmi->__check_object_size"
	tailBTF    = "btf:bpf_map.owner.attach_func_proto"
	seccompST  = "selftest:uretprobe-seccomp-kill"
)

// at is a with its targets.
func at(a hazards.Attachment, targets ...string) hazards.Attachment {
	a.AttachTo = targets
	return a
}

// TestEvaluate holds the built-in catalog against the research notes
// (HAZARDS-RESEARCH.md, section 0 first): each row names the fact it
// checks.
func TestEvaluate(t *testing.T) {
	hw := hazards.Attachment{Mechanism: probe.PerfEventHardware, ReadsUserMemory: true}
	sw := hazards.Attachment{Mechanism: probe.PerfEventSoftware, ReadsUserMemory: true}
	kpRead := hazards.Attachment{Mechanism: probe.Kprobe, ReadsUserMemory: true}
	stackHW := hazards.Attachment{Mechanism: probe.PerfEventHardware, ReadsUserStacks: true}
	stackSW := hazards.Attachment{Mechanism: probe.PerfEventSoftware, ReadsUserStacks: true}
	kp := hazards.Attachment{Mechanism: probe.Kprobe}
	fe := hazards.Attachment{Mechanism: probe.Fentry}
	fx := hazards.Attachment{Mechanism: probe.Fexit}
	feTail := hazards.Attachment{Mechanism: probe.Fentry, TailCalls: true}
	kr := hazards.Attachment{Mechanism: probe.Kretprobe}
	up := hazards.Attachment{Mechanism: probe.Uprobe}
	ur := hazards.Attachment{Mechanism: probe.Uretprobe, Seccomp: true}
	const (
		nmi   = hazards.ID("nmi-user-read-deadlock")
		stack = hazards.ID("nmi-user-stack-deadlock")
		poke  = hazards.ID("x86-text-poke-race")
		zap   = hazards.ID("fentry-zap-pid-ns-deadlock")
		crash = hazards.ID("fexit-sleeping-detach-crash")
		tail  = hazards.ID("fentry-tail-call-break")
		uret  = hazards.ID("uretprobe-seccomp-kill")
	)
	for _, tc := range []struct {
		name   string
		k      *probe.Kernel
		a      hazards.Attachment
		id     hazards.ID
		want   hazards.Verdict
		reason string // substring of the reason
	}{
		// §1 and C1/C2: 0aef499f3172 (5.19) to d319f344561d (6.1.36, 6.3.10, 6.4).
		{"nmi 5.18.19", kern(t, "5.18.19"), hw, nmi, hazards.NotAffected, "upstream 5.18.19 outside"},
		{"nmi 5.19.0", kern(t, "5.19.0"), hw, nmi, hazards.Affected, "upstream 5.19.0 in 5.19.y"},
		{"nmi 6.0.19", kern(t, "6.0.19"), hw, nmi, hazards.Affected, "in 6.0.y"},
		{"nmi 6.1.35", kern(t, "6.1.35"), hw, nmi, hazards.Affected, "upstream 6.1.35 in >= 6.1, < 6.1.36"},
		{"nmi 6.1.36", kern(t, "6.1.36"), hw, nmi, hazards.NotAffected, "upstream 6.1.36 outside"},
		{"nmi 6.2.16", kern(t, "6.2.16"), hw, nmi, hazards.Affected, "in 6.2.y"},
		{"nmi 6.3.9", kern(t, "6.3.9"), hw, nmi, hazards.Affected, "< 6.3.10"},
		{"nmi 6.3.10", kern(t, "6.3.10"), hw, nmi, hazards.NotAffected, "outside"},
		{"nmi 6.4.0", kern(t, "6.4.0"), hw, nmi, hazards.NotAffected, "outside"},
		{"nmi 6.1 sublevel unknown", kern(t, "6.1"), hw, nmi, hazards.Unknown, "6.1 sublevel unknown"},
		{"nmi 6.2 sublevel unknown", kern(t, "6.2"), hw, nmi, hazards.Affected, "in 6.2.y"},
		{"nmi 5.15 sublevel unknown", kern(t, "5.15"), hw, nmi, hazards.NotAffected, "upstream 5.15 outside"},
		{"nmi version unknown", kern(t, ""), hw, nmi, hazards.Unknown, "version unknown"},
		{"nmi no hardened usercopy", kern(t, "6.1.35", config("CONFIG_KPROBES", "y")), hw, nmi, hazards.NotAffected, "CONFIG_HARDENED_USERCOPY not set"},
		{"nmi hardened usercopy set", kern(t, "6.1.35", config("CONFIG_HARDENED_USERCOPY", "y")), hw, nmi, hazards.Affected, "6.1.35"},
		{"nmi program reads no user memory", kern(t, "6.1.35"), hazards.Attachment{Mechanism: probe.PerfEventHardware}, nmi, hazards.NotAffected, "does not read user memory"},
		// C1: cpu-clock runs in hard IRQ; parca-agent hung AL2023 6.1.25 with PERF_COUNT_SW_CPU_CLOCK.
		{"nmi software cpu-clock 6.1.25", kern(t, "6.1.25"), sw, nmi, hazards.Affected, "6.1.25 in >= 6.1, < 6.1.36"},
		{"nmi kprobe may run in IRQ", kern(t, "6.1.25"), kpRead, nmi, hazards.Unknown, "kprobe programs run in interrupt context only when what they trace does"},
		{"nmi kprobe fixed kernel", kern(t, "6.1.36"), kpRead, nmi, hazards.NotAffected, "outside"},
		// Syscall entry points run only in process context (probe.Mechanism.InterruptContext).
		{"nmi kprobe on a syscall wrapper", kern(t, "6.1.25"), at(kpRead, "__x64_sys_getpid"), nmi, hazards.NotAffected, "kprobe on __x64_sys_getpid runs only in process context"},
		{"nmi fentry on a syscall wrapper", kern(t, "6.1.25"), hazards.Attachment{Mechanism: probe.Fentry, ReadsUserMemory: true, AttachTo: []string{"__x64_sys_openat"}}, nmi, hazards.NotAffected, "process context"},
		{"nmi syscall tracepoint", kern(t, "6.1.25"), hazards.Attachment{Mechanism: probe.Tracepoint, ReadsUserMemory: true, AttachTo: []string{"syscalls/sys_enter_openat"}}, nmi, hazards.NotAffected, "process context"},
		{"nmi raw sys_exit", kern(t, "6.1.25"), hazards.Attachment{Mechanism: probe.RawTracepoint, ReadsUserMemory: true, AttachTo: []string{"sys_exit"}}, nmi, hazards.NotAffected, "process context"},
		{"nmi kprobe-multi on wrappers", kern(t, "6.1.25"), hazards.Attachment{Mechanism: probe.KprobeMulti, ReadsUserMemory: true, AttachTo: []string{"__x64_sys_openat", "__x64_sys_openat2", "__ia32_sys_openat", "__ia32_compat_sys_openat"}}, nmi, hazards.NotAffected, "__x64_sys_openat, __x64_sys_openat2, __ia32_sys_openat and 1 more"},
		{"nmi kprobe-multi, one target not a wrapper", kern(t, "6.1.25"), hazards.Attachment{Mechanism: probe.KprobeMulti, ReadsUserMemory: true, AttachTo: []string{"__x64_sys_openat", "do_sys_openat2"}}, nmi, hazards.Unknown, `("do_sys_openat2" is not a syscall entry point)`},
		{"nmi kprobe on a function", kern(t, "6.1.25"), at(kpRead, "do_sys_openat2"), nmi, hazards.Unknown, "only when what they trace does"},
		{"nmi perf event stays affected", kern(t, "6.1.25"), at(sw, "__x64_sys_getpid"), nmi, hazards.Affected, "6.1.25"},
		{"stack kprobe on a syscall wrapper", kern(t, "5.19.5"), hazards.Attachment{Mechanism: probe.Kprobe, ReadsUserStacks: true, AttachTo: []string{"__x64_sys_write"}}, stack, hazards.NotAffected, "process context"},
		// C2: a program that only takes user stacks is not on the probe-read path.
		{"nmi user stacks only", kern(t, "6.1.25"), stackHW, nmi, hazards.NotAffected, "does not read user memory"},
		// Machine code beats the version (OTel maccess): the fix's call found on 6.1.25.
		{"nmi witness finds the fix", kern(t, "6.1.25", observed(map[string]bool{vmapCall: true, nofaultFix: true})), hw, nmi, hazards.NotAffected, "witness says " + nofaultFix + " true"},
		{"nmi witness finds the bug past the ranges", kern(t, "6.5.0", observed(map[string]bool{vmapCall: true, nofaultFix: false})), hw, nmi, hazards.Affected, "witness says " + nofaultFix + " false"},
		{"nmi witness: no vmap lookup (5.15)", kern(t, "5.15.131", observed(map[string]bool{vmapCall: false})), hw, nmi, hazards.NotAffected, "witness says " + vmapCall + " false"},
		{"nmi witness inconclusive: version decides", kern(t, "6.1.25", func(k *probe.Kernel) {
			k.Observations = map[string]probe.Observation{nofaultFix: probe.Unobserved("/proc/kcore unreadable: lockdown")}
		}), hw, nmi, hazards.Affected, "kcore unreadable: lockdown"},
		{"nmi arm64: the x86 call pattern does not count", kern(t, "6.1.25", arch("arm64"), observed(map[string]bool{vmapCall: true, nofaultFix: false})), hw, nmi, hazards.Affected, "upstream 6.1.25 in"},
		{"nmi rhel 9 backports", kern(t, "5.14", rhel("el9", "362.8.1")), hw, nmi, hazards.Unknown, "rhel upstream 5.14 in 5.14.y"},

		// C2: copy_from_user_nmi, 59298997df89: 6.0 and 5.19.14.
		{"stack 5.18.19", kern(t, "5.18.19"), stackHW, stack, hazards.NotAffected, "outside"},
		{"stack 5.19.13", kern(t, "5.19.13"), stackHW, stack, hazards.Affected, ">= 5.19, < 5.19.14"},
		{"stack 5.19.14", kern(t, "5.19.14"), stackHW, stack, hazards.NotAffected, "outside"},
		{"stack 5.19.17 (Ubuntu 22.04 HWE)", kern(t, "5.19.17"), stackHW, stack, hazards.NotAffected, "outside"},
		{"stack 6.0.0", kern(t, "6.0.0"), stackHW, stack, hazards.NotAffected, "outside"},
		{"stack 6.1.25 software clock", kern(t, "6.1.25"), stackSW, stack, hazards.NotAffected, "outside"},
		{"stack 5.19.5 software clock", kern(t, "5.19.5"), stackSW, stack, hazards.Affected, "5.19.5"},
		{"stack 5.19 line", kern(t, "5.19"), stackHW, stack, hazards.Unknown, "sublevel unknown"},
		{"stack no user stacks", kern(t, "5.19.5"), hw, stack, hazards.NotAffected, "takes no user stacks"},
		{"stack kprobe may run in IRQ", kern(t, "5.19.5"), hazards.Attachment{Mechanism: probe.Kprobe, ReadsUserStacks: true}, stack, hazards.Unknown, "only when what they trace does"},
		{"stack witness: backport found", kern(t, "5.19.5", observed(map[string]bool{vmapCall: true, nmiCheck: false})), stackHW, stack, hazards.NotAffected, "witness says " + nmiCheck + " false"},

		// §2 and C5.
		{"text poke 5.1.21", kern(t, "5.1.21"), kp, poke, hazards.NotAffected, "outside"},
		{"text poke 5.2.21: no source puts it in 5.2", kern(t, "5.2.21"), kp, poke, hazards.Unknown, "in 5.2.y, where no source says"},
		{"text poke 5.3.0", kern(t, "5.3.0"), kp, poke, hazards.Affected, ">= 5.3, < 5.6"},
		{"text poke 5.4 line", kern(t, "5.4"), kp, poke, hazards.Affected, "upstream 5.4 in"},
		{"text poke 5.5.19", kern(t, "5.5.19"), fe, poke, hazards.Affected, "5.5.19"},
		{"text poke 5.6.0", kern(t, "5.6.0"), kp, poke, hazards.NotAffected, "outside"},
		{"text poke arm64", kern(t, "5.4.0", arch("arm64")), kp, poke, hazards.NotAffected, "arch arm64 not in [amd64 386]"},
		{"text poke 386", kern(t, "5.4.0", arch("386")), kp, poke, hazards.Affected, "5.4.0"},
		{"text poke arch unknown", kern(t, "5.4.0", arch("")), kp, poke, hazards.Unknown, "arch unknown"},
		{"text poke SLE 15 SP2", kern(t, "5.3.18", distro("sles")), kp, poke, hazards.NotAffected, "bsc#1152489"},
		{"text poke Leap 15.2", kern(t, "5.3.18", distro("opensuse-leap")), kp, poke, hazards.NotAffected, "bsc#1152489"},
		{"text poke vanilla 5.3.18", kern(t, "5.3.18", distro("debian")), kp, poke, hazards.Affected, "5.3.18"},
		{"text poke el7", kern(t, "3.10", rhel("el7", "1160.108.1")), kp, poke, hazards.Unknown, "RHEL 7 received the faulty patch"},
		{"text poke el8", kern(t, "4.18", rhel("el8", "477.10.1")), kp, poke, hazards.Unknown, "RHEL >= 8.2"},
		{"text poke el8 with bp_desc", kern(t, "4.18", rhel("el8", "477.10.1"), syms(true, map[string]bool{"bp_desc": true})), kp, poke, hazards.NotAffected, "bp_desc present in kallsyms"},
		{"text poke 5.4.0 with bp_desc (backport)", kern(t, "5.4.0", syms(true, map[string]bool{"bp_desc": true})), kp, poke, hazards.NotAffected, "bp_desc present"},
		{"text poke 5.4.0 without bp_desc decides nothing", kern(t, "5.4.0", syms(true, map[string]bool{"bp_desc": false})), kp, poke, hazards.Affected, "5.4.0 in"},
		{"text poke tp-btf", kern(t, "5.5.19"), hazards.Attachment{Mechanism: probe.TpBTF}, poke, hazards.Affected, "5.5.19"},

		// §3, C4, C10.
		{"fentry 5.4.0", kern(t, "5.4.0", preempt(true)), fe, zap, hazards.NotAffected, "outside"},
		{"fentry 5.10.173 partial fix", kern(t, "5.10.173", preempt(true)), fe, zap, hazards.Affected, "5.10.173 in >= 5.5, < 6.6.107"},
		{"fentry 6.6.106", kern(t, "6.6.106", preempt(true)), fe, zap, hazards.Affected, "6.6.106"},
		{"fentry 6.6.107", kern(t, "6.6.107", preempt(true)), fe, zap, hazards.NotAffected, "outside"},
		{"fentry 6.8.12", kern(t, "6.8.12", preempt(true)), fe, zap, hazards.Affected, ">= 6.7, < 6.9"},
		{"fentry 6.9.0", kern(t, "6.9.0", preempt(true)), fe, zap, hazards.NotAffected, "outside"},
		{"fexit 6.1.50", kern(t, "6.1.50", preempt(true)), fx, zap, hazards.Affected, "6.1.50"},
		{"lsm 6.1.50", kern(t, "6.1.50", preempt(true)), hazards.Attachment{Mechanism: probe.LSM}, zap, hazards.Affected, "6.1.50"},
		{"fentry not preemptible: no Tasks RCU", kern(t, "6.8.12", preempt(false)), fe, zap, hazards.NotAffected, "/proc/version says SMP without PREEMPT"},
		{"fentry preemption unknown", kern(t, "6.1.50"), fe, zap, hazards.Unknown, "preemption model unknown"},
		{"fentry ubuntu 6.8.0-85", kern(t, "6.8.12", ubuntu(85), preempt(true)), fe, zap, hazards.Affected, "upstream 6.8.12 in >= 6.7, < 6.9"},
		{"fentry ubuntu 6.8.0-86", kern(t, "6.8.12", ubuntu(86), preempt(true)), fe, zap, hazards.NotAffected, "ubuntu upstream 6.8.12 in 6.8.y, build 86 >= 86, < 1000"},
		{"fentry ubuntu 6.8.0-1021-aws", kern(t, "6.8.12", ubuntu(1021), preempt(false)), fe, zap, hazards.NotAffected, "without PREEMPT"},
		{"fentry rhel 8 not preemptible", kern(t, "4.18", rhel("el8", "477.10.1"), preempt(false)), fe, zap, hazards.NotAffected, "without PREEMPT"},
		{"fentry rhel 8 preemption unknown", kern(t, "4.18", rhel("el8", "477.10.1")), fe, zap, hazards.Unknown, "rhel upstream 4.18 in 4.18.y (RHEL 8 backports"},
		{"fentry rhel 8 symbol absent", kern(t, "4.18", rhel("el8", "553.1.1"), syms(true, map[string]bool{"tasks_rcu_exit_srcu": false})), fe, zap, hazards.NotAffected, "absent from kallsyms"},
		{"fentry symbol present", kern(t, "6.9.0", preempt(true), syms(true, map[string]bool{"tasks_rcu_exit_srcu": true})), fe, zap, hazards.Affected, "tasks_rcu_exit_srcu present in kallsyms"},
		{"fentry symbol present beats ubuntu backport", kern(t, "6.8.12", ubuntu(90), preempt(true), syms(false, map[string]bool{"tasks_rcu_exit_srcu": true})), fe, zap, hazards.Affected, "present in kallsyms"},
		{"fentry symbol present beats /proc/version", kern(t, "6.1.50", preempt(false), syms(true, map[string]bool{"tasks_rcu_exit_srcu": true})), fe, zap, hazards.Affected, "present in kallsyms"},
		{"fentry symbol absent with data symbols", kern(t, "6.1.50", preempt(true), syms(true, map[string]bool{"tasks_rcu_exit_srcu": false})), fe, zap, hazards.NotAffected, "tasks_rcu_exit_srcu absent from kallsyms"},
		{"fentry symbol absent without data symbols", kern(t, "6.1.50", preempt(true), syms(false, map[string]bool{"tasks_rcu_exit_srcu": false})), fe, zap, hazards.Affected, "kallsyms lists no data symbols"},

		// C6: e21aa341785c (5.12; 5.10.28, 5.11.11).
		{"fexit crash 5.4.0", kern(t, "5.4.0"), fx, crash, hazards.NotAffected, "outside"},
		{"fexit crash 5.5.0", kern(t, "5.5.0"), fx, crash, hazards.Affected, ">= 5.5, < 5.10.28"},
		{"fexit crash 5.10.27", kern(t, "5.10.27"), fx, crash, hazards.Affected, "5.10.27"},
		{"fexit crash 5.10.28", kern(t, "5.10.28"), fx, crash, hazards.NotAffected, "outside"},
		{"fexit crash 5.11.10", kern(t, "5.11.10"), fx, crash, hazards.Affected, ">= 5.11, < 5.11.11"},
		{"fexit crash 5.11.11", kern(t, "5.11.11"), fx, crash, hazards.NotAffected, "outside"},
		{"fexit crash 5.12.0", kern(t, "5.12.0"), fx, crash, hazards.NotAffected, "outside"},
		{"fexit crash fmod_ret", kern(t, "5.10.27"), hazards.Attachment{Mechanism: probe.FmodRet}, crash, hazards.Affected, "5.10.27"},
		{"fexit crash symbol present (vendor backport)", kern(t, "5.10.20", syms(false, map[string]bool{"__bpf_tramp_image_put_rcu": true})), fx, crash, hazards.NotAffected, "__bpf_tramp_image_put_rcu present"},
		{"fexit crash symbol absent", kern(t, "5.15.0", syms(false, map[string]bool{"__bpf_tramp_image_put_rcu": false})), fx, crash, hazards.Affected, "__bpf_tramp_image_put_rcu absent"},
		{"fexit crash rhel 8", kern(t, "4.18", rhel("el8", "477.10.1")), fx, crash, hazards.Unknown, "e21aa341785c is UNVERIFIED"},

		// C7: CVE-2024-50063, 6.1.135, 6.6.57 and 6.11.4 onwards (OSV).
		{"tail 6.1.134", kern(t, "6.1.134"), feTail, tail, hazards.NotAffected, "outside"},
		{"tail 6.1.135", kern(t, "6.1.135"), feTail, tail, hazards.Affected, ">= 6.1.135, < 6.2"},
		{"tail 6.6.56", kern(t, "6.6.56"), feTail, tail, hazards.NotAffected, "outside"},
		{"tail 6.6.57", kern(t, "6.6.57"), feTail, tail, hazards.Affected, ">= 6.6.57, < 6.7"},
		{"tail 6.7.0", kern(t, "6.7.0"), feTail, tail, hazards.NotAffected, "outside"},
		{"tail 6.11.3", kern(t, "6.11.3"), feTail, tail, hazards.NotAffected, "outside"},
		{"tail 6.11.4", kern(t, "6.11.4"), feTail, tail, hazards.Affected, ">= 6.11.4"},
		{"tail 6.12.0", kern(t, "6.12.0"), feTail, tail, hazards.Affected, ">= 6.11.4"},
		{"tail no tail calls", kern(t, "6.12.0"), fe, tail, hazards.NotAffected, "makes no tail calls"},
		{"tail BTF says backported", kern(t, "6.1.100", observed(map[string]bool{tailBTF: true})), feTail, tail, hazards.Affected, "witness says " + tailBTF + " true"},
		{"tail BTF says not", kern(t, "6.12.0", observed(map[string]bool{tailBTF: false})), feTail, tail, hazards.NotAffected, "witness says " + tailBTF + " false"},

		// §4.
		{"kretprobe 96 cpus 5.10", kern(t, "5.10.200", cpus(96)), kr, "kretprobe-contention", hazards.Affected, "< 5.11"},
		{"kretprobe 96 cpus 6.6", kern(t, "6.6.50", cpus(96)), kr, "kretprobe-contention", hazards.Affected, ">= 5.11, < 6.7"},
		{"kretprobe 96 cpus 6.7", kern(t, "6.7.0", cpus(96)), kr, "kretprobe-contention", hazards.NotAffected, "outside"},
		{"kretprobe 63 cpus", kern(t, "5.10.200", cpus(63)), kr, "kretprobe-contention", hazards.NotAffected, "63 CPUs < min_cpus 64"},
		{"kretprobe 64 cpus", kern(t, "5.10.200", cpus(64)), kr, "kretprobe-contention", hazards.Affected, "5.10.200"},
		{"kretprobe cpus unknown", kern(t, "5.10.200", cpus(0)), kr, "kretprobe-contention", hazards.Unknown, "CPU count unknown"},
		{"kretprobe cpus unknown, fixed kernel", kern(t, "6.12.0", cpus(0)), kr, "kretprobe-contention", hazards.NotAffected, "outside"},
		// The default instance pool runs out on every kernel and CPU count
		// (hazard lab, scenario 2).
		{"kretprobe pool 2 cpus 6.12", kern(t, "6.12.117", cpus(2)), kr, "kretprobe-pool-exhaustion", hazards.Affected, ">= 0"},
		{"kretprobe pool 96 cpus 5.10", kern(t, "5.10.200", cpus(96)), kr, "kretprobe-pool-exhaustion", hazards.Affected, ">= 0"},

		// §5.
		{"uprobe 6.13.12", kern(t, "6.13.12"), up, "uprobe-mmap-lock-stall", hazards.Affected, "< 6.14"},
		{"uprobe 6.14.0", kern(t, "6.14.0"), up, "uprobe-mmap-lock-stall", hazards.NotAffected, "outside"},
		{"uretprobe-multi paced", kern(t, "6.13.12"), hazards.Attachment{Mechanism: probe.UretprobeMulti}, "uprobe-mmap-lock-stall", hazards.Affected, "< 6.14"},

		// §6 and C3: cf6cb56ef244 in 6.12.14 and 6.13.3.
		{"uretprobe 6.10.14", kern(t, "6.10.14"), ur, uret, hazards.NotAffected, "outside"},
		{"uretprobe 6.11.0", kern(t, "6.11.0"), ur, uret, hazards.Affected, ">= 6.11, < 6.12.14"},
		{"uretprobe 6.12.13", kern(t, "6.12.13"), ur, uret, hazards.Affected, "6.12.13"},
		{"uretprobe 6.12.14", kern(t, "6.12.14"), ur, uret, hazards.NotAffected, "outside"},
		{"uretprobe 6.12.40", kern(t, "6.12.40"), ur, uret, hazards.NotAffected, "outside"},
		{"uretprobe 6.13.2", kern(t, "6.13.2"), ur, uret, hazards.Affected, ">= 6.13, < 6.13.3"},
		{"uretprobe 6.13.3", kern(t, "6.13.3"), ur, uret, hazards.NotAffected, "outside"},
		{"uretprobe 6.13 line", kern(t, "6.13"), ur, uret, hazards.Unknown, "sublevel unknown"},
		{"uretprobe-multi 6.12.5", kern(t, "6.12.5"), hazards.Attachment{Mechanism: probe.UretprobeMulti, Seccomp: true}, uret, hazards.Affected, "6.12.5"},
		{"uretprobe no seccomp", kern(t, "6.12.5"), hazards.Attachment{Mechanism: probe.Uretprobe}, uret, hazards.NotAffected, "not under seccomp"},
		{"uretprobe arm64", kern(t, "6.12.5", arch("arm64")), ur, uret, hazards.NotAffected, "arch arm64"},
		{"uretprobe syscall absent", kern(t, "6.12.5", syms(false, map[string]bool{"__x64_sys_uretprobe": false})), ur, uret, hazards.NotAffected, "__x64_sys_uretprobe absent"},
		{"uretprobe syscall present decides nothing", kern(t, "6.14.1", syms(false, map[string]bool{"__x64_sys_uretprobe": true})), ur, uret, hazards.NotAffected, "outside"},
		{"uretprobe self-test saw the kill", kern(t, "6.14.1", observed(map[string]bool{seccompST: true})), ur, uret, hazards.Affected, "witness says " + seccompST + " true"},
		{"uretprobe self-test beats the symbol", kern(t, "6.12.5", observed(map[string]bool{seccompST: false}), syms(false, map[string]bool{"__x64_sys_uretprobe": true})), ur, uret, hazards.NotAffected, "witness says " + seccompST + " false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := verdictOf(t, hazards.Builtin(), tc.k, tc.a, tc.id)
			if f.Verdict != tc.want || !strings.Contains(f.Reason, tc.reason) {
				t.Errorf("got %s %q, want %s containing %q", f.Verdict, f.Reason, tc.want, tc.reason)
			}
			if !strings.HasPrefix(f.Reason, string(tc.id)+": ") {
				t.Errorf("reason %q does not name the rule", f.Reason)
			}
			if f.Hazard == nil || f.Hazard.ID != tc.id || f.Action != f.Hazard.Action || f.Mechanism != tc.a.Mechanism || f.OnUnknown != f.Hazard.EffectiveOnUnknown() {
				t.Errorf("finding fields inconsistent: %+v", f)
			}
		})
	}
}

// TestOnUnknownDefaults: lockups and crashes treat unknown as affected,
// functional bugs only warn.
func TestOnUnknownDefaults(t *testing.T) {
	for id, want := range map[hazards.ID]hazards.OnUnknown{
		"nmi-user-read-deadlock": hazards.OnUnknownRefuse, "nmi-user-stack-deadlock": hazards.OnUnknownRefuse,
		"x86-text-poke-race": hazards.OnUnknownRefuse, "fentry-zap-pid-ns-deadlock": hazards.OnUnknownRefuse,
		"fexit-sleeping-detach-crash": hazards.OnUnknownRefuse, "uretprobe-seccomp-kill": hazards.OnUnknownRefuse,
		"fentry-tail-call-break": hazards.OnUnknownWarn, "kretprobe-pool-exhaustion": hazards.OnUnknownWarn,
		"kretprobe-contention": hazards.OnUnknownRefuse, "uprobe-mmap-lock-stall": hazards.OnUnknownRefuse,
	} {
		h, ok := hazards.Builtin().Lookup(id)
		if !ok {
			t.Fatalf("no %s", id)
		}
		if got := h.EffectiveOnUnknown(); got != want {
			t.Errorf("%s (%s): on_unknown %s, want %s", id, h.Severity, got, want)
		}
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
		{probe.Fentry, []hazards.ID{"nmi-user-read-deadlock", "nmi-user-stack-deadlock", "x86-text-poke-race", "fentry-zap-pid-ns-deadlock", "fentry-tail-call-break"}},
		{probe.Fexit, []hazards.ID{"nmi-user-read-deadlock", "nmi-user-stack-deadlock", "x86-text-poke-race", "fentry-zap-pid-ns-deadlock", "fexit-sleeping-detach-crash", "fentry-tail-call-break"}},
		{probe.Kretprobe, []hazards.ID{"nmi-user-read-deadlock", "nmi-user-stack-deadlock", "x86-text-poke-race", "kretprobe-contention", "kretprobe-pool-exhaustion"}},
		{probe.Uretprobe, []hazards.ID{"uprobe-mmap-lock-stall", "uretprobe-seccomp-kill"}},
		{probe.UretprobeMulti, []hazards.ID{"uprobe-mmap-lock-stall", "uretprobe-seccomp-kill"}},
		{probe.PerfEventHardware, []hazards.ID{"nmi-user-read-deadlock", "nmi-user-stack-deadlock"}},
		{probe.PerfEventSoftware, []hazards.ID{"nmi-user-read-deadlock", "nmi-user-stack-deadlock"}},
		{probe.Iter, nil},
	} {
		var got []hazards.ID
		for _, f := range hazards.Builtin().Evaluate(k, hazards.Attachment{Mechanism: tc.m}) {
			got = append(got, f.ID)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: findings (-want +got):\n%s", tc.m, diff)
		}
	}
	if got := hazards.Builtin().Evaluate(nil, hazards.Attachment{Mechanism: probe.Fentry}); len(got) != 5 || got[3].Verdict != hazards.Unknown {
		t.Errorf("nil kernel: got %+v, want five findings, fentry-zap-pid-ns-deadlock unknown", got)
	}
	var zero hazards.Catalog
	if got := zero.Evaluate(k, hazards.Attachment{Mechanism: probe.Fentry}); got != nil {
		t.Errorf("zero catalog: got %+v", got)
	}
}
