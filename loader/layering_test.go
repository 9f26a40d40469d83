package loader

import (
	"fmt"
	"go/build"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

const modulePath = "github.com/safebpf/safebpf"

// layers places every package of the module on the line
// probe → hazards → fallback → loader → cmd (docs/architecture.md): a
// package may import packages of its own layer or to its left, never to
// its right. Internal packages sit in the layer of what they serve. A new
// package must be placed here, or the test fails.
var layers = map[string]int{
	// Host plumbing, below probe.
	"internal/kernel":  0,
	"internal/tracefs": 0,
	"internal/perf":    0,
	// Bounded, regular-file reads and file trust (policy and catalog).
	"internal/boundedio": 0,
	"internal/trust":     0,
	// Witnesses probe runs: machine code reading, live self-tests.
	"internal/kcode":           0,
	"internal/kcode/kcodetest": 0,
	"internal/selftest":        0,
	"probe":                    1,
	"hazards":                  2,
	"fallback":                 3,
	// Program analysis feeding the planner's requests.
	"internal/elfscan": 3,
	"loader":           4,
	// The loader's telemetry (it records loader decisions; Go's internal
	// rule keeps every other package out).
	"loader/internal/telemetry": 4,
	// Test helpers: imported only by tests of loader and below.
	"internal/testutil":          4,
	"internal/testutil/fixtures": 4,
	"cmd/safebpf":                5,
	// The kernel-matrix harness and its guest programs.
	"internal/vmtest":           5,
	"internal/vmtest/vmproto":   5,
	"internal/vmtest/guestinit": 5,
	"internal/vmtest/probejson": 5,
	"examples":                  6,
	"examples/explain":          6,
	"examples/latency":          6,
	"examples/opensnoop":        6,
	"examples/otelstdout":       6,
	"examples/profiler":         6,
	"examples/readline":         6,
	"":                          6, // the module's doc package
}

// prefixLayers place whole trees: commands, examples, the matrix harness
// and test helpers, whatever subpackages they grow.
var prefixLayers = map[string]int{
	"cmd/":               5,
	"examples/":          6,
	"internal/vmtest/":   5,
	"internal/testutil/": 4,
}

// layerOf returns the layer of a package, and false when it has none.
func layerOf(pkg string) (int, bool) {
	if l, ok := layers[pkg]; ok {
		return l, true
	}
	best, layer := "", 0
	for p, l := range prefixLayers {
		if strings.HasPrefix(pkg, p) && len(p) > len(best) {
			best, layer = p, l
		}
	}
	return layer, best != ""
}

// TestLayering reads every package's imports (non-test files, from
// source: the test needs the module's source tree) and checks them
// against layers.
func TestLayering(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Skipf("needs the module's source tree: %v", err)
	}
	var pkgs []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if path != root && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
			return filepath.SkipDir
		}
		rel, _ := filepath.Rel(root, path)
		if rel == "." {
			rel = ""
		}
		p, err := build.Default.ImportDir(path, 0)
		if err != nil {
			if _, ok := err.(*build.NoGoError); ok {
				return nil
			}
			t.Errorf("read package %s: %v", rel, err)
			return nil
		}
		pkgs = append(pkgs, rel)
		layer, ok := layerOf(filepath.ToSlash(rel))
		if !ok {
			t.Errorf("package %q has no layer: add it to layers in loader/layering_test.go", rel)
			return nil
		}
		for _, v := range violations(filepath.ToSlash(rel), layer, p.Imports) {
			t.Error(v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) < 10 {
		t.Fatalf("found only %d packages under %s", len(pkgs), root)
	}
	for p := range layers {
		found := false
		for _, q := range pkgs {
			found = found || q == p
		}
		if !found && !strings.HasPrefix(p, "examples") {
			t.Logf("layers lists %q, which has no Go files (stale entry?)", p)
		}
	}
}

func displayPkg(rel string) string {
	if rel == "" {
		return modulePath
	}
	return rel
}

// violations returns the imports of package pkg (at layer) that are to
// its right.
func violations(pkg string, layer int, imports []string) []string {
	imports = append([]string(nil), imports...)
	sort.Strings(imports)
	var out []string
	for _, imp := range imports {
		if imp != modulePath && !strings.HasPrefix(imp, modulePath+"/") {
			continue
		}
		dep := strings.TrimPrefix(strings.TrimPrefix(imp, modulePath), "/")
		dl, ok := layerOf(dep)
		if !ok {
			continue // reported when the walk reaches it
		}
		if dl > layer {
			out = append(out, fmt.Sprintf("%s (layer %d) imports %s (layer %d): packages may only import to their left (probe → hazards → fallback → loader → cmd)",
				displayPkg(pkg), layer, displayPkg(dep), dl))
		}
	}
	return out
}

func TestLayeringRule(t *testing.T) {
	for _, tt := range []struct {
		pkg     string
		imports []string
		bad     int
	}{
		{"probe", []string{modulePath + "/loader", "fmt"}, 1},
		{"hazards", []string{modulePath + "/probe", modulePath + "/fallback"}, 1},
		{"loader/internal/telemetry", []string{modulePath + "/fallback", modulePath + "/probe"}, 0},
		{"loader/internal/telemetry", []string{modulePath + "/cmd/safebpf"}, 1},
		{"loader", []string{modulePath + "/fallback", modulePath + "/loader/internal/telemetry"}, 0},
		{"internal/kernel", []string{modulePath + "/probe"}, 1},
		{"cmd/safebpf", []string{modulePath + "/loader"}, 0},
	} {
		if got := violations(tt.pkg, layers[tt.pkg], tt.imports); len(got) != tt.bad {
			t.Errorf("%s importing %v: %d violations (%q), want %d", tt.pkg, tt.imports, len(got), got, tt.bad)
		}
	}
}
