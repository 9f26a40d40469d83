package tracefs

import (
	"strings"
	"testing"
)

func TestGroupNameRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		pid int
		n   uint64
	}{{1, 0}, {4242, 7}, {4194304, 18446744073709551615}} {
		g := GroupName(tc.pid, tc.n)
		if !validIdentifier(g) {
			t.Errorf("GroupName(%d, %d) = %q: not a valid tracefs identifier", tc.pid, tc.n, g)
		}
		pid, n, ok := ParseGroup(g)
		if !ok || pid != tc.pid || n != tc.n {
			t.Errorf("ParseGroup(%q) = %d, %d, %v; want %d, %d, true", g, pid, n, ok, tc.pid, tc.n)
		}
	}
}

func TestParseGroupRejects(t *testing.T) {
	for _, g := range []string{
		"", "safebpf_", "safebpf_12", "safebpf_12_", "safebpf__3", "safebpf_0_1",
		"safebpf_12_x", "safebpf_1_2_3", "ebpf_12_3", "safebpf_-1_2", "kprobes",
		"safebpf_99999999999999999999_1",
	} {
		if pid, n, ok := ParseGroup(g); ok {
			t.Errorf("ParseGroup(%q) = %d, %d, true; want not ok", g, pid, n)
		}
	}
}

func TestEventName(t *testing.T) {
	for _, tc := range []struct {
		symbol string
		pid    int
		n      uint64
		want   string
	}{
		{"do_unlinkat", 12, 0, "do_unlinkat_12_0"},
		{"__x64_sys_execve", 7, 3, "__x64_sys_execve_7_3"},
		{"tcp_v4_connect.cold", 1, 1, "tcp_v4_connect_cold_1_1"},
		{"9lives", 1, 1, "e9lives_1_1"},
		{"", 5, 2, "e_5_2"},
		{strings.Repeat("a", 100), 4194304, 123, strings.Repeat("a", 63-len("_4194304_123")) + "_4194304_123"},
	} {
		got := EventName(tc.symbol, tc.pid, tc.n)
		if got != tc.want {
			t.Errorf("EventName(%q, %d, %d) = %q; want %q", tc.symbol, tc.pid, tc.n, got, tc.want)
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
