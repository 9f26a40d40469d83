package hazards_test

import (
	"fmt"

	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/probe"
)

// Evaluate the built-in catalog for a profiler on the software cpu-clock
// event that reads user memory, on Amazon Linux 2023's 6.1.25 kernel (where
// parca-agent hung the machine) and on 6.1.36, which has the fix.
func ExampleCatalog_Evaluate() {
	for _, patch := range []int{25, 36} {
		k := &probe.Kernel{
			Release: fmt.Sprintf("6.1.%d", patch),
			Version: &probe.Version{Major: 6, Minor: 1, Patch: patch, PatchKnown: true},
			Arch:    "amd64",
		}
		a := hazards.Attachment{Mechanism: probe.PerfEventSoftware, ReadsUserMemory: true}
		for _, f := range hazards.Builtin().Evaluate(k, a) {
			fmt.Println(f.Verdict, f.Action, "-", f.Reason)
		}
	}
	// Output:
	// affected refuse - nmi-user-read-deadlock: upstream 6.1.25 in >= 6.1, < 6.1.36
	// not-affected refuse - nmi-user-stack-deadlock: program takes no user stacks (no BPF_F_USER_STACK)
	// not-affected refuse - nmi-user-read-deadlock: upstream 6.1.36 outside >= 5.19, < 6.1.36 or >= 6.2, < 6.3.10
	// not-affected refuse - nmi-user-stack-deadlock: program takes no user stacks (no BPF_F_USER_STACK)
}

// A kernel whose sublevel is unknown is evaluated over its whole line, and
// its /proc/version line says whether it was built preemptible.
func ExampleCatalog_Evaluate_sublevelUnknown() {
	for _, build := range []string{"#55-Ubuntu SMP PREEMPT_DYNAMIC", "#56-Ubuntu SMP"} {
		k, err := probe.Describe(probe.Description{
			Release:     "6.8.0-53-generic",
			ProcVersion: "Linux version 6.8.0-53-generic (buildd@lcy02-amd64-099) (gcc) " + build + " Sat Jan 11 00:26:32 UTC 2025",
		})
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, f := range hazards.Builtin().Evaluate(k, hazards.Attachment{Mechanism: probe.Fentry}) {
			if f.ID == "fentry-zap-pid-ns-deadlock" {
				fmt.Println(f.Verdict, "-", f.Reason)
			}
		}
	}
	// Output:
	// affected - fentry-zap-pid-ns-deadlock: upstream 6.8 in >= 6.7, < 6.9
	// not-affected - fentry-zap-pid-ns-deadlock: /proc/version says SMP without PREEMPT: built without CONFIG_PREEMPTION, so no Tasks RCU
}

// A policy file teaches the catalog about the fleet's kernels.
func ExampleParsePolicy() {
	p, err := hazards.ParsePolicy("policy.yaml", []byte(`
apiVersion: safebpf/v1
kernels:
  - release: '^6\.1\.0-.*-cloud-amd64$'
    fixed: [fentry-zap-pid-ns-deadlock]
    reason: vendor backport
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	c, err := hazards.Builtin().WithPolicy(p)
	if err != nil {
		fmt.Println(err)
		return
	}
	k := &probe.Kernel{Release: "6.1.0-18-cloud-amd64", Version: &probe.Version{Major: 6, Minor: 1, Patch: 76, PatchKnown: true}, Arch: "amd64"}
	for _, f := range c.Evaluate(k, hazards.Attachment{Mechanism: probe.Fexit}) {
		if f.ID == "fentry-zap-pid-ns-deadlock" {
			fmt.Println(f.Verdict, "-", f.Reason)
		}
	}

	_, err = hazards.ParsePolicy("policy.yaml", []byte("apiVersion: safebpf/v1\nforce: [ALL]\n"))
	fmt.Println(err)
	// Output:
	// not-affected - fentry-zap-pid-ns-deadlock: policy kernel assertion: release 6.1.0-18-cloud-amd64 matches /^6\.1\.0-.*-cloud-amd64$/ (vendor backport), fixed
	// policy.yaml:2: force[0]: unknown hazard ID "ALL" (known: nmi-user-read-deadlock, nmi-user-stack-deadlock, x86-text-poke-race, fentry-zap-pid-ns-deadlock, fexit-sleeping-detach-crash, fentry-tail-call-break, kretprobe-contention, kretprobe-pool-exhaustion, uprobe-mmap-lock-stall, uretprobe-seccomp-kill); "all" must be spelled in lower case
}
