package loader

import (
	"sort"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/safebpf/safebpf/internal/elfscan"
	"github.com/safebpf/safebpf/probe"
)

// progInfo is one program of a spec, analysed.
type progInfo struct {
	name  string
	spec  *ebpf.ProgramSpec
	class classification
	scan  elfscan.Result
	// optional: CollectionOptions.Optional, or a "?" section.
	optional bool
	// keep: CollectionOptions.KeepMechanism.
	keep bool
	// missing is set when resolve found the target absent (matches
	// os.ErrNotExist).
	missing error
	// optionalTargets: the program's batch may leave targets out; skipped
	// holds those resolve found absent.
	optionalTargets bool
	skipped         []SkippedTarget
	// variantOf is set on a variant the loader made itself (the single
	// uprobe form of a uprobe.multi program): the program it stands for.
	variantOf *progInfo
}

func (pi *progInfo) attaches() bool        { return pi.class.use == useAttach }
func (pi *progInfo) mech() probe.Mechanism { return pi.class.ap.mech }

// alternative is one way of tracing what a group traces: one program, or
// several attached together (a kprobe and its kretprobe standing in for
// one fexit).
type alternative struct {
	progs []*progInfo
}

func (a *alternative) names() []string {
	out := make([]string, len(a.progs))
	for i, p := range a.progs {
		out[i] = p.name
	}
	return out
}

func (a *alternative) String() string { return strings.Join(a.names(), "+") }

// single returns the program of a one-program alternative, else nil.
func (a *alternative) single() *progInfo {
	if len(a.progs) == 1 {
		return a.progs[0]
	}
	return nil
}

// group is a set of alternatives, in order of preference; at most one
// attaches.
type group struct {
	key      string
	alts     []*alternative
	explicit bool
	optional bool
}

// programs returns every program of g.
func (g *group) programs() []*progInfo {
	var out []*progInfo
	for _, a := range g.alts {
		out = append(out, a.progs...)
	}
	return out
}

// preference orders mechanisms within an automatic group: trampolines
// before kprobes, multi links after single probes they batch, BTF
// tracepoints before raw ones before tracefs ones.
var preference = map[probe.Mechanism]int{
	probe.Fentry: 0, probe.Fexit: 1, probe.FmodRet: 2,
	probe.Kprobe: 3, probe.Kretprobe: 4, probe.KprobeMulti: 5, probe.KretprobeMulti: 6,
	probe.TpBTF: 7, probe.RawTracepoint: 8, probe.Tracepoint: 9,
	probe.Uprobe: 10, probe.Uretprobe: 11, probe.UprobeMulti: 12, probe.UretprobeMulti: 13,
	probe.LSM: 14, probe.Iter: 15,
	probe.PerfEventHardware: 16, probe.PerfEventSoftware: 17,
}

// role is what an automatic group's programs trace: the entry or the
// return of one kernel function, or one kernel event.
func role(pi *progInfo) (kind, key string) {
	ap := pi.class.ap
	if ap.glob || len(ap.symbols) > 1 {
		return "", "" // a glob is its own attach point
	}
	switch ap.mech {
	case probe.Fentry, probe.Kprobe, probe.KprobeMulti:
		if ap.offset != 0 {
			return "", "" // an offset inside the function: no trampoline equivalent
		}
		return "entry", ap.symbol
	case probe.Fexit, probe.Kretprobe, probe.KretprobeMulti:
		return "exit", ap.symbol
	case probe.TpBTF, probe.RawTracepoint, probe.Tracepoint:
		return "event", ap.name
	}
	return "", ""
}

// automaticGroups groups the programs that are in no explicit group.
// Automatic alternatives are programs that trace the same thing through
// different mechanisms: the entry of a function (fentry, kprobe, a
// one-function kprobe.multi), its return (fexit, kretprobe, a one-function
// kretprobe.multi), one tracepoint (tp_btf/NAME, raw_tp/NAME,
// tracepoint/GROUP/NAME), and, for a function with an fexit program but no
// fentry one, the fexit against the pair of a kprobe and a kretprobe (the
// fexit sees both the arguments and the return value). Programs with the
// same mechanism on the same target are companions, not alternatives:
// each attaches on its own. The others form a group each.
func automaticGroups(infos []*progInfo) []*group {
	var groups []*group
	// Automatic groups, by role and target.
	type roleKey struct{ kind, key string }
	byRole := map[roleKey][]*progInfo{}
	var order []roleKey
	var loose []*progInfo
	for _, pi := range infos {
		kind, key := role(pi)
		if kind == "" {
			loose = append(loose, pi)
			continue
		}
		rk := roleKey{kind, key}
		if _, ok := byRole[rk]; !ok {
			order = append(order, rk)
		}
		byRole[rk] = append(byRole[rk], pi)
	}
	alone := func(pi *progInfo) *group {
		return &group{key: "program:" + pi.name, alts: []*alternative{{progs: []*progInfo{pi}}}, optional: pi.optional}
	}
	done := map[roleKey]bool{}
	for _, rk := range order {
		if done[rk] {
			continue
		}
		done[rk] = true
		members := byRole[rk]
		// The fexit-against-pair case: exit {fexit, kretprobe} with an
		// entry {kprobe} and no fentry for the same function.
		if rk.kind == "exit" {
			entry := roleKey{"entry", rk.key}
			fx := only(members, probe.Fexit)
			kr := only(members, probe.Kretprobe)
			kp := only(byRole[entry], probe.Kprobe)
			if fx != nil && kr != nil && kp != nil && len(members) == 2 && len(byRole[entry]) == 1 {
				done[entry] = true
				groups = append(groups, &group{
					key:      "call:" + rk.key,
					alts:     []*alternative{{progs: []*progInfo{fx}}, {progs: []*progInfo{kp, kr}}},
					optional: fx.optional || kr.optional || kp.optional,
				})
				continue
			}
		}
		if rk.kind == "entry" {
			exit := roleKey{"exit", rk.key}
			fx := only(byRole[exit], probe.Fexit)
			kr := only(byRole[exit], probe.Kretprobe)
			kp := only(members, probe.Kprobe)
			if fx != nil && kr != nil && kp != nil && len(members) == 1 && len(byRole[exit]) == 2 && !done[exit] {
				done[exit] = true
				groups = append(groups, &group{
					key:      "call:" + rk.key,
					alts:     []*alternative{{progs: []*progInfo{fx}}, {progs: []*progInfo{kp, kr}}},
					optional: fx.optional || kr.optional || kp.optional,
				})
				continue
			}
		}
		seen := map[probe.Mechanism]bool{}
		dup := false
		for _, m := range members {
			dup = dup || seen[m.mech()]
			seen[m.mech()] = true
		}
		if dup || len(members) == 1 {
			for _, m := range members {
				groups = append(groups, alone(m))
			}
			continue
		}
		sort.SliceStable(members, func(i, j int) bool { return preference[members[i].mech()] < preference[members[j].mech()] })
		g := &group{key: rk.kind + ":" + rk.key}
		for _, m := range members {
			g.alts = append(g.alts, &alternative{progs: []*progInfo{m}})
			g.optional = g.optional || m.optional
		}
		groups = append(groups, g)
	}
	for _, pi := range loose {
		groups = append(groups, alone(pi))
	}
	return groups
}

// only returns the one program of mechanism m in ps, or nil when there
// are none or several.
func only(ps []*progInfo, m probe.Mechanism) *progInfo {
	var found *progInfo
	for _, p := range ps {
		if p.mech() == m {
			if found != nil {
				return nil
			}
			found = p
		}
	}
	return found
}

// inheritTarget carries a retargeted kernel function over to the
// members of an explicit group that still point at their section's
// placeholder: libbpf-tools' funclatency sets the target of its fentry
// program and expects its kprobe alternative to follow.
func inheritTarget(g *group) {
	var target string
	for _, p := range g.programs() {
		ap := p.class.ap
		if !ap.retargeted || !kernelFunction(ap.mech) {
			continue
		}
		if target != "" && target != ap.symbol {
			return // retargeted to different functions: leave them
		}
		target = ap.symbol
	}
	if target == "" {
		return
	}
	for _, p := range g.programs() {
		ap := &p.class.ap
		if ap.retargeted || !kernelFunction(ap.mech) || ap.offset != 0 || ap.syscall != "" {
			continue
		}
		ap.symbol, ap.target, ap.retargeted = target, target, true
		ap.glob = false
	}
}

func kernelFunction(m probe.Mechanism) bool {
	switch m {
	case probe.Fentry, probe.Fexit, probe.FmodRet, probe.Kprobe, probe.Kretprobe, probe.KprobeMulti, probe.KretprobeMulti:
		return true
	}
	return false
}
