package vmtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

const modulePath = "github.com/safebpf/safebpf"

// DefaultPackages are always run in the guests when they have tests.
// Packages whose tests import internal/testutil (integration tests) are
// added to them by [DiscoverPackages].
var DefaultPackages = []string{"probe", "loader", "internal/tracefs", "internal/perf", "internal/kernel"}

// TestBinary is one package's compiled test binary.
type TestBinary struct {
	// Pkg is the package directory relative to the module root ("loader",
	// "internal/tracefs"); it is also the step name in the guest.
	Pkg string
	// Path is the binary on the host.
	Path string
}

// BuildFailure is a package whose test binary did not build.
type BuildFailure struct {
	Pkg    string
	Output string
}

// Build holds the host-built artefacts shared by every guest.
type Build struct {
	// Root is the module root the binaries were built from.
	Root string
	// Init is the guest's PID-1 program.
	Init string
	// Tests are the compiled test binaries.
	Tests []TestBinary
	// CLI is the safebpf command, or "" when neither it nor the fallback
	// (./probejson, used when cmd/safebpf is missing or does not build)
	// could be built. Either prints {"kernel": ...} for `probe --json`.
	CLI string
	// CLIFallback is set when CLI is ./probejson rather than cmd/safebpf.
	CLIFallback bool
	// Prebuilt maps guest paths below /vmtest/prebuilt
	// ("loader/testdata/target/target", "examples/bin/opensnoop") to host
	// binaries: the main packages in the tested packages' testdata
	// directories and directly below them, built because the guest
	// has no go tool. Guests export SAFEBPF_VM_PREBUILT=/vmtest/prebuilt.
	Prebuilt map[string]string
	// Failures lists packages (or the CLI) that did not build.
	Failures []BuildFailure
	// Duration is how long building took.
	Duration time.Duration
}

// ModuleRoot walks up from dir to the directory holding go.mod.
func ModuleRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("find module root: %w", err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("find module root above %s: no go.mod", dir)
		}
	}
}

// DiscoverPackages returns, relative to root, the packages to run in the
// guests: those of [DefaultPackages] that have tests, plus every package
// whose tests import internal/testutil. This package is never included.
func DiscoverPackages(ctx context.Context, root string) ([]string, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-e", "-f",
		`{{.ImportPath}}|{{len .TestGoFiles}}|{{len .XTestGoFiles}}|{{join .TestImports ","}},{{join .XTestImports ","}}`, "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("list packages: %w", err)
	}
	var pkgs []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.SplitN(line, "|", 4)
		if len(f) != 4 {
			continue
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(f[0], modulePath), "/")
		if rel == "" || rel == "internal/vmtest" || strings.HasPrefix(rel, "internal/vmtest/") {
			continue
		}
		hasTests := f[1] != "0" || f[2] != "0"
		integration := slices.Contains(strings.Split(f[3], ","), modulePath+"/internal/testutil")
		if hasTests && (integration || slices.Contains(DefaultPackages, rel)) {
			pkgs = append(pkgs, rel)
		}
	}
	return pkgs, nil
}

// BuildArtefacts compiles, into out, the guest init, a static test binary
// per package in pkgs (relative to root) and the safebpf CLI when
// cmd/safebpf exists. A package that fails to build is recorded in
// Build.Failures; only a failure to build the init is an error.
func BuildArtefacts(ctx context.Context, root, out string, pkgs []string) (*Build, error) {
	start := time.Now()
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("create build dir: %w", err)
	}
	b := &Build{Root: root, Init: filepath.Join(out, "init")}
	if err := buildInit(ctx, root, b.Init); err != nil {
		return nil, err
	}
	for _, p := range pkgs {
		bin := filepath.Join(out, strings.ReplaceAll(p, "/", "_")+".test")
		_ = os.Remove(bin)
		msg, err := goCmd(ctx, root, "test", "-c", "-vet=off", "-o", bin, "./"+p)
		if err != nil {
			b.Failures = append(b.Failures, BuildFailure{Pkg: p, Output: msg})
			continue
		}
		if _, err := os.Stat(bin); err != nil {
			continue // no test files
		}
		b.Tests = append(b.Tests, TestBinary{Pkg: p, Path: bin})
	}
	b.Prebuilt = map[string]string{}
	for _, t := range b.Tests {
		mains, _ := filepath.Glob(filepath.Join(root, t.Pkg, "testdata", "*", "main.go"))
		for _, m := range mains {
			dir := filepath.Dir(m)
			name := filepath.Base(dir)
			bin := filepath.Join(out, "prebuilt", t.Pkg, "testdata", name, name)
			if msg, err := goCmd(ctx, root, "build", "-o", bin, "./"+filepath.Join(t.Pkg, "testdata", name)); err != nil {
				b.Failures = append(b.Failures, BuildFailure{Pkg: t.Pkg + "/testdata/" + name, Output: msg})
				continue
			}
			b.Prebuilt[filepath.ToSlash(filepath.Join(t.Pkg, "testdata", name, name))] = bin
		}
		// Programs the package's tests run: examples/<name>/main.go becomes
		// /vmtest/prebuilt/examples/bin/<name> (examples_test.go looks there).
		progs, _ := filepath.Glob(filepath.Join(root, t.Pkg, "*", "main.go"))
		for _, m := range progs {
			name := filepath.Base(filepath.Dir(m))
			bin := filepath.Join(out, "prebuilt", t.Pkg, "bin", name)
			if msg, err := goCmd(ctx, root, "build", "-o", bin, "./"+filepath.Join(t.Pkg, name)); err != nil {
				b.Failures = append(b.Failures, BuildFailure{Pkg: t.Pkg + "/" + name, Output: msg})
				continue
			}
			b.Prebuilt[filepath.ToSlash(filepath.Join(t.Pkg, "bin", name))] = bin
		}
	}
	cli := filepath.Join(out, "safebpf")
	_ = os.Remove(cli)
	if hasGoFiles(filepath.Join(root, "cmd", "safebpf")) {
		if msg, err := goCmd(ctx, root, "build", "-o", cli, "./cmd/safebpf"); err != nil {
			b.Failures = append(b.Failures, BuildFailure{Pkg: "cmd/safebpf", Output: msg})
		} else {
			b.CLI = cli
		}
	}
	if b.CLI == "" {
		if msg, err := goCmd(ctx, root, "build", "-o", cli, "./internal/vmtest/probejson"); err != nil {
			b.Failures = append(b.Failures, BuildFailure{Pkg: "internal/vmtest/probejson", Output: msg})
		} else {
			b.CLI, b.CLIFallback = cli, true
		}
	}
	b.Duration = time.Since(start)
	return b, nil
}

// buildInit builds the guest's PID-1 program (./guestinit) to out.
func buildInit(ctx context.Context, root, out string) error {
	if msg, err := goCmd(ctx, root, "build", "-trimpath", "-o", out, "./internal/vmtest/guestinit"); err != nil {
		return fmt.Errorf("build guest init: %w\n%s", err, msg)
	}
	return nil
}

func goCmd(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	return buf.String(), err
}

func hasGoFiles(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	for _, f := range m {
		if !strings.HasSuffix(f, "_test.go") {
			return true
		}
	}
	return false
}
