package loader

import (
	"errors"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/google/go-cmp/cmp"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/probe"
)

func describe(tb testing.TB, d probe.Description) *probe.Kernel {
	tb.Helper()
	k, err := probe.Describe(d)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// TestPlanSpec plans specs against described kernels: no root needed.
func TestPlanSpec(t *testing.T) {
	// 6.1.30 with the RCU-tasks exit SRCU in kallsyms: fentry deadlocks.
	big6130 := probe.Description{Release: "6.1.30", CPUs: 128,
		Kallsyms: "0000000000000000 d tasks_rcu_exit_srcu\n0000000000000000 T copy_from_user_nofault\n"}
	k612 := probe.Description{Release: "6.12.10", CPUs: 4}
	debian6130 := probe.Description{Release: "6.1.0-9-amd64", CPUs: 4,
		ProcVersion: "Linux version 6.1.0-9-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.30-1 (2023-05-24)"}

	entry := spec(
		counterProg("fe", "fentry/do_unlinkat", ebpf.Tracing, 0, 0),
		counterProg("kp", "kprobe/do_unlinkat", ebpf.Kprobe, 0, 0),
	)
	exit := spec(
		counterProg("fx", "fexit/vfs_read", ebpf.Tracing, 0, 0),
		counterProg("kr", "kretprobe/vfs_read", ebpf.Kprobe, 0, 0),
	)
	perfReader := spec(readerProg("pe", "perf_event", ebpf.PerfEvent, 0))
	perfPlain := spec(counterProg("pe", "perf_event", ebpf.PerfEvent, 0, 0))

	type row struct {
		program string
		chosen  bool
		mech    probe.Mechanism // Decision.Chosen
		hazard  hazards.ID      // a step's hazard, if any
	}
	tests := []struct {
		name string
		k    probe.Description
		cs   *ebpf.CollectionSpec
		opts *Options
		want []row
		// maxActive > 0 asserts the cap.
		maxActive bool
	}{
		{"fentry kept on 6.12", k612, entry, nil,
			[]row{{"fe", true, probe.Fentry, ""}, {"kp", false, probe.Fentry, ""}}, false},
		{"fentry to kprobe on 6.1 with tasks_rcu_exit_srcu", big6130, entry, nil,
			[]row{{"fe", false, probe.Kprobe, "fentry-zap-pid-ns-deadlock"}, {"kp", true, probe.Kprobe, "fentry-zap-pid-ns-deadlock"}}, false},
		{"forced fentry on 6.1", big6130, entry, &Options{Force: []hazards.ID{"fentry-zap-pid-ns-deadlock"}},
			[]row{{"fe", true, probe.Fentry, "fentry-zap-pid-ns-deadlock"}, {"kp", false, probe.Fentry, "fentry-zap-pid-ns-deadlock"}}, false},
		{"warn mode attaches fentry as requested on 6.1", big6130, entry, &Options{Mode: hazards.Warn},
			[]row{{"fe", true, probe.Fentry, "fentry-zap-pid-ns-deadlock"}, {"kp", false, probe.Fentry, "fentry-zap-pid-ns-deadlock"}}, false},
		{"fexit to capped kretprobe on a big 6.1", big6130, exit, nil,
			[]row{{"fx", false, probe.Kretprobe, "fentry-zap-pid-ns-deadlock"}, {"kr", true, probe.Kretprobe, "fentry-zap-pid-ns-deadlock"}}, true},
		// The software cpu-clock event deadlocks too (issue 9): no move, a refusal.
		{"hardware perf reading user memory refused on Debian 6.1.30", debian6130, perfReader, nil,
			[]row{{"pe", false, "", "nmi-user-read-deadlock"}}, false},
		{"hardware perf not reading user memory stays on 6.1.30", debian6130, perfPlain, nil,
			[]row{{"pe", true, probe.PerfEventHardware, ""}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := describe(t, tt.k)
			plans, err := PlanSpec(tt.cs, k, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			var got []row
			for _, p := range plans {
				if p.Decision == nil {
					t.Fatalf("program %s has no decision", p.Program)
				}
				r := row{program: p.Program, chosen: p.Chosen, mech: p.Decision.Chosen}
				for _, s := range p.Decision.Steps {
					if s.Hazard != "" {
						r.hazard = s.Hazard
						break
					}
				}
				got = append(got, r)
				if tt.opts != nil && tt.opts.Mode == hazards.Warn && p.Decision.WouldChoose != probe.Kprobe {
					t.Errorf("%s: warn mode would choose %q, want kprobe: %s", p.Program, p.Decision.WouldChoose, Explain(*p.Decision))
				}
				if tt.maxActive && p.Chosen && p.Decision.Settings.MaxActive == 0 {
					t.Errorf("%s: no maxactive cap: %s", p.Program, Explain(*p.Decision))
				}
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(row{})); diff != "" {
				t.Errorf("plans (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPlanSpecRefusal: a kernel with neither fentry nor kprobes refuses the
// pair, and PlanSpec reports it rather than failing.
func TestPlanSpecRefusal(t *testing.T) {
	k := describe(t, probe.Description{Release: "6.18.44", CPUs: 2})
	k.Mechanisms[probe.Fentry] = probe.Unsupported("test: EPERM")
	k.Mechanisms[probe.Kprobe] = probe.Unsupported("test: CONFIG_KPROBES unset")
	plans, err := PlanSpec(spec(
		counterProg("fe", "fentry/do_unlinkat", ebpf.Tracing, 0, 0),
		counterProg("kp", "kprobe/do_unlinkat", ebpf.Kprobe, 0, 0),
	), k, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range plans {
		if p.Chosen || p.Refusal == "" || p.Decision.Chosen != "" {
			t.Errorf("%s: chosen %v, refusal %q, decision %s; want a refusal", p.Program, p.Chosen, p.Refusal, Explain(*p.Decision))
		}
	}
}

// myRulePolicy is a policy with one user rule, my-rule.
var myRulePolicy = &hazards.Policy{APIVersion: "safebpf/v1", Rules: []hazards.Hazard{{
	ID: "my-rule", Title: "a fleet's own hazard", Summary: "Seen on the fleet's vendor kernel.",
	References: []hazards.Reference{{Link: "https://example.com/incident/42"}},
	Mechanisms: []probe.Mechanism{probe.Tracepoint}, Affected: []string{">= 6.12, < 6.13"}, Action: hazards.ActionRefuse,
}}}

func TestNewOptions(t *testing.T) {
	k := &probe.Kernel{Release: "6.1.0"}
	tests := []struct {
		name    string
		opts    *Options
		mode    hazards.Mode
		force   []hazards.ID
		wantErr bool
	}{
		{"defaults", &Options{Kernel: k}, hazards.Enforce, nil, false},
		{"mode from policy", &Options{Kernel: k, Policy: &hazards.Policy{Mode: hazards.Warn}}, hazards.Warn, nil, false},
		{"option beats policy", &Options{Kernel: k, Mode: hazards.Audit, Policy: &hazards.Policy{Mode: hazards.Warn}}, hazards.Audit, nil, false},
		{"bad mode", &Options{Kernel: k, Mode: "loud"}, "", nil, true},
		{"force merged and deduplicated", &Options{Kernel: k, Force: []hazards.ID{"x86-text-poke-race", "nmi-user-read-deadlock"},
			Policy: &hazards.Policy{Force: []hazards.ID{"nmi-user-read-deadlock"}}},
			hazards.Enforce, []hazards.ID{"nmi-user-read-deadlock", "x86-text-poke-race"}, false},
		{"force all", &Options{Kernel: k, Force: []hazards.ID{hazards.ForceAll}}, hazards.Enforce, []hazards.ID{hazards.ForceAll}, false},
		{"unknown force ID is ignored", &Options{Kernel: k, Force: []hazards.ID{"no-such-hazard"}}, hazards.Enforce, nil, false},
		{"malformed force ID", &Options{Kernel: k, Force: []hazards.ID{"No Such Hazard"}}, "", nil, true},
		{"policy rule IDs are known", &Options{Kernel: k, Force: []hazards.ID{"my-rule"},
			Policy: myRulePolicy}, hazards.Enforce, []hazards.ID{"my-rule"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := New(tt.opts)
			if tt.wantErr {
				if err == nil {
					l.Close()
					t.Fatal("New succeeded, want an error")
				}
				if !errors.Is(err, errInvalidInput) {
					t.Errorf("error %v does not wrap errInvalidInput", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if l.Mode() != tt.mode {
				t.Errorf("mode %q, want %q", l.Mode(), tt.mode)
			}
			if diff := cmp.Diff(tt.force, l.policy.Force); diff != "" {
				t.Errorf("force (-want +got):\n%s", diff)
			}
			if l.Kernel() == tt.opts.Kernel {
				t.Error("Kernel() returned the caller's pointer, want a copy")
			}
		})
	}
	// The malformed-ID error lists the known IDs.
	_, err := New(&Options{Kernel: k, Force: []hazards.ID{"NOPE"}})
	if err == nil || !strings.Contains(err.Error(), "fentry-zap-pid-ns-deadlock") {
		t.Errorf("malformed force ID error %v does not list known IDs", err)
	}
}

func TestClosedLoader(t *testing.T) {
	l, err := New(&Options{Kernel: &probe.Kernel{Release: "6.1.0"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := l.LoadAndAttach(spec(), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("LoadAndAttach after Close: got %v, want ErrClosed", err)
	}
	if _, err := l.Tracepoint("a", "b", nil, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Tracepoint after Close: got %v, want ErrClosed", err)
	}
}

func TestExplainAndAttachError(t *testing.T) {
	d := fallback.Decision{
		Target: "do_unlinkat", Requested: probe.Fentry, Chosen: probe.Kprobe, Action: fallback.Downgrade,
		Steps: []fallback.Step{{From: probe.Fentry, To: probe.Kprobe, Action: fallback.Downgrade, Hazard: "fentry-zap-pid-ns-deadlock"}},
		Mode:  hazards.Enforce,
	}
	inner := errors.New("kernel says no")
	err := error(&AttachError{Program: "kp", Op: "attach", Decision: d, Err: inner})
	// The decision in the words of fallback.Decision.String, the one
	// rendering every output shares.
	want := `attach program "kp" (do_unlinkat: fentry → kprobe (downgrade): fentry → kprobe: fentry-zap-pid-ns-deadlock): kernel says no`
	if err.Error() != want {
		t.Errorf("got  %s\nwant %s", err, want)
	}
	if !errors.Is(err, inner) {
		t.Error("AttachError does not unwrap")
	}
}

// TestUretprobeSeccomp: on a kernel with the uretprobe syscall (6.12 with
// __x64_sys_uretprobe), a uretprobe whose target may run under seccomp is
// refused; stating NoSeccomp lets it through.
func TestUretprobeSeccomp(t *testing.T) {
	k := describe(t, probe.Description{Release: "6.12.5", CPUs: 4, Kallsyms: "0000000000000000 T __x64_sys_uretprobe\n"})
	cs := spec(counterProg("ret", "uretprobe//bin/true:main", ebpf.Kprobe, 0, 0))
	plans, err := PlanSpec(cs, k, nil)
	if err != nil {
		t.Fatal(err)
	}
	if plans[0].Chosen || plans[0].Refusal == "" {
		t.Errorf("uretprobe under unknown seccomp: chosen %v refusal %q, want refused", plans[0].Chosen, plans[0].Refusal)
	}
	pol := hazards.Policy{Mode: hazards.Enforce}
	an, err := analyse(cs, nil, offlineResolver{})
	if err != nil {
		t.Fatal(err)
	}
	p := an.groups[0].alts[0].single()
	for _, tt := range []struct {
		opts    *CollectionOptions
		seccomp bool
	}{
		{nil, true},
		{&CollectionOptions{Uprobes: map[string]UprobeTarget{"ret": {}}}, true},
		{&CollectionOptions{Uprobes: map[string]UprobeTarget{"ret": {NoSeccomp: true}}}, false},
	} {
		req := requestFor(p, nil, nil, tt.opts.seccomp(p.name), tt.opts)
		if req.Seccomp != tt.seccomp {
			t.Errorf("request seccomp = %v, want %v", req.Seccomp, tt.seccomp)
		}
		d, err := newPlanner(newKernelView(k, hazards.Builtin(), nil), hazards.Builtin(), &pol).plan(req)
		if refused := errors.Is(err, ErrRefused); refused != tt.seccomp {
			t.Errorf("seccomp %v: refused = %v (%s), want %v", tt.seccomp, refused, Explain(d), tt.seccomp)
		}
	}
}

// TestLinkWithoutBPFLink: an audit-mode Link has no BPF link; its link.Link
// methods report ErrNotSupported instead of panicking.
func TestLinkWithoutBPFLink(t *testing.T) {
	var lk link.Link = &Link{}
	if err := lk.Pin("/sys/fs/bpf/x"); !errors.Is(err, ErrNotSupported) {
		t.Errorf("Pin: %v", err)
	}
	if err := lk.Update(nil); !errors.Is(err, ErrNotSupported) {
		t.Errorf("Update: %v", err)
	}
	if err := lk.Unpin(); !errors.Is(err, ErrNotSupported) {
		t.Errorf("Unpin: %v", err)
	}
	if err := lk.Detach(); !errors.Is(err, ErrNotSupported) {
		t.Errorf("Detach: %v", err)
	}
	if _, err := lk.Info(); !errors.Is(err, ErrNotSupported) {
		t.Errorf("Info: %v", err)
	}
	if err := lk.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}
