package vmtest

import (
	"strconv"
	"strings"
)

// benchArgs returns the test binary arguments that run cfg's benchmarks.
func benchArgs(cfg GuestConfig) []string {
	if cfg.Bench == "" {
		return nil
	}
	args := []string{"-test.bench=" + cfg.Bench}
	if cfg.Run == "" {
		args = append(args, "-test.run=^$")
	}
	if cfg.BenchTime != "" {
		args = append(args, "-test.benchtime="+cfg.BenchTime)
	}
	return args
}

// Benchmarks returns the benchmark result lines of a step's output
// ("BenchmarkName-2  5  123 ns/op ..."), in order.
func (s *Step) Benchmarks() []string {
	var out []string
	for _, line := range s.Output {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		out = append(out, strings.Join(f, " "))
	}
	return out
}
