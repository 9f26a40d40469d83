//go:build linux

package probe

import (
	"context"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/safebpf/safebpf/internal/testutil"
)

// onDemandFacts are facts of every kind the built-in catalog asks (this
// package cannot import it).
var onDemandFacts = []Fact{
	{Kind: FactSymbol, Name: "__bpf_tramp_image_put_rcu"},
	{Kind: FactSymbol, Name: "__x64_sys_uretprobe"},
	{Kind: FactSymbol, Name: "tasks_rcu_exit_srcu", Data: true},
	{Kind: FactBTF, Name: "bpf_map.owner.attach_func_proto"},
	{Kind: FactCall, Name: "copy_from_user_nofault->nmi_uaccess_okay"},
	{Kind: FactSelfTest, Name: selfTestUretprobeSeccomp},
}

// TestDetectOnDemand: a detection that asks for nothing records nothing
// beyond the identity (every mechanism "not probed", every fact "not
// looked for"); later calls asking for more, answered from the process's
// cache plus what they look for, end with exactly what one detection of
// everything, in a process that never asked before, finds on this host.
func TestDetectOnDemand(t *testing.T) {
	testutil.RequirePrivileged(t)
	ctx := context.Background()
	k0, err := Detect(ctx, &Options{Mechanisms: []Mechanism{}})
	if err != nil {
		t.Fatal(err)
	}
	if len(k0.Mechanisms) != 0 || len(k0.Observations) != 0 || k0.Kallsyms.Readable || k0.Kallsyms.Symbols != nil {
		t.Fatalf("start-up detection recorded mechanisms %v, observations %v, kallsyms %+v: want none", k0.Mechanisms, k0.Observations, k0.Kallsyms)
	}
	if s := k0.Support(Uprobe); s.Known() || s.Reason != "not probed" {
		t.Errorf("uprobe before it was probed: %+v, want undecided, not probed", s)
	}
	for _, f := range onDemandFacts {
		if o := k0.Observe(f); o.Known() || !strings.Contains(o.Witness, "not looked for") {
			t.Errorf("%s before it was looked for: %+v, want unknown, not looked for", f, o)
		}
	}
	if k0.Release == "" || k0.Version == nil || k0.Config == nil {
		t.Errorf("start-up detection lacks the identity: release %q, version %v, config read %v", k0.Release, k0.Version, k0.Config != nil)
	}

	// One request's worth: exactly what it asked, nothing else.
	k1, err := Detect(ctx, &Options{Mechanisms: []Mechanism{Uretprobe}, Facts: onDemandFacts[5:]})
	if err != nil {
		t.Fatal(err)
	}
	if len(k1.Mechanisms) != 1 || !k1.Support(Uretprobe).Known() || len(k1.Observations) != 1 {
		t.Errorf("asked for uretprobe and the self-test, got mechanisms %v and observations %v", k1.Mechanisms, k1.Observations)
	}

	all, err := Detect(ctx, &Options{Facts: onDemandFacts})
	if err != nil {
		t.Fatal(err)
	}
	// Arch set: not the cached host, a detection of its own.
	fresh, err := Detect(ctx, &Options{Arch: runtime.GOARCH, Facts: onDemandFacts})
	if err != nil {
		t.Fatal(err)
	}
	// A self-test's witness carries its run time.
	sameHolds := cmp.Comparer(func(a, b Observation) bool {
		return a.Known() == b.Known() && (!a.Known() || *a.Holds == *b.Holds)
	})
	if diff := cmp.Diff(fresh, all, sameHolds); diff != "" {
		t.Errorf("built up on demand differs from one full detection (-full +on demand):\n%s", diff)
	}
	// What an agent holds after asking piece by piece: the start-up
	// detection, merged with each later one's answers.
	var rest []Mechanism
	for _, m := range Mechanisms() {
		if m != Uretprobe {
			rest = append(rest, m)
		}
	}
	k2, err := Detect(ctx, &Options{Mechanisms: rest, Facts: onDemandFacts[:5]})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(fresh, k0.Merge(k1).Merge(k2), sameHolds); diff != "" {
		t.Errorf("merged piece by piece differs from one full detection (-full +merged):\n%s", diff)
	}
	if len(all.Mechanisms) != len(Mechanisms()) || len(all.Observations) != 3 {
		t.Errorf("full detection: %d mechanisms, %d observations; want %d and 3", len(all.Mechanisms), len(all.Observations), len(Mechanisms()))
	}
	if _, err := Detect(ctx, &Options{Mechanisms: []Mechanism{"kprobe", "bogus"}}); err == nil || !strings.Contains(err.Error(), `"bogus"`) {
		t.Errorf("unknown mechanism: %v, want an error naming it", err)
	}
}
