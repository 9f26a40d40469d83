package loader

import (
	"fmt"
	"sort"

	"github.com/cilium/ebpf"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/probe"
)

// ProgramPlan describes one program of a CollectionSpec: where it attaches,
// which programs are its alternatives, and what the planner decided.
type ProgramPlan struct {
	// Program is the program's name in the spec; Section its ELF section.
	Program string `json:"program"`
	Section string `json:"section"`
	// Attaches is false for programs with no attach point in their section
	// name (loaded, never attached); the fields below are then empty.
	Attaches bool `json:"attaches"`
	// Mechanism and Target are what the section asks for.
	Mechanism probe.Mechanism `json:"mechanism,omitempty"`
	Target    string          `json:"target,omitempty"`
	// Group names the group of alternatives ("entry:do_unlinkat" for an
	// automatic group, the joined program names for an explicit one).
	Group string `json:"group,omitempty"`
	// Alternatives lists the other programs of the group.
	Alternatives []string `json:"alternatives,omitempty"`
	// ReadsUserMemory is the instruction scan's answer (unknown counts as
	// true); UserMemoryReasons says what it found.
	ReadsUserMemory   bool     `json:"reads_user_memory"`
	UserMemoryReasons []string `json:"user_memory_reasons,omitempty"`
	// Chosen is true when this program is the one its group attaches.
	Chosen bool `json:"chosen"`
	// Decision is the planner's decision for the group (shared by its
	// members); nil for programs that do not attach.
	Decision *fallback.Decision `json:"decision,omitempty"`
	// Refusal is the refusal's message when the group was refused.
	Refusal string `json:"refusal,omitempty"`

	isPrimary bool
}

// PlanSpec analyses spec and plans every group of alternatives for kernel
// k without loading anything: the function behind `safebpf plan OBJECT.o`.
// opts supplies the catalog, policy, mode and force list (Kernel,
// providers and Logger are ignored); nil means defaults. Sections that
// carry no target are planned with a stand-in: plain "uprobe" sections with
// target "?:?", "perf_event" sections as a 99 Hz hardware event (the case
// hazards concern). Refusals are reported in the plans, not as an error;
// the error is for invalid options.
func PlanSpec(spec *ebpf.CollectionSpec, k *probe.Kernel, opts *Options) ([]ProgramPlan, error) {
	if spec == nil {
		return nil, fmt.Errorf("plan spec: nil spec: %w", errInvalidInput)
	}
	if opts == nil {
		opts = &Options{}
	}
	cat := opts.Catalog
	if cat == nil {
		cat = hazards.Builtin()
	}
	pol, err := effectivePolicy(cat, opts.Policy, opts.Mode, opts.Force)
	if err != nil {
		return nil, err
	}
	copts := placeholderTargets(spec)
	infos, groups, err := analyse(spec, groupsOf(copts), copts)
	if err != nil {
		return nil, fmt.Errorf("plan spec: %w", err)
	}
	l := &Loader{kernel: k, catalog: cat, policy: pol}
	c := &Collection{}
	for _, g := range groups {
		req := l.request(g, copts)
		d, err := planWith(k, cat, req, &pol)
		var chosen *progInfo
		if err == nil {
			chosen = l.chosenMember(g, d)
		}
		c.addPlans(g, d, chosen, err)
	}
	c.addUnattached(infos)
	return c.Plans, nil
}

// placeholderTargets gives sections without a target a stand-in so that
// PlanSpec can still plan them.
func placeholderTargets(spec *ebpf.CollectionSpec) *CollectionOptions {
	o := &CollectionOptions{Uprobes: map[string]UprobeTarget{}, PerfEvents: map[string]PerfEventOptions{}}
	for n, ps := range spec.Programs {
		ap, ok := parseSection(ps.SectionName)
		if !ok || !ap.needsOptions {
			continue
		}
		switch ap.mech {
		case probe.PerfEventHardware:
			// The section does not say; plan the riskier hardware event.
			o.PerfEvents[n] = PerfEventOptions{Hardware: true, Frequency: 99}
		default:
			o.Uprobes[n] = UprobeTarget{Binary: "?", Symbol: "?"}
		}
	}
	return o
}

// addPlans records the plan of every member of g.
func (c *Collection) addPlans(g *group, d fallback.Decision, chosen *progInfo, err error) {
	for i, m := range g.members {
		dd := d
		p := ProgramPlan{
			Program:           m.name,
			Section:           m.section,
			Attaches:          true,
			Mechanism:         m.ap.mech,
			Target:            m.ap.target,
			Group:             g.key,
			ReadsUserMemory:   m.scan.ReadsUserMemory,
			UserMemoryReasons: m.scan.Reasons,
			Chosen:            m == chosen,
			Decision:          &dd,
			isPrimary:         i == 0,
		}
		if err != nil {
			p.Refusal = err.Error()
		}
		for _, o := range g.members {
			if o != m {
				p.Alternatives = append(p.Alternatives, o.name)
			}
		}
		c.Plans = append(c.Plans, p)
	}
}

// addUnattached records programs without an attach point and sorts Plans
// by program name.
func (c *Collection) addUnattached(infos []*progInfo) {
	for _, pi := range infos {
		if !pi.attaches {
			c.Plans = append(c.Plans, ProgramPlan{Program: pi.name, Section: pi.section})
		}
	}
	sort.SliceStable(c.Plans, func(i, j int) bool { return c.Plans[i].Program < c.Plans[j].Program })
}
