package hazards

import (
	"strings"
	"testing"
)

// TestPolicyBounds checks that values far beyond what the loader can use
// are rejected with the key and the bound (issue 12, finding 8), and that
// the bounds themselves are accepted.
func TestPolicyBounds(t *testing.T) {
	const head = "apiVersion: safebpf/v1\n"
	for _, tc := range []struct {
		body    string
		key     string // "" means valid
		message string
	}{
		{"uprobes:\n  interval: 10s\n  concurrency: 1024\n", "", ""},
		{"uprobes:\n  interval: 2000000h\n", "uprobes.interval", "at most 10s"},
		{"uprobes:\n  interval: 10001ms\n", "uprobes.interval", "at most 10s"},
		{"uprobes:\n  concurrency: 1025\n", "uprobes.concurrency", "at most 1024"},
		{"uprobes:\n  concurrency: 9223372036854775807\n", "uprobes.concurrency", "at most 1024"},
		{"hazards:\n  uprobe-mmap-lock-stall:\n    params:\n      interval: 1h\n", "hazards.uprobe-mmap-lock-stall.params.interval", "at most 10s"},
		{"hazards:\n  uprobe-mmap-lock-stall:\n    params:\n      concurrency: 100000\n", "hazards.uprobe-mmap-lock-stall.params.concurrency", "at most 1024"},
		{"hazards:\n  kretprobe-contention:\n    min_cpus: 65536\n", "", ""},
		{"hazards:\n  kretprobe-contention:\n    min_cpus: 65537\n", "hazards.kretprobe-contention.min_cpus", "at most 65536"},
		{"hazards:\n  kretprobe-contention:\n    params:\n      maxactive: 4097\n", "hazards.kretprobe-contention.params.maxactive", "4096"},
		{"rules:\n  - id: r1\n    title: t\n    mechanisms: [kprobe]\n    requires:\n      min_cpus: 1000000\n    action: warn\n", "rules[0].requires.min_cpus", "at most 65536"},
		{"rules:\n  - id: r1\n    title: t\n    mechanisms: [uprobe]\n    action: pace\n    params:\n      interval: 11s\n", "rules[0].params.interval", "at most 10s"},
	} {
		_, err := ParsePolicy("p.yaml", []byte(head+tc.body))
		if tc.key == "" {
			if err != nil {
				t.Errorf("%q: %v; want valid", tc.body, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.key+": ") || !strings.Contains(err.Error(), tc.message) {
			t.Errorf("%q: %v; want an error at %s saying %q", tc.body, err, tc.key, tc.message)
		}
	}
}
