//go:build linux

package probe

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

	"github.com/safebpf/safebpf/internal/testutil"
)

// detectOnceEnv makes TestDetectOnce run one Detect and print its time:
// BenchmarkDetect's cold rounds run it in a fresh process each.
const detectOnceEnv = "SAFEBPF_PROBE_DETECT_ONCE"

// TestDetectOnce is BenchmarkDetect's child: skipped unless run by it.
func TestDetectOnce(t *testing.T) {
	if os.Getenv(detectOnceEnv) == "" {
		t.Skip("run by BenchmarkDetect in a fresh process")
	}
	start := time.Now()
	if _, err := Detect(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("detect-ns %d\n", time.Since(start).Nanoseconds())
}

// BenchmarkDetect measures probe.Detect on this machine. "cold": each
// round runs Detect once in a fresh process (no cilium/ebpf feature cache,
// no parsed kernel BTF), as an agent starting up does, and reports the
// median time Detect took inside it (the process's own start-up is not
// counted). "warm": Detect again in this process, its own cache bypassed.
func BenchmarkDetect(b *testing.B) {
	testutil.RequirePrivileged(b)
	b.Run("cold", func(b *testing.B) {
		self, err := os.Executable()
		if err != nil {
			b.Fatal(err)
		}
		var ds []time.Duration
		for b.Loop() {
			cmd := exec.Command(self, "-test.run=^TestDetectOnce$", "-test.count=1")
			cmd.Env = append(os.Environ(), detectOnceEnv+"=1")
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
	})
	b.Run("warm", func(b *testing.B) {
		ctx := context.Background()
		for b.Loop() {
			if _, err := Detect(ctx, &Options{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
