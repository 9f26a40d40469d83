package vmtest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// labSetup provisions the Debian kernels and builds the lab kernel (both
// cached; skipped with SAFEBPF_VM_PROVISION=0), lists them and applies
// SAFEBPF_VM_KERNELS (names: debian-5.10, debian-6.1, debian-6.12, lab-6.1).
func labSetup(t *testing.T) (root string, debian, lab []Kernel, work string) {
	t.Helper()
	root, err := ModuleRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("SAFEBPF_VM_PROVISION") != "0" {
		for _, script := range []string{"provision-kernels.sh", "build-lab-kernel.sh"} {
			start := time.Now()
			cmd := exec.Command(filepath.Join(root, "scripts", script))
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s: %v\n%s", script, err, stderr.String())
			}
			t.Logf("%s in %s:\n%s%s", script, time.Since(start).Round(100*time.Millisecond), stderr.String(), out)
		}
	}
	if debian, err = Kernels(CacheDir()); err != nil {
		t.Fatal(err)
	}
	if lab, err = LabKernels(CacheDir()); err != nil {
		t.Fatal(err)
	}
	if sel := os.Getenv("SAFEBPF_VM_KERNELS"); sel != "" {
		keep := func(ks []Kernel) []Kernel {
			var out []Kernel
			for _, k := range ks {
				for _, name := range strings.Split(sel, ",") {
					if k.Name == strings.TrimSpace(name) {
						out = append(out, k)
					}
				}
			}
			return out
		}
		debian, lab = keep(debian), keep(lab)
	}
	if len(debian)+len(lab) == 0 {
		t.Fatalf("no kernel to run the lab on (SAFEBPF_VM_KERNELS=%q)", os.Getenv("SAFEBPF_VM_KERNELS"))
	}
	work = os.Getenv("SAFEBPF_VM_WORKDIR")
	if work == "" {
		work = filepath.Join(os.TempDir(), "safebpf-vmtest")
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	return root, debian, lab, work
}

// TestHazardLab reproduces the catalog's hazards on real kernels in QEMU
// guests (and scenario 3 on the host) and shows what safebpf's decision
// does there; see docs/hazard-lab.md. It prints the lab table and fails
// when an arm cannot run, a control or an expectation backed by the
// kernel's own evidence does not hold, or safebpf's decision does not avoid
// a hazard that reproduced.
//
// Environment: SAFEBPF_VM_LAB=1 enables it; SAFEBPF_VM_KERNELS selects
// kernels (lab-6.1 is the lab kernel); SAFEBPF_LAB_SCENARIOS selects
// scenarios ("1,3"); SAFEBPF_LAB_HOST=0 skips the host's scenario 3;
// SAFEBPF_LAB_UPROBES sets scenario 3's count (default 500);
// SAFEBPF_LAB_S5_DURATION bounds the reproduction attempt on the lab kernel
// (default 120s); SAFEBPF_LAB_MTTCG=1 boots the lab kernel with
// multi-threaded TCG; SAFEBPF_LAB_UPDATE_DOC=1 rewrites the last-run section
// of docs/hazard-lab.md. SAFEBPF_VM_WORKDIR keeps lab.txt and the consoles.
func TestHazardLab(t *testing.T) {
	if os.Getenv("SAFEBPF_VM_LAB") != "1" {
		t.Skip("hazard lab disabled: set SAFEBPF_VM_LAB=1 to boot the Debian kernels and the lab kernel under QEMU " +
			"(scripts/kernel-matrix.sh does; needs qemu, apt access and the kernel build tools)")
	}
	start := time.Now()
	root, debian, labK, work := labSetup(t)
	ctx := context.Background()
	b, err := BuildLab(ctx, root, filepath.Join(work, "lab-bin"))
	if err != nil {
		t.Fatal(err)
	}
	o := LabOptions{MultiThreadTCG: os.Getenv("SAFEBPF_LAB_MTTCG") == "1", S5Duration: envDuration(t, "SAFEBPF_LAB_S5_DURATION", 0)}
	if v := os.Getenv("SAFEBPF_LAB_SCENARIOS"); v != "" {
		o.Scenarios = strings.Split(v, ",")
	}
	if v := os.Getenv("SAFEBPF_LAB_UPROBES"); v != "" {
		fmt.Sscan(v, &o.S3Uprobes)
	}
	plan := LabPlan(debian, labK, o)
	t.Logf("lab: %d boots over %d Debian and %d lab kernels (host build %s)", len(plan), len(debian), len(labK), b.Duration.Round(100*time.Millisecond))

	var results []*LabResult
	if o.has("3") && os.Getenv("SAFEBPF_LAB_HOST") != "0" {
		results = append(results, hostScenario3(t, b.Prebuilt["lab/labguest"], o.S3Uprobes))
	}
	results = append(results, CollectLab(RunLab(ctx, b, plan, work, t.Logf), work)...)

	rows := LabRows(results)
	var table bytes.Buffer
	if err := WriteLabTable(&table, results, rows); err != nil {
		t.Fatal(err)
	}
	var head strings.Builder
	fmt.Fprintf(&head, "hazard lab, %s, %s total:\n", time.Now().UTC().Format("2006-01-02"), time.Since(start).Round(time.Second))
	for _, r := range results {
		fmt.Fprintf(&head, "  %-12s %-28s %s\n", r.Kernel, r.Release, r.Duration.Round(time.Second))
	}
	report := head.String() + "\n" + table.String()
	_ = os.WriteFile(filepath.Join(work, "lab.txt"), []byte(report), 0o644)
	t.Logf("%s(also in %s)", report, filepath.Join(work, "lab.txt"))
	if os.Getenv("SAFEBPF_LAB_UPDATE_DOC") == "1" {
		if err := UpdateLabDoc(root, results, labK, table.String(), time.Since(start)); err != nil {
			t.Error(err)
		}
	}
	for _, r := range results {
		for _, p := range r.Problems {
			t.Errorf("%s: %s", r.Kernel, p)
		}
	}
	for _, row := range rows {
		for _, p := range row.Problems {
			t.Errorf("scenario %s on %s: %s", row.Scenario, row.Kernel, p)
		}
		for _, f := range row.Findings {
			t.Errorf("NOT AVOIDED: %s", f)
		}
	}
}

// hostScenario3 runs scenario 3's arms on this machine (uprobes work on the
// host kernel) with a private copy of its C library.
func hostScenario3(t *testing.T, labguest string, n int) *LabResult {
	t.Helper()
	if n == 0 {
		n = 500
	}
	r := &LabResult{Kernel: "host", Kind: "host"}
	if out, err := exec.Command("uname", "-r").Output(); err == nil {
		r.Release = strings.TrimSpace(string(out))
	}
	if os.Geteuid() != 0 {
		r.Problems = append(r.Problems, "scenario 3 on the host needs root")
		return r
	}
	var lib string
	for _, p := range []string{"/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6", "/lib64/libc.so.6"} {
		if _, err := os.Stat(p); err == nil {
			lib = p
			break
		}
	}
	if lib == "" {
		r.Problems = append(r.Problems, "no C library on the host to place scenario 3's uprobes on")
		return r
	}
	start := time.Now()
	for _, a := range S3Arms(true) {
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
		args := append([]string{"s3", "-lib", lib, "-n", fmt.Sprint(n)}, a.Args...)
		cmd := exec.CommandContext(ctx, labguest, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		cancel()
		c, perr := ParseConsole(bufio.NewReader(bytes.NewReader(out)))
		if perr != nil || len(c.Lab) == 0 {
			r.Problems = append(r.Problems, fmt.Sprintf("host s3 %s: no lab record (%v): %s", a.Name, err, stderr.String()))
			continue
		}
		r.Records = append(r.Records, c.Lab[len(c.Lab)-1])
		t.Logf("host s3 %s: %s", a.Name, c.Lab[len(c.Lab)-1].Summary)
	}
	r.Duration = time.Since(start)
	return r
}
