package main

import (
	"fmt"
	"strings"
)

const policyUsage = `usage: safebpf policy validate FILE

Parses and checks a policy file (YAML or JSON, apiVersion safebpf/v1) with
the same code 'check --policy' uses: unknown keys, wrong types, unknown
hazard IDs, bad version constraints and duplicate rule IDs are errors naming
the file, line and key; as root, a file writable by group or others is
refused. Then applies it to the built-in catalog. Exits 0 when valid, 1 when
invalid, 2 on usage errors.`

func (c *cli) policy(args []string) int {
	fs := newFlagSet("policy")
	pos, code, ok := c.parse(fs, policyUsage, args)
	if !ok {
		return code
	}
	if len(pos) == 0 || pos[0] != "validate" {
		return c.usageErr("policy", fmt.Errorf("want 'policy validate FILE'"))
	}
	if len(pos) != 2 {
		return c.usageErr("policy validate", fmt.Errorf("want exactly one FILE, got %d", len(pos)-1))
	}
	path := pos[1]
	pol, cat, err := loadPolicy(path)
	if err != nil {
		c.errLine("policy validate", err)
		return exitRefused
	}
	mode := pol.EffectiveMode()
	var force []string
	for _, id := range pol.Force {
		force = append(force, string(id))
	}
	forced := "none"
	if len(force) > 0 {
		forced = strings.Join(force, ", ")
	}
	fmt.Fprintf(c.stdout, "%s: valid (mode %s; force %s; %d overrides, %d kernel assertions, %d rules; catalog now has %d hazards)\n",
		path, mode, forced, len(pol.Hazards), len(pol.Kernels), len(pol.Rules), len(cat.Hazards()))
	return exitOK
}
