package hazards_test

import (
	"strings"
	"testing"

	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/internal/testutil/fixtures"
	"github.com/safebpf/safebpf/probe"
)

// loadGuestKernel reads testdata/kernels/NAME.json, a `safebpf probe --json`
// captured inside a kernel-matrix guest.

// TestGuestKernelVerdicts evaluates the catalog on what Debian's own
// kernels reported inside QEMU, for the worst-case program (reads user
// memory, takes user stacks, makes tail calls, target under seccomp).
// Debian 5.10 (cloud) is built without CONFIG_PREEMPTION ("#1 SMP"), so it
// has no TASKS_RCU and no tasks_rcu_exit_srcu: fentry stays. 6.1.192 carries
// only the partial fix 28319d6dc5e2 and tasks_rcu_exit_srcu (research C10:
// the hang reproduces there). 6.12 is past the uretprobe seccomp fix
// (6.12.14); 6.1.192 and 6.12 carry 28ead3eaabc1 (6.1.135, 6.11.4), so tail
// calls from fentry break there (their BTF has bpf_map.owner.attach_func_proto).
func TestGuestKernelVerdicts(t *testing.T) {
	type want map[hazards.ID]hazards.Verdict
	const (
		nmi   = hazards.ID("nmi-user-read-deadlock")
		stack = hazards.ID("nmi-user-stack-deadlock")
		poke  = hazards.ID("x86-text-poke-race")
		zap   = hazards.ID("fentry-zap-pid-ns-deadlock")
		crash = hazards.ID("fexit-sleeping-detach-crash")
		tail  = hazards.ID("fentry-tail-call-break")
		na    = hazards.NotAffected
	)
	for _, tc := range []struct {
		fixture string
		mech    probe.Mechanism
		want    want
		// why holds substrings of reasons that name the kernel's own
		// witness as captured in the guest: kallsyms, BTF, the machine code
		// read from /proc/kcore, the uretprobe self-test.
		why map[hazards.ID]string
	}{
		{"debian-5.10", probe.Fentry, want{nmi: na, stack: na, poke: na, zap: na, tail: na},
			map[hazards.ID]string{zap: "tasks_rcu_exit_srcu absent from kallsyms", poke: "bp_desc present in kallsyms",
				nmi: "find_vmap_area is not in kallsyms", stack: "find_vmap_area is not in kallsyms",
				tail: "struct bpf_map has no member owner"}},
		{"debian-6.1", probe.Fentry, want{nmi: na, stack: na, poke: na, zap: hazards.Affected, tail: hazards.Affected},
			map[hazards.ID]string{zap: "tasks_rcu_exit_srcu present in kallsyms",
				nmi: "call nmi_uaccess_okay at copy_from_user_nofault+", stack: "no call to __check_object_size in copy_from_user_nmi",
				tail: "attach_func_proto present"}},
		{"debian-6.12", probe.Fentry, want{nmi: na, stack: na, poke: na, zap: na, tail: hazards.Affected},
			map[hazards.ID]string{nmi: "call nmi_uaccess_okay at copy_from_user_nofault+", tail: "attach_func_proto present"}},
		{"debian-5.10", probe.Fexit, want{nmi: na, stack: na, poke: na, zap: na, crash: na, tail: na},
			map[hazards.ID]string{crash: "__bpf_tramp_image_put_rcu present in kallsyms"}},
		{"debian-6.12", probe.Fexit, want{nmi: na, stack: na, poke: na, zap: na, crash: na, tail: hazards.Affected},
			map[hazards.ID]string{crash: "__bpf_tramp_image_put_rcu present in kallsyms", zap: "tasks_rcu_exit_srcu absent from kallsyms"}},
		{"debian-5.10", probe.Uprobe, want{"uprobe-mmap-lock-stall": hazards.Affected}, nil},
		{"debian-6.1", probe.Uprobe, want{"uprobe-mmap-lock-stall": hazards.Affected}, nil},
		{"debian-6.12", probe.Uprobe, want{"uprobe-mmap-lock-stall": hazards.Affected}, nil},
		{"debian-5.10", probe.Uretprobe, want{"uprobe-mmap-lock-stall": hazards.Affected, "uretprobe-seccomp-kill": na}, nil},
		{"debian-6.1", probe.Uretprobe, want{"uprobe-mmap-lock-stall": hazards.Affected, "uretprobe-seccomp-kill": na}, nil},
		{"debian-6.12", probe.Uretprobe, want{"uprobe-mmap-lock-stall": hazards.Affected, "uretprobe-seccomp-kill": na},
			map[hazards.ID]string{"uretprobe-seccomp-kill": "self-test: helper survived"}},
		{"debian-5.10", probe.PerfEventHardware, want{nmi: na, stack: na}, nil},
		{"debian-6.1", probe.PerfEventSoftware, want{nmi: na, stack: na}, nil},
		{"debian-6.12", probe.PerfEventHardware, want{nmi: na, stack: na}, nil},
		{"debian-6.1", probe.Kretprobe, want{nmi: na, stack: na, poke: na, "kretprobe-contention": na, "kretprobe-pool-exhaustion": hazards.Affected}, nil},
	} {
		t.Run(tc.fixture+"/"+string(tc.mech), func(t *testing.T) {
			k := fixtures.GuestKernel(t, "..", tc.fixture)
			got := map[hazards.ID]hazards.Finding{}
			for _, f := range hazards.Builtin().Evaluate(k, hazards.Attachment{Mechanism: tc.mech, ReadsUserMemory: true, ReadsUserStacks: true, TailCalls: true, Seccomp: true}) {
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
			for id, sub := range tc.why {
				if f := got[id]; !strings.Contains(f.Reason, sub) {
					t.Errorf("%s on %s: reason %q does not name the witness %q", id, k.Release, f.Reason, sub)
				}
			}
		})
	}
}
