package fallback

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/probe"
)

// These tests drive the planner with hand-made findings, so every edge and
// action is exercised independently of the built-in catalog's data. The
// catalog-driven tests are in plan_test.go.

const (
	hzRefuse    hazards.ID = "test-refuse"
	hzDowngrade hazards.ID = "test-downgrade"
	hzCap       hazards.ID = "test-cap"
	// A capping hazard whose params exceed the kernel's limit.
	hzCapHigh hazards.ID = "test-cap-high"
	hzPace    hazards.ID = "test-pace"
	hzWarn    hazards.ID = "test-warn"
	hzAvoid   hazards.ID = "test-avoid"
	// Refusing hazards whose unknown verdicts only warn or are allowed.
	hzWarnOnUnknown  hazards.ID = "test-warn-on-unknown"
	hzAllowOnUnknown hazards.ID = "test-allow-on-unknown"
)

var testHazards = map[hazards.ID]*hazards.Hazard{
	hzRefuse:    {ID: hzRefuse, Title: "refusing hazard", Action: hazards.ActionRefuse, Affected: []string{">= 5.2, < 5.6"}},
	hzDowngrade: {ID: hzDowngrade, Title: "downgrading hazard", Action: hazards.ActionDowngrade, Affected: []string{"< 6.9"}},
	hzCap:       {ID: hzCap, Title: "capping hazard", Action: hazards.ActionCap, Params: hazards.Params{MaxActive: 512, MaxActiveCeiling: 1024}},
	hzCapHigh:   {ID: hzCapHigh, Title: "capping hazard above the limit", Action: hazards.ActionCap, Params: hazards.Params{MaxActive: 9000, MaxActiveCeiling: 8192}},
	hzPace:      {ID: hzPace, Title: "pacing hazard", Action: hazards.ActionPace, Params: hazards.Params{PaceInterval: hazards.Duration(20 * time.Millisecond), PaceConcurrency: 2}},
	hzWarn:      {ID: hzWarn, Title: "warning hazard", Action: hazards.ActionWarn},
	hzAvoid:     {ID: hzAvoid, Title: "avoided hazard", Action: hazards.ActionAvoid},
	hzWarnOnUnknown: {ID: hzWarnOnUnknown, Title: "functional hazard", Action: hazards.ActionRefuse,
		Severity: hazards.SeverityFunctional},
	hzAllowOnUnknown: {ID: hzAllowOnUnknown, Title: "tolerated hazard", Action: hazards.ActionRefuse,
		Severity: hazards.SeverityLockup, OnUnknown: hazards.OnUnknownAllow},
}

// fakeEval returns, for each mechanism, a finding per listed hazard with
// the given verdict.
type fakeEval map[probe.Mechanism]map[hazards.ID]hazards.Verdict

func (f fakeEval) eval(m probe.Mechanism) []hazards.Finding {
	var out []hazards.Finding
	for _, id := range []hazards.ID{hzRefuse, hzDowngrade, hzCap, hzCapHigh, hzPace, hzWarn, hzAvoid, hzWarnOnUnknown, hzAllowOnUnknown} {
		v, ok := f[m][id]
		if !ok {
			continue
		}
		h := testHazards[id]
		out = append(out, hazards.Finding{ID: id, Verdict: v, Reason: "test rule", Action: h.Action, Mechanism: m, Hazard: h})
	}
	return out
}

// kernelWith makes a kernel where the listed mechanisms are available, the
// "no" ones unavailable and every other one undecided.
func kernelWith(cpus int, yes []probe.Mechanism, no ...probe.Mechanism) *probe.Kernel {
	k := &probe.Kernel{Release: "6.1.0-test", Version: &probe.Version{Major: 6, Minor: 1, Patch: 30, PatchKnown: true}, CPUs: cpus, Mechanisms: map[probe.Mechanism]probe.Support{}}
	for _, m := range yes {
		k.Mechanisms[m] = probe.Supported("test")
	}
	for _, m := range no {
		k.Mechanisms[m] = probe.Unsupported("test: absent")
	}
	return k
}

var everything = probe.Mechanisms()

func allBut(ms ...probe.Mechanism) []probe.Mechanism {
	var out []probe.Mechanism
	for _, m := range everything {
		keep := true
		for _, x := range ms {
			if m == x {
				keep = false
			}
		}
		if keep {
			out = append(out, m)
		}
	}
	return out
}

var a, u = hazards.Affected, hazards.Unknown

func TestPlanEdges(t *testing.T) {
	hw99 := &PerfEvent{Hardware: true, Frequency: 99}
	tests := []struct {
		name    string
		k       *probe.Kernel
		eval    fakeEval
		req     Request
		pol     *hazards.Policy
		want    Decision // Chosen, Action, Settings, Steps (reasons ignored), Forced, Would*
		refused []hazards.ID
	}{
		{
			name: "allow when safe",
			k:    kernelWith(4, everything),
			req:  Request{Mechanism: probe.Fentry, Alternatives: []probe.Mechanism{probe.Kprobe}},
			want: Decision{Chosen: probe.Fentry, Action: Allow},
		},
		{
			name: "fentry hazardous: downgrade to kprobe",
			k:    kernelWith(4, everything),
			eval: fakeEval{probe.Fentry: {hzDowngrade: a}},
			req:  Request{Mechanism: probe.Fentry, Alternatives: []probe.Mechanism{probe.Kprobe}},
			want: Decision{Chosen: probe.Kprobe, Action: Downgrade, Steps: []Step{
				{From: probe.Fentry, To: probe.Kprobe, Action: Downgrade, Hazard: hzDowngrade},
			}},
		},
		{
			name: "fentry unknown verdict counts as hazardous",
			k:    kernelWith(4, everything),
			eval: fakeEval{probe.Fentry: {hzDowngrade: u}},
			req:  Request{Mechanism: probe.Fentry, Alternatives: []probe.Mechanism{probe.Kprobe}},
			want: Decision{Chosen: probe.Kprobe, Action: Downgrade, Steps: []Step{
				{From: probe.Fentry, To: probe.Kprobe, Action: Downgrade, Hazard: hzDowngrade},
			}},
		},
		{
			name: "avoid action moves like downgrade",
			k:    kernelWith(4, everything),
			eval: fakeEval{probe.Fentry: {hzAvoid: a}},
			req:  Request{Mechanism: probe.Fentry, Alternatives: []probe.Mechanism{probe.Kprobe}},
			want: Decision{Chosen: probe.Kprobe, Action: Downgrade, Steps: []Step{
				{From: probe.Fentry, To: probe.Kprobe, Action: Downgrade, Hazard: hzAvoid},
			}},
		},
		{
			name:    "fentry hazardous without kprobe variant: refuse",
			k:       kernelWith(4, everything),
			eval:    fakeEval{probe.Fentry: {hzDowngrade: a}},
			req:     Request{Mechanism: probe.Fentry},
			want:    Decision{Action: Refuse, Steps: []Step{{From: probe.Fentry, Action: Refuse, Hazard: hzDowngrade}}},
			refused: []hazards.ID{hzDowngrade},
		},
		{
			name: "fentry unavailable: downgrade names the missing mechanism",
			k:    kernelWith(4, allBut(probe.Fentry), probe.Fentry),
			req:  Request{Mechanism: probe.Fentry, Alternatives: []probe.Mechanism{probe.Kprobe}},
			want: Decision{Chosen: probe.Kprobe, Action: Downgrade, Steps: []Step{
				{From: probe.Fentry, To: probe.Kprobe, Action: Downgrade, Missing: probe.Fentry},
			}},
		},
		{
			name: "fentry undecided counts as unavailable",
			k:    kernelWith(4, allBut(probe.Fentry)),
			req:  Request{Mechanism: probe.Fentry, Alternatives: []probe.Mechanism{probe.Kprobe}},
			want: Decision{Chosen: probe.Kprobe, Action: Downgrade, Steps: []Step{
				{From: probe.Fentry, To: probe.Kprobe, Action: Downgrade, Missing: probe.Fentry},
			}},
		},
		{
			name: "kprobe unavailable: upgrade to fentry",
			k:    kernelWith(4, allBut(probe.Kprobe), probe.Kprobe),
			req:  Request{Mechanism: probe.Kprobe, Alternatives: []probe.Mechanism{probe.Fentry}},
			want: Decision{Chosen: probe.Fentry, Action: Upgrade, Steps: []Step{
				{From: probe.Kprobe, To: probe.Fentry, Action: Upgrade, Missing: probe.Kprobe},
			}},
		},
		{
			name:    "kprobe and fentry both unavailable (this host): refuse",
			k:       kernelWith(2, allBut(probe.Kprobe, probe.Fentry), probe.Kprobe, probe.Fentry),
			req:     Request{Mechanism: probe.Fentry, Alternatives: []probe.Mechanism{probe.Kprobe}},
			want:    Decision{Action: Refuse, Steps: []Step{{From: probe.Fentry, To: probe.Kprobe, Action: Downgrade, Missing: probe.Fentry}, {From: probe.Kprobe, Action: Refuse, Missing: probe.Kprobe}}},
			refused: []hazards.ID{},
		},
		{
			name: "fexit hazardous: downgrade to kretprobe, then cap (chain)",
			k:    kernelWith(128, everything),
			eval: fakeEval{probe.Fexit: {hzDowngrade: a}, probe.Kretprobe: {hzCap: a}},
			req:  Request{Mechanism: probe.Fexit, Alternatives: []probe.Mechanism{probe.Kretprobe}},
			want: Decision{Chosen: probe.Kretprobe, Action: Downgrade, Settings: Settings{MaxActive: 512}, Steps: []Step{
				{From: probe.Fexit, To: probe.Kretprobe, Action: Downgrade, Hazard: hzDowngrade},
				{From: probe.Kretprobe, To: probe.Kretprobe, Action: Cap, Hazard: hzCap},
			}},
		},
		{
			name: "kretprobe contention with safe fexit: upgrade",
			k:    kernelWith(128, everything),
			eval: fakeEval{probe.Kretprobe: {hzCap: a}},
			req:  Request{Mechanism: probe.Kretprobe, Alternatives: []probe.Mechanism{probe.Fexit}},
			want: Decision{Chosen: probe.Fexit, Action: Upgrade, Steps: []Step{
				{From: probe.Kretprobe, To: probe.Fexit, Action: Upgrade, Hazard: hzCap},
			}},
		},
		{
			name: "kretprobe contention with hazardous fexit: cap",
			k:    kernelWith(128, everything),
			eval: fakeEval{probe.Kretprobe: {hzCap: a}, probe.Fexit: {hzDowngrade: a}},
			req:  Request{Mechanism: probe.Kretprobe, Alternatives: []probe.Mechanism{probe.Fexit}},
			want: Decision{Chosen: probe.Kretprobe, Action: Cap, Settings: Settings{MaxActive: 512}, Steps: []Step{
				{From: probe.Kretprobe, To: probe.Kretprobe, Action: Cap, Hazard: hzCap},
			}},
		},
		{
			name: "kretprobe contention, requested maxactive above ceiling",
			k:    kernelWith(128, everything),
			eval: fakeEval{probe.Kretprobe: {hzCap: a}},
			req:  Request{Mechanism: probe.Kretprobe, MaxActive: 5000},
			want: Decision{Chosen: probe.Kretprobe, Action: Cap, Settings: Settings{MaxActive: 1024}, Steps: []Step{
				{From: probe.Kretprobe, To: probe.Kretprobe, Action: Cap, Hazard: hzCap},
			}},
		},
		{
			// The catalog in effect carries a policy's overrides (hazards'
			// WithPolicy applies them); the kernel's limit still holds.
			name: "kretprobe contention, maxactive and ceiling above the kernel's limit",
			k:    kernelWith(128, everything),
			eval: fakeEval{probe.Kretprobe: {hzCapHigh: a}},
			req:  Request{Mechanism: probe.Kretprobe},
			want: Decision{Chosen: probe.Kretprobe, Action: Cap, Settings: Settings{MaxActive: hazards.MaxActiveLimit}, Steps: []Step{
				{From: probe.Kretprobe, To: probe.Kretprobe, Action: Cap, Hazard: hzCapHigh},
			}},
		},
		{
			name: "kretprobe unavailable: upgrade to fexit",
			k:    kernelWith(4, allBut(probe.Kretprobe), probe.Kretprobe),
			req:  Request{Mechanism: probe.Kretprobe, Alternatives: []probe.Mechanism{probe.Fexit}},
			want: Decision{Chosen: probe.Fexit, Action: Upgrade, Steps: []Step{
				{From: probe.Kretprobe, To: probe.Fexit, Action: Upgrade, Missing: probe.Kretprobe},
			}},
		},
		{
			// The cpu-clock event runs in hard IRQ: moving to it answers a
			// missing PMU, never a hazard (issue 9, research C1).
			name:    "hardware perf event hazardous: no move to software, refusal",
			k:       kernelWith(4, everything),
			eval:    fakeEval{probe.PerfEventHardware: {hzDowngrade: a}},
			req:     Request{Mechanism: probe.PerfEventHardware, PerfEvent: hw99, ReadsUserMemory: true},
			want:    Decision{Action: Refuse, Steps: []Step{{From: probe.PerfEventHardware, Action: Refuse, Hazard: hzDowngrade}}},
			refused: []hazards.ID{hzDowngrade},
		},
		{
			name: "unknown verdict with on_unknown warn: attach with a warning",
			k:    kernelWith(4, everything),
			eval: fakeEval{probe.Kprobe: {hzWarnOnUnknown: u}},
			req:  Request{Mechanism: probe.Kprobe, Alternatives: []probe.Mechanism{probe.Fentry}},
			want: Decision{Chosen: probe.Kprobe, Action: Warn, Steps: []Step{
				{From: probe.Kprobe, To: probe.Kprobe, Action: Warn, Hazard: hzWarnOnUnknown},
			}},
		},
		{
			name: "affected verdict with on_unknown warn still blocks",
			k:    kernelWith(4, everything),
			eval: fakeEval{probe.Kprobe: {hzWarnOnUnknown: a}},
			req:  Request{Mechanism: probe.Kprobe, Alternatives: []probe.Mechanism{probe.Fentry}},
			want: Decision{Chosen: probe.Fentry, Action: Upgrade, Steps: []Step{
				{From: probe.Kprobe, To: probe.Fentry, Action: Upgrade, Hazard: hzWarnOnUnknown},
			}},
		},
		{
			name: "unknown verdict with on_unknown allow: attach, no step",
			k:    kernelWith(4, everything),
			eval: fakeEval{probe.Kprobe: {hzAllowOnUnknown: u}},
			req:  Request{Mechanism: probe.Kprobe},
			want: Decision{Chosen: probe.Kprobe, Action: Allow},
		},
		{
			name: "tp-btf hazardous: raw tracepoint variant",
			k:    kernelWith(4, everything),
			eval: fakeEval{probe.TpBTF: {hzDowngrade: a}},
			req:  Request{Mechanism: probe.TpBTF, Alternatives: []probe.Mechanism{probe.RawTracepoint}},
			want: Decision{Chosen: probe.RawTracepoint, Action: Downgrade, Steps: []Step{
				{From: probe.TpBTF, To: probe.RawTracepoint, Action: Downgrade, Hazard: hzDowngrade},
			}},
		},
		{
			name: "raw tracepoint unavailable: tracepoint variant",
			k:    kernelWith(4, allBut(probe.RawTracepoint), probe.RawTracepoint),
			req:  Request{Mechanism: probe.RawTracepoint, Alternatives: []probe.Mechanism{probe.Tracepoint}},
			want: Decision{Chosen: probe.Tracepoint, Action: Downgrade, Steps: []Step{
				{From: probe.RawTracepoint, To: probe.Tracepoint, Action: Downgrade, Missing: probe.RawTracepoint},
			}},
		},
		{
			name: "uretprobe-multi unavailable: uretprobe variant",
			k:    kernelWith(4, allBut(probe.UretprobeMulti), probe.UretprobeMulti),
			req:  Request{Mechanism: probe.UretprobeMulti, Alternatives: []probe.Mechanism{probe.Uretprobe}},
			want: Decision{Chosen: probe.Uretprobe, Action: Downgrade, Steps: []Step{
				{From: probe.UretprobeMulti, To: probe.Uretprobe, Action: Downgrade, Missing: probe.UretprobeMulti},
			}},
		},
		{
			name: "many uretprobes: batch into uretprobe-multi",
			k:    kernelWith(4, everything),
			req:  Request{Mechanism: probe.Uretprobe, Targets: 2, Alternatives: []probe.Mechanism{probe.UretprobeMulti}},
			want: Decision{Chosen: probe.UretprobeMulti, Action: Upgrade, Settings: Settings{Multi: true}, Steps: []Step{
				{From: probe.Uretprobe, To: probe.UretprobeMulti, Action: Upgrade},
			}},
		},
		{
			name:    "fmod-ret, lsm and iter have no edges: refusal",
			k:       kernelWith(4, everything),
			eval:    fakeEval{probe.FmodRet: {hzDowngrade: a}},
			req:     Request{Mechanism: probe.FmodRet, Alternatives: []probe.Mechanism{probe.Fexit, probe.Kretprobe}},
			want:    Decision{Action: Refuse, Steps: []Step{{From: probe.FmodRet, Action: Refuse, Hazard: hzDowngrade}}},
			refused: []hazards.ID{hzDowngrade},
		},
		{
			name: "hardware perf event unavailable: software, same period",
			k:    kernelWith(4, allBut(probe.PerfEventHardware), probe.PerfEventHardware),
			req:  Request{Mechanism: probe.PerfEventHardware, PerfEvent: &PerfEvent{Hardware: true, Period: 100000}},
			want: Decision{Chosen: probe.PerfEventSoftware, Action: Downgrade, Settings: Settings{PerfEvent: &PerfEvent{Period: 100000}}, Steps: []Step{
				{From: probe.PerfEventHardware, To: probe.PerfEventSoftware, Action: Downgrade, Missing: probe.PerfEventHardware},
			}},
		},
		{
			name: "hardware perf event safe and available: allow",
			k:    kernelWith(4, everything),
			req:  Request{Mechanism: probe.PerfEventHardware, PerfEvent: hw99},
			want: Decision{Chosen: probe.PerfEventHardware, Action: Allow, Settings: Settings{PerfEvent: hw99}},
		},
		{
			name: "many kprobes: batch into kprobe-multi",
			k:    kernelWith(4, everything),
			req:  Request{Mechanism: probe.Kprobe, Targets: 3, Alternatives: []probe.Mechanism{probe.KprobeMulti}},
			want: Decision{Chosen: probe.KprobeMulti, Action: Upgrade, Settings: Settings{Multi: true}, Steps: []Step{
				{From: probe.Kprobe, To: probe.KprobeMulti, Action: Upgrade},
			}},
		},
		{
			name: "many kretprobes: batch into kretprobe-multi",
			k:    kernelWith(4, everything),
			req:  Request{Mechanism: probe.Kretprobe, Targets: 2, Alternatives: []probe.Mechanism{probe.KretprobeMulti}},
			want: Decision{Chosen: probe.KretprobeMulti, Action: Upgrade, Settings: Settings{Multi: true}, Steps: []Step{
				{From: probe.Kretprobe, To: probe.KretprobeMulti, Action: Upgrade},
			}},
		},
		{
			name: "cap finding on kretprobe-multi is only reported",
			k:    kernelWith(128, everything),
			eval: fakeEval{probe.Kretprobe: {hzCap: a}, probe.KretprobeMulti: {hzCap: a}},
			req:  Request{Mechanism: probe.Kretprobe, Targets: 2, Alternatives: []probe.Mechanism{probe.KretprobeMulti}},
			want: Decision{Chosen: probe.KretprobeMulti, Action: Upgrade, Settings: Settings{Multi: true}, Steps: []Step{
				{From: probe.Kretprobe, To: probe.KretprobeMulti, Action: Upgrade},
				{From: probe.KretprobeMulti, To: probe.KretprobeMulti, Action: Warn, Hazard: hzCap},
			}},
		},
		{
			name: "requested maxactive kept on a safe kretprobe",
			k:    kernelWith(4, everything),
			req:  Request{Mechanism: probe.Kretprobe, MaxActive: 100},
			want: Decision{Chosen: probe.Kretprobe, Action: Allow, Settings: Settings{MaxActive: 100}},
		},
		{
			name: "one kprobe: no batching",
			k:    kernelWith(4, everything),
			req:  Request{Mechanism: probe.Kprobe, Targets: 1},
			want: Decision{Chosen: probe.Kprobe, Action: Allow},
		},
		{
			name: "many kprobes, multi unavailable: stay, saying why",
			k:    kernelWith(4, allBut(probe.KprobeMulti), probe.KprobeMulti),
			req:  Request{Mechanism: probe.Kprobe, Targets: 3, Alternatives: []probe.Mechanism{probe.KprobeMulti}},
			want: Decision{Chosen: probe.Kprobe, Action: Allow, Steps: []Step{
				{From: probe.Kprobe, To: probe.Kprobe, Action: Allow, Missing: probe.KprobeMulti},
			}},
		},
		{
			name: "many kprobes, multi hazardous: stay, saying why",
			k:    kernelWith(4, everything),
			eval: fakeEval{probe.KprobeMulti: {hzRefuse: a}},
			req:  Request{Mechanism: probe.Kprobe, Targets: 3, Alternatives: []probe.Mechanism{probe.KprobeMulti}},
			want: Decision{Chosen: probe.Kprobe, Action: Allow, Steps: []Step{
				{From: probe.Kprobe, To: probe.Kprobe, Action: Allow, Hazard: hzRefuse},
			}},
		},
		{
			name: "many kprobes, no kprobe-multi form of the program: stay, saying why",
			k:    kernelWith(4, everything),
			req:  Request{Mechanism: probe.Kprobe, Targets: 3},
			want: Decision{Chosen: probe.Kprobe, Action: Allow, Steps: []Step{
				{From: probe.Kprobe, To: probe.Kprobe, Action: Allow},
			}},
		},
		{
			name: "many uprobes: uprobe-multi, then paced",
			k:    kernelWith(4, everything),
			eval: fakeEval{probe.UprobeMulti: {hzPace: a}},
			req:  Request{Mechanism: probe.Uprobe, Targets: 5, Alternatives: []probe.Mechanism{probe.UprobeMulti}},
			want: Decision{Chosen: probe.UprobeMulti, Action: Upgrade, Settings: Settings{Multi: true, Pacing: &Pacing{Interval: 20 * time.Millisecond, Concurrency: 2, Batch: DefaultPaceBatch}}, Steps: []Step{
				{From: probe.Uprobe, To: probe.UprobeMulti, Action: Upgrade},
				{From: probe.UprobeMulti, To: probe.UprobeMulti, Action: Pace, Hazard: hzPace},
			}},
		},
		{
			name: "kprobe-multi unavailable with kprobe variant: downgrade",
			k:    kernelWith(4, allBut(probe.KprobeMulti), probe.KprobeMulti),
			req:  Request{Mechanism: probe.KprobeMulti, Targets: 3, Alternatives: []probe.Mechanism{probe.Kprobe}},
			want: Decision{Chosen: probe.Kprobe, Action: Downgrade, Steps: []Step{
				{From: probe.KprobeMulti, To: probe.Kprobe, Action: Downgrade, Missing: probe.KprobeMulti},
			}},
		},
		{
			name: "uprobe paced from hazard params",
			k:    kernelWith(4, everything),
			eval: fakeEval{probe.Uprobe: {hzPace: a}},
			req:  Request{Mechanism: probe.Uprobe},
			want: Decision{Chosen: probe.Uprobe, Action: Pace, Settings: Settings{Pacing: &Pacing{Interval: 20 * time.Millisecond, Concurrency: 2}}, Steps: []Step{
				{From: probe.Uprobe, To: probe.Uprobe, Action: Pace, Hazard: hzPace},
			}},
		},
		{
			name: "uprobe paced from policy",
			k:    kernelWith(4, everything),
			eval: fakeEval{probe.Uprobe: {hzPace: u}},
			req:  Request{Mechanism: probe.Uprobe},
			pol:  &hazards.Policy{Uprobes: hazards.UprobePacing{Interval: hazards.Duration(50 * time.Millisecond), Concurrency: 1}},
			want: Decision{Chosen: probe.Uprobe, Action: Pace, Settings: Settings{Pacing: &Pacing{Interval: 50 * time.Millisecond, Concurrency: 1}}, Steps: []Step{
				{From: probe.Uprobe, To: probe.Uprobe, Action: Pace, Hazard: hzPace},
			}},
		},
		{
			name: "warn hazard: attach with warning",
			k:    kernelWith(4, everything),
			eval: fakeEval{probe.Tracepoint: {hzWarn: a}},
			req:  Request{Mechanism: probe.Tracepoint},
			want: Decision{Chosen: probe.Tracepoint, Action: Warn, Steps: []Step{
				{From: probe.Tracepoint, To: probe.Tracepoint, Action: Warn, Hazard: hzWarn},
			}},
		},
		{
			name: "not-affected findings change nothing",
			k:    kernelWith(4, everything),
			eval: fakeEval{probe.Fentry: {hzRefuse: hazards.NotAffected, hzDowngrade: hazards.NotAffected}},
			req:  Request{Mechanism: probe.Fentry, Alternatives: []probe.Mechanism{probe.Kprobe}},
			want: Decision{Chosen: probe.Fentry, Action: Allow},
		},
		{
			name:    "refusing hazard on both variants: chain ends in refusal",
			k:       kernelWith(4, everything),
			eval:    fakeEval{probe.Fentry: {hzRefuse: a}, probe.Kprobe: {hzRefuse: a}},
			req:     Request{Mechanism: probe.Fentry, Alternatives: []probe.Mechanism{probe.Kprobe}},
			want:    Decision{Action: Refuse, Steps: []Step{{From: probe.Fentry, To: probe.Kprobe, Action: Downgrade, Hazard: hzRefuse}, {From: probe.Kprobe, Action: Refuse, Hazard: hzRefuse}}},
			refused: []hazards.ID{hzRefuse},
		},
		{
			name:    "uretprobe refused: no edge",
			k:       kernelWith(4, everything),
			eval:    fakeEval{probe.Uretprobe: {hzRefuse: a}},
			req:     Request{Mechanism: probe.Uretprobe, Alternatives: []probe.Mechanism{probe.Uprobe}},
			want:    Decision{Action: Refuse, Steps: []Step{{From: probe.Uretprobe, Action: Refuse, Hazard: hzRefuse}}},
			refused: []hazards.ID{hzRefuse},
		},
		{
			name: "forced hazard: proceed, marked forced",
			k:    kernelWith(4, everything),
			eval: fakeEval{probe.Fentry: {hzRefuse: a}, probe.Kprobe: {hzRefuse: a}},
			req:  Request{Mechanism: probe.Fentry, Alternatives: []probe.Mechanism{probe.Kprobe}},
			pol:  &hazards.Policy{Force: []hazards.ID{hzRefuse}},
			want: Decision{Chosen: probe.Fentry, Action: Warn, Forced: []hazards.ID{hzRefuse}, Steps: []Step{
				{From: probe.Fentry, To: probe.Fentry, Action: Warn, Hazard: hzRefuse, Forced: true},
			}},
		},
		{
			name: "force all also forces cap",
			k:    kernelWith(128, everything),
			eval: fakeEval{probe.Kretprobe: {hzCap: a, hzWarn: a}},
			req:  Request{Mechanism: probe.Kretprobe},
			pol:  &hazards.Policy{Force: []hazards.ID{hazards.ForceAll}},
			want: Decision{Chosen: probe.Kretprobe, Action: Warn, Forced: []hazards.ID{hzCap, hzWarn}, Steps: []Step{
				{From: probe.Kretprobe, To: probe.Kretprobe, Action: Warn, Hazard: hzCap, Forced: true},
				{From: probe.Kretprobe, To: probe.Kretprobe, Action: Warn, Hazard: hzWarn, Forced: true},
			}},
		},
		{
			name: "forcing one hazard leaves the other",
			k:    kernelWith(4, everything),
			eval: fakeEval{probe.Fentry: {hzRefuse: a, hzDowngrade: a}},
			req:  Request{Mechanism: probe.Fentry, Alternatives: []probe.Mechanism{probe.Kprobe}},
			pol:  &hazards.Policy{Force: []hazards.ID{hzRefuse}},
			want: Decision{Chosen: probe.Kprobe, Action: Downgrade, Steps: []Step{
				{From: probe.Fentry, To: probe.Kprobe, Action: Downgrade, Hazard: hzDowngrade},
			}},
		},
		{
			name:    "pinned: hazard refuses instead of downgrading",
			k:       kernelWith(4, everything),
			eval:    fakeEval{probe.Fentry: {hzDowngrade: a}},
			req:     Request{Mechanism: probe.Fentry, Alternatives: []probe.Mechanism{probe.Kprobe}, Pinned: true},
			want:    Decision{Action: Refuse, Steps: []Step{{From: probe.Fentry, Action: Refuse, Hazard: hzDowngrade}}},
			refused: []hazards.ID{hzDowngrade},
		},
		{
			name:    "pinned: missing mechanism refuses",
			k:       kernelWith(4, allBut(probe.PerfEventHardware), probe.PerfEventHardware),
			req:     Request{Mechanism: probe.PerfEventHardware, PerfEvent: hw99, Pinned: true},
			want:    Decision{Action: Refuse, Steps: []Step{{From: probe.PerfEventHardware, Action: Refuse, Missing: probe.PerfEventHardware}}},
			refused: []hazards.ID{},
		},
		{
			name: "pinned: cap still applies, no fexit upgrade",
			k:    kernelWith(128, everything),
			eval: fakeEval{probe.Kretprobe: {hzCap: a}},
			req:  Request{Mechanism: probe.Kretprobe, Alternatives: []probe.Mechanism{probe.Fexit}, Pinned: true, Targets: 4},
			want: Decision{Chosen: probe.Kretprobe, Action: Cap, Settings: Settings{MaxActive: 512}, Steps: []Step{
				{From: probe.Kretprobe, To: probe.Kretprobe, Action: Cap, Hazard: hzCap},
			}},
		},
		{
			name: "pinned: forced hazard attaches",
			k:    kernelWith(4, everything),
			eval: fakeEval{probe.Fentry: {hzDowngrade: a}},
			req:  Request{Mechanism: probe.Fentry, Pinned: true},
			pol:  &hazards.Policy{Force: []hazards.ID{hzDowngrade}},
			want: Decision{Chosen: probe.Fentry, Action: Warn, Forced: []hazards.ID{hzDowngrade}, Steps: []Step{
				{From: probe.Fentry, To: probe.Fentry, Action: Warn, Hazard: hzDowngrade, Forced: true},
			}},
		},
		{
			name: "warn mode: attach as requested, record the downgrade",
			k:    kernelWith(4, everything),
			eval: fakeEval{probe.Fentry: {hzDowngrade: a}},
			req:  Request{Mechanism: probe.Fentry, Alternatives: []probe.Mechanism{probe.Kprobe}},
			pol:  &hazards.Policy{Mode: hazards.Warn},
			want: Decision{Chosen: probe.Fentry, Action: Warn, WouldChoose: probe.Kprobe, WouldAction: Downgrade, WouldSettings: &Settings{}, Steps: []Step{
				{From: probe.Fentry, To: probe.Kprobe, Action: Downgrade, Hazard: hzDowngrade},
			}},
		},
		{
			name: "warn mode: a refusal becomes a warning",
			k:    kernelWith(4, everything),
			eval: fakeEval{probe.Fentry: {hzRefuse: a}},
			req:  Request{Mechanism: probe.Fentry},
			pol:  &hazards.Policy{Mode: hazards.Warn},
			want: Decision{Chosen: probe.Fentry, Action: Warn, WouldAction: Refuse, WouldSettings: &Settings{}, Steps: []Step{
				{From: probe.Fentry, Action: Refuse, Hazard: hzRefuse},
			}},
		},
		{
			name: "warn mode, nothing to do: allow",
			k:    kernelWith(4, everything),
			req:  Request{Mechanism: probe.PerfEventHardware, PerfEvent: hw99},
			pol:  &hazards.Policy{Mode: hazards.Warn},
			want: Decision{Chosen: probe.PerfEventHardware, Action: Allow, Settings: Settings{PerfEvent: hw99}, WouldChoose: probe.PerfEventHardware, WouldAction: Allow, WouldSettings: &Settings{PerfEvent: hw99}},
		},
		{
			name:    "audit mode plans like enforce",
			k:       kernelWith(4, everything),
			eval:    fakeEval{probe.Fentry: {hzRefuse: a}},
			req:     Request{Mechanism: probe.Fentry},
			pol:     &hazards.Policy{Mode: hazards.Audit},
			want:    Decision{Action: Refuse, Steps: []Step{{From: probe.Fentry, Action: Refuse, Hazard: hzRefuse}}},
			refused: []hazards.ID{hzRefuse},
		},
		{
			name:    "nil kernel: everything undecided",
			k:       nil,
			req:     Request{Mechanism: probe.Tracepoint},
			want:    Decision{Action: Refuse, Steps: []Step{{From: probe.Tracepoint, Action: Refuse, Missing: probe.Tracepoint}}},
			refused: []hazards.ID{},
		},
	}
	opts := cmp.Options{
		cmpopts.IgnoreFields(Step{}, "Reason"),
		cmpopts.IgnoreFields(Decision{}, "Findings", "Requested", "Target", "Mode"),
		cmpopts.EquateEmpty(),
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := plan(tt.k, tt.eval.eval, tt.req, tt.pol)
			if diff := cmp.Diff(tt.want, got, opts); diff != "" {
				t.Errorf("decision (-want +got):\n%s", diff)
			}
			if got.Requested != tt.req.Mechanism {
				t.Errorf("Requested = %q, want %q", got.Requested, tt.req.Mechanism)
			}
			wantMode := hazards.Enforce
			if tt.pol != nil && tt.pol.Mode != "" {
				wantMode = tt.pol.Mode
			}
			if got.Mode != wantMode {
				t.Errorf("Mode = %q, want %q", got.Mode, wantMode)
			}
			for _, s := range got.Steps {
				if s.Reason == "" {
					t.Errorf("step %+v has no reason", s)
				}
				batching := s.Action == Upgrade && strings.HasSuffix(string(s.To), "-multi") ||
					s.Action == Allow && strings.Contains(s.Reason, "not batched")
				if s.Hazard == "" && s.Missing == "" && !batching {
					t.Errorf("step %+v names neither a hazard nor a missing mechanism", s)
				}
			}
			if tt.refused == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("err = %v, want ErrRefused", err)
			}
			var re *RefusedError
			if !errors.As(err, &re) {
				t.Fatalf("err %T is not *RefusedError", err)
			}
			if diff := cmp.Diff(tt.refused, re.Hazards(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("blocking hazards (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(got.Steps, re.Tried); diff != "" {
				t.Errorf("Tried differs from Steps (-decision +error):\n%s", diff)
			}
			if len(re.Hazards()) > 0 {
				id := string(re.Hazards()[0])
				if !strings.Contains(re.ForceHint, "-safebpf-force="+id) || !strings.Contains(re.ForceHint, "SAFEBPF_FORCE="+id) {
					t.Errorf("ForceHint = %q, want it to name %s", re.ForceHint, id)
				}
				if re.ErrorType() != "refused."+id {
					t.Errorf("ErrorType = %q", re.ErrorType())
				}
			} else {
				if re.ForceHint != "" {
					t.Errorf("ForceHint = %q for a refusal no force can lift", re.ForceHint)
				}
				if re.ErrorType() != "refused.unavailable" {
					t.Errorf("ErrorType = %q", re.ErrorType())
				}
			}
		})
	}
}

func TestPlanFindingsCollected(t *testing.T) {
	k := kernelWith(4, everything)
	ev := fakeEval{probe.Fentry: {hzDowngrade: a, hzWarn: hazards.NotAffected}, probe.Kprobe: {hzWarn: hazards.NotAffected}}
	d, err := plan(k, ev.eval, Request{Mechanism: probe.Fentry, Alternatives: []probe.Mechanism{probe.Kprobe}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	type fm struct {
		ID hazards.ID
		M  probe.Mechanism
		V  hazards.Verdict
	}
	var got []fm
	for _, f := range d.Findings {
		got = append(got, fm{f.ID, f.Mechanism, f.Verdict})
	}
	want := []fm{{hzDowngrade, probe.Fentry, a}, {hzWarn, probe.Fentry, hazards.NotAffected}, {hzWarn, probe.Kprobe, hazards.NotAffected}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
}

func TestPlanInvalidInput(t *testing.T) {
	k := kernelWith(4, everything)
	for _, tt := range []struct {
		name string
		req  Request
		pol  *hazards.Policy
	}{
		{"empty mechanism", Request{}, nil},
		{"unknown mechanism", Request{Mechanism: "kprobes"}, nil},
		{"unknown alternative", Request{Mechanism: probe.Fentry, Alternatives: []probe.Mechanism{"kprobez"}}, nil},
		{"unknown mode", Request{Mechanism: probe.Fentry}, &hazards.Policy{Mode: "loud"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := plan(k, nil, tt.req, tt.pol)
			if !errors.Is(err, errInvalidInput) {
				t.Fatalf("err = %v, want errInvalidInput", err)
			}
			if errors.Is(err, ErrRefused) {
				t.Fatalf("invalid input must not look like a refusal: %v", err)
			}
		})
	}
}

func TestMaxActiveDefaults(t *testing.T) {
	f := func(p hazards.Params) hazards.Finding {
		return hazards.Finding{ID: hzCap, Verdict: a, Action: hazards.ActionCap, Hazard: &hazards.Hazard{ID: hzCap, Action: hazards.ActionCap, Params: p}}
	}
	for _, tt := range []struct {
		name      string
		cpus, req int
		params    hazards.Params
		want      int
	}{
		{"requested wins", 96, 200, hazards.Params{MaxActive: 64}, 200},
		{"hazard default", 16, 0, hazards.Params{MaxActive: 64}, 64},
		{"hazard default, CPUs unknown", 0, 0, hazards.Params{MaxActive: 64}, 64},
		// kprobes.rst: the default pool is max(10, 2*NR_CPUS); a hazard's
		// default never shrinks it (512 on a 384-CPU machine would).
		{"hazard default below the kernel's", 96, 0, hazards.Params{MaxActive: 64}, 192},
		{"hazard default below the kernel's, many CPUs", 384, 0, hazards.Params{MaxActive: 512}, 768},
		{"requested below the kernel's", 384, 100, hazards.Params{MaxActive: 512}, 100},
		{"kernel default on many CPUs", 96, 0, hazards.Params{}, 192},
		{"kernel default floor", 2, 0, hazards.Params{}, 10},
		{"ceiling", 96, 3000, hazards.Params{MaxActiveCeiling: 2048}, 2048},
		{"ceiling never above 4096", 96, 10000, hazards.Params{MaxActiveCeiling: 100000}, 4096},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := &planner{k: &probe.Kernel{CPUs: tt.cpus}, req: Request{MaxActive: tt.req}}
			if got, _ := p.maxActive(f(tt.params)); got != tt.want {
				t.Errorf("maxActive = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestPacingDefaults(t *testing.T) {
	p := &planner{k: &probe.Kernel{}}
	got, _ := p.pacing(hazards.Finding{ID: hzPace, Verdict: a}, probe.Uprobe)
	if want := (Pacing{Interval: DefaultPaceInterval, Concurrency: DefaultPaceConcurrency}); got != want {
		t.Errorf("uprobe pacing = %+v, want %+v", got, want)
	}
	got, _ = p.pacing(hazards.Finding{ID: hzPace, Verdict: a}, probe.UprobeMulti)
	if want := (Pacing{Interval: DefaultPaceInterval, Concurrency: DefaultPaceConcurrency, Batch: DefaultPaceBatch}); got != want {
		t.Errorf("uprobe-multi pacing = %+v, want %+v", got, want)
	}
}

// TestPacingBatch: a multi link's batch comes from the policy's uprobes
// section, else the hazard's params (policy overrides on top), else the
// default; single uprobes have none.
func TestPacingBatch(t *testing.T) {
	f := hazards.Finding{ID: hzPace, Verdict: a, Hazard: &hazards.Hazard{ID: hzPace, Params: hazards.Params{PaceBatch: 20}}}
	const stall hazards.ID = "uprobe-mmap-lock-stall"
	cat, err := hazards.Builtin().WithPolicy(&hazards.Policy{APIVersion: "safebpf/v1",
		Hazards: map[hazards.ID]hazards.Override{stall: {Params: hazards.Params{PaceBatch: 30}}}})
	if err != nil {
		t.Fatal(err)
	}
	h, ok := cat.Lookup(stall)
	if !ok {
		t.Fatalf("%s not in the catalog", stall)
	}
	overridden := hazards.Finding{ID: stall, Verdict: a, Hazard: h}
	for _, tt := range []struct {
		name string
		pol  *hazards.Policy
		m    probe.Mechanism
		want int
	}{
		{"hazard params", nil, probe.UprobeMulti, 20},
		{"return probes too", nil, probe.UretprobeMulti, 20},
		{"single uprobes have no batch", nil, probe.Uprobe, 0},
		// A policy's params override is in the catalog in effect
		// (Catalog.WithPolicy): the planner takes the hazard's params as
		// given.
		{"policy override of the params", nil, probe.UprobeMulti, 30},
		{"policy uprobes section wins", &hazards.Policy{Uprobes: hazards.UprobePacing{Batch: 5}}, probe.UprobeMulti, 5},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := f
			if strings.HasPrefix(tt.name, "policy") {
				f = overridden
			}
			p := &planner{k: &probe.Kernel{}, pol: tt.pol}
			if got, _ := p.pacing(f, tt.m); got.Batch != tt.want {
				t.Errorf("batch = %d, want %d", got.Batch, tt.want)
			}
		})
	}
}

func TestCounterparts(t *testing.T) {
	got := map[probe.Mechanism][]probe.Mechanism{}
	for _, m := range probe.Mechanisms() {
		if c := Counterparts(m); len(c) > 0 {
			got[m] = c
		}
	}
	want := map[probe.Mechanism][]probe.Mechanism{
		probe.Fentry:         {probe.Kprobe},
		probe.Fexit:          {probe.Kretprobe},
		probe.Kprobe:         {probe.Fentry, probe.KprobeMulti},
		probe.Kretprobe:      {probe.Fexit, probe.KretprobeMulti},
		probe.Uprobe:         {probe.UprobeMulti},
		probe.Uretprobe:      {probe.UretprobeMulti},
		probe.KprobeMulti:    {probe.Kprobe},
		probe.KretprobeMulti: {probe.Kretprobe},
		probe.UprobeMulti:    {probe.Uprobe},
		probe.UretprobeMulti: {probe.Uretprobe},
		probe.TpBTF:          {probe.RawTracepoint},
		probe.RawTracepoint:  {probe.Tracepoint},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("counterparts (-want +got):\n%s", diff)
	}
}

// TestAssessableCoversPlan: whatever the kernel and the hazards say, the
// planner assesses no mechanism outside Assessable(req), so that a caller
// who records those mechanisms and their hazards' facts before planning
// (the loader, on demand) never plans on one it did not look at. Requests
// are drawn at random: every mechanism, random alternatives, 1 or 3
// targets, pinned or not, with random support and random findings of
// every action on every mechanism, in every mode.
func TestAssessableCoversPlan(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 25))
	ids := []hazards.ID{hzRefuse, hzDowngrade, hzCap, hzPace, hzWarn, hzAvoid, hzWarnOnUnknown, hzAllowOnUnknown}
	verdicts := []hazards.Verdict{hazards.Affected, hazards.Unknown, hazards.NotAffected}
	moved := 0
	for n := 0; n < 20000; n++ {
		req := Request{Target: "t", Mechanism: everything[rng.IntN(len(everything))], Targets: 1 + 2*rng.IntN(2), Pinned: rng.IntN(4) == 0}
		for _, m := range everything {
			if rng.IntN(3) == 0 {
				req.Alternatives = append(req.Alternatives, m)
			}
		}
		if req.Mechanism == probe.PerfEventHardware || req.Mechanism == probe.PerfEventSoftware {
			req.PerfEvent = &PerfEvent{Hardware: req.Mechanism == probe.PerfEventHardware, Frequency: 99}
		}
		k := kernelWith(8, nil)
		eval := fakeEval{}
		for _, m := range everything {
			switch rng.IntN(3) {
			case 0:
				k.Mechanisms[m] = probe.Supported("test")
			case 1:
				k.Mechanisms[m] = probe.Unsupported("test: absent")
			}
			eval[m] = map[hazards.ID]hazards.Verdict{}
			for _, id := range ids {
				if rng.IntN(4) == 0 {
					eval[m][id] = verdicts[rng.IntN(len(verdicts))]
				}
			}
		}
		modes := []hazards.Mode{hazards.Enforce, hazards.Warn, hazards.Audit}
		pol := &hazards.Policy{Mode: modes[rng.IntN(len(modes))]}
		var assessed []probe.Mechanism
		record := func(m probe.Mechanism) []hazards.Finding {
			assessed = append(assessed, m)
			return eval.eval(m)
		}
		if _, err := plan(k, record, req, pol); err != nil && !errors.Is(err, ErrRefused) {
			t.Fatalf("plan %+v: %v", req, err)
		}
		want := Assessable(req)
		if want[0] != req.Mechanism {
			t.Fatalf("Assessable(%+v) = %v: want the requested mechanism first", req, want)
		}
		for _, m := range assessed {
			if !slices.Contains(want, m) {
				t.Fatalf("plan of %+v assessed %s, outside Assessable = %v", req, m, want)
			}
		}
		if len(assessed) > 1 {
			moved++
		}
	}
	if moved < 1000 {
		t.Errorf("only %d of 20000 plans assessed more than the requested mechanism: the draw does not exercise the moves", moved)
	}
}
