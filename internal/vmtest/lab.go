package vmtest

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/safebpf/safebpf/internal/vmtest/vmproto"
)

// The hazard lab (docs/hazard-lab.md) reproduces each hazard of the catalog
// on real kernels in QEMU guests and shows what safebpf's decision does
// there. A guest program (./labguest, a static main package) runs one arm
// of a scenario per step and prints a LAB record; the host groups the
// records into one row per scenario and kernel.

// LabGuestPath is where the lab's guest program sits in the initramfs.
const LabGuestPath = "/vmtest/prebuilt/lab/labguest"

// LabBoot is one guest boot of the lab.
type LabBoot struct {
	// Name identifies the boot ("debian-6.1 main").
	Name   string
	Kernel Kernel
	Boot   BootOptions
	Steps  []vmproto.Step
}

// LabOptions configures the lab's plan.
type LabOptions struct {
	// Scenarios selects scenarios by number ("1", "3"); empty means all.
	Scenarios []string
	// S3Uprobes is the number of uprobes of scenario 3 (zero: 500).
	S3Uprobes int
	// S5Duration bounds the reproduction attempt on the lab kernel (zero:
	// 120s) and ControlDuration the same run on Debian's fixed 6.1 (zero:
	// 30s).
	S5Duration, ControlDuration time.Duration
	// MultiThreadTCG boots the lab kernel with one host thread per vCPU.
	MultiThreadTCG bool
}

func (o LabOptions) has(s string) bool {
	if len(o.Scenarios) == 0 {
		return true
	}
	for _, x := range o.Scenarios {
		if x == s {
			return true
		}
	}
	return false
}

// labStep is one run of the guest program.
func labStep(name string, timeout time.Duration, args ...string) vmproto.Step {
	return vmproto.Step{Name: name, Path: LabGuestPath, Args: args, Timeout: timeout}
}

// LockupRE matches the first line of a lockup detector's report on the
// console: an RCU stall, a soft or hard lockup.
var LockupRE = regexp.MustCompile(`rcu_\w+ detected stalls|soft lockup - CPU|hard LOCKUP|Watchdog detected hard LOCKUP`)

// LabPossibleCPUs is the number of possible CPUs the Debian guests boot
// with (2 online, the rest hot-pluggable): the kernel sizes the default
// kretprobe pool from it, and safebpf's kretprobe-contention rule needs 64.
// 6.12 counts only the 2 online ones (since the x86 topology rework of 6.9
// QEMU's disabled MADT entries are not hot-pluggable CPUs; possible_cpus=
// only lowers the count); its row says so.
const LabPossibleCPUs = 64

// LabPlan returns the boots of the lab: per Debian kernel a main boot
// (scenarios 4, 2, 3, the scenario-5 control on 6.1, then scenario 1 with
// the naive fentry arm last, because a hang wedges the rest of its boot)
// and a boot for the naive fexit arm alone; per lab kernel one boot for
// scenario 5 with the reproduction attempt last.
func LabPlan(kernels, labKernels []Kernel, o LabOptions) []LabBoot {
	n := o.S3Uprobes
	if n == 0 {
		n = 500
	}
	s5d, ctl := o.S5Duration, o.ControlDuration
	if s5d == 0 {
		s5d = 120 * time.Second
	}
	if ctl == 0 {
		ctl = 30 * time.Second
	}
	var boots []LabBoot
	for _, k := range kernels {
		var steps []vmproto.Step
		if o.has("4") {
			for _, arm := range []string{"filter", "naive", "naive-deny", "safebpf"} {
				steps = append(steps, labStep("s4-"+arm, 2*time.Minute, "s4", "-arm", arm))
			}
		}
		if o.has("2") {
			for _, arm := range []string{"naive", "safebpf", "safebpf-kretprobe", "safebpf-maxactive"} {
				steps = append(steps, labStep("s2-"+arm, 4*time.Minute, "s2", "-arm", arm, "-sleepers", "256", "-maxactive", "16"))
			}
		}
		if o.has("3") {
			lib := "/lib/x86_64-linux-gnu/libc.so.6"
			s3 := func(name string, args ...string) {
				a := append([]string{"s3", "-lib", lib, "-n", fmt.Sprint(n)}, args...)
				steps = append(steps, labStep("s3-"+name, 6*time.Minute, a...))
			}
			for _, a := range S3Arms(false) {
				s3(a.Name, a.Args...)
			}
		}
		if o.has("5") && k.Name == "debian-6.1" {
			steps = append(steps,
				labStep("s5-witness", 2*time.Minute, "s5", "-arm", "witness"),
				labStep("s5-safebpf", 3*time.Minute, "s5", "-arm", "safebpf"),
				labStep("s5-repro", ctl+2*time.Minute, "s5", "-arm", "repro", "-duration", ctl.String()),
			)
		}
		var fexit []vmproto.Step
		if o.has("1") {
			steps = append(steps,
				labStep("s1-safebpf-fentry", 4*time.Minute, "s1", "-arm", "safebpf-fentry"),
				labStep("s1-safebpf-fexit", 4*time.Minute, "s1", "-arm", "safebpf-fexit"),
				labStep("s1-naive-fentry", 4*time.Minute, "s1", "-arm", "naive-fentry"),
			)
			fexit = append(fexit, labStep("s1-naive-fexit", 4*time.Minute, "s1", "-arm", "naive-fexit"))
		}
		bo := BootOptions{CPUs: 2, MaxCPUs: LabPossibleCPUs, Timeout: bootBudget(steps)}
		if len(steps) > 0 {
			boots = append(boots, LabBoot{Name: k.Name + " main", Kernel: k, Boot: bo, Steps: steps})
		}
		if len(fexit) > 0 {
			bo.Timeout = bootBudget(fexit)
			boots = append(boots, LabBoot{Name: k.Name + " fexit", Kernel: k, Boot: bo, Steps: fexit})
		}
	}
	if o.has("5") {
		for _, k := range labKernels {
			steps := []vmproto.Step{
				labStep("s5-witness", 2*time.Minute, "s5", "-arm", "witness"),
				labStep("s5-safebpf", 3*time.Minute, "s5", "-arm", "safebpf"),
				labStep("s5-repro", s5d+2*time.Minute, "s5", "-arm", "repro", "-duration", s5d.String()),
			}
			boots = append(boots, LabBoot{
				Name: k.Name, Kernel: k, Steps: steps,
				// loglevel=7: the lockup detectors' backtraces reach the
				// console; the lower thresholds report within seconds;
				// nohz=off keeps CPU 1 ticking, and the RCU stall check
				// runs from the tick of a CPU that is not stuck. A
				// locked-up guest cannot power off: the first report ends
				// it after a grace for the program's record and the
				// detectors' backtraces.
				Boot: BootOptions{CPUs: 2, MultiThreadTCG: o.MultiThreadTCG, Timeout: bootBudget(steps),
					Append:   "loglevel=7 watchdog_thresh=5 rcupdate.rcu_cpu_stall_timeout=10 nohz=off",
					EndAfter: LockupRE, EndGrace: 60 * time.Second, OopsGrace: 60 * time.Second},
			})
		}
	}
	return boots
}

// bootBudget is a boot's timeout: its steps' timeouts and two minutes to
// boot and power off, at most 40 minutes. Steps take a fraction of their
// timeout; the cap bounds a boot whose guest init is stuck behind a step
// the kernel cannot end.
func bootBudget(steps []vmproto.Step) time.Duration {
	d := 2 * time.Minute
	for _, s := range steps {
		d += s.Timeout
	}
	return min(d, 40*time.Minute)
}

// LabRun is the outcome of one lab boot.
type LabRun struct {
	Boot LabBoot
	*Result
}

// RunLab boots every boot of the plan in order, with the lab's guest
// program at LabGuestPath.
func RunLab(ctx context.Context, b *Build, boots []LabBoot, work string, logf func(string, ...any)) []LabRun {
	var runs []LabRun
	for i, lb := range boots {
		k := lb.Kernel
		k.Name = fmt.Sprintf("lab%02d-%s", i, strings.ReplaceAll(lb.Name, " ", "-"))
		res := RunKernel(ctx, b, k, RunOptions{
			Guest:   GuestConfig{Steps: lb.Steps, NoSource: true},
			Boot:    lb.Boot,
			WorkDir: work,
			Logf:    logf,
			NoRetry: lb.Kernel.Kind == "lab",
		})
		res.Kernel = lb.Kernel
		runs = append(runs, LabRun{Boot: lb, Result: res})
	}
	return runs
}

// S3Arm is one arm of scenario 3: the record's arm name and the flags of
// `labguest s3` besides -lib and -n.
type S3Arm struct {
	Name string
	Args []string
}

// S3Arms lists scenario 3's arms. Safebpf's own decision is the 10 ms
// paced arm in the guests (the catalog paces below 6.14); the host (6.18,
// where safebpf does not pace) has an explicit 10 ms arm. The multi arms
// report "unsupported" at once below 6.6. Links of the paced arms are
// closed 32 at a time (each close waits for its own grace period, and 500
// of them take a minute or more); the naive arm closes one by one, as an
// agent would.
func S3Arms(host bool) []S3Arm {
	arms := []S3Arm{
		{"baseline", []string{"-arm", "baseline"}},
		{"naive", []string{"-arm", "naive"}},
		{"paced-1ms", []string{"-arm", "paced", "-interval", "1ms", "-label", "paced-1ms", "-close-parallel", "32"}},
	}
	if host {
		arms = append(arms, S3Arm{"paced-10ms", []string{"-arm", "paced", "-interval", "10ms", "-label", "paced-10ms", "-close-parallel", "32"}})
	}
	return append(arms,
		S3Arm{"safebpf", []string{"-arm", "safebpf", "-close-parallel", "32"}},
		S3Arm{"multi", []string{"-arm", "multi"}},
		S3Arm{"multi-50", []string{"-arm", "multi", "-batch", "50", "-interval", "10ms", "-label", "multi-50"}},
	)
}

// LabResult is every record of one kernel (all its boots), or of the host.
type LabResult struct {
	Kernel string
	// Kind is "lab" for lab kernels, "host" for the host, empty for the
	// distribution kernels.
	Kind string
	// Release is the guest's uname -r.
	Release string
	Records []vmproto.LabRecord
	// Problems are boots or steps that went wrong (no record, crash,
	// timeout).
	Problems []string
	// Consoles are the console logs kept for the report.
	Consoles []string
	Duration time.Duration
}

// Record returns the record of scenario s and arm a.
func (r *LabResult) Record(s, a string) (vmproto.LabRecord, bool) {
	for _, rec := range r.Records {
		if rec.Scenario == s && rec.Arm == a {
			return rec, true
		}
	}
	return vmproto.LabRecord{}, false
}

// CollectLab groups the runs' records by kernel, in the order the kernels
// first appear.
func CollectLab(runs []LabRun, work string) []*LabResult {
	var out []*LabResult
	byKernel := map[string]*LabResult{}
	for _, r := range runs {
		name := r.Boot.Kernel.Name
		lr := byKernel[name]
		if lr == nil {
			lr = &LabResult{Kernel: name, Kind: r.Boot.Kernel.Kind}
			byKernel[name] = lr
			out = append(out, lr)
		}
		lr.Duration += r.Duration()
		if b := r.Last(); b != nil && b.Console.Release != "" {
			lr.Release = b.Console.Release
		}
		recs, problems := labRecords(r)
		lr.Records = append(lr.Records, recs...)
		for _, p := range problems {
			lr.Problems = append(lr.Problems, r.Boot.Name+": "+p)
		}
		if work != "" {
			if p := writeLabConsole(work, r); p != "" {
				lr.Consoles = append(lr.Consoles, p)
			}
		}
	}
	return out
}

// stepArm splits a lab step name ("s3-paced-1ms") into the scenario and
// the arm of the record it must print.
func stepArm(step string) (scenario, arm string) {
	s, a, _ := strings.Cut(strings.TrimPrefix(step, "s"), "-")
	return s, a
}

// labRecords returns the records of a run, one per scenario and arm (the
// last one decoded: records that matter are printed more than once when
// the console may be busy), and what went wrong with the boot.
func labRecords(r LabRun) ([]vmproto.LabRecord, []string) {
	if r.Err != nil {
		return nil, []string{r.Err.Error()}
	}
	boot := r.Last()
	if boot == nil {
		return nil, []string{"not booted"}
	}
	c := boot.Console
	var problems []string
	if c.Crashed() && r.Boot.Kernel.Kind != "lab" {
		problems = append(problems, fmt.Sprintf("guest kernel crashed:\n\t%s", strings.Join(c.Oops, "\n\t")))
	}
	if boot.QEMUErr != nil {
		problems = append(problems, boot.QEMUErr.Error())
	}
	idx := map[string]int{}
	var out []vmproto.LabRecord
	for _, rec := range c.Lab {
		key := rec.Scenario + "/" + rec.Arm
		if i, ok := idx[key]; ok {
			// Copies sent through the kernel log carry no evidence.
			if len(rec.Evidence) >= len(out[i].Evidence) {
				out[i] = rec
			}
			continue
		}
		idx[key] = len(out)
		out = append(out, rec)
	}
	if rec, ok := lockupFromConsole(c); ok && r.Boot.Kernel.Kind == "lab" {
		if _, seen := idx["5/repro"]; !seen {
			idx["5/repro"] = len(out)
			out = append(out, rec)
		}
	}
	for _, s := range r.Boot.Steps {
		sc, arm := stepArm(s.Name)
		if _, ok := idx[sc+"/"+arm]; ok {
			continue
		}
		st := c.Step(s.Name)
		if st == nil {
			problems = append(problems, fmt.Sprintf("%s: did not run (guest timed out: %v; console tail:\n\t%s)", s.Name, boot.TimedOut,
				strings.Join(c.Tail(15), "\n\t")))
			continue
		}
		problems = append(problems, fmt.Sprintf("%s: printed no lab record; exit=%d %s; output tail:\n\t%s", s.Name, st.ExitCode, st.Note,
			strings.Join(tail(st.Output, 20), "\n\t")))
	}
	for _, e := range c.Errors {
		// A record a kernel message broke is not a problem by itself: the
		// step then lacks its record (reported above) or printed it again.
		// Optional mounts fail on the lab kernel, which has no cgroups.
		if !strings.HasPrefix(e, "decode lab record") && !strings.Contains(e, "(optional)") {
			problems = append(problems, "guest: "+e)
		}
	}
	return out, problems
}

// writeLabConsole keeps a boot's console in work for the report and
// returns its path.
func writeLabConsole(work string, r LabRun) string {
	b := r.Last()
	if b == nil {
		return ""
	}
	p := filepath.Join(work, "lab-"+strings.ReplaceAll(r.Boot.Name, " ", "-")+".console.log")
	if err := writeFile(p, func(w io.Writer) error {
		_, err := io.WriteString(w, strings.Join(b.Console.Lines, "\n")+"\n")
		return err
	}); err != nil {
		return ""
	}
	return p
}

// BuildLab compiles the guest init and the lab's guest program
// (./labguest, static) into out.
func BuildLab(ctx context.Context, root, out string) (*Build, error) {
	start := time.Now()
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("create build dir: %w", err)
	}
	b := &Build{Root: root, Init: filepath.Join(out, "init"), Prebuilt: map[string]string{}}
	if err := buildInit(ctx, root, b.Init); err != nil {
		return nil, err
	}
	bin := filepath.Join(out, "labguest")
	if msg, err := goCmd(ctx, root, "build", "-o", bin, "./internal/vmtest/labguest"); err != nil {
		return nil, fmt.Errorf("build the lab's guest program: %w\n%s", err, msg)
	}
	b.Prebuilt[strings.TrimPrefix(LabGuestPath, "/vmtest/prebuilt/")] = bin
	// Scenario 3's victim: freestanding C (see its comment for why not Go).
	victim := filepath.Join(out, "victim")
	src := filepath.Join(root, "internal", "vmtest", "labguest", "victim", "victim.c")
	cmd := exec.CommandContext(ctx, "clang", "-O2", "-static", "-nostdlib", "-ffreestanding", "-fno-stack-protector", "-o", victim, src)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build scenario 3's victim with clang (scripts/install-deps installs it): %w\n%s", err, msg)
	}
	b.Prebuilt[strings.TrimPrefix(filepath.Join(filepath.Dir(LabGuestPath), "victim"), "/vmtest/prebuilt/")] = victim
	b.Duration = time.Since(start)
	return b, nil
}

// Markers of the generated section of docs/hazard-lab.md.
const (
	labDocBegin = "<!-- lab-run:begin (generated by SAFEBPF_LAB_UPDATE_DOC=1 TestHazardLab) -->"
	labDocEnd   = "<!-- lab-run:end -->"
)

// UpdateLabDoc rewrites the generated section of docs/hazard-lab.md with
// this run: the date, the kernels, the lab kernel's build and the table.
func UpdateLabDoc(root string, results []*LabResult, lab []Kernel, table string, took time.Duration) error {
	p := filepath.Join(root, "docs", "hazard-lab.md")
	doc, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("update lab doc: %w", err)
	}
	s := string(doc)
	i, j := strings.Index(s, labDocBegin), strings.Index(s, labDocEnd)
	if i < 0 || j < i {
		return fmt.Errorf("update lab doc: %s lacks the markers %q and %q", p, labDocBegin, labDocEnd)
	}
	var b strings.Builder
	b.WriteString(labDocBegin + "\n\n")
	fmt.Fprintf(&b, "Last run: %s, %s for the whole lab (QEMU TCG on 2 cores).\n\n", time.Now().UTC().Format("2006-01-02"), took.Round(time.Second))
	b.WriteString("| kernel | release | time in the lab |\n|---|---|---|\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", r.Kernel, r.Release, r.Duration.Round(time.Second))
	}
	for _, k := range lab {
		m, err := os.ReadFile(filepath.Join(filepath.Dir(k.Vmlinuz), "manifest"))
		if err != nil {
			continue
		}
		v := map[string]string{}
		for _, l := range strings.Split(string(m), "\n") {
			if key, val, ok := strings.Cut(l, "="); ok {
				v[key] = val
			}
		}
		fmt.Fprintf(&b, "\nLab kernel %s: %s %s with d319f344561d reverted, recipe %s, built %s: make -j%s took %ss of wall time and %ss of CPU (unpack %ss), cached in %s.\n",
			k.Release, v["package"], v["version"], v["recipe"], v["built"], v["jobs"], v["build_seconds"], v["build_cpu_seconds"], v["unpack_seconds"], filepath.Dir(k.Vmlinuz))
	}
	b.WriteString("\n" + table + "\n" + labDocEnd)
	s = s[:i] + b.String() + s[j+len(labDocEnd):]
	return os.WriteFile(p, []byte(s), 0o644)
}

// lockupFrames are the backtrace frames that show the user-read deadlock.
var lockupFrames = regexp.MustCompile(`find_vmap_area|__check_object_size|copy_from_user_nofault|bpf_probe_read_user|alloc_vmap_area|queued_spin_lock_slowpath|RIP: 0010:|NMI backtrace|CPU: \d+ PID`)

// lockupFromConsole builds scenario 5's repro record from the guest's
// lockup detectors when the program's own record did not reach the console
// (its CPU or the console itself may be stuck): the first detector line,
// the uptime since the attempt started, and the frames that name the
// deadlock. ok is false when no detector reported.
func lockupFromConsole(c *Console) (vmproto.LabRecord, bool) {
	r := vmproto.LabRecord{Scenario: "5", Arm: "repro", Numbers: map[string]float64{}}
	start := -1.0
	first := -1
	for i, l := range c.Lines {
		if _, rest, ok := strings.Cut(l, "s5 repro started at uptime "); ok {
			fmt.Sscanf(strings.TrimSuffix(rest, "s"), "%g", &start)
		}
		if first < 0 && LockupRE.MatchString(l) {
			first = i
		}
	}
	if first < 0 {
		return r, false
	}
	var at float64
	fmt.Sscanf(strings.TrimLeft(c.Lines[first], "[ "), "%g]", &at)
	for _, l := range c.Lines[first:] {
		if len(r.Evidence) >= 40 {
			break
		}
		if LockupRE.MatchString(l) || lockupFrames.MatchString(l) {
			r.Evidence = append(r.Evidence, "console: "+strings.TrimSpace(l))
		}
	}
	deadlock := false
	for _, e := range r.Evidence {
		if strings.Contains(e, "find_vmap_area") {
			deadlock = true
		}
	}
	r.Outcome = "lockup"
	after := ""
	if start >= 0 && at > start {
		r.Numbers["detected_after_s"] = at - start
		after = fmt.Sprintf(" %.0f s after the attempt started", at-start)
	}
	r.Summary = fmt.Sprintf("LOCKUP: %s%s (from the console; the program's own report did not get out)",
		strings.TrimSpace(LockupRE.FindString(c.Lines[first])), after)
	if deadlock {
		r.Summary += "; the backtrace shows find_vmap_area under bpf_probe_read_user"
	}
	return r, true
}
