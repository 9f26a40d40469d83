package fallback_test

import (
	"errors"
	"testing"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/internal/testutil/fixtures"
	"github.com/safebpf/safebpf/probe"
)

// TestGuestKernelDecisions plans on what Debian's kernels reported inside
// the QEMU matrix: the same decisions the guests' integration tests assert
// after attaching for real.
func TestGuestKernelDecisions(t *testing.T) {
	hw := &fallback.PerfEvent{Hardware: true, Frequency: 99}
	for _, tc := range []struct {
		fixture string
		req     fallback.Request
		chosen  probe.Mechanism // empty: refused
		action  fallback.Action
	}{
		{"debian-5.10", fallback.Request{Mechanism: probe.Fentry, Alternatives: []probe.Mechanism{probe.Kprobe}}, probe.Fentry, fallback.Allow},
		{"debian-6.1", fallback.Request{Mechanism: probe.Fentry, Alternatives: []probe.Mechanism{probe.Kprobe}}, probe.Kprobe, fallback.Downgrade},
		{"debian-6.1", fallback.Request{Mechanism: probe.Fexit, Alternatives: []probe.Mechanism{probe.Kretprobe}}, probe.Kretprobe, fallback.Downgrade},
		{"debian-6.1", fallback.Request{Mechanism: probe.Fentry}, "", fallback.Refuse},
		{"debian-6.12", fallback.Request{Mechanism: probe.Fentry, Alternatives: []probe.Mechanism{probe.Kprobe}}, probe.Fentry, fallback.Allow},
		{"debian-6.12", fallback.Request{Mechanism: probe.Kprobe, Alternatives: []probe.Mechanism{probe.Fentry}}, probe.Kprobe, fallback.Allow},
		{"debian-5.10", fallback.Request{Mechanism: probe.PerfEventHardware, ReadsUserMemory: true, PerfEvent: hw}, probe.PerfEventSoftware, fallback.Downgrade},
		{"debian-6.12", fallback.Request{Mechanism: probe.PerfEventHardware, PerfEvent: hw}, probe.PerfEventSoftware, fallback.Downgrade},
		{"debian-5.10", fallback.Request{Mechanism: probe.Uprobe}, probe.Uprobe, fallback.Pace},
		{"debian-6.12", fallback.Request{Mechanism: probe.Uprobe}, probe.Uprobe, fallback.Pace},
		{"debian-6.1", fallback.Request{Mechanism: probe.Uretprobe, Seccomp: true}, probe.Uretprobe, fallback.Pace},
		// 6.12.14 carries cf6cb56ef244 (research C3): uretprobes attach even for seccomp'd targets.
		{"debian-6.12", fallback.Request{Mechanism: probe.Uretprobe, Seccomp: true}, probe.Uretprobe, fallback.Pace},
		// No PMU in the guests: the software event answers the missing
		// hardware event, and 6.1.192 carries the user-read fix.
		{"debian-6.1", fallback.Request{Mechanism: probe.PerfEventHardware, ReadsUserMemory: true, ReadsUserStacks: true, PerfEvent: hw}, probe.PerfEventSoftware, fallback.Downgrade},
		{"debian-6.12", fallback.Request{Mechanism: probe.Uretprobe}, probe.Uretprobe, fallback.Pace},
	} {
		t.Run(tc.fixture+"/"+string(tc.req.Mechanism), func(t *testing.T) {
			k := fixtures.GuestKernel(t, "..", tc.fixture)
			tc.req.Target = "target"
			d, err := fallback.Plan(k, nil, tc.req, nil)
			if tc.chosen == "" {
				if !errors.Is(err, fallback.ErrRefused) {
					t.Fatalf("want a refusal, got %v (decision %+v)", err, d)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if d.Chosen != tc.chosen || d.Action != tc.action {
				t.Errorf("on %s: %s → %q (%s), want %q (%s); steps %+v", k.Release, tc.req.Mechanism, d.Chosen, d.Action, tc.chosen, tc.action, d.Steps)
			}
			if d.Action == fallback.Pace && (d.Settings.Pacing == nil || d.Settings.Pacing.Concurrency < 1) {
				t.Errorf("pace without pacing settings: %+v", d.Settings)
			}
			if d.Chosen == probe.PerfEventSoftware && (d.Settings.PerfEvent == nil || d.Settings.PerfEvent.Hardware || d.Settings.PerfEvent.Frequency != 99) {
				t.Errorf("software event must keep the frequency: %+v", d.Settings.PerfEvent)
			}
		})
	}
}
