package vmtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// matrixEnabled skips tb unless SAFEBPF_VM_MATRIX=1.
func matrixEnabled(tb testing.TB) {
	tb.Helper()
	if os.Getenv("SAFEBPF_VM_MATRIX") != "1" {
		tb.Skip("kernel matrix disabled: set SAFEBPF_VM_MATRIX=1 to boot the Debian kernels under QEMU " +
			"(needs qemu-system-x86_64 and apt access; scripts/provision-kernels.sh provisions both)")
	}
}

func envDuration(tb testing.TB, name string, def time.Duration) time.Duration {
	tb.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		tb.Fatalf("%s=%q: %v", name, v, err)
	}
	return d
}

// matrixSetup provisions kernels (unless SAFEBPF_VM_PROVISION=0), lists
// them (SAFEBPF_VM_KERNELS filters by name, comma-separated) and returns the
// module root, the kernels and a work directory for initramfs and console
// logs (SAFEBPF_VM_WORKDIR, default $TMPDIR/safebpf-vmtest, kept after the
// run for inspection).
func matrixSetup(t *testing.T) (root string, kernels []Kernel, work string) {
	t.Helper()
	root, err := ModuleRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("SAFEBPF_VM_PROVISION") != "0" {
		start := time.Now()
		cmd := exec.Command(filepath.Join(root, "scripts", "provision-kernels.sh"))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("provision kernels: %v\n%s", err, stderr.String())
		}
		t.Logf("provisioned kernels in %s:\n%s", time.Since(start).Round(100*time.Millisecond), out)
	}
	kernels, err = Kernels(CacheDir())
	if err != nil {
		t.Fatal(err)
	}
	if sel := os.Getenv("SAFEBPF_VM_KERNELS"); sel != "" {
		var keep []Kernel
		for _, k := range kernels {
			for _, name := range strings.Split(sel, ",") {
				if k.Name == strings.TrimSpace(name) {
					keep = append(keep, k)
				}
			}
		}
		if len(keep) == 0 {
			t.Fatalf("SAFEBPF_VM_KERNELS=%q matches none of the provisioned kernels", sel)
		}
		kernels = keep
	}
	work = os.Getenv("SAFEBPF_VM_WORKDIR")
	if work == "" {
		work = filepath.Join(os.TempDir(), "safebpf-vmtest")
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	return root, kernels, work
}

// TestKernelMatrix runs the integration tests of probe, loader and every
// package whose tests use internal/testutil inside each provisioned kernel,
// and fails when a test fails in any guest.
//
// Environment: SAFEBPF_VM_MATRIX=1 enables it; SAFEBPF_VM_KERNELS selects
// kernels; SAFEBPF_VM_PACKAGES (space-separated, relative to the module
// root) overrides the packages; SAFEBPF_VM_RUN is passed as -test.run;
// SAFEBPF_VM_TIMEOUT bounds one boot (default 6m) and SAFEBPF_VM_STEP_TIMEOUT
// one test binary (default 4m); SAFEBPF_VM_TABLE_SUBTESTS=1 lists subtests
// that passed everywhere in the table; SAFEBPF_VM_PARALLEL boots that many guests at
// once (default 1); SAFEBPF_VM_UPDATE_FIXTURES=1 rewrites
// testdata/kernels/<kernel>.json from the guests' `safebpf probe --json`;
// SAFEBPF_VM_BENCH runs the benchmarks matching it (as -test.bench, with
// SAFEBPF_VM_BENCHTIME as -test.benchtime; the tests only when
// SAFEBPF_VM_RUN is set too) and prints their result lines per kernel.
func TestKernelMatrix(t *testing.T) {
	matrixEnabled(t)
	root, kernels, work := matrixSetup(t)
	ctx := context.Background()

	var pkgs []string
	if v := os.Getenv("SAFEBPF_VM_PACKAGES"); v != "" {
		pkgs = strings.Fields(v)
	} else {
		var err error
		if pkgs, err = DiscoverPackages(ctx, root); err != nil {
			t.Fatal(err)
		}
	}
	b, err := BuildArtefacts(ctx, root, filepath.Join(work, "bin"), pkgs)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built %d test binaries in %s: %v (cli: %v)", len(b.Tests), b.Duration.Round(100*time.Millisecond), testPkgs(b), b.CLI != "")
	for _, f := range b.Failures {
		t.Errorf("build %s for the guests:\n%s", f.Pkg, f.Output)
	}
	switch {
	case b.CLI == "":
		t.Logf("neither cmd/safebpf nor the probejson fallback built: no kernel fixtures this run")
	case b.CLIFallback:
		t.Logf("cmd/safebpf is missing or does not build: kernel fixtures come from internal/vmtest/probejson ({\"kernel\": ...} only)")
	}

	opts := RunOptions{
		Guest: GuestConfig{Run: os.Getenv("SAFEBPF_VM_RUN"), StepTimeout: envDuration(t, "SAFEBPF_VM_STEP_TIMEOUT", 4*time.Minute),
			Bench: os.Getenv("SAFEBPF_VM_BENCH"), BenchTime: os.Getenv("SAFEBPF_VM_BENCHTIME")},
		Boot:    BootOptions{Timeout: envDuration(t, "SAFEBPF_VM_TIMEOUT", 6*time.Minute)},
		WorkDir: work,
		Logf:    t.Logf,
	}
	parallel := 1
	if v := os.Getenv("SAFEBPF_VM_PARALLEL"); v != "" {
		if parallel, err = strconv.Atoi(v); err != nil || parallel < 1 {
			t.Fatalf("SAFEBPF_VM_PARALLEL=%q: want a positive number", v)
		}
	}
	results := make([]*Result, len(kernels))
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, k := range kernels {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results[i] = RunKernel(ctx, b, k, opts)
		}()
	}
	wg.Wait()

	update := os.Getenv("SAFEBPF_VM_UPDATE_FIXTURES") == "1"
	var summary strings.Builder
	fmt.Fprintf(&summary, "kernel matrix (%d kernels, host build %s):\n", len(kernels), b.Duration.Round(100*time.Millisecond))
	for _, r := range results {
		t.Run(r.Kernel.Name, func(t *testing.T) {
			checkResult(t, root, b, r, update)
		})
		fmt.Fprintf(&summary, "  %s\n", summarize(r))
		if boot := r.Last(); boot != nil && opts.Guest.Bench != "" {
			for _, st := range boot.Console.Steps {
				for _, line := range st.Benchmarks() {
					fmt.Fprintf(&summary, "      %s: %s\n", st.Name, line)
				}
			}
		}
	}
	var table bytes.Buffer
	if err := WriteTable(&table, Columns(results), TableOptions{AllSubtests: os.Getenv("SAFEBPF_VM_TABLE_SUBTESTS") == "1"}); err != nil {
		t.Fatal(err)
	}
	report := summary.String() + "\n" + table.String()
	_ = os.WriteFile(filepath.Join(work, "matrix.txt"), []byte(report), 0o644)
	t.Logf("%s(also in %s)", report, filepath.Join(work, "matrix.txt"))
}

func testPkgs(b *Build) []string {
	var s []string
	for _, t := range b.Tests {
		s = append(s, t.Pkg)
	}
	return s
}

// summarize returns one line per kernel: package, guest release and
// /proc/version, attempts, time and test counts.
func summarize(r *Result) string {
	k := r.Kernel
	s := fmt.Sprintf("%-12s %s %s", k.Name, k.Package, k.Version)
	boot := r.Last()
	if r.Err != nil || boot == nil {
		return s + fmt.Sprintf(": error: %v", r.Err)
	}
	var pass, fail, skip int
	for _, st := range boot.Console.Steps {
		for _, t := range st.Tests {
			switch t.Outcome {
			case Pass:
				pass++
			case Fail:
				fail++
			case Skip:
				skip++
			}
		}
	}
	return s + fmt.Sprintf(": %d boot(s), %s total, initramfs %.1f MiB, %d pass / %d fail / %d skip\n      /proc/version: %s",
		len(r.Boots), r.Duration().Round(100*time.Millisecond), float64(r.InitramfsSize)/(1<<20), pass, fail, skip, boot.Console.ProcVersion)
}

func checkResult(t *testing.T, root string, b *Build, r *Result, update bool) {
	for _, p := range r.Problems(b) {
		t.Error(p)
	}
	boot := r.Last()
	if boot == nil {
		return
	}
	c := boot.Console
	if c.Release != r.Kernel.Release {
		t.Errorf("guest runs kernel %q, want %q from %s", c.Release, r.Kernel.Release, r.Kernel.Package)
	}
	if len(r.Boots) > 1 {
		t.Logf("first boot crashed and was retried; its Oops:\n\t%s", strings.Join(r.Boots[0].Console.Oops, "\n\t"))
	}
	s := c.Step(FixtureStep)
	if s == nil || !s.Ended || s.ExitCode != 0 {
		return // reported by Problems when the CLI exists
	}
	got, err := DecodeFixture(s.Data)
	if err != nil {
		t.Errorf("safebpf probe --json in the guest: %v\n%s", err, s.Data)
		return
	}
	if got.Release != r.Kernel.Release {
		t.Errorf("safebpf probe --json says release %q, want %q", got.Release, r.Kernel.Release)
	}
	if update {
		if err := WriteFixture(root, r.Kernel.Name, s.Data); err != nil {
			t.Error(err)
		} else {
			t.Logf("wrote %s", FixturePath(root, r.Kernel.Name))
		}
		return
	}
	old, err := os.ReadFile(FixturePath(root, r.Kernel.Name))
	if err != nil {
		t.Logf("no fixture for %s yet (SAFEBPF_VM_UPDATE_FIXTURES=1 writes it): %v", r.Kernel.Name, err)
		return
	}
	if k, err := DecodeFixture(old); err != nil {
		t.Errorf("fixture %s: %v", FixturePath(root, r.Kernel.Name), err)
	} else if k.Release != got.Release {
		t.Logf("fixture %s was captured on %s, the guest now runs %s (SAFEBPF_VM_UPDATE_FIXTURES=1 refreshes it)",
			FixturePath(root, r.Kernel.Name), k.Release, got.Release)
	}
}
