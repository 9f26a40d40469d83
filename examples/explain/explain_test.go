package explain

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/loader"
	"github.com/safebpf/safebpf/probe"
)

func TestDecision(t *testing.T) {
	tests := []struct {
		name string
		d    fallback.Decision
		want string
	}{
		{
			name: "allow",
			d: fallback.Decision{Target: "readline", Requested: probe.Uretprobe, Chosen: probe.Uretprobe,
				Action: fallback.Allow, Mode: hazards.Enforce},
			want: "readline: uretprobe (as requested)\n",
		},
		{
			name: "fentry downgrade",
			d: fallback.Decision{Target: "do_sys_openat2", Requested: probe.Fentry, Chosen: probe.Kprobe,
				Action: fallback.Downgrade,
				Steps: []fallback.Step{{From: probe.Fentry, To: probe.Kprobe, Action: fallback.Downgrade,
					Hazard: "fentry-zap-pid-ns-deadlock", Reason: "kernel 6.1.76 has tasks_rcu_exit_srcu"}}},
			want: "do_sys_openat2: fentry → kprobe (downgrade)\n" +
				"    fentry → kprobe: fentry-zap-pid-ns-deadlock: kernel 6.1.76 has tasks_rcu_exit_srcu\n",
		},
		{
			name: "hardware to software",
			d: fallback.Decision{Target: "cycles", Requested: probe.PerfEventHardware, Chosen: probe.PerfEventSoftware,
				Action:   fallback.Downgrade,
				Settings: fallback.Settings{PerfEvent: &fallback.PerfEvent{Frequency: 99}},
				Steps: []fallback.Step{{From: probe.PerfEventHardware, To: probe.PerfEventSoftware,
					Action: fallback.Downgrade, Missing: probe.PerfEventHardware, Reason: "ENOENT"}}},
			want: "cycles: perf-event-hardware → perf-event-software (downgrade)\n" +
				"    perf-event-hardware → perf-event-software: perf-event-hardware unavailable: ENOENT\n" +
				"    settings: perf event software cpu-clock at 99 Hz\n",
		},
		{
			name: "refused with both alternatives",
			d: fallback.Decision{Target: "vfs_read", Requested: probe.Fexit, Action: fallback.Refuse,
				Steps: []fallback.Step{
					{From: probe.Fexit, To: probe.Kretprobe, Action: fallback.Downgrade, Missing: probe.Fexit},
					{From: probe.Kretprobe, Action: fallback.Refuse, Missing: probe.Kretprobe, Reason: "no CONFIG_KPROBES"},
				}},
			want: "vfs_read: fexit refused\n" +
				"    fexit → kretprobe: fexit unavailable\n" +
				"    kretprobe refused: kretprobe unavailable: no CONFIG_KPROBES\n",
		},
		{
			name: "cap, pace, forced, warn mode",
			d: fallback.Decision{Target: "x", Requested: probe.Kretprobe, Chosen: probe.Kretprobe, Action: fallback.Cap,
				Settings: fallback.Settings{MaxActive: 64, Pacing: &fallback.Pacing{Interval: 50 * time.Millisecond, Concurrency: 1}, Multi: true},
				Steps:    []fallback.Step{{From: probe.Kretprobe, To: probe.Kretprobe, Action: fallback.Cap, Hazard: "kretprobe-contention", Forced: true}},
				Forced:   []hazards.ID{"a", "b"},
				Mode:     hazards.Warn, WouldChoose: probe.Fexit, WouldAction: fallback.Upgrade},
			want: "x: kretprobe (cap)\n" +
				"    kretprobe kept (cap): kretprobe-contention: forced\n" +
				"    settings: kretprobe maxactive 64; uprobe registrations paced one at a time, 50ms apart; batched into one multi link\n" +
				"    forced past: a, b\n" +
				"    warn mode: enforce would have chosen fexit (upgrade)\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Decision(tt.d)); diff != "" {
				t.Errorf("Decision() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFprint(t *testing.T) {
	var b strings.Builder
	ds := []fallback.Decision{{Target: "t", Requested: probe.Uprobe, Chosen: probe.Uprobe, Action: fallback.Allow}}
	if err := Fprint(&b, "6.18.0", ds); err != nil {
		t.Fatal(err)
	}
	want := "safebpf decisions on kernel 6.18.0:\n  t: uprobe (as requested)\n"
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("Fprint() mismatch (-want +got):\n%s", diff)
	}
}

func TestKernel(t *testing.T) {
	tests := []struct {
		k    *probe.Kernel
		want string
	}{
		{nil, ""},
		{&probe.Kernel{Release: "6.1.0-18-cloud-amd64", Version: &probe.Version{Major: 6, Minor: 1, Patch: 76, PatchKnown: true},
			VersionSource: probe.SourceDebian, Distro: probe.Distro{ID: "debian", VersionID: "12"}, Arch: "amd64"},
			"6.1.0-18-cloud-amd64 (upstream 6.1.76 from proc_version, debian 12, amd64)"},
		{&probe.Kernel{Release: "weird"}, "weird (upstream version unknown)"},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, Kernel(tt.k)); diff != "" {
			t.Errorf("Kernel() mismatch (-want +got):\n%s", diff)
		}
	}
}

func TestFailure(t *testing.T) {
	refused := &fallback.RefusedError{
		Requested: probe.Fentry, Target: "vfs_read",
		Tried: []fallback.Step{
			{From: probe.Fentry, To: probe.Kprobe, Action: fallback.Downgrade, Missing: probe.Fentry, Reason: "EPERM"},
			{From: probe.Kprobe, Action: fallback.Refuse, Hazard: "x86-text-poke-race", Reason: "affected"},
		},
		ForceHint: "force with -safebpf-force x86-text-poke-race",
	}
	other := errors.New("some other failure")
	tests := []struct {
		name    string
		err     error
		want    string
		reports bool
	}{
		{
			name: "refusals joined and wrapped",
			err:  errors.Join(fmt.Errorf("plan group a: %w", refused), fmt.Errorf("plan group b: %w", refused)),
			want: "safebpf refused to attach on kernel 6.1:\n" + strings.Repeat(
				"  vfs_read: fentry refused\n"+
					"    fentry → kprobe: fentry unavailable: EPERM\n"+
					"    kprobe refused: x86-text-poke-race: affected\n"+
					"    to attach anyway: force with -safebpf-force x86-text-poke-race\n", 2),
			reports: true,
		},
		{
			name: "attach error with decision",
			err: &loader.AttachError{Program: "p", Op: "attach", Err: other, Decision: fallback.Decision{
				Target: "cycles", Requested: probe.PerfEventHardware, Chosen: probe.PerfEventSoftware, Action: fallback.Downgrade}},
			want: "safebpf decided on kernel 6.1:\n" +
				"  cycles: perf-event-hardware → perf-event-software (downgrade)\n" +
				"  but the kernel said: some other failure\n",
			reports: true,
		},
		{name: "other errors pass through", err: other},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			got := Failure(&b, "6.1", tt.err)
			if diff := cmp.Diff(tt.want, b.String()); diff != "" {
				t.Errorf("Failure() wrote (-want +got):\n%s", diff)
			}
			if !errors.Is(got, tt.err) {
				t.Errorf("Failure() = %v, does not wrap %v", got, tt.err)
			}
			var rep *ReportedError
			if errors.As(got, &rep) != tt.reports {
				t.Errorf("Failure() = %#v, ReportedError: %v", got, !tt.reports)
			}
		})
	}
	if got := Failure(io.Discard, "", refused); !errors.Is(got, fallback.ErrRefused) || got.Error() != "refused to attach (reasons above)" {
		t.Errorf("Failure(refused) = %q", got)
	}
}
