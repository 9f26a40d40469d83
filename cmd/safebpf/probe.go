package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/loader"
	"github.com/safebpf/safebpf/probe"
)

// probeOpts are probe's flags.
type probeOpts struct {
	out      outputOpts
	as       assumption
	pol      policyOpts
	hostRoot string
}

func addHostRoot(c *cobra.Command, hostRoot *string) {
	c.Flags().StringVar(hostRoot, "host-root", "",
		"read the host's /etc, /boot, /proc and /sys below DIR, where a container mounts the host's / (env SAFEBPF_HOST_ROOT)")
	_ = c.MarkFlagDirname("host-root")
}

// resolveHostRoot returns the host root from --host-root or
// SAFEBPF_HOST_ROOT and checks it is a directory.
func resolveHostRoot(flag string) (loader.Setting, error) {
	_, _, hr := (&loader.Flags{HostRoot: flag}).Settings()
	if hr.Value == "" {
		return hr, nil
	}
	fi, err := os.Stat(hr.Value)
	switch {
	case err != nil:
		return hr, usageErr("%s: %w", sourceName(hr, "--host-root"), err)
	case !fi.IsDir():
		return hr, usageErr("%s %s: not a directory", sourceName(hr, "--host-root"), hr.Value)
	}
	return hr, nil
}

func (a *app) probeCommand() *cobra.Command {
	o := &probeOpts{}
	c := &cobra.Command{
		Use:   "probe",
		Short: "this machine's kernel: identity, mechanisms, hazards, decisions",
		Long: `Detects this machine's kernel (release, trusted upstream version and its
source, distro, arch, CPUs, preemption model, config, and the facts the
catalog's evidence asks about: kallsyms symbols, machine code read from
/proc/kcore, BTF, self-tests), probes every mechanism for real (root, or
CAP_BPF+CAP_PERFMON, is needed to say "available"; otherwise the answer is
undecided), evaluates every hazard for each mechanism it concerns and plans
each mechanism as the loader would.

In a container, --host-root (or SAFEBPF_HOST_ROOT) names where the host's /
is mounted: its os-release, /boot and /proc and /sys files are read there,
while the kernel itself is probed directly (the container shares it).

The JSON form ('safebpf probe --json') is what check --kernel, check
--fleet and plan --kernel read back.`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error { return a.probe(c, o) },
	}
	addOutput(c, &o.out)
	addAssumption(c, &o.as)
	addPolicy(c, &o.pol, true)
	addHostRoot(c, &o.hostRoot)
	return c
}

// probeReport is the JSON form of `safebpf probe`.
type probeReport struct {
	SchemaVersion int                    `json:"schema_version"`
	Summary       summary                `json:"summary"`
	Assumption    assumption             `json:"assumption"`
	Policy        policyJSON             `json:"policy"`
	HostRoot      string                 `json:"host_root,omitempty"`
	Kernel        *probe.Kernel          `json:"kernel"`
	Mechanisms    map[string]supportJSON `json:"mechanisms"`
	Findings      []findingJSON          `json:"findings"`
	Decisions     []decisionJSON         `json:"decisions"`

	planned []planned
}

// probeHost detects this machine and plans every mechanism on it.
func (a *app) probeHost(c *cobra.Command, o *probeOpts) (*probeReport, error) {
	hr, err := resolveHostRoot(o.hostRoot)
	if err != nil {
		return nil, err
	}
	rp, err := a.resolvePolicy(c, &o.pol)
	if err != nil {
		return nil, err
	}
	k, err := a.detect(context.Background(), hr.Value, rp.cat.Facts())
	if err != nil {
		return nil, failed(fmt.Errorf("detect kernel: %w", err))
	}
	return probeReportFor(k, rp, &o.as, hr.Value)
}

// probeReportFor plans every mechanism on a probed kernel.
func probeReportFor(k *probe.Kernel, rp *resolvedPolicy, as *assumption, hostRoot string) (*probeReport, error) {
	as.finish()
	ps, err := planMechanisms(k, rp, probe.Mechanisms(), *as, defaultRequest)
	if err != nil {
		return nil, err
	}
	return &probeReport{
		SchemaVersion: schemaVersion,
		Summary:       summarize(ps, "here"),
		Assumption:    *as,
		Policy:        rp.json(),
		HostRoot:      hostRoot,
		Kernel:        k,
		Mechanisms:    mechanismsJSON(k),
		Findings:      findingsJSON(ps),
		Decisions:     decisionsJSON(ps),
		planned:       ps,
	}, nil
}

func (a *app) probe(c *cobra.Command, o *probeOpts) error {
	p, asJSON, err := a.output(&o.out)
	if err != nil {
		return err
	}
	r, err := a.probeHost(c, o)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(a.stdout, r)
	}
	writeHead(p, r.Summary, r.Assumption)
	writeKernel(p, r.Kernel)
	writeMechanisms(p, r.Kernel, r.planned)
	writeHazards(p, r.planned, countFindings(r.planned))
	writeChanges(p, r.planned)
	return p.err
}

// writeChanges details every decision that changes the request or
// refuses it for a hazard (-o wide: every decision that is not a plain
// allow).
func writeChanges(p *printer, ps []planned) {
	var shown []planned
	for _, pl := range ps {
		switch {
		case pl.d.Action == fallback.Allow && len(pl.d.Steps) == 0:
		case pl.d.Action == fallback.Refuse && !refusedForHazard(pl.err) && !p.wide:
		default:
			shown = append(shown, pl)
		}
	}
	if len(shown) == 0 {
		return
	}
	p.blank()
	p.line("Decisions that change or refuse a request")
	for _, pl := range shown {
		writeDecisionDetail(p, pl.d, pl.err)
	}
}
