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

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/internal/testutil"
	"github.com/safebpf/safebpf/loader"
	"github.com/safebpf/safebpf/probe"
)

// detectOnceEnv makes TestDetectOnce time one piece of detection in a
// fresh process and print it: BenchmarkDetect's cold rounds run it there.
// Its value names what is timed (the cases of BenchmarkDetect):
//
//   - "start-up": probe.Detect as loader.New calls it, the kernel's
//     identity without mechanisms or facts;
//   - "loader-new": loader.New itself (that detection, the catalog,
//     telemetry set-up, the tracefs clean-up);
//   - "all": every mechanism and every fact the built-in catalog asks, as
//     `safebpf probe` does;
//   - "without-self-tests": the same without the live self-tests;
//   - "first-uretprobe", "first-fentry": after the start-up detection
//     (not timed), what the first request for a uretprobe (with its
//     self-test), or for an fentry program with a kprobe variant (the BTF
//     parse and trial loads), makes the loader look for: the mechanisms
//     fallback.Assessable names and their hazards' facts.
const detectOnceEnv = "SAFEBPF_PROBE_DETECT_ONCE"

// TestDetectOnce is BenchmarkDetect's child: skipped unless run by it.
func TestDetectOnce(t *testing.T) {
	which := os.Getenv(detectOnceEnv)
	if which == "" {
		t.Skip("run by BenchmarkDetect in a fresh process")
	}
	ctx := context.Background()
	cat := hazards.Builtin()
	var opts *probe.Options
	switch which {
	case "start-up":
		opts = &probe.Options{Mechanisms: []probe.Mechanism{}}
	case "all":
		opts = &probe.Options{Facts: cat.Facts()}
	case "without-self-tests":
		facts := slices.DeleteFunc(cat.Facts(), func(f probe.Fact) bool { return f.Kind == probe.FactSelfTest })
		opts = &probe.Options{Facts: facts}
	case "first-uretprobe", "first-fentry":
		if _, err := probe.Detect(ctx, &probe.Options{Mechanisms: []probe.Mechanism{}}); err != nil {
			t.Fatal(err)
		}
		req := fallback.Request{Mechanism: probe.Uretprobe, Seccomp: true}
		if which == "first-fentry" {
			req = fallback.Request{Mechanism: probe.Fentry, Alternatives: []probe.Mechanism{probe.Kprobe}}
		}
		ms := fallback.Assessable(req)
		opts = &probe.Options{Mechanisms: ms, Facts: cat.FactsFor(ms...)}
	case "loader-new":
		start := time.Now()
		l, err := loader.New(nil)
		took := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
		fmt.Printf("detect-ns %d\n", took.Nanoseconds())
		return
	default:
		t.Fatalf("%s=%q: unknown case", detectOnceEnv, which)
	}
	start := time.Now()
	if _, err := probe.Detect(ctx, opts); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("detect-ns %d\n", time.Since(start).Nanoseconds())
}

// BenchmarkDetect measures, on this machine, what detecting the kernel
// costs an agent. The cold cases run in a fresh process each round (no
// cilium/ebpf feature cache, no parsed kernel BTF, no self-test result)
// and report the median time inside it (the process's own start-up is not
// counted):
//
//   - "cold": the detection loader.New makes at start-up (the kernel's
//     identity; mechanisms and facts come when a request needs them);
//   - "cold-loader-new": all of loader.New;
//   - "cold-all-facts": every mechanism and every fact of the built-in
//     catalog, what `safebpf probe` does (and what loader.New did before
//     mechanisms and facts were looked for on demand);
//   - "cold-without-self-tests": the same without the live self-tests (a
//     helper process run twice under a uretprobe);
//   - "first-request-uretprobe": the one-time cost the first uretprobe
//     request of a process pays after start-up, the uretprobe-seccomp
//     self-test included;
//   - "first-request-fentry": the same for an fentry request with a kprobe
//     variant: the kernel BTF parse and the BTF-typed trial loads.
//
// "warm": Detect of every mechanism and fact again in this process, from
// its cache (the first detection is not timed).
func BenchmarkDetect(b *testing.B) {
	testutil.RequirePrivileged(b)
	b.Run("cold", func(b *testing.B) { coldDetect(b, "start-up") })
	b.Run("cold-loader-new", func(b *testing.B) { coldDetect(b, "loader-new") })
	b.Run("cold-all-facts", func(b *testing.B) { coldDetect(b, "all") })
	b.Run("cold-without-self-tests", func(b *testing.B) { coldDetect(b, "without-self-tests") })
	b.Run("first-request-uretprobe", func(b *testing.B) { coldDetect(b, "first-uretprobe") })
	b.Run("first-request-fentry", func(b *testing.B) { coldDetect(b, "first-fentry") })
	b.Run("warm", func(b *testing.B) {
		ctx := context.Background()
		opts := &probe.Options{Facts: hazards.Builtin().Facts()}
		// Warm the cache: b.Loop times from its first call.
		if _, err := probe.Detect(ctx, opts); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := probe.Detect(ctx, opts); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// coldDetect runs TestDetectOnce in a fresh process per round and reports
// the median time it measured there.
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
