package probe

import "testing"

func TestObserve(t *testing.T) {
	k := &Kernel{
		Kallsyms: Kallsyms{Readable: true, DataSymbols: false, Symbols: map[string]bool{
			"tasks_rcu_exit_srcu": false, "__x64_sys_uretprobe": true, "copy_from_user_nofault": false,
		}},
		Observations: map[string]Observation{
			"call:copy_from_user_nofault->nmi_uaccess_okay": Observed(true, "call nmi_uaccess_okay at copy_from_user_nofault+0x2e"),
		},
	}
	tests := []struct {
		fact  Fact
		holds *bool
	}{
		{Fact{Kind: FactSymbol, Name: "__x64_sys_uretprobe"}, ptr(true)},
		{Fact{Kind: FactSymbol, Name: "copy_from_user_nofault"}, ptr(false)},
		// A data symbol's absence says nothing without CONFIG_KALLSYMS_ALL.
		{Fact{Kind: FactSymbol, Name: "tasks_rcu_exit_srcu", Data: true}, nil},
		// Never looked for: unknown, not "absent".
		{Fact{Kind: FactSymbol, Name: "bp_desc", Data: true}, nil},
		{Fact{Kind: FactCall, Name: "copy_from_user_nofault->nmi_uaccess_okay"}, ptr(true)},
		{Fact{Kind: FactCall, Name: "copy_from_user_nmi->__check_object_size"}, nil},
		{Fact{Kind: FactSelfTest, Name: "uretprobe-seccomp-kill"}, nil},
	}
	for _, tt := range tests {
		o := k.Observe(tt.fact)
		if (o.Holds == nil) != (tt.holds == nil) || o.Holds != nil && *o.Holds != *tt.holds {
			t.Errorf("Observe(%s) = %v (%s), want %v", tt.fact, fmtHolds(o.Holds), o.Witness, fmtHolds(tt.holds))
		}
		if o.Witness == "" {
			t.Errorf("Observe(%s): empty witness", tt.fact)
		}
	}
	if o := (&Kernel{}).Observe(Fact{Kind: FactSymbol, Name: "x"}); o.Known() {
		t.Errorf("unreadable kallsyms gave a conclusive answer: %+v", o)
	}
	fn, callee, ok := Fact{Kind: FactCall, Name: " copy_from_user_nmi -> __check_object_size"}.CallParts()
	if !ok || fn != "copy_from_user_nmi" || callee != "__check_object_size" {
		t.Errorf("CallParts = %q %q %v", fn, callee, ok)
	}
}

func ptr(b bool) *bool { return &b }

func fmtHolds(b *bool) string {
	if b == nil {
		return "unknown"
	}
	if *b {
		return "holds"
	}
	return "does not hold"
}
