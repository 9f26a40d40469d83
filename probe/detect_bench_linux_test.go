//go:build linux

package probe_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/internal/testutil"
	"github.com/safebpf/safebpf/probe"
)

// detectOnceEnv makes TestDetectOnce run one Detect and print its time:
// BenchmarkDetect's cold rounds run it in a fresh process each. Its value
// is "all" for every fact the built-in catalog asks, "without-self-tests"
// for all but the live self-tests.
const detectOnceEnv = "SAFEBPF_PROBE_DETECT_ONCE"

// TestDetectOnce is BenchmarkDetect's child: skipped unless run by it.
func TestDetectOnce(t *testing.T) {
	which := os.Getenv(detectOnceEnv)
	if which == "" {
		t.Skip("run by BenchmarkDetect in a fresh process")
	}
	facts := hazards.Builtin().Facts()
	if which == "without-self-tests" {
		facts = slices.DeleteFunc(facts, func(f probe.Fact) bool { return f.Kind == probe.FactSelfTest })
	}
	start := time.Now()
	if _, err := probe.Detect(context.Background(), &probe.Options{Facts: facts}); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("detect-ns %d\n", time.Since(start).Nanoseconds())
}

// BenchmarkDetect measures probe.Detect on this machine, looking for the
// facts the built-in catalog asks for, as loader.New does. "cold": each
// round runs Detect once in a fresh process (no cilium/ebpf feature cache,
// no parsed kernel BTF, no self-test result), as an agent starting up
// does, and reports the median time Detect took inside it (the process's
// own start-up is not counted). "cold-without-self-tests": the same
// without the live self-tests (a helper process run twice under a
// uretprobe), which take most of a cold detection. "warm": Detect again in
// this process.
func BenchmarkDetect(b *testing.B) {
	testutil.RequirePrivileged(b)
	b.Run("cold", func(b *testing.B) { coldDetect(b, "all") })
	b.Run("cold-without-self-tests", func(b *testing.B) { coldDetect(b, "without-self-tests") })
	b.Run("warm", func(b *testing.B) {
		ctx := context.Background()
		opts := &probe.Options{Facts: hazards.Builtin().Facts()}
		for b.Loop() {
			if _, err := probe.Detect(ctx, opts); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// coldDetect runs TestDetectOnce in a fresh process per round and reports
// the median time Detect took there.
func coldDetect(b *testing.B, which string) {
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	var ds []time.Duration
	for b.Loop() {
		cmd := exec.Command(self, "-test.run=^TestDetectOnce$", "-test.count=1")
		cmd.Env = append(os.Environ(), detectOnceEnv+"="+which)
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("detect in a fresh process: %v\n%s", err, out)
		}
		_, rest, ok := strings.Cut(string(out), "detect-ns ")
		if !ok {
			b.Fatalf("no time in the child's output:\n%s", out)
		}
		ns, err := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		ds = append(ds, time.Duration(ns))
	}
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2].Nanoseconds()), "detect-ns/op")
	b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, "detect-ms")
}
