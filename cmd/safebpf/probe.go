package main

import (
	"context"
	"fmt"

	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/probe"
)

const probeUsage = `usage: safebpf probe [--json] [--policy FILE]

Detects this machine's kernel (release, trusted upstream version and its
source, distro, arch, CPUs, config, evidence symbols), probes every
mechanism for real (root, or CAP_BPF+CAP_PERFMON, is needed to say
"available"; otherwise the answer is undecided), and evaluates every hazard
for each mechanism it concerns, assuming the worst about the program: it
reads user memory and the traced process may run under seccomp.

Flags:
  --json         print one JSON object: {"kernel": {...}, "mechanisms":
                 {name: {"available": true|false|null, "reason": "..."}},
                 "findings": [{"id", "mechanism", "verdict", "action", "reason"}]}
  --policy FILE  apply a policy file (overrides, assertions, rules) first`

// probeReport is the JSON form of `safebpf probe`.
type probeReport struct {
	Kernel     *probe.Kernel          `json:"kernel"`
	Mechanisms map[string]supportJSON `json:"mechanisms"`
	Findings   []findingJSON          `json:"findings"`
}

func (c *cli) probe(args []string) int {
	fs := newFlagSet("probe")
	asJSON := fs.Bool("json", false, "")
	policyFile := fs.String("policy", "", "")
	pos, code, ok := c.parse(fs, probeUsage, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return c.usageErr("probe", fmt.Errorf("unexpected argument %q", pos[0]))
	}
	cat, _, code, ok := c.catalog("probe", *policyFile)
	if !ok {
		return code
	}
	k, err := c.detect(context.Background())
	if err != nil {
		c.errLine("probe", fmt.Errorf("detect kernel: %w", err))
		return exitRefused
	}
	findings := allFindings(cat, k, true, true)
	if *asJSON {
		if err := writeJSON(c.stdout, probeReport{Kernel: k, Mechanisms: mechanismsJSON(k), Findings: findingsJSON(findings)}); err != nil {
			c.errLine("probe", err)
			return exitRefused
		}
		return exitOK
	}
	writeKernel(c.stdout, k)
	writeMechanisms(c.stdout, c.color, k)
	writeFindings(c.stdout, c.color, "Hazards (assuming the program reads user memory and the target may run under seccomp)", findings)
	return exitOK
}

// allFindings evaluates every mechanism, in the stable mechanism order.
func allFindings(cat *hazards.Catalog, k *probe.Kernel, readsUserMemory, seccomp bool) []hazards.Finding {
	var out []hazards.Finding
	for _, m := range probe.Mechanisms() {
		out = append(out, cat.Evaluate(k, hazards.Attachment{Mechanism: m, ReadsUserMemory: readsUserMemory, Seccomp: seccomp})...)
	}
	return out
}

// catalog returns the built-in catalog with the policy file applied (when
// given), and the policy. Errors are input errors (exit 2).
func (c *cli) catalog(cmd, policyFile string) (*hazards.Catalog, *hazards.Policy, int, bool) {
	cat := hazards.Builtin()
	if policyFile == "" {
		return cat, nil, 0, true
	}
	pol, applied, err := loadPolicy(policyFile)
	if err != nil {
		return nil, nil, c.usageErr(cmd, err), false
	}
	return applied, pol, 0, true
}

// loadPolicy is the code behind both `policy validate` and `--policy`:
// parse and check the file, then apply it to the built-in catalog.
func loadPolicy(path string) (*hazards.Policy, *hazards.Catalog, error) {
	pol, err := hazards.LoadPolicy(path)
	if err != nil {
		return nil, nil, err
	}
	cat, err := hazards.Builtin().WithPolicy(pol)
	if err != nil {
		return nil, nil, err
	}
	return pol, cat, nil
}
