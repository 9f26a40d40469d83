package tracefs

import (
	"strings"
	"testing"
)

func TestGroupNameRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		o Owner
		n uint64
	}{
		{Owner{PIDNS: 4026531836, PID: 1, Start: 0}, 0},
		{Owner{PIDNS: 4026532281, PID: 4242, Start: 123456}, 7},
		// The largest real values: a 32-bit inode, PID_MAX_LIMIT, a
		// start time of 30 years at 100 Hz, a large counter.
		{Owner{PIDNS: 1<<32 - 1, PID: 1 << 22, Start: 100 * 3600 * 24 * 365 * 30}, 1<<40 - 1},
	} {
		g, err := GroupName(tc.o, tc.n)
		if err != nil {
			t.Errorf("GroupName(%+v, %d): %v", tc.o, tc.n, err)
			continue
		}
		if !validIdentifier(g) {
			t.Errorf("GroupName(%+v, %d) = %q: not a valid tracefs identifier", tc.o, tc.n, g)
		}
		o, n, ok := ParseGroup(g)
		if !ok || o != tc.o || n != tc.n {
			t.Errorf("ParseGroup(%q) = %+v, %d, %v; want %+v, %d, true", g, o, n, ok, tc.o, tc.n)
		}
		for _, sym := range []string{"do_unlinkat", strings.Repeat("x", 200), ""} {
			e, err := EventName(sym, tc.o, tc.n)
			if err != nil || !validIdentifier(e) || !strings.HasSuffix(e, strings.TrimPrefix(g, GroupPrefix)) {
				t.Errorf("EventName(%.20q, %+v, %d) = %q, %v; want a valid name ending in the group's id", sym, tc.o, tc.n, e, err)
			}
		}
	}
	if _, err := GroupName(Owner{PID: 12}, 0); err == nil {
		t.Error("GroupName without a pid namespace succeeded; new names always carry one")
	}
}

func TestParseGroupLegacy(t *testing.T) {
	// Groups of older versions ("safebpf_<pid>_<n>") still parse, without
	// namespace, so a new agent can judge them.
	o, n, ok := ParseGroup("safebpf_4242_7")
	if !ok || o != (Owner{PID: 4242}) || !o.Legacy() || n != 7 {
		t.Errorf("ParseGroup(legacy) = %+v, %d, %v", o, n, ok)
	}
}

func TestParseGroupRejects(t *testing.T) {
	for _, g := range []string{
		"", "safebpf_", "safebpf_12", "safebpf_12_", "safebpf__3", "safebpf_0_1",
		"safebpf_12_x", "safebpf_1_2_3", "ebpf_12_3", "safebpf_-1_2", "kprobes",
		"safebpf_99999999999999999999_1", "safebpf_0_1_2_3", "safebpf_1_0_2_3",
		"safebpf_1_2_3_4_5", "safebpf_012_3", "safebpf_5000000_1",
	} {
		if o, n, ok := ParseGroup(g); ok {
			t.Errorf("ParseGroup(%q) = %+v, %d, true; want not ok", g, o, n)
		}
	}
}

func TestEventName(t *testing.T) {
	o := Owner{PIDNS: 4026532281, PID: 12, Start: 4711}
	for _, tc := range []struct {
		symbol string
		n      uint64
		want   string
	}{
		{"do_unlinkat", 0, "do_unlinkat_4026532281_12_4711_0"},
		{"__x64_sys_execve", 3, "__x64_sys_execve_4026532281_12_4711_3"},
		{"tcp_v4_connect.cold", 1, "tcp_v4_connect_cold_4026532281_12_4711_1"},
		{"9lives", 1, "e9lives_4026532281_12_4711_1"},
		{"", 2, "e_4026532281_12_4711_2"},
		{strings.Repeat("a", 100), 123, strings.Repeat("a", 63-len("_4026532281_12_4711_123")) + "_4026532281_12_4711_123"},
	} {
		got, err := EventName(tc.symbol, o, tc.n)
		if err != nil || got != tc.want {
			t.Errorf("EventName(%q, %d) = %q, %v; want %q", tc.symbol, tc.n, got, err, tc.want)
		}
		if !validIdentifier(got) {
			t.Errorf("EventName(%q, …) = %q: not a valid identifier", tc.symbol, got)
		}
	}
}

func TestValidIdentifier(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"abc_1", true},
		{"_x", true},
		{"1abc", false},
		{"a-b", false},
		{"a/b", false},
		{"", false},
		{strings.Repeat("a", 63), true},
		{strings.Repeat("a", 64), false},
	} {
		if got := validIdentifier(tc.in); got != tc.want {
			t.Errorf("validIdentifier(%q) = %v; want %v", tc.in, got, tc.want)
		}
	}
}
