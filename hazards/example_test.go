package hazards_test

import (
	"fmt"

	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/probe"
)

// Evaluate the built-in catalog for a hardware perf event program that
// reads user memory, on Amazon Linux 2023's 6.1.25 kernel and on 6.1.36.
func ExampleCatalog_Evaluate() {
	for _, patch := range []int{25, 36} {
		k := &probe.Kernel{
			Release: fmt.Sprintf("6.1.%d", patch),
			Version: &probe.Version{Major: 6, Minor: 1, Patch: patch, PatchKnown: true},
			Arch:    "amd64",
		}
		a := hazards.Attachment{Mechanism: probe.PerfEventHardware, ReadsUserMemory: true}
		for _, f := range hazards.Builtin().Evaluate(k, a) {
			fmt.Println(f.Verdict, f.Action, "-", f.Reason)
		}
	}
	// Output:
	// affected downgrade - nmi-user-read-deadlock: upstream 6.1.25 in >= 6.1, < 6.1.36
	// not-affected downgrade - nmi-user-read-deadlock: upstream 6.1.36 outside >= 5.19, < 6.1.36 or >= 6.2, < 6.3.10
}

// A kernel whose sublevel is unknown is evaluated over its whole line.
func ExampleCatalog_Evaluate_sublevelUnknown() {
	k := &probe.Kernel{
		Release: "6.1.0-13-amd64",
		Version: &probe.Version{Major: 6, Minor: 1},
		Arch:    "amd64",
	}
	for _, f := range hazards.Builtin().Evaluate(k, hazards.Attachment{Mechanism: probe.Fentry}) {
		fmt.Println(f.Verdict, "-", f.Reason)
	}
	// Output:
	// not-affected - x86-text-poke-race: upstream 6.1 outside >= 5.2, < 5.6
	// affected - fentry-zap-pid-ns-deadlock: upstream 6.1 in >= 5.5, < 6.6.107
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
		fmt.Println(f.Verdict, "-", f.Reason)
	}

	_, err = hazards.ParsePolicy("policy.yaml", []byte("apiVersion: safebpf/v1\nforce: [ALL]\n"))
	fmt.Println(err)
	// Output:
	// not-affected - x86-text-poke-race: upstream 6.1.76 outside >= 5.2, < 5.6
	// not-affected - fentry-zap-pid-ns-deadlock: policy kernel assertion: release 6.1.0-18-cloud-amd64 matches /^6\.1\.0-.*-cloud-amd64$/ (vendor backport), fixed
	// policy.yaml:2: force[0]: unknown hazard ID "ALL" (known: nmi-user-read-deadlock, x86-text-poke-race, fentry-zap-pid-ns-deadlock, kretprobe-contention, uprobe-mmap-lock-stall, uretprobe-seccomp-kill); "all" must be spelled in lower case
}
