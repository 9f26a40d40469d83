package hazards_test

import (
	"testing"

	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/internal/testutil/fixtures"
	"github.com/safebpf/safebpf/probe"
)

// loadGuestKernel reads testdata/kernels/NAME.json, a `safebpf probe --json`
// captured inside a kernel-matrix guest.

// TestGuestKernelVerdicts evaluates the catalog on what Debian's own
// kernels reported inside QEMU. Debian 5.10 (cloud) is built without
// CONFIG_PREEMPTION, so it has no TASKS_RCU and no tasks_rcu_exit_srcu: the
// evidence clears the fentry deadlock there although the version is in range.
func TestGuestKernelVerdicts(t *testing.T) {
	type want map[hazards.ID]hazards.Verdict
	for _, tc := range []struct {
		fixture string
		mech    probe.Mechanism
		want    want
	}{
		{"debian-5.10", probe.Fentry, want{"fentry-zap-pid-ns-deadlock": hazards.NotAffected, "x86-text-poke-race": hazards.NotAffected}},
		{"debian-6.1", probe.Fentry, want{"fentry-zap-pid-ns-deadlock": hazards.Affected, "x86-text-poke-race": hazards.NotAffected}},
		{"debian-6.12", probe.Fexit, want{"fentry-zap-pid-ns-deadlock": hazards.NotAffected, "x86-text-poke-race": hazards.NotAffected}},
		{"debian-5.10", probe.Uprobe, want{"uprobe-mmap-lock-stall": hazards.Affected}},
		{"debian-6.1", probe.Uprobe, want{"uprobe-mmap-lock-stall": hazards.Affected}},
		{"debian-6.12", probe.Uprobe, want{"uprobe-mmap-lock-stall": hazards.Affected}},
		{"debian-5.10", probe.Uretprobe, want{"uprobe-mmap-lock-stall": hazards.Affected, "uretprobe-seccomp-kill": hazards.NotAffected}},
		{"debian-6.1", probe.Uretprobe, want{"uprobe-mmap-lock-stall": hazards.Affected, "uretprobe-seccomp-kill": hazards.NotAffected}},
		{"debian-6.12", probe.Uretprobe, want{"uprobe-mmap-lock-stall": hazards.Affected, "uretprobe-seccomp-kill": hazards.Affected}},
		{"debian-5.10", probe.PerfEventHardware, want{"nmi-user-read-deadlock": hazards.NotAffected}},
		{"debian-6.1", probe.PerfEventHardware, want{"nmi-user-read-deadlock": hazards.NotAffected}},
		{"debian-6.12", probe.PerfEventHardware, want{"nmi-user-read-deadlock": hazards.NotAffected}},
		{"debian-6.1", probe.Kretprobe, want{"kretprobe-contention": hazards.NotAffected, "x86-text-poke-race": hazards.NotAffected}},
	} {
		t.Run(tc.fixture+"/"+string(tc.mech), func(t *testing.T) {
			k := fixtures.GuestKernel(t, "..", tc.fixture)
			got := map[hazards.ID]hazards.Finding{}
			for _, f := range hazards.Builtin().Evaluate(k, hazards.Attachment{Mechanism: tc.mech, ReadsUserMemory: true, Seccomp: true}) {
				got[f.ID] = f
			}
			if len(got) != len(tc.want) {
				t.Errorf("%d findings %v, want %d", len(got), got, len(tc.want))
			}
			for id, v := range tc.want {
				if f, ok := got[id]; !ok || f.Verdict != v {
					t.Errorf("%s on %s: %q (%s), want %q", id, k.Release, f.Verdict, f.Reason, v)
				}
			}
		})
	}
}
