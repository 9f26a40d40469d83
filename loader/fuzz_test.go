package loader

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/probe"
)

// FuzzPlanObject plans ELF objects as `safebpf plan` does: parse them with
// the bounds of ParseObject (a 1 MiB limit here, to keep executions fast),
// then PlanSpec them for two kernels, with and without force. Nothing may
// panic, and every plan must name a program of the spec.
func FuzzPlanObject(f *testing.F) {
	objs, _ := filepath.Glob("../examples/*/*.o")
	if len(objs) == 0 {
		f.Fatal("no example objects to seed with")
	}
	for _, p := range objs {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	kernels := []*probe.Kernel{
		describe(f, probe.Description{Release: "6.1.0-18-cloud-amd64", ProcVersion: "Linux version 6.1.0-18-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)",
			CPUs: 8, Kallsyms: "0000000000000000 d tasks_rcu_exit_srcu\n"}),
		describe(f, probe.Description{Release: "6.12.38", CPUs: 64}),
	}
	forced := &Options{Force: []hazards.ID{hazards.ForceAll}, Mode: hazards.Warn}
	f.Fuzz(func(t *testing.T, b []byte) {
		spec, err := parseObject(b, 1<<20)
		if err != nil {
			return
		}
		for _, k := range kernels {
			for _, opts := range []*Options{nil, forced} {
				plans, err := PlanSpec(spec, k, opts)
				if err != nil {
					continue
				}
				for _, p := range plans {
					if _, ok := spec.Programs[p.Program]; !ok {
						t.Fatalf("plan for program %q, which the spec does not have", p.Program)
					}
				}
			}
		}
	})
}
