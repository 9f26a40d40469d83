//go:build linux && (386 || amd64)

package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/loader"
	"github.com/safebpf/safebpf/probe"
)

// planProfile plans the committed profiler object on a kernel described
// from its release and /proc/version line, as `safebpf check` would.
func planProfile(t *testing.T, release, procVersion string) (*probe.Kernel, loader.ProgramPlan) {
	t.Helper()
	k, err := probe.Describe(probe.Description{Release: release, ProcVersion: procVersion})
	if err != nil {
		t.Fatal(err)
	}
	spec, err := loadProfiler()
	if err != nil {
		t.Fatal(err)
	}
	plans, err := loader.PlanSpec(spec, k, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range plans {
		if p.Program == "profile" {
			return k, p
		}
	}
	t.Fatal("no plan for the profile program")
	return nil, loader.ProgramPlan{}
}

// TestPathAllowed: on Debian 6.1.30 (before the probe-read fix, after the
// user-stack fix) the profiler, which only takes user stacks, is allowed,
// and says so with the verdict of each deadlock.
func TestPathAllowed(t *testing.T) {
	_, p := planProfile(t, "6.1.0-9-amd64", "Linux version 6.1.0-9-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.30-1 (2023-05-24)")
	if !p.ReadsUserStacks || p.ReadsUserMemory {
		t.Fatalf("scan: user stacks %v, reads %v (%q); the program calls bpf_get_stackid with BPF_F_USER_STACK and nothing else", p.ReadsUserStacks, p.ReadsUserMemory, p.UserMemoryReasons)
	}
	if p.Refusal != "" || !p.Chosen {
		t.Fatalf("profile refused on 6.1.30: %s", p.Refusal)
	}
	var out bytes.Buffer
	writePath(&out, p)
	for _, want := range []string{
		"profile takes user stacks and reads no other user memory",
		"nmi-user-stack-deadlock: not-affected: upstream 6.1.30 outside >= 5.19, < 5.19.14",
		"nmi-user-read-deadlock: not-affected: program does not read user memory",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("path lacks %q:\n%s", want, out.String())
		}
	}
}

// TestPathRefused: on 5.19.5 the user-stack copy can deadlock in NMI and
// IRQ context alike: refused on both events, naming the fixed kernels.
func TestPathRefused(t *testing.T) {
	k, p := planProfile(t, "5.19.5", "Linux version 5.19.5 (root@buildbox) (gcc (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Mon Aug 29 08:00:00 UTC 2022")
	if p.Refusal == "" || !strings.Contains(p.Refusal, "nmi-user-stack-deadlock") {
		t.Fatalf("want a refusal by nmi-user-stack-deadlock, got %q", p.Refusal)
	}
	for _, m := range []probe.Mechanism{probe.PerfEventHardware, probe.PerfEventSoftware} {
		_, err := fallback.Plan(k, nil, fallback.Request{Mechanism: m, ReadsUserStacks: p.ReadsUserStacks, ReadsUserMemory: p.ReadsUserMemory,
			PerfEvent: &fallback.PerfEvent{Hardware: m == probe.PerfEventHardware, Frequency: 99}}, nil)
		var out bytes.Buffer
		writeRefusalPath(&out, err)
		for _, want := range []string{"the user-stack path (copy_from_user_nmi) deadlocks", string(m), "kernels with the fix: 5.19.14, 6.0"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%s: refusal path lacks %q:\n%s", m, want, out.String())
			}
		}
	}
}
