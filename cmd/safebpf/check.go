package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/probe"
)

const checkUsage = `usage: safebpf check (--release RELEASE | --kernel FIXTURE.json) [flags]

Evaluates a kernel described on the command line, without touching this
machine, and plans an attachment on it. Offline, a mechanism counts as
available when the kernel version and arch (and the config, when given)
support it, and the program is assumed to have every alternative variant a
fallback edge needs (fentry↔kprobe, fexit↔kretprobe, multi→single).

With --mechanism, prints the findings of every hazard concerning that
mechanism and one decision. Without it, prints the findings for every
mechanism and one decision per mechanism. Exits 1 when a decision refuses.

Kernel description (--release, or --kernel alone):
  --kernel FILE            a kernel captured with 'safebpf probe --json' (the
                           whole report or its "kernel" object); its probed
                           mechanism availability is used as is
  --release R              uname -r, e.g. 5.15.0-91-generic
  --proc-version S         the /proc/version line
  --version-signature S    Ubuntu's /proc/version_signature
  --os-release FILE        an os-release file
  --arch A                 GOARCH name (default amd64)
  --cpus N                 possible CPUs
  --kallsyms FILE          /proc/kallsyms or an excerpt (evidence symbols)
  --config FILE            kernel config (plain or gzip, e.g. /proc/config.gz)

Attachment:
  --mechanism M            fentry, fexit, kprobe, kretprobe, kprobe-multi,
                           kretprobe-multi, tracepoint, raw-tracepoint, uprobe,
                           uretprobe, uprobe-multi, perf-event-hardware,
                           perf-event-software
  --reads-user-memory      the program reads user memory
  --seccomp                the traced process may run under seccomp
  --targets N              functions or symbols attached together (default 1)
  --maxactive N            requested kretprobe maxactive (0: default)
  --frequency HZ           perf event sampling frequency (default 99)
  --pinned                 forbid changing the mechanism

Policy:
  --policy FILE            apply a policy file (same checks as 'policy validate')
  --force IDS              comma-separated hazard IDs to force ("all" forces all)
  --mode MODE              enforce, warn or audit (default: the policy's, else enforce)

Output:
  --json                   one JSON object: {"kernel": {..., "version":
                           "X.Y.Z"|"X.Y"|null, "version_source"}, "findings":
                           [{"id", "mechanism", "verdict", "action", "reason"}],
                           "decision": {"requested", "chosen", "action",
                           "settings", "steps", ...}} ("decisions": [...]
                           without --mechanism)`

// checkReport is the JSON form of `safebpf check`.
type checkReport struct {
	Kernel    *probe.Kernel  `json:"kernel"`
	Findings  []findingJSON  `json:"findings"`
	Decision  *decisionJSON  `json:"decision,omitempty"`
	Decisions []decisionJSON `json:"decisions,omitempty"`
}

func (c *cli) check(args []string) int {
	fs := newFlagSet("check")
	var (
		kernelFile  = fs.String("kernel", "", "")
		release     = fs.String("release", "", "")
		procVersion = fs.String("proc-version", "", "")
		signature   = fs.String("version-signature", "", "")
		osRelease   = fs.String("os-release", "", "")
		arch        = fs.String("arch", "", "")
		cpus        = fs.Int("cpus", 0, "")
		kallsyms    = fs.String("kallsyms", "", "")
		config      = fs.String("config", "", "")
		mechanism   = fs.String("mechanism", "", "")
		readsUser   = fs.Bool("reads-user-memory", false, "")
		seccomp     = fs.Bool("seccomp", false, "")
		targets     = fs.Int("targets", 1, "")
		maxActive   = fs.Int("maxactive", 0, "")
		frequency   = fs.Uint64("frequency", 99, "")
		pinned      = fs.Bool("pinned", false, "")
		policyFile  = fs.String("policy", "", "")
		force       = fs.String("force", "", "")
		mode        = fs.String("mode", "", "")
		asJSON      = fs.Bool("json", false, "")
	)
	pos, code, ok := c.parse(fs, checkUsage, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return c.usageErr("check", fmt.Errorf("unexpected argument %q", pos[0]))
	}
	if *release == "" && *kernelFile == "" {
		return c.usageErr("check", fmt.Errorf("--release or --kernel is required (e.g. --release 5.15.0-91-generic)"))
	}
	if *kernelFile != "" {
		described := false
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "release", "proc-version", "version-signature", "os-release", "arch", "cpus", "kallsyms", "config":
				described = true
			}
		})
		if described {
			return c.usageErr("check", fmt.Errorf("--kernel takes the whole kernel from the fixture: drop --release and the other description flags"))
		}
	}
	if *cpus < 0 || *targets < 0 || *maxActive < 0 {
		return c.usageErr("check", fmt.Errorf("--cpus, --targets and --maxactive must not be negative"))
	}
	var mechs []probe.Mechanism
	if *mechanism != "" {
		m, err := probe.ParseMechanism(*mechanism)
		if err != nil {
			return c.usageErr("check", err)
		}
		mechs = []probe.Mechanism{m}
	} else {
		mechs = probe.Mechanisms()
	}

	d := probe.Description{
		Release:          *release,
		ProcVersion:      *procVersion,
		VersionSignature: *signature,
		Arch:             *arch,
		CPUs:             *cpus,
	}
	for _, f := range []struct {
		flag, path string
		dst        *string
	}{
		{"--os-release", *osRelease, &d.OSRelease},
		{"--kallsyms", *kallsyms, &d.Kallsyms},
		{"--config", *config, &d.Config},
	} {
		if f.path == "" {
			continue
		}
		text, err := readText(f.path)
		if err != nil {
			return c.usageErr("check", fmt.Errorf("%s: %w", f.flag, err))
		}
		*f.dst = text
	}
	var k *probe.Kernel
	var err error
	if *kernelFile != "" {
		k, err = readKernelFixture(*kernelFile)
	} else {
		k, err = probe.Describe(d)
	}
	if err != nil {
		return c.usageErr("check", err)
	}

	cat, pol, code, ok := c.catalog("check", *policyFile)
	if !ok {
		return code
	}
	eff := hazards.Policy{APIVersion: "safebpf/v1"}
	if pol != nil {
		eff = *pol
		eff.Force = append([]hazards.ID(nil), pol.Force...)
	}
	if *force != "" {
		for _, id := range strings.Split(*force, ",") {
			if id = strings.TrimSpace(id); id != "" {
				eff.Force = append(eff.Force, hazards.ID(id))
			}
		}
		if err := cat.CheckIDs(eff.Force, true); err != nil {
			return c.usageErr("check", fmt.Errorf("--force: %w", err))
		}
	}
	if *mode != "" {
		if !hazards.Mode(*mode).Valid() {
			return c.usageErr("check", fmt.Errorf("--mode %q: want enforce, warn or audit", *mode))
		}
		eff.Mode = hazards.Mode(*mode)
	}

	var findings []hazards.Finding
	var decisions []decisionJSON
	type planned struct {
		d   fallback.Decision
		err error
	}
	var plans []planned
	refused := false
	for _, m := range mechs {
		findings = append(findings, cat.Evaluate(k, hazards.Attachment{Mechanism: m, ReadsUserMemory: *readsUser, Seccomp: *seccomp})...)
		req := fallback.Request{
			Mechanism:       m,
			Alternatives:    fallback.Counterparts(m),
			Pinned:          *pinned,
			ReadsUserMemory: *readsUser,
			Seccomp:         *seccomp,
			Targets:         *targets,
			MaxActive:       *maxActive,
		}
		if m == probe.PerfEventHardware || m == probe.PerfEventSoftware {
			req.PerfEvent = &fallback.PerfEvent{Hardware: m == probe.PerfEventHardware, Frequency: *frequency}
		}
		// The base catalog: Plan applies the policy itself.
		dec, err := fallback.Plan(k, hazards.Builtin(), req, &eff)
		if err != nil && dec.Action != fallback.Refuse {
			return c.usageErr("check", err)
		}
		refused = refused || dec.Action == fallback.Refuse
		plans = append(plans, planned{dec, err})
		decisions = append(decisions, toDecisionJSON(dec, err))
	}

	status := exitOK
	if refused {
		status = exitRefused
	}
	if *asJSON {
		r := checkReport{Kernel: k, Findings: findingsJSON(findings)}
		if len(decisions) == 1 && *mechanism != "" {
			r.Decision = &decisions[0]
		} else {
			r.Decisions = decisions
		}
		if err := writeJSON(c.stdout, r); err != nil {
			c.errLine("check", err)
			return exitRefused
		}
		return status
	}
	writeKernel(c.stdout, k)
	writeFindings(c.stdout, c.color, "Hazards", findings)
	fmt.Fprintf(c.stdout, "\nDecisions\n")
	for _, p := range plans {
		writeDecision(c.stdout, c.color, p.d, p.err)
	}
	return status
}

// readText reads a text file, gunzipping it when it is gzip-compressed
// (/proc/config.gz).
func readText(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return "", fmt.Errorf("read %s: %w", path, err)
		}
		defer zr.Close()
		if b, err = io.ReadAll(io.LimitReader(zr, 64<<20)); err != nil {
			return "", fmt.Errorf("read %s: %w", path, err)
		}
	}
	return string(b), nil
}
