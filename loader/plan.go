package loader

import (
	"fmt"
	"slices"
	"sort"

	"github.com/cilium/ebpf"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/probe"
)

// ProgramPlan describes one program of a CollectionSpec: where it attaches,
// which programs are its alternatives, and what the planner decided.
type ProgramPlan struct {
	// Program is the program's name in the spec; Section its ELF section.
	Program string `json:"program"`
	Section string `json:"section"`
	// Attaches is false for programs LoadAndAttach loads but never
	// attaches (socket filters, XDP, struct_ops, CollectionOptions.Manual,
	// ...); Note then says why and the fields below are empty.
	Attaches bool `json:"attaches"`
	// Mechanism and Target are what the program is built for and where
	// (the section, or ProgramSpec.AttachTo when the caller retargeted
	// it); Targets counts the functions or symbols a glob matched.
	Mechanism probe.Mechanism `json:"mechanism,omitempty"`
	Target    string          `json:"target,omitempty"`
	Targets   int             `json:"targets,omitempty"`
	// Group names the group of alternatives ("entry:do_unlinkat",
	// "call:vfs_read" for an fexit against a kprobe+kretprobe pair, the
	// joined program names for an explicit group, "program:NAME" for a
	// program on its own).
	Group string `json:"group,omitempty"`
	// Alternatives lists the other programs of the group.
	Alternatives []string `json:"alternatives,omitempty"`
	// Optional is set when the program's group may be skipped.
	Optional bool `json:"optional,omitempty"`
	// ReadsUserMemory, ReadsUserStacks and TailCalls are the instruction
	// scan's answers (unknown counts as true); UserMemoryReasons says what
	// it found.
	ReadsUserMemory   bool     `json:"reads_user_memory"`
	ReadsUserStacks   bool     `json:"reads_user_stacks"`
	TailCalls         bool     `json:"tail_calls"`
	UserMemoryReasons []string `json:"user_memory_reasons,omitempty"`
	// Chosen is true when this program is one its group attaches.
	Chosen bool `json:"chosen"`
	// Decision is the planner's decision for this program when it is
	// chosen, for the alternative it belongs to when that was refused,
	// and otherwise for the group; nil for programs that do not attach.
	Decision *fallback.Decision `json:"decision,omitempty"`
	// Refusal is the refusal's message when this program's alternative
	// was refused or its target is missing.
	Refusal string `json:"refusal,omitempty"`
	// Error is the attach failure of a chosen optional program, which was
	// then skipped.
	Error string `json:"error,omitempty"`
	// Note says why a program is not attached (not a tracing program,
	// Manual, or an optional program skipped before planning).
	Note string `json:"note,omitempty"`
}

// addPlans records the plan of every program.
func (c *Collection) addPlans(an *analysis, plans []*groupPlan) {
	for _, gp := range plans {
		g := gp.g
		var names []string
		for _, p := range g.programs() {
			if !slices.Contains(names, p.name) {
				names = append(names, p.name)
			}
		}
		var groupDecision *fallback.Decision
		refusal := ""
		if gp.chosen != nil {
			d := gp.decisions[gp.chosen.progs[0]]
			groupDecision = &d
		} else if tr, ok := gp.refusal(); ok {
			d := tr.d
			groupDecision = &d
			refusal = tr.err.Error()
		}
		seen := map[string]bool{}
		for _, alt := range g.alts {
			for _, p := range alt.progs {
				orig := p
				if p.variantOf != nil {
					orig = p.variantOf
				}
				if seen[orig.name] && p.variantOf == nil {
					continue
				}
				pl := ProgramPlan{
					Program:           orig.name,
					Section:           orig.section(),
					Attaches:          true,
					Mechanism:         orig.mech(),
					Target:            orig.class.ap.target,
					Targets:           len(orig.class.ap.symbols),
					Group:             g.key,
					Optional:          g.optional,
					ReadsUserMemory:   orig.scan.ReadsUserMemory,
					ReadsUserStacks:   orig.scan.ReadsUserStacks,
					TailCalls:         orig.scan.TailCalls,
					UserMemoryReasons: orig.scan.Reasons,
					Decision:          groupDecision,
					Refusal:           refusal,
				}
				for _, n := range names {
					if n != orig.name {
						pl.Alternatives = append(pl.Alternatives, n)
					}
				}
				if gp.chosen == alt {
					d := gp.decisions[p]
					pl.Chosen, pl.Decision = true, &d
				} else {
					for _, tr := range gp.tried {
						if tr.alt == alt {
							d := tr.d
							pl.Decision, pl.Refusal = &d, tr.err.Error()
						}
					}
				}
				if seen[orig.name] {
					// The variant of a program already listed: it
					// replaces the plan when it is the one chosen.
					if pl.Chosen {
						c.replacePlan(pl)
					}
					continue
				}
				seen[orig.name] = true
				c.Plans = append(c.Plans, pl)
			}
		}
	}
	for _, pi := range an.infos {
		if err, ok := an.skipped[pi]; ok {
			c.Plans = append(c.Plans, ProgramPlan{Program: pi.name, Section: pi.section(), Attaches: true, Optional: true,
				Mechanism: pi.mech(), Note: "optional program skipped: " + err.Error()})
			continue
		}
		if !pi.attaches() {
			c.Plans = append(c.Plans, ProgramPlan{Program: pi.name, Section: pi.section(), Note: pi.class.why})
		}
	}
	sort.SliceStable(c.Plans, func(i, j int) bool { return c.Plans[i].Program < c.Plans[j].Program })
	c.collectDecisions()
}

// collectDecisions lists, from the plans, the decision of every chosen
// program, then of every refused or skipped group.
func (c *Collection) collectDecisions() {
	c.Decisions = nil
	refusedGroups := map[string]bool{}
	for _, p := range c.Plans {
		switch {
		case p.Chosen && p.Decision != nil:
			c.Decisions = append(c.Decisions, *p.Decision)
		case p.Decision != nil && p.Refusal != "" && !refusedGroups[p.Group] && !groupChosen(c.Plans, p.Group):
			refusedGroups[p.Group] = true
			c.Decisions = append(c.Decisions, *p.Decision)
		}
	}
}

// setDecision replaces the decision of a chosen program with the one its
// attach carried out (a refused multi link fell back, optional targets
// were left out).
func (c *Collection) setDecision(program string, d fallback.Decision) {
	for i := range c.Plans {
		if c.Plans[i].Program == program && c.Plans[i].Chosen {
			c.Plans[i].Decision = &d
		}
	}
	c.collectDecisions()
}

func equalSteps(a, b []fallback.Step) bool {
	return slices.EqualFunc(a, b, func(x, y fallback.Step) bool { return x == y })
}

func groupChosen(plans []ProgramPlan, group string) bool {
	return slices.ContainsFunc(plans, func(p ProgramPlan) bool { return p.Group == group && p.Chosen })
}

func (c *Collection) replacePlan(pl ProgramPlan) {
	for i := range c.Plans {
		if c.Plans[i].Program == pl.Program {
			c.Plans[i] = pl
			return
		}
	}
}

// markError records the attach failure of a skipped optional program.
func (c *Collection) markError(program string, err error) {
	for i := range c.Plans {
		if c.Plans[i].Program == program {
			c.Plans[i].Error = err.Error()
		}
	}
}

// PlanSpec analyses spec and plans every group of alternatives for kernel
// k without loading anything: the function behind `safebpf plan OBJECT.o`.
// opts supplies the catalog, policy, mode and force list (Kernel,
// providers and Logger are ignored); nil means defaults. Nothing about
// the machine is read: targets are taken as they are written (a ksyscall
// section names the wrapper a kernel with syscall wrappers has, a glob
// counts as one target). Sections that carry no target are planned with a
// stand-in: uprobes without a binary on "?", "perf_event" sections as a
// 99 Hz CPU-cycles event (the case hazards concern), and other tracing
// sections without a target are listed as attached by the agent itself.
// Refusals are reported in the plans, not as an error; the error is for
// invalid options and sections safebpf cannot attach as written.
func PlanSpec(spec *ebpf.CollectionSpec, k *probe.Kernel, opts *Options) ([]ProgramPlan, error) {
	if spec == nil {
		return nil, fmt.Errorf("plan spec: nil spec: %w", errInvalidInput)
	}
	in, err := opts.InEffect()
	if err != nil {
		return nil, fmt.Errorf("plan spec: %w", err)
	}
	arch := ""
	if k != nil {
		arch = k.Arch
	}
	copts := placeholderTargets(spec)
	an, err := analyse(spec, copts, offlineResolver{arch: arch})
	if err != nil {
		return nil, fmt.Errorf("plan spec: %w", err)
	}
	c := &Collection{}
	pl := newPlanner(newKernelView(k, in.Catalog, nil), in.Catalog, &in.Policy)
	plans := make([]*groupPlan, len(an.groups))
	for i, g := range an.groups {
		plans[i] = planGroup(pl, g, copts)
	}
	c.addPlans(an, plans)
	return c.Plans, nil
}

// placeholderTargets gives sections without a target a stand-in so that
// PlanSpec can still plan them.
func placeholderTargets(spec *ebpf.CollectionSpec) *CollectionOptions {
	o := &CollectionOptions{Uprobes: map[string]UprobeTarget{}, PerfEvents: map[string]PerfEventOptions{}}
	for n, ps := range spec.Programs {
		c, err := classify(ps)
		if err != nil || c.use != useAttach || c.ap.needsTarget == "" {
			continue
		}
		switch c.ap.mech {
		case probe.PerfEventHardware:
			// The section does not say; plan the riskier hardware event.
			o.PerfEvents[n] = PerfEventOptions{Hardware: true, Frequency: 99}
		case probe.Uprobe, probe.Uretprobe, probe.UprobeMulti, probe.UretprobeMulti:
			t := UprobeTarget{Binary: "?"}
			if c.ap.symbol == "" {
				t.Symbol = "?"
			}
			o.Uprobes[n] = t
		default:
			o.Manual = append(o.Manual, n)
		}
	}
	return o
}
