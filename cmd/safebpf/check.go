package main

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/internal/boundedio"
	"github.com/safebpf/safebpf/internal/kernel"
	"github.com/safebpf/safebpf/probe"
)

// checkOpts are check's flags.
type checkOpts struct {
	out outputOpts
	as  assumption
	pol policyOpts

	kernelFile, fleetFile                 string
	release, procVersion, signature, arch string
	osRelease, kallsyms, config           string
	cpus                                  int

	mechanism string
	req       requestOpts
}

// Flag bounds.
const (
	maxTargets   = 1 << 20
	maxFrequency = 100000 // the default kernel.perf_event_max_sample_rate
)

// descriptionFlags describe a kernel on the command line.
var descriptionFlags = []string{"release", "proc-version", "version-signature", "os-release", "arch", "cpus", "kallsyms", "config"}

func (a *app) checkCommand() *cobra.Command {
	o := &checkOpts{}
	c := &cobra.Command{
		Use:   "check (--release R | --kernel FILE | --fleet FILE) [flags]",
		Short: "evaluate a described kernel, or a fleet of them, offline",
		Long: `Evaluates a kernel described on the command line (--release and the other
description flags), captured with 'safebpf probe --json' (--kernel), or a
whole fleet (--fleet), without touching this machine, and plans an
attachment as the loader would. Offline, a mechanism counts as available
when the kernel version and arch (and the config, when given) support it.

With --mechanism, prints the verdict of every hazard concerning that
mechanism and one decision; without it, one decision per mechanism. Exits
1 when a decision refuses.

--fleet reads many kernels, one JSON value per line (or a JSON array):
'safebpf probe --json' reports, their "kernel" objects, or described
kernels ({"name", "release", "proc_version", "version_signature",
"vdso_version", "os_release", "arch", "cpus", "kallsyms", "config"}: the
files' contents; other keys are ignored), and prints one row per kernel
(-o wide: every decision).`,
		Example: `  safebpf check --release 5.15.0-91-generic --mechanism fentry
  safebpf check --kernel node-a.json --mechanism kretprobe --cpus 96
  safebpf check --fleet kernels.jsonl --mechanism perf-event-hardware`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error { return a.check(c, o) },
	}
	f := c.Flags()
	f.StringVar(&o.kernelFile, "kernel", "", "a kernel captured with 'safebpf probe --json' (the report or its \"kernel\")")
	f.StringVar(&o.fleetFile, "fleet", "", "many kernels: JSON lines of probe reports or described kernels")
	f.StringVar(&o.release, "release", "", "uname -r, e.g. 5.15.0-91-generic")
	f.StringVar(&o.procVersion, "proc-version", "", "the /proc/version line")
	f.StringVar(&o.signature, "version-signature", "", "Ubuntu's /proc/version_signature")
	f.StringVar(&o.osRelease, "os-release", "", "an os-release file")
	f.StringVar(&o.arch, "arch", "", "architecture: amd64 (x86_64), arm64 (aarch64), 386 (i686), ... (default amd64)")
	f.IntVar(&o.cpus, "cpus", 0, "possible CPUs, 1 to 65536 (default unknown)")
	f.StringVar(&o.kallsyms, "kallsyms", "", "/proc/kallsyms or an excerpt (evidence symbols; machine code, BTF and self-tests are only read live: 'safebpf probe')")
	f.StringVar(&o.config, "config", "", "kernel config, plain or gzip (e.g. /proc/config.gz)")
	f.StringVar(&o.mechanism, "mechanism", "", "plan only this mechanism (fentry, kprobe, uprobe, ...)")
	f.IntVar(&o.req.targets, "targets", 1, "functions or symbols attached together, 1 to 1048576")
	f.StringSliceVar(&o.as.AttachTo, "attach-to", nil, "what the program attaches to, as the kernel names it: functions (__x64_sys_openat), group/name tracepoints, raw tracepoint events; comma-separated (default unknown: the program may run in interrupt context)")
	f.IntVar(&o.req.maxActive, "maxactive", 0, fmt.Sprintf("requested kretprobe maxactive, 0 (default) to %d", hazards.MaxActiveLimit))
	f.Uint64Var(&o.req.frequency, "frequency", 99, "perf event sampling frequency in Hz, 1 to 100000")
	f.BoolVar(&o.req.pinned, "pinned", false, "forbid changing the mechanism")
	for _, name := range []string{"kernel", "fleet", "os-release", "kallsyms", "config"} {
		_ = c.MarkFlagFilename(name)
	}
	_ = c.RegisterFlagCompletionFunc("mechanism", func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		var ms []cobra.Completion
		for _, m := range probe.Mechanisms() {
			ms = append(ms, string(m))
		}
		return ms, cobra.ShellCompDirectiveNoFileComp
	})
	addAssumption(c, &o.as)
	addPolicy(c, &o.pol, true)
	addOutput(c, &o.out)
	return c
}

// checkFlags validates the flags' bounds and combinations.
func (o *checkOpts) checkFlags(c *cobra.Command) ([]probe.Mechanism, error) {
	described := false
	for _, name := range descriptionFlags {
		described = described || c.Flags().Changed(name)
	}
	switch {
	case o.fleetFile != "" && (o.kernelFile != "" || described):
		return nil, usageErr("--fleet takes every kernel from its file: drop --kernel and the description flags")
	case o.kernelFile != "" && described:
		return nil, usageErr("--kernel takes the whole kernel from the fixture: drop --release and the other description flags")
	case o.fleetFile == "" && o.kernelFile == "" && o.release == "":
		return nil, usageErr("--release, --kernel or --fleet is required (e.g. --release 5.15.0-91-generic)")
	}
	if c.Flags().Changed("cpus") && (o.cpus < 1 || o.cpus > probe.MaxCPUs) {
		return nil, usageErr("--cpus %d: want 1 to %d", o.cpus, probe.MaxCPUs)
	}
	for _, t := range o.as.AttachTo {
		if t == "" || strings.ContainsFunc(t, unicode.IsSpace) {
			return nil, usageErr("--attach-to %q: want kernel names separated by commas, e.g. __x64_sys_openat,__x64_sys_openat2", strings.Join(o.as.AttachTo, ","))
		}
	}
	if n := len(o.as.AttachTo); n > 0 {
		if !c.Flags().Changed("targets") {
			o.req.targets = n
		} else if n > o.req.targets {
			return nil, usageErr("--attach-to names %d targets but --targets is %d: drop --targets or raise it", n, o.req.targets)
		}
	}
	if o.req.targets < 1 || o.req.targets > maxTargets {
		return nil, usageErr("--targets %d: want 1 to %d", o.req.targets, maxTargets)
	}
	if o.req.maxActive < 0 || o.req.maxActive > hazards.MaxActiveLimit {
		return nil, usageErr("--maxactive %d: want 0 (the kernel default) to %d, the kernel's maximum", o.req.maxActive, hazards.MaxActiveLimit)
	}
	if o.req.frequency < 1 || o.req.frequency > maxFrequency {
		return nil, usageErr("--frequency %d: want 1 to %d Hz (the kernel's default perf_event_max_sample_rate)", o.req.frequency, maxFrequency)
	}
	if c.Flags().Changed("arch") {
		arch, err := probe.ParseArch(o.arch)
		if err != nil {
			return nil, usageErr("--arch: %w", err)
		}
		o.arch = arch
	}
	if o.mechanism == "" {
		return probe.Mechanisms(), nil
	}
	m, err := probe.ParseMechanism(o.mechanism)
	if err != nil {
		return nil, usageErr("--mechanism: %w", err)
	}
	return []probe.Mechanism{m}, nil
}

// describe builds the kernel from the description flags or --kernel,
// looking in --kallsyms for the symbol facts among facts.
func (o *checkOpts) describe(facts []probe.Fact) (*probe.Kernel, error) {
	if o.kernelFile != "" {
		k, err := readKernelFile(o.kernelFile)
		if err != nil {
			return nil, usageErr("--kernel: %w", err)
		}
		return k, nil
	}
	d := probe.Description{
		Release:          o.release,
		ProcVersion:      o.procVersion,
		VersionSignature: o.signature,
		Arch:             o.arch,
		CPUs:             o.cpus,
		Facts:            facts,
	}
	text := func(path string, limit int64, what string) (string, error) {
		b, err := boundedio.ReadFile(path, limit, what)
		return string(b), err
	}
	for _, f := range []struct {
		flag, path string
		read       func(string) (string, error)
		dst        *string
	}{
		{"--os-release", o.osRelease, func(p string) (string, error) { return text(p, kernel.MaxFileSize, "os-release") }, &d.OSRelease},
		{"--kallsyms", o.kallsyms, func(p string) (string, error) { return text(p, kernel.MaxKallsymsSize, "kallsyms") }, &d.Kallsyms},
		{"--config", o.config, readConfig, &d.Config},
	} {
		if f.path == "" {
			continue
		}
		t, err := f.read(f.path)
		if err != nil {
			return nil, usageErr("%s: %w", f.flag, err)
		}
		*f.dst = t
	}
	k, err := probe.Describe(d)
	if err != nil {
		return nil, usageErr("%w", err)
	}
	return k, nil
}

// checkReport is the JSON form of `safebpf check`.
type checkReport struct {
	SchemaVersion int            `json:"schema_version"`
	Summary       summary        `json:"summary"`
	Assumption    assumption     `json:"assumption"`
	Policy        policyJSON     `json:"policy"`
	Kernel        *probe.Kernel  `json:"kernel"`
	Findings      []findingJSON  `json:"findings"`
	Decision      *decisionJSON  `json:"decision,omitempty"`
	Decisions     []decisionJSON `json:"decisions,omitempty"`
}

func (a *app) check(c *cobra.Command, o *checkOpts) error {
	p, asJSON, err := a.output(&o.out)
	if err != nil {
		return err
	}
	mechs, err := o.checkFlags(c)
	if err != nil {
		return err
	}
	rp, err := a.resolvePolicy(c, &o.pol)
	if err != nil {
		return err
	}
	o.as.finish()
	if o.fleetFile != "" {
		return a.fleet(o, rp, mechs, p, asJSON)
	}
	k, err := o.describe(rp.cat.Facts())
	if err != nil {
		return err
	}
	ps, err := planMechanisms(k, rp, mechs, o.as, o.req)
	if err != nil {
		return err
	}
	sum := summarize(ps, "to "+k.Release)
	var status error
	if anyRefused(ps) {
		status = errRefusals
	}
	if asJSON {
		r := checkReport{
			SchemaVersion: schemaVersion, Summary: sum, Assumption: o.as, Policy: rp.json(),
			Kernel: k, Findings: findingsJSON(ps),
		}
		if ds := decisionsJSON(ps); o.mechanism != "" {
			r.Decision = &ds[0]
		} else {
			r.Decisions = ds
		}
		if err := writeJSON(a.stdout, r); err != nil {
			return err
		}
		return status
	}
	writeHead(p, sum, o.as)
	writeKernel(p, k)
	if o.mechanism == "" {
		writeMechanisms(p, k, ps)
		writeHazards(p, ps, countFindings(ps))
		writeChanges(p, ps)
	} else {
		writeFindings(p, ps[0])
		p.blank()
		p.line("Decision")
		writeDecisionDetail(p, ps[0].d, ps[0].err)
	}
	if p.err != nil {
		return p.err
	}
	return status
}

// writeFindings prints every verdict for one mechanism, each with its
// reason.
func writeFindings(p *printer, pl planned) {
	p.blank()
	p.line("Hazards concerning %s", pl.mech)
	if len(pl.findings) == 0 {
		p.line("  (no hazard in the catalog concerns %s)", pl.mech)
		return
	}
	for _, f := range pl.findings {
		head := fmt.Sprintf("%s: %s", f.ID, f.Verdict)
		if applies(f) {
			head += " → " + effect(f)
		}
		p.para("  ", head)
		p.para("    ", reasonText(f))
	}
}
