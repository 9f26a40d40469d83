package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/loader"
	"github.com/safebpf/safebpf/probe"
)

const planUsage = `usage: safebpf plan OBJECT.o [--kernel FIXTURE.json] [--json] [--policy FILE] [--force IDS] [--mode MODE]

Shows what the loader would do with a BPF ELF object, without loading
anything: per program, its attach point, the alternatives found (programs
targeting the same function with another mechanism), whether it reads user
memory, the mechanism chosen, its settings, the hazards and any refusal.
The kernel is this machine's (probed as 'safebpf probe' does) or the one in
FIXTURE.json, a kernel captured with 'safebpf probe --json' (its "kernel"
object, or the whole report). Plain "uprobe" sections are planned with a
stand-in target and "perf_event" sections as a 99 Hz hardware event.
Exits 1 when a program is refused.

Flags:
  --kernel FILE   plan for this kernel fixture instead of probing
  --json          print the plans as JSON
  --policy FILE   apply a policy file
  --force IDS     comma-separated hazard IDs to force ("all" forces all)
  --mode MODE     enforce, warn or audit`

func (c *cli) plan(args []string) int {
	fs := newFlagSet("plan")
	kernelFile := fs.String("kernel", "", "")
	asJSON := fs.Bool("json", false, "")
	policyFile := fs.String("policy", "", "")
	force := fs.String("force", "", "")
	mode := fs.String("mode", "", "")
	pos, code, ok := c.parse(fs, planUsage, args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return c.usageErr("plan", fmt.Errorf("want exactly one OBJECT.o, got %d arguments", len(pos)))
	}
	spec, err := ebpf.LoadCollectionSpec(pos[0])
	if err != nil {
		return c.usageErr("plan", fmt.Errorf("read object: %w", err))
	}
	opts := &loader.Options{}
	if *policyFile != "" {
		pol, _, err := loadPolicy(*policyFile)
		if err != nil {
			return c.usageErr("plan", err)
		}
		opts.Policy = pol
	}
	if *force != "" {
		for _, id := range strings.Split(*force, ",") {
			if id = strings.TrimSpace(id); id != "" {
				opts.Force = append(opts.Force, hazards.ID(id))
			}
		}
	}
	if *mode != "" {
		if !hazards.Mode(*mode).Valid() {
			return c.usageErr("plan", fmt.Errorf("--mode %q: want enforce, warn or audit", *mode))
		}
		opts.Mode = hazards.Mode(*mode)
	}
	var k *probe.Kernel
	if *kernelFile != "" {
		if k, err = readKernelFixture(*kernelFile); err != nil {
			return c.usageErr("plan", err)
		}
	} else if k, err = c.detect(context.Background()); err != nil {
		c.errLine("plan", fmt.Errorf("detect kernel: %w", err))
		return exitRefused
	}
	plans, err := loader.PlanSpec(spec, k, opts)
	if err != nil {
		return c.usageErr("plan", err)
	}
	status := exitOK
	for _, p := range plans {
		if p.Refusal != "" {
			status = exitRefused
		}
	}
	if *asJSON {
		out := struct {
			Object string               `json:"object"`
			Kernel *probe.Kernel        `json:"kernel"`
			Plans  []loader.ProgramPlan `json:"programs"`
		}{pos[0], k, plans}
		if out.Plans == nil {
			out.Plans = []loader.ProgramPlan{}
		}
		if err := writeJSON(c.stdout, out); err != nil {
			c.errLine("plan", err)
			return exitRefused
		}
		return status
	}
	writeKernel(c.stdout, k)
	fmt.Fprintf(c.stdout, "\nPrograms of %s\n", pos[0])
	t := &table{header: []string{"PROGRAM", "SECTION", "MECHANISM", "TARGET", "ALTERNATIVES", "USER MEM", "CHOSEN", "ACTION"}}
	for _, p := range plans {
		if !p.Attaches {
			t.add(plain(p.Program), plain(p.Section), plain("-"), plain("-"), plain("-"), plain(yesNo(p.ReadsUserMemory)), plain("-"), plain("not attached"))
			continue
		}
		chosen, action := cell{"no", ""}, plain("")
		if p.Chosen {
			chosen = cell{"yes", green}
		}
		if p.Decision != nil {
			action = actionCell(p.Decision.Action)
		}
		alts := strings.Join(p.Alternatives, ",")
		if alts == "" {
			alts = "-"
		}
		t.add(plain(p.Program), plain(p.Section), plain(string(p.Mechanism)), plain(p.Target), plain(alts), plain(yesNo(p.ReadsUserMemory)), chosen, action)
	}
	t.write(c.stdout, c.color, "  ")
	seen := map[string]bool{}
	for _, p := range plans {
		if p.Decision == nil || seen[p.Group] {
			continue
		}
		seen[p.Group] = true
		fmt.Fprintf(c.stdout, "\nGroup %s\n", p.Group)
		var err error
		if p.Refusal != "" {
			err = fmt.Errorf("%s", p.Refusal)
		}
		writeDecision(c.stdout, c.color, *p.Decision, err)
	}
	return status
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// readKernelFixture reads a probe.Kernel from JSON: either the kernel
// object itself or a whole `safebpf probe --json` report.
func readKernelFixture(path string) (*probe.Kernel, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read kernel fixture: %w", err)
	}
	var wrapped struct {
		Kernel *probe.Kernel `json:"kernel"`
	}
	if err := json.Unmarshal(b, &wrapped); err == nil && wrapped.Kernel != nil {
		return wrapped.Kernel, nil
	}
	var k probe.Kernel
	if err := json.Unmarshal(b, &k); err != nil {
		return nil, fmt.Errorf("read kernel fixture %s: %w", path, err)
	}
	if k.Release == "" {
		return nil, fmt.Errorf("read kernel fixture %s: no \"release\": not a kernel captured with 'safebpf probe --json'", path)
	}
	return &k, nil
}
