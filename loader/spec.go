package loader

import (
	"fmt"
	"sort"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/safebpf/safebpf/internal/elfscan"
	"github.com/safebpf/safebpf/probe"
)

// attachPoint is what a program's section name says about where it attaches.
type attachPoint struct {
	mech probe.Mechanism
	// target is the function, event or "path:symbol" the program attaches
	// to; group and name split tracepoints, path and symbol uprobes.
	target       string
	group, name  string
	path, symbol string
	// tpBTF marks a tp_btf program (attached with AttachTracing).
	tpBTF bool
	// needsOptions marks sections that carry no target ("uprobe",
	// "perf_event"): the target comes from CollectionOptions.
	needsOptions bool
}

// parseSection maps a section name (libbpf conventions, as cilium/ebpf
// reads them) to an attach point; ok is false for sections safebpf does not
// attach (socket filters, XDP, ...), which are loaded but left unattached.
func parseSection(section string) (attachPoint, bool) {
	kind, rest, _ := strings.Cut(section, "/")
	switch kind {
	case "kprobe", "kretprobe", "fentry", "fexit", "kprobe.multi", "kretprobe.multi":
		if rest == "" {
			return attachPoint{}, false
		}
		m := map[string]probe.Mechanism{
			"kprobe": probe.Kprobe, "kretprobe": probe.Kretprobe,
			"fentry": probe.Fentry, "fexit": probe.Fexit,
			"kprobe.multi": probe.KprobeMulti, "kretprobe.multi": probe.KretprobeMulti,
		}[kind]
		return attachPoint{mech: m, target: rest, symbol: rest}, true
	case "uprobe", "uretprobe", "uprobe.multi", "uretprobe.multi":
		m := map[string]probe.Mechanism{
			"uprobe": probe.Uprobe, "uretprobe": probe.Uretprobe,
			"uprobe.multi": probe.UprobeMulti, "uretprobe.multi": probe.UprobeMulti,
		}[kind]
		if rest == "" {
			return attachPoint{mech: m, needsOptions: true}, true
		}
		i := strings.LastIndexByte(rest, ':')
		if i <= 0 || i == len(rest)-1 {
			return attachPoint{mech: m, needsOptions: true}, true
		}
		return attachPoint{mech: m, target: rest, path: rest[:i], symbol: rest[i+1:]}, true
	case "tracepoint", "tp":
		g, n, ok := strings.Cut(rest, "/")
		if !ok || g == "" || n == "" {
			return attachPoint{}, false
		}
		return attachPoint{mech: probe.Tracepoint, target: g + "/" + n, group: g, name: n}, true
	case "raw_tracepoint", "raw_tp":
		if rest == "" {
			return attachPoint{}, false
		}
		return attachPoint{mech: probe.RawTracepoint, target: rest, name: rest}, true
	case "tp_btf":
		if rest == "" {
			return attachPoint{}, false
		}
		return attachPoint{mech: probe.RawTracepoint, target: rest, name: rest, tpBTF: true}, true
	case "perf_event":
		return attachPoint{mech: probe.PerfEventHardware, needsOptions: true}, true
	}
	return attachPoint{}, false
}

// alternativeKey names the family of mechanisms that can stand in for one
// another on the same target; programs sharing a key are alternatives.
func alternativeKey(ap attachPoint) string {
	switch ap.mech {
	case probe.Fentry, probe.Kprobe, probe.KprobeMulti:
		return "entry:" + ap.target
	case probe.Fexit, probe.Kretprobe, probe.KretprobeMulti:
		return "exit:" + ap.target
	}
	return ""
}

// preference orders mechanisms within a group: the first is requested, the
// others are offered to the planner as alternatives.
var preference = map[probe.Mechanism]int{
	probe.Fentry: 0, probe.Fexit: 1, probe.Kprobe: 2, probe.Kretprobe: 3,
	probe.KprobeMulti: 4, probe.KretprobeMulti: 5,
	probe.RawTracepoint: 6, probe.Tracepoint: 7,
	probe.Uprobe: 8, probe.Uretprobe: 9, probe.UprobeMulti: 10,
	probe.PerfEventHardware: 11, probe.PerfEventSoftware: 12,
}

// progInfo is one program of a spec, analysed.
type progInfo struct {
	name     string
	section  string
	ap       attachPoint
	attaches bool
	scan     elfscan.Result
}

// group is a set of alternative programs; one is chosen.
type group struct {
	key      string
	members  []*progInfo // sorted by preference
	explicit bool
}

// analyse parses every program of spec and forms groups: explicit groups
// first, then automatic ones from section names. Programs that do not
// attach form no group.
func analyse(spec *ebpf.CollectionSpec, explicit [][]string, opts *CollectionOptions) ([]*progInfo, []*group, error) {
	names := make([]string, 0, len(spec.Programs))
	for n := range spec.Programs {
		names = append(names, n)
	}
	sort.Strings(names)
	infos := map[string]*progInfo{}
	var all []*progInfo
	for _, n := range names {
		ps := spec.Programs[n]
		pi := &progInfo{name: n, section: ps.SectionName}
		pi.ap, pi.attaches = parseSection(ps.SectionName)
		if pi.attaches && pi.ap.needsOptions {
			if err := opts.fillTarget(pi); err != nil {
				return nil, nil, err
			}
		}
		if pi.attaches {
			pi.scan = elfscan.Program(ps, spec.Programs)
		}
		infos[n] = pi
		all = append(all, pi)
	}

	inGroup := map[string]bool{}
	var groups []*group
	for i, names := range explicit {
		if len(names) == 0 {
			return nil, nil, fmt.Errorf("group %d is empty: %w", i, errInvalidInput)
		}
		g := &group{explicit: true, key: strings.Join(names, "|")}
		for _, n := range names {
			pi, ok := infos[n]
			switch {
			case !ok:
				return nil, nil, fmt.Errorf("group %d names program %q, which is not in the spec: %w", i, n, errInvalidInput)
			case !pi.attaches:
				return nil, nil, fmt.Errorf("group %d names program %q, whose section %q has no attach point: %w", i, n, pi.section, errInvalidInput)
			case inGroup[n]:
				return nil, nil, fmt.Errorf("program %q is in two groups: %w", n, errInvalidInput)
			}
			inGroup[n] = true
			g.members = append(g.members, pi)
		}
		groups = append(groups, g)
	}

	auto := map[string]*group{}
	var autoOrder []string
	for _, pi := range all {
		if !pi.attaches || inGroup[pi.name] {
			continue
		}
		key := alternativeKey(pi.ap)
		if key == "" {
			key = "program:" + pi.name
		}
		g, ok := auto[key]
		if !ok {
			g = &group{key: key}
			auto[key] = g
			autoOrder = append(autoOrder, key)
		}
		g.members = append(g.members, pi)
	}
	for _, key := range autoOrder {
		g := auto[key]
		// Programs with the same mechanism on the same target are not
		// alternatives but companions: attach each on its own.
		seen := map[probe.Mechanism]bool{}
		dup := false
		for _, m := range g.members {
			dup = dup || seen[m.ap.mech]
			seen[m.ap.mech] = true
		}
		if dup {
			for _, m := range g.members {
				groups = append(groups, &group{key: "program:" + m.name, members: []*progInfo{m}})
			}
			continue
		}
		groups = append(groups, g)
	}
	for _, g := range groups {
		sort.SliceStable(g.members, func(i, j int) bool {
			return preference[g.members[i].ap.mech] < preference[g.members[j].ap.mech]
		})
	}
	return all, groups, nil
}

// readsUserMemory is true when any member may read user memory.
func (g *group) readsUserMemory() bool {
	for _, m := range g.members {
		if m.scan.ReadsUserMemory {
			return true
		}
	}
	return false
}

// member returns the program of g that attaches with m. A hardware perf
// program also serves the software event.
func (g *group) member(m probe.Mechanism) *progInfo {
	for _, pi := range g.members {
		if pi.ap.mech == m {
			return pi
		}
	}
	if m == probe.PerfEventSoftware || m == probe.PerfEventHardware {
		for _, pi := range g.members {
			if pi.ap.mech == probe.PerfEventHardware || pi.ap.mech == probe.PerfEventSoftware {
				return pi
			}
		}
	}
	return nil
}
