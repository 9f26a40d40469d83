package vmtest

import (
	"slices"
	"strings"
	"testing"
)

// TestBenchPlan: SAFEBPF_VM_BENCH's regexp reaches the test binaries,
// without running their tests unless SAFEBPF_VM_RUN asks, and the result
// lines are found in a step's output.
func TestBenchPlan(t *testing.T) {
	b := &Build{Tests: []TestBinary{{Pkg: "loader", Path: "/x/loader.test"}}}
	for _, tc := range []struct {
		cfg  GuestConfig
		want []string
		not  []string
	}{
		{GuestConfig{}, nil, []string{"-test.bench"}},
		{GuestConfig{Bench: "BulkKprobes"}, []string{"-test.bench=BulkKprobes", "-test.run=^$"}, []string{"-test.benchtime"}},
		{GuestConfig{Bench: ".", BenchTime: "3x", Run: "TestX"}, []string{"-test.bench=.", "-test.benchtime=3x", "-test.run=TestX"}, []string{"-test.run=^$"}},
	} {
		p := Plan(b, Kernel{Name: "k"}, tc.cfg)
		args := p.Steps[0].Args
		for _, w := range tc.want {
			if !slices.Contains(args, w) {
				t.Errorf("%+v: args %v lack %s", tc.cfg, args, w)
			}
		}
		for _, n := range tc.not {
			if slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, n) }) {
				t.Errorf("%+v: args %v have %s", tc.cfg, args, n)
			}
		}
	}
	s := &Step{Output: []string{
		"goos: linux",
		"BenchmarkBulkKprobes",
		"    bulk_bench_test.go:10: some log",
		"BenchmarkBulkKprobes-2   \t       3\t2589631606 ns/op\t        28.79 cilium-single/safebpf-batch",
		"PASS",
	}}
	got := s.Benchmarks()
	if len(got) != 1 || !strings.HasPrefix(got[0], "BenchmarkBulkKprobes-2 3 2589631606 ns/op") {
		t.Errorf("benchmarks %q", got)
	}
}
