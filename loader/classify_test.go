package loader

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/google/go-cmp/cmp"

	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/probe"
)

// progSpec is the ProgramSpec cilium/ebpf's ELF reader makes for a
// section (sections_test.go checks the table this mirrors against
// cilium/ebpf's own).
func progSpec(name, section string, typ ebpf.ProgramType, at ebpf.AttachType) *ebpf.ProgramSpec {
	_, to, _ := strings.Cut(strings.TrimPrefix(section, "?"), "/")
	return &ebpf.ProgramSpec{Name: name, SectionName: section, Type: typ, AttachType: at, AttachTo: to,
		License: "GPL", Instructions: asmReturn0(name)}
}

func TestClassify(t *testing.T) {
	type want struct {
		use    use
		mech   probe.Mechanism
		target string
		symbol string
		offset uint64
		path   string
		glob   bool
		needs  string
		err    error // errors.Is target, or errSection for any error
	}
	errAny := errors.New("any error")
	tests := []struct {
		spec *ebpf.ProgramSpec
		want want
	}{
		{progSpec("a", "kprobe/do_unlinkat", ebpf.Kprobe, 0), want{mech: probe.Kprobe, target: "do_unlinkat", symbol: "do_unlinkat"}},
		{progSpec("a", "kprobe/tcp_v4_connect+0x10", ebpf.Kprobe, 0), want{mech: probe.Kprobe, target: "tcp_v4_connect+0x10", symbol: "tcp_v4_connect", offset: 16}},
		{progSpec("a", "kprobe/f+010", ebpf.Kprobe, 0), want{mech: probe.Kprobe, target: "f+010", symbol: "f", offset: 8}},
		{progSpec("a", "kprobe/f+12", ebpf.Kprobe, 0), want{mech: probe.Kprobe, target: "f+12", symbol: "f", offset: 12}},
		{progSpec("a", "kprobe/f+x", ebpf.Kprobe, 0), want{err: errAny}},
		{progSpec("a", "kprobe/f-1", ebpf.Kprobe, 0), want{err: errAny}},
		{progSpec("a", "kretprobe/vfs_read", ebpf.Kprobe, 0), want{mech: probe.Kretprobe, target: "vfs_read", symbol: "vfs_read"}},
		{progSpec("a", "kretprobe/vfs_read+4", ebpf.Kprobe, 0), want{err: errAny}},
		{progSpec("a", "kprobe", ebpf.Kprobe, 0), want{mech: probe.Kprobe, needs: "kernel function"}},
		{progSpec("a", "ksyscall/openat", ebpf.Kprobe, 0), want{mech: probe.Kprobe, target: "openat", symbol: "openat"}},
		{progSpec("a", "kretsyscall/openat", ebpf.Kprobe, 0), want{mech: probe.Kretprobe, target: "openat", symbol: "openat"}},
		{progSpec("a", "kprobe.multi/tcp_*", ebpf.Kprobe, ebpf.AttachTraceKprobeMulti), want{mech: probe.KprobeMulti, target: "tcp_*", symbol: "tcp_*", glob: true}},
		{progSpec("a", "kretprobe.multi/vfs_read", ebpf.Kprobe, ebpf.AttachTraceKprobeMulti), want{mech: probe.KretprobeMulti, target: "vfs_read", symbol: "vfs_read"}},
		{progSpec("a", "kprobe.multi/tcp-*", ebpf.Kprobe, ebpf.AttachTraceKprobeMulti), want{err: errAny}},
		{progSpec("a", "kprobe.session/f", ebpf.Kprobe, ebpf.AttachTraceKprobeSession), want{err: ErrNotSupported}},
		{progSpec("a", "uprobe//usr/bin/bash:readline", ebpf.Kprobe, 0), want{mech: probe.Uprobe, target: "/usr/bin/bash:readline", symbol: "readline", path: "/usr/bin/bash"}},
		{progSpec("a", "uprobe//lib/libc.so.6:malloc+0x4", ebpf.Kprobe, 0), want{mech: probe.Uprobe, target: "/lib/libc.so.6:malloc+0x4", symbol: "malloc", offset: 4, path: "/lib/libc.so.6"}},
		{progSpec("a", "uprobe.s//bin/true:main", ebpf.Kprobe, 0), want{mech: probe.Uprobe, target: "/bin/true:main", symbol: "main", path: "/bin/true"}},
		{progSpec("a", "uretprobe//bin/true:main", ebpf.Kprobe, 0), want{mech: probe.Uretprobe, target: "/bin/true:main", symbol: "main", path: "/bin/true"}},
		{progSpec("a", "uretprobe//bin/true:main+8", ebpf.Kprobe, 0), want{err: errAny}},
		{progSpec("a", "uretprobe/readline", ebpf.Kprobe, 0), want{mech: probe.Uretprobe, symbol: "readline", needs: "binary and symbol"}},
		{progSpec("a", "uprobe", ebpf.Kprobe, 0), want{mech: probe.Uprobe, needs: "binary and symbol"}},
		{progSpec("a", "uprobe.multi//bin/bash:rl_*", ebpf.Kprobe, ebpf.AttachTraceUprobeMulti), want{mech: probe.UprobeMulti, target: "/bin/bash:rl_*", symbol: "rl_*", path: "/bin/bash", glob: true}},
		{progSpec("a", "uretprobe.multi//bin/bash:readline", ebpf.Kprobe, ebpf.AttachTraceUprobeMulti), want{mech: probe.UretprobeMulti, target: "/bin/bash:readline", symbol: "readline", path: "/bin/bash"}},
		{progSpec("a", "uretprobe.multi.s//bin/bash:readline", ebpf.Kprobe, ebpf.AttachTraceUprobeMulti), want{mech: probe.UretprobeMulti, target: "/bin/bash:readline", symbol: "readline", path: "/bin/bash"}},
		{progSpec("a", "uprobe.session//bin/bash:readline", ebpf.Kprobe, ebpf.AttachTraceUprobeMulti), want{err: ErrNotSupported}},
		{progSpec("a", "usdt/libc:memory:malloc", ebpf.Kprobe, 0), want{err: ErrNotSupported}},
		{progSpec("a", "tracepoint/syscalls/sys_enter_openat", ebpf.TracePoint, 0), want{mech: probe.Tracepoint, target: "syscalls/sys_enter_openat"}},
		{progSpec("a", "tp/sched/sched_switch", ebpf.TracePoint, 0), want{mech: probe.Tracepoint, target: "sched/sched_switch"}},
		{progSpec("a", "tp/onlygroup", ebpf.TracePoint, 0), want{err: errAny}},
		{progSpec("a", "raw_tp/sched_switch", ebpf.RawTracepoint, 0), want{mech: probe.RawTracepoint, target: "sched_switch"}},
		{progSpec("a", "raw_tracepoint.w/bpf_test_finish", ebpf.RawTracepointWritable, 0), want{mech: probe.RawTracepoint, target: "bpf_test_finish"}},
		{progSpec("a", "tp_btf/sched_switch", ebpf.Tracing, ebpf.AttachTraceRawTp), want{mech: probe.TpBTF, target: "sched_switch", symbol: "sched_switch"}},
		{progSpec("a", "fentry/do_unlinkat", ebpf.Tracing, ebpf.AttachTraceFEntry), want{mech: probe.Fentry, target: "do_unlinkat", symbol: "do_unlinkat"}},
		{progSpec("a", "fentry.s/do_unlinkat", ebpf.Tracing, ebpf.AttachTraceFEntry), want{mech: probe.Fentry, target: "do_unlinkat", symbol: "do_unlinkat"}},
		{progSpec("a", "fexit/vfs_read", ebpf.Tracing, ebpf.AttachTraceFExit), want{mech: probe.Fexit, target: "vfs_read", symbol: "vfs_read"}},
		// A hand-built spec without the attach type: derived from the
		// section as cilium/ebpf's ELF reader derives it.
		{progSpec("a", "fexit/vfs_read", ebpf.Tracing, 0), want{mech: probe.Fexit, target: "vfs_read", symbol: "vfs_read"}},
		{progSpec("a", "fmod_ret/f", ebpf.Tracing, ebpf.AttachModifyReturn), want{mech: probe.FmodRet, target: "f", symbol: "f"}},
		{progSpec("a", "iter/task", ebpf.Tracing, ebpf.AttachTraceIter), want{mech: probe.Iter, target: "task", symbol: "task"}},
		{progSpec("a", "fentry", ebpf.Tracing, ebpf.AttachTraceFEntry), want{err: errAny}},
		{progSpec("a", "lsm/file_open", ebpf.LSM, ebpf.AttachLSMMac), want{mech: probe.LSM, target: "file_open"}},
		{progSpec("a", "lsm_cgroup/file_open", ebpf.LSM, ebpf.AttachLSMCgroup), want{use: useLoadOnly}},
		{progSpec("a", "perf_event", ebpf.PerfEvent, 0), want{mech: probe.PerfEventHardware, needs: "perf event"}},
		{progSpec("a", "socket", ebpf.SocketFilter, 0), want{use: useLoadOnly}},
		{progSpec("a", "xdp", ebpf.XDP, ebpf.AttachXDP), want{use: useLoadOnly}},
		{progSpec("a", "struct_ops/x", ebpf.StructOps, 0), want{use: useLoadOnly}},
		{progSpec("a", "freplace/f", ebpf.Extension, 0), want{use: useLoadOnly}},
		{progSpec("a", "weird", ebpf.UnspecifiedProgram, 0), want{err: errAny}},
		// A spec whose AttachTo the caller changed wins over its section.
		{func() *ebpf.ProgramSpec {
			ps := progSpec("a", "kprobe/dummy_kprobe", ebpf.Kprobe, 0)
			ps.AttachTo = "vfs_read"
			return ps
		}(), want{mech: probe.Kprobe, target: "vfs_read", symbol: "vfs_read"}},
	}
	for _, tt := range tests {
		c, err := classify(tt.spec)
		if tt.want.err != nil {
			var se *sectionError
			if err == nil || !errors.As(err, &se) || (tt.want.err != errAny && !errors.Is(err, tt.want.err)) {
				t.Errorf("classify(%q): got %+v, %v; want an error naming the section matching %v", tt.spec.SectionName, c, err, tt.want.err)
			}
			if err != nil && !strings.Contains(err.Error(), tt.spec.SectionName) {
				t.Errorf("classify(%q): error %q does not name the section", tt.spec.SectionName, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("classify(%q): %v", tt.spec.SectionName, err)
			continue
		}
		ap := c.ap
		got := want{use: c.use, mech: ap.mech, target: ap.target, symbol: ap.symbol, offset: ap.offset, path: ap.path, glob: ap.glob, needs: ap.needsTarget}
		if c.use == useLoadOnly {
			got = want{use: useLoadOnly}
			if c.why == "" {
				t.Errorf("classify(%q): load-only without a reason", tt.spec.SectionName)
			}
		}
		if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(want{}), cmp.Comparer(func(a, b error) bool { return a == b })); diff != "" {
			t.Errorf("classify(%q) (-want +got):\n%s", tt.spec.SectionName, diff)
		}
	}
}

func TestGlobMatch(t *testing.T) {
	for _, tt := range []struct {
		s, pat string
		want   bool
	}{
		{"tcp_v4_connect", "tcp_*", true},
		{"tcp_v4_connect", "tcp_v?_connect", true},
		{"tcp_v4_connect", "*connect", true},
		{"tcp_v4_connect", "*v4*", true},
		{"tcp_v4_connect", "udp_*", false},
		{"tcp", "tcp?", false},
		{"rl_getc", "rl_*", true},
		{"x", "*", true},
		{"", "*", true},
		{"abc", "abc", true},
		{"abc", "ab", false},
	} {
		if got := globMatch(tt.s, tt.pat); got != tt.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tt.s, tt.pat, got, tt.want)
		}
	}
}

// groupsOf analyses specs offline and returns each group's alternatives
// by program name, alternatives of several programs joined with "+".
func groupsOf(t *testing.T, opts *CollectionOptions, progs ...*ebpf.ProgramSpec) map[string][]string {
	t.Helper()
	cs := &ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{}}
	for _, p := range progs {
		cs.Programs[p.Name] = p
	}
	an, err := analyse(cs, opts, offlineResolver{arch: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, g := range an.groups {
		for _, a := range g.alts {
			name := a.String()
			if p := a.single(); p != nil && p.variantOf != nil {
				name += "(as " + string(p.mech()) + ")"
			}
			out[g.key] = append(out[g.key], name)
		}
	}
	return out
}

func TestAutomaticGroups(t *testing.T) {
	got := groupsOf(t, nil,
		progSpec("fe", "fentry/do_unlinkat", ebpf.Tracing, ebpf.AttachTraceFEntry),
		progSpec("kp", "kprobe/do_unlinkat", ebpf.Kprobe, 0),
		progSpec("fx", "fexit/vfs_write", ebpf.Tracing, ebpf.AttachTraceFExit),
		progSpec("kr", "kretprobe/vfs_write", ebpf.Kprobe, 0),
		// Pair against one fexit.
		progSpec("rk", "kprobe/vfs_read", ebpf.Kprobe, 0),
		progSpec("rr", "kretprobe/vfs_read", ebpf.Kprobe, 0),
		progSpec("rx", "fexit/vfs_read", ebpf.Tracing, ebpf.AttachTraceFExit),
		// One tracepoint three ways (hardirqs).
		progSpec("btf", "tp_btf/irq_handler_entry", ebpf.Tracing, ebpf.AttachTraceRawTp),
		progSpec("raw", "raw_tp/irq_handler_entry", ebpf.RawTracepoint, 0),
		progSpec("tp", "tracepoint/irq/irq_handler_entry", ebpf.TracePoint, 0),
		// Companions, not alternatives.
		progSpec("k1", "kprobe/vfs_fsync", ebpf.Kprobe, 0),
		progSpec("k2", "kprobe/vfs_fsync", ebpf.Kprobe, 0),
		// ksyscall resolves to the wrapper fentry names.
		progSpec("fs", "fentry.s/__x64_sys_getpgid", ebpf.Tracing, ebpf.AttachTraceFEntry),
		progSpec("ks", "ksyscall/getpgid", ebpf.Kprobe, 0),
		// A multi program is offered as single probes too.
		progSpec("um", "uretprobe.multi//bin/true:main", ebpf.Kprobe, ebpf.AttachTraceUprobeMulti),
		// An offset inside a function has no trampoline equivalent.
		progSpec("ko", "kprobe/do_mkdirat+0x8", ebpf.Kprobe, 0),
		progSpec("fo", "fentry/do_mkdirat", ebpf.Tracing, ebpf.AttachTraceFEntry),
	)
	want := map[string][]string{
		"entry:do_unlinkat":       {"fe", "kp"},
		"exit:vfs_write":          {"fx", "kr"},
		"call:vfs_read":           {"rx", "rk+rr"},
		"event:irq_handler_entry": {"btf", "raw", "tp"},
		"program:k1":              {"k1"},
		"program:k2":              {"k2"},
		"entry:__x64_sys_getpgid": {"fs", "ks"},
		"program:um":              {"um", "um(as uretprobe)"},
		"program:ko":              {"ko"},
		"program:fo":              {"fo"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("groups (-want +got):\n%s", diff)
	}
}

func TestExplicitGroups(t *testing.T) {
	progs := []*ebpf.ProgramSpec{
		progSpec("dummy_fentry", "fentry/dummy_fentry", ebpf.Tracing, ebpf.AttachTraceFEntry),
		progSpec("dummy_kprobe", "kprobe/dummy_kprobe", ebpf.Kprobe, 0),
		progSpec("dummy_fexit", "fexit/dummy_fexit", ebpf.Tracing, ebpf.AttachTraceFExit),
		progSpec("dummy_kretprobe", "kretprobe/dummy_kretprobe", ebpf.Kprobe, 0),
		progSpec("tp", "tracepoint/sched/sched_switch", ebpf.TracePoint, 0),
		progSpec("raw", "raw_tp/sched_switch", ebpf.RawTracepoint, 0),
	}
	progs[0].AttachTo = "vfs_read"
	progs[2].AttachTo = "vfs_read"
	opts := &CollectionOptions{Groups: []Group{
		Alternatives("dummy_fentry", "dummy_kprobe"),
		{Alternatives: [][]string{{"dummy_fexit"}, {"dummy_kretprobe"}}, Optional: true},
		Alternatives("tp", "raw"), // the caller's order, not the preference
	}}
	cs := &ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{}}
	for _, p := range progs {
		cs.Programs[p.Name] = p
	}
	an, err := analyse(cs, opts, offlineResolver{arch: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, g := range an.groups {
		keys = append(keys, g.key)
		for _, p := range g.programs() {
			if strings.HasPrefix(p.name, "dummy_") && p.class.ap.symbol != "vfs_read" {
				t.Errorf("%s targets %q: the placeholder was retargeted to vfs_read in its group", p.name, p.class.ap.symbol)
			}
		}
		if g.optional != (g.key == "dummy_fexit|dummy_kretprobe") {
			t.Errorf("group %s optional = %v", g.key, g.optional)
		}
	}
	if diff := cmp.Diff([]string{"dummy_fentry|dummy_kprobe", "dummy_fexit|dummy_kretprobe", "tp|raw"}, keys); diff != "" {
		t.Errorf("groups (-want +got):\n%s", diff)
	}

	for _, bad := range [][]Group{
		{Alternatives("nope")},
		{Alternatives("tp"), Alternatives("tp", "raw")},
		{{}},
		{{Alternatives: [][]string{{}}}},
	} {
		if _, err := analyse(cs, &CollectionOptions{Groups: bad}, offlineResolver{}); !errors.Is(err, errInvalidInput) {
			t.Errorf("groups %v: got %v, want errInvalidInput", bad, err)
		}
	}
}

// TestAnalyseErrors: a section safebpf cannot attach as written fails the
// call naming it, unless the program is optional; targets the section
// leaves out come from the options or Manual.
func TestAnalyseErrors(t *testing.T) {
	cs := func(progs ...*ebpf.ProgramSpec) *ebpf.CollectionSpec {
		s := &ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{}}
		for _, p := range progs {
			s.Programs[p.Name] = p
		}
		return s
	}
	usdt := progSpec("u", "usdt/libc:memory:malloc", ebpf.Kprobe, 0)
	if _, err := analyse(cs(usdt), nil, offlineResolver{}); !errors.Is(err, ErrNotSupported) || !strings.Contains(err.Error(), "usdt/libc") {
		t.Errorf("usdt: got %v, want ErrNotSupported naming the section", err)
	}
	an, err := analyse(cs(usdt), &CollectionOptions{Optional: []string{"u"}}, offlineResolver{})
	if err != nil || len(an.skipped) != 1 {
		t.Errorf("optional usdt: %v, skipped %d; want it skipped", err, len(an.skipped))
	}
	q := progSpec("q", "?usdt/libc:memory:malloc", ebpf.Kprobe, 0)
	if an, err := analyse(cs(q), nil, offlineResolver{}); err != nil || len(an.skipped) != 1 {
		t.Errorf("'?' section: %v; want it optional and skipped", err)
	}

	bare := progSpec("b", "kprobe", ebpf.Kprobe, 0)
	if _, err := analyse(cs(bare), nil, offlineResolver{}); !errors.Is(err, errInvalidInput) || !strings.Contains(err.Error(), "Manual") {
		t.Errorf("bare kprobe: got %v, want errInvalidInput pointing at Manual", err)
	}
	an, err = analyse(cs(bare), &CollectionOptions{Manual: []string{"b"}}, offlineResolver{})
	if err != nil || an.infos[0].attaches() {
		t.Errorf("manual bare kprobe: %v, attaches %v", err, an.infos[0].attaches())
	}

	up := progSpec("up", "uretprobe/readline", ebpf.Kprobe, 0)
	an, err = analyse(cs(up), &CollectionOptions{Uprobes: map[string]UprobeTarget{"up": {Binary: "/bin/bash"}}}, offlineResolver{})
	if err != nil || an.infos[0].class.ap.target != "/bin/bash:readline" {
		t.Errorf("uretprobe/readline with a binary: %v, %+v", err, an.infos[0].class.ap)
	}
	pe := progSpec("pe", "perf_event", ebpf.PerfEvent, 0)
	if _, err := analyse(cs(pe), nil, offlineResolver{}); !errors.Is(err, errInvalidInput) {
		t.Errorf("perf_event without an event: got %v", err)
	}
	an, err = analyse(cs(pe), &CollectionOptions{PerfEvents: map[string]PerfEventOptions{"pe": {Type: 0, Config: 3, Frequency: 9}}}, offlineResolver{})
	if err != nil || an.infos[0].class.ap.target != "hardware-cache-misses" || an.infos[0].mech() != probe.PerfEventHardware {
		t.Errorf("cache-miss sampler: %v, %+v", err, an.infos[0].class.ap)
	}
}

// TestPerfEventMoves: only CPU cycles may move to cpu-clock; a cache-miss
// sampler is kept (refused where there is no PMU).
func TestPerfEventMoves(t *testing.T) {
	k := describe(t, probe.Description{Release: "6.18.44", CPUs: 2})
	k.Mechanisms[probe.PerfEventHardware] = probe.Unsupported("test: no PMU")
	k.Mechanisms[probe.PerfEventSoftware] = probe.Supported("test")
	for _, tt := range []struct {
		ev     PerfEventOptions
		chosen probe.Mechanism // "" for refused
	}{
		{PerfEventOptions{Hardware: true, Frequency: 99}, probe.PerfEventSoftware},
		{PerfEventOptions{Hardware: true, Frequency: 99, KeepMechanism: true}, ""},
		{PerfEventOptions{Type: 0, Config: 3, Frequency: 99}, ""},                     // cache misses
		{PerfEventOptions{Type: 3, Config: 0x10000, Frequency: 99}, ""},               // hw cache event
		{PerfEventOptions{Type: 1, Config: 1, Period: 1000}, probe.PerfEventSoftware}, // task-clock
	} {
		spec := &ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{"pe": progSpec("pe", "perf_event", ebpf.PerfEvent, 0)}}
		// PlanSpec plans perf_event sections as CPU cycles; plan this
		// event through the collection options instead.
		an, err := analyse(spec, &CollectionOptions{PerfEvents: map[string]PerfEventOptions{"pe": tt.ev}}, offlineResolver{})
		if err != nil {
			t.Fatal(err)
		}
		gp := planGroup(newPlanner(newKernelView(k, hazards.Builtin(), nil), hazards.Builtin(), &hazards.Policy{Mode: hazards.Enforce}), an.groups[0], &CollectionOptions{PerfEvents: map[string]PerfEventOptions{"pe": tt.ev}})
		got := probe.Mechanism("")
		if gp.chosen != nil {
			got = gp.decisions[gp.chosen.progs[0]].Chosen
		}
		if got != tt.chosen {
			t.Errorf("%s: chose %q, want %q", tt.ev.name(), got, tt.chosen)
		}
	}
}

func TestPerfEventValidate(t *testing.T) {
	for _, bad := range []PerfEventOptions{
		{},
		{Frequency: 1, Period: 1},
		{Hardware: true, Config: 3, Frequency: 1},
		{Type: 2, Frequency: 1}, // tracepoint
		{Type: 5, Frequency: 1}, // breakpoint
	} {
		if err := bad.validate(); !errors.Is(err, errInvalidInput) {
			t.Errorf("%+v: got %v, want errInvalidInput", bad, err)
		}
	}
	if names := []string{
		PerfEventOptions{}.name(), PerfEventOptions{Hardware: true}.name(), PerfEventOptions{Config: 3}.name(),
	}; !slices.Equal(names, []string{"software-cpu-clock", "hardware-cycles", "hardware-cache-misses"}) {
		t.Errorf("names %v", names)
	}
}
