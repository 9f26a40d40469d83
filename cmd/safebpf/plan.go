package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/loader"
	"github.com/safebpf/safebpf/probe"
)

// planOpts are plan's flags.
type planOpts struct {
	out        outputOpts
	pol        policyOpts
	kernelFile string
	hostRoot   string
}

func (a *app) planCommand() *cobra.Command {
	o := &planOpts{}
	c := &cobra.Command{
		Use:   "plan OBJECT.o",
		Short: "what the loader would do with an ELF object",
		Long: `Shows what the loader would do with a BPF ELF object, without loading
anything: per program, its attach point, the alternatives found (programs
targeting the same function with another mechanism), whether it reads user
memory (the JSON form also: takes user stacks, makes tail calls), the
mechanism chosen, its settings, the hazards and any refusal.
The kernel is this machine's (probed as 'safebpf probe' does) or the one in
--kernel, a kernel captured with 'safebpf probe --json'. Plain "uprobe"
sections are planned with a stand-in target and "perf_event" sections as a
99 Hz hardware event. Exits 1 when a program is refused.

What the program reads and which variants it has come from the object's
code; the traced processes are assumed to possibly run under seccomp, as
the loader assumes unless the agent says otherwise per uprobe.`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErr("want exactly one OBJECT.o, got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error { return a.plan(c, o, args[0]) },
	}
	c.Flags().StringVar(&o.kernelFile, "kernel", "", "plan for this kernel fixture instead of probing")
	_ = c.MarkFlagFilename("kernel", "json")
	addPolicy(c, &o.pol, true)
	addHostRoot(c, &o.hostRoot)
	addOutput(c, &o.out)
	return c
}

// planReport is the JSON form of `safebpf plan`.
type planReport struct {
	SchemaVersion int                  `json:"schema_version"`
	Summary       summary              `json:"summary"`
	Assumption    assumption           `json:"assumption"`
	Policy        policyJSON           `json:"policy"`
	Object        string               `json:"object"`
	Kernel        *probe.Kernel        `json:"kernel"`
	Programs      []loader.ProgramPlan `json:"programs"`
}

func (a *app) plan(c *cobra.Command, o *planOpts, object string) error {
	p, asJSON, err := a.output(&o.out)
	if err != nil {
		return err
	}
	// ReadObject, not cilium/ebpf directly: it reads only a regular file
	// of a bounded size and refuses objects whose headers claim more
	// memory than the file holds (a .bss bomb).
	spec, err := loader.ReadObject(object)
	if err != nil {
		return usageErr("%w", err)
	}
	rp, err := a.resolvePolicy(c, &o.pol)
	if err != nil {
		return err
	}
	var k *probe.Kernel
	if o.kernelFile != "" {
		if c.Flags().Changed("host-root") {
			return usageErr("--kernel and --host-root exclude each other: the fixture is the whole kernel")
		}
		if k, err = readKernelFile(o.kernelFile); err != nil {
			return usageErr("--kernel: %w", err)
		}
	} else {
		hr, err := resolveHostRoot(o.hostRoot)
		if err != nil {
			return err
		}
		if k, err = a.detect(context.Background(), hr.Value, rp.cat.Facts()); err != nil {
			return failed(fmt.Errorf("detect kernel: %w", err))
		}
	}
	opts := &loader.Options{Policy: rp.file, Force: rp.eff.Force, Mode: hazards.Mode(o.pol.mode)}
	plans, err := loader.PlanSpec(spec, k, opts)
	if err != nil {
		return usageErr("plan %s: %w", object, err)
	}
	if plans == nil {
		plans = []loader.ProgramPlan{}
	}
	as := assumption{ReadsUserMemory: true, UserStacks: true, TailCalls: true, Alternatives: true, Seccomp: true, fromObject: true}
	as.finish()
	var ps []planned
	seen := map[string]bool{}
	for _, pl := range plans {
		if pl.Decision == nil || seen[pl.Group] {
			continue
		}
		seen[pl.Group] = true
		var perr error
		if pl.Refusal != "" {
			perr = &fallback.RefusedError{Requested: pl.Decision.Requested, Why: pl.Refusal, Blockers: blockersOf(*pl.Decision)}
		}
		ps = append(ps, planned{mech: pl.Decision.Requested, findings: pl.Decision.Findings, d: *pl.Decision, err: perr})
	}
	sum := summarize(ps, "to "+object)
	var status error
	if anyRefused(ps) {
		status = errRefusals
	}
	if asJSON {
		r := planReport{SchemaVersion: schemaVersion, Summary: sum, Assumption: as, Policy: rp.json(), Object: object, Kernel: k, Programs: plans}
		if err := writeJSON(a.stdout, r); err != nil {
			return err
		}
		return status
	}
	writeHead(p, sum, as)
	writeKernel(p, k)
	p.blank()
	p.line("Programs of %s", object)
	header := []string{"PROGRAM", "MECHANISM", "TARGET", "USER MEM", "DECISION"}
	if p.wide {
		header = []string{"PROGRAM", "SECTION", "MECHANISM", "TARGET", "ALTERNATIVES", "USER MEM", "CHOSEN", "DECISION"}
	}
	t := &table{header: header, flex: []bool{true, false, true, false, true}, wrap: true}
	if p.wide {
		t.flex = nil
	}
	for _, pl := range plans {
		mech, target, dec := "-", "-", cell{"not attached", ""}
		if pl.Attaches {
			mech, target = string(pl.Mechanism), pl.Target
			switch {
			case pl.Decision == nil:
				dec = plain("")
			case pl.Chosen || pl.Refusal != "":
				var perr error
				if pl.Refusal != "" {
					perr = &fallback.RefusedError{Blockers: blockersOf(*pl.Decision)}
				}
				dec = decisionCell(*pl.Decision, perr)
			default:
				dec = plain("not chosen")
			}
		}
		if p.wide {
			alts := strings.Join(pl.Alternatives, ",")
			if alts == "" {
				alts = "-"
			}
			t.add(plain(pl.Program), plain(pl.Section), plain(mech), plain(target), plain(alts), plain(yesNo(pl.ReadsUserMemory)), plain(yesNo(pl.Chosen)), dec)
		} else {
			t.add(plain(pl.Program), plain(mech), plain(target), plain(yesNo(pl.ReadsUserMemory)), dec)
		}
	}
	t.write(p, "  ")
	writeHazards(p, ps, countFindings(ps))
	seen = map[string]bool{}
	for _, pl := range plans {
		if pl.Decision == nil || seen[pl.Group] {
			continue
		}
		seen[pl.Group] = true
		if pl.Decision.Action == fallback.Allow && len(pl.Decision.Steps) == 0 && !p.wide {
			continue
		}
		p.blank()
		p.line("Group %s", pl.Group)
		var perr error
		if pl.Refusal != "" {
			perr = errors.New(pl.Refusal)
		}
		writeDecisionDetail(p, *pl.Decision, perr)
	}
	if p.err != nil {
		return p.err
	}
	return status
}

// blockersOf rebuilds which hazards blocked a refused decision from its
// steps (PlanSpec reports the refusal as text).
func blockersOf(d fallback.Decision) []fallback.Blocker {
	var bs []fallback.Blocker
	for _, s := range d.Steps {
		if s.Hazard != "" && s.Action == fallback.Refuse {
			bs = append(bs, fallback.Blocker{Hazard: s.Hazard, Mechanism: s.From})
		}
	}
	return bs
}
