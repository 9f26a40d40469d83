package probe

import (
	"context"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// testSymbolFacts are the symbols the host fixtures are scanned for: the
// evidence symbols of the built-in catalog and the symbols the fixtures'
// want.json files name (probe's tests cannot import hazards).
var testSymbolFacts = func() []Fact {
	var out []Fact
	for _, s := range []string{
		"tasks_rcu_exit_srcu", "nmi_uaccess_okay", "copy_from_user_nofault", "__x64_sys_uretprobe",
		"__arm64_sys_uretprobe", "bpf_trampoline_link_prog", "bpf_trampoline_unlink_prog",
		"bpf_kprobe_multi_link_attach", "bpf_uprobe_multi_link_attach", "register_fprobe", "objpool_init",
		"text_poke_bp", "text_poke_bp_batch", "uprobe_register", "uprobe_mmap",
		"arch_uretprobe_hijack_return_addr", "perf_event_nmi_handler",
	} {
		out = append(out, Fact{Kind: FactSymbol, Name: s, Data: s == "tasks_rcu_exit_srcu"})
	}
	return out
}()

func TestFactValid(t *testing.T) {
	for _, f := range []Fact{
		{Kind: FactSymbol, Name: "tasks_rcu_exit_srcu", Data: true},
		{Kind: FactCall, Name: "copy_from_user_nofault->nmi_uaccess_okay"},
		{Kind: FactCall, Name: "copy_from_user_nmi->__check_object_size"},
		{Kind: FactBTF, Name: "bpf_map.owner.attach_func_proto"},
		{Kind: FactSelfTest, Name: "uretprobe-seccomp-kill"},
	} {
		if err := f.Valid(); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	for _, f := range []Fact{
		{},
		{Kind: "kcore", Name: "x"},
		{Kind: FactSymbol},
		{Kind: FactSymbol, Name: "two words"},
		{Kind: FactCall, Name: "copy_from_user_nofault"},
		{Kind: FactCall, Name: "->callee"},
		{Kind: FactBTF, Name: "bpf_map"},
		{Kind: FactBTF, Name: "bpf_map..owner"},
		{Kind: FactCall, Name: "a->b", Data: true},
	} {
		if err := f.Valid(); err == nil {
			t.Errorf("Valid(%+v) = nil, want an error", f)
		}
	}
	if _, err := Detect(context.Background(), &Options{Root: fstest.MapFS{}, Facts: []Fact{{Kind: "kcore", Name: "x"}}}); err == nil || !strings.Contains(err.Error(), "unknown fact kind") {
		t.Errorf("Detect with a malformed fact = %v, want an error naming the kind", err)
	}
	if _, err := Describe(Description{Release: "6.1.0", Facts: []Fact{{Kind: FactBTF, Name: "bpf_map"}}}); err == nil {
		t.Error("Describe with a malformed fact succeeded")
	}
}

// TestDescribeFacts: symbol facts are answered from the kallsyms excerpt,
// every other kind stays unknown (a description has no live kernel), and a
// symbol nobody asked for stays unknown.
func TestDescribeFacts(t *testing.T) {
	facts := []Fact{
		{Kind: FactSymbol, Name: "tasks_rcu_exit_srcu", Data: true},
		{Kind: FactSymbol, Name: "__x64_sys_uretprobe"},
		{Kind: FactCall, Name: "copy_from_user_nofault->nmi_uaccess_okay"},
		{Kind: FactSelfTest, Name: "uretprobe-seccomp-kill"},
		{Kind: FactSymbol, Name: "tasks_rcu_exit_srcu"}, // duplicate, as text
	}
	k, err := Describe(Description{
		Release: "6.8.0-53-generic",
		Kallsyms: "ffffffff81000000 T _stext\n" +
			"ffffffff83a1c2e0 d tasks_rcu_exit_srcu_stall_timer\n" +
			"ffffffff8110a2c0 T copy_from_user_nofault\n",
		Facts: facts,
	})
	if err != nil {
		t.Fatal(err)
	}
	// The look-alike tasks_rcu_exit_srcu_stall_timer survives the fix
	// (1612160b9127): only the exact name counts.
	if o := k.Observe(facts[0]); !o.Known() || *o.Holds {
		t.Errorf("tasks_rcu_exit_srcu = %+v (%s), want absent", o.Holds, o.Witness)
	}
	if o := k.Observe(facts[1]); !o.Known() || *o.Holds {
		t.Errorf("__x64_sys_uretprobe = %+v, want absent", o.Holds)
	}
	for _, f := range facts[2:4] {
		if o := k.Observe(f); o.Known() || !strings.Contains(o.Witness, "not looked for") {
			t.Errorf("%s = %+v, want unknown: not looked for offline", f, o)
		}
	}
	if _, known := k.Symbol("copy_from_user_nofault"); known {
		t.Error("copy_from_user_nofault is known although no fact asked for it")
	}
}

// TestDetectHostFacts reads this machine: facts are looked for per call,
// the cache answers later calls for the same facts, and a call with other
// facts gets exactly its own. (Whether the process already detected the
// host decides which path the first call takes; both are covered across
// the test binaries that detect.)
func TestDetectHostFacts(t *testing.T) {
	ctx := context.Background()
	present := Fact{Kind: FactSymbol, Name: "schedule"}
	absent := Fact{Kind: FactSymbol, Name: "safebpf_no_such_symbol"}
	call := Fact{Kind: FactCall, Name: "copy_from_user_nofault->nmi_uaccess_okay"}
	a, err := Detect(ctx, &Options{Facts: []Fact{present, call}})
	if err != nil {
		t.Fatal(err)
	}
	if !a.Kallsyms.Readable {
		t.Skip("needs a readable /proc/kallsyms")
	}
	if o := a.Observe(present); !o.Known() || !*o.Holds {
		t.Errorf("schedule: %+v (%s), want present", o.Holds, o.Witness)
	}
	if _, ok := a.Observations[call.Key()]; !ok {
		t.Errorf("Observations = %v, want an entry for %s", a.Observations, call.Key())
	}
	b, err := Detect(ctx, &Options{Facts: []Fact{absent}})
	if err != nil {
		t.Fatal(err)
	}
	if o := b.Observe(absent); !o.Known() || *o.Holds {
		t.Errorf("safebpf_no_such_symbol: %+v (%s), want absent", o.Holds, o.Witness)
	}
	if _, known := b.Symbol("schedule"); known {
		t.Error("the second call's kernel holds a fact it did not ask for")
	}
	if _, ok := b.Observations[call.Key()]; ok {
		t.Error("the second call's kernel holds an observation it did not ask for")
	}
	c, err := Detect(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Kallsyms.Symbols) != 0 || len(c.Observations) != 0 {
		t.Errorf("Detect(nil) = %v, %v; want no facts", c.Kallsyms.Symbols, c.Observations)
	}
	a2, err := Detect(ctx, &Options{Facts: []Fact{present, call}})
	if err != nil {
		t.Fatal(err)
	}
	if o := a2.Observe(present); !o.Known() || !*o.Holds {
		t.Errorf("cached schedule: %+v", o.Holds)
	}
	if a2.Release != a.Release || a2.Preemption.Model != a.Preemption.Model {
		t.Errorf("cached kernel differs: %s/%s vs %s/%s", a2.Release, a2.Preemption.Model, a.Release, a.Preemption.Model)
	}
}

// TestInterruptContext: every mechanism is classified explicitly, perf
// events always run in interrupt context (NMI, or hard IRQ for cpu-clock),
// uprobes never.
func TestInterruptContext(t *testing.T) {
	for _, m := range allMechanisms {
		if _, ok := interruptContexts[m]; !ok {
			t.Errorf("%s has no interrupt-context classification", m)
		}
	}
	for m, want := range map[Mechanism]Occurrence{
		PerfEventHardware: Always, PerfEventSoftware: Always, Kprobe: Maybe, Fentry: Maybe,
		TpBTF: Maybe, Uprobe: Never, UretprobeMulti: Never, Iter: Never,
	} {
		if got := m.InterruptContext(); got != want {
			t.Errorf("%s.InterruptContext() = %s, want %s", m, got, want)
		}
	}
	if !slices.Contains([]Occurrence{Always, Maybe, Never}, Mechanism("future").InterruptContext()) {
		t.Error("unknown mechanism has no answer")
	}
}
