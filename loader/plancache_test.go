package loader

import (
	"reflect"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/internal/testutil/fixtures"
	"github.com/safebpf/safebpf/probe"
)

// TestPlanKeyCoversRequest fails when fallback.Request gains a field the
// plan memo's key does not carry: two requests differing only in it would
// share a Decision.
func TestPlanKeyCoversRequest(t *testing.T) {
	keyed := []string{"Mechanism", "Alternatives", "Pinned", "ReadsUserMemory", "ReadsUserStacks", "TailCalls", "Seccomp", "Targets", "MaxActive", "PerfEvent", "AttachTo"}
	labels := []string{"Target"} // only names the Decision; complete sets it
	rt := reflect.TypeFor[fallback.Request]()
	for i := range rt.NumField() {
		name := rt.Field(i).Name
		if !slices.Contains(keyed, name) && !slices.Contains(labels, name) {
			t.Errorf("fallback.Request.%s is not in planKey: add it to keyOf (or, if it only labels the Decision, to complete)", name)
		}
	}
}

// TestPlanMemo: a remembered plan is the planner's own answer for every
// request, labelled with the request's target (in the Decision and in a
// refusal), and changing the answer does not change the memo.
func TestPlanMemo(t *testing.T) {
	k := fixtures.GuestKernel(t, "..", "debian-6.1")
	pol := &hazards.Policy{Mode: hazards.Enforce}
	pl := newPlanner(newKernelView(k, hazards.Builtin(), nil), hazards.Builtin(), pol)
	reqs := []fallback.Request{
		{Mechanism: probe.Fentry, Target: "do_unlinkat", Alternatives: []probe.Mechanism{probe.Kprobe}, Seccomp: true},
		{Mechanism: probe.Fentry, Target: "vfs_read", Seccomp: true}, // refused on 6.1: no kprobe variant
		{Mechanism: probe.Kretprobe, Target: "vfs_read", MaxActive: 64, Seccomp: true},
		{Mechanism: probe.Uprobe, Target: "/bin/bash:readline", Targets: 3, Seccomp: true},
		// Same shape, other targets: a syscall entry point never runs in
		// interrupt context, the timer tick does.
		{Mechanism: probe.Kprobe, Target: "getpid", AttachTo: []string{"__x64_sys_getpid"}, ReadsUserMemory: true, Seccomp: true},
		{Mechanism: probe.Kprobe, Target: "tick", AttachTo: []string{"update_process_times"}, ReadsUserMemory: true, Seccomp: true},
		{Mechanism: probe.PerfEventHardware, Target: "hardware-cycles", PerfEvent: &fallback.PerfEvent{Hardware: true, Frequency: 99}, ReadsUserMemory: true},
		{Mechanism: probe.PerfEventHardware, Target: "hardware-cycles", PerfEvent: &fallback.PerfEvent{Hardware: true, Frequency: 49}, ReadsUserMemory: true},
	}
	for round := range 2 {
		for _, req := range reqs {
			for _, target := range []string{req.Target, req.Target + "-other"} {
				r := req
				r.Target = target
				got, gotErr := pl.plan(r)
				want, wantErr := fallback.Plan(k, hazards.Builtin(), r, pol)
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("round %d, %s on %s: decision (-planner +memo):\n%s", round, r.Mechanism, target, diff)
				}
				if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
					t.Errorf("round %d, %s on %s: error %v, want %v", round, r.Mechanism, target, gotErr, wantErr)
				}
				// The caller owns its copy.
				if len(got.Steps) > 0 {
					got.Steps[0].Reason = "changed"
					got.Steps = append(got.Steps, fallback.Step{Reason: "appended"})
				}
				if got.Settings.PerfEvent != nil {
					got.Settings.PerfEvent.Frequency = 1
				}
			}
		}
	}
	if n := len(pl.memo); n != len(reqs) {
		t.Errorf("memo holds %d plans for %d request shapes", n, len(reqs))
	}
}
