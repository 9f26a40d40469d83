//go:build linux

package examples_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/google/go-cmp/cmp"

	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/internal/testutil"
	"github.com/safebpf/safebpf/loader"
	"github.com/safebpf/safebpf/probe"
)

// debian describes a Debian cloud kernel as `safebpf check` would: the
// release, /proc/version with the Debian package version (and the build
// flags Debian's kernels print: plain SMP on 5.10, PREEMPT_DYNAMIC from
// 6.1), two CPUs.
func debian(t *testing.T, release, pkg string) *probe.Kernel {
	t.Helper()
	flags := "SMP PREEMPT_DYNAMIC"
	if strings.HasPrefix(release, "5.10.") {
		flags = "SMP"
	}
	k, err := probe.Describe(probe.Description{
		Release:     release,
		ProcVersion: fmt.Sprintf("Linux version %s (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0) #1 %s Debian %s (2024-02-01)", release, flags, pkg),
		OSRelease:   "ID=debian\nVERSION_ID=\"12\"\n",
		CPUs:        2,
	})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// summarize turns an example's plans into one line per attached program or
// refused group: "program: requested→chosen action settings [hazards and
// missing mechanisms]".
func summarize(plans []loader.ProgramPlan) []string {
	var out []string
	for _, p := range plans {
		d := p.Decision
		if d == nil || !(p.Chosen || (p.Refusal != "" && p.Mechanism == d.Requested)) {
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%s: %s→%s %s", p.Program, d.Requested, d.Chosen, d.Action)
		s := d.Settings
		if s.MaxActive > 0 {
			fmt.Fprintf(&b, " maxactive=%d", s.MaxActive)
		}
		if pe := s.PerfEvent; pe != nil {
			kind := "software"
			if pe.Hardware {
				kind = "hardware"
			}
			fmt.Fprintf(&b, " perf=%s@%dHz", kind, pe.Frequency)
		}
		if pc := s.Pacing; pc != nil {
			fmt.Fprintf(&b, " paced=%s/%d", pc.Interval, pc.Concurrency)
		}
		var why []string
		for _, st := range d.Steps {
			if st.Hazard != "" {
				why = append(why, string(st.Hazard))
			}
			if st.Missing != "" {
				why = append(why, "missing "+string(st.Missing))
			}
		}
		fmt.Fprintf(&b, " %v", why)
		out = append(out, b.String())
	}
	sort.Strings(out)
	return out
}

func loadPolicy(t *testing.T, path string) *hazards.Policy {
	t.Helper()
	p, err := hazards.LoadPolicy(trustedCopy(t, path))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// trustedCopy copies the repository file at path into a directory a
// privileged process trusts and returns the copy's path: run as root, a
// policy in a checkout below a world-writable directory (a clone in /tmp)
// is refused, as it must be.
func trustedCopy(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return testutil.WriteTrusted(t, filepath.Base(path), b)
}

// TestDecisionsOnOtherKernels plans each example's committed object for
// real Debian kernels described offline, and checks the decisions the
// READMEs promise: fentry→kprobe and fexit→kretprobe where
// fentry-zap-pid-ns-deadlock applies (not on Debian 5.10, built without
// preemption), the profiler kept on its event where only its user-stack
// path matters, the kretprobe cap with latency's cap-policy.yaml, pacing
// before 6.14, and the uretprobe refusal on 6.12 before 6.12.14.
func TestDecisionsOnOtherKernels(t *testing.T) {
	deb5_10 := debian(t, "5.10.0-28-cloud-amd64", "5.10.209-2")
	deb6_1_20 := debian(t, "6.1.0-9-cloud-amd64", "6.1.20-1")
	deb6_1_76 := debian(t, "6.1.0-18-cloud-amd64", "6.1.76-1")
	deb6_12 := debian(t, "6.12.38+deb13-cloud-amd64", "6.12.38-1")
	deb6_12_9 := debian(t, "6.12.9-cloud-amd64", "6.12.9-1")
	capPolicy := loadPolicy(t, filepath.Join("latency", "cap-policy.yaml"))
	pacePolicy := loadPolicy(t, filepath.Join("readline", "pacing-policy.yaml"))

	tests := []struct {
		example string
		kernel  *probe.Kernel
		opts    *loader.Options
		want    []string
	}{
		// Debian 5.10 is built without preemption: no Tasks RCU, fentry stays (as in the QEMU guest).
		{"opensnoop", deb5_10, nil, []string{"opensnoop_fentry: fentry→fentry allow []"}},
		{"opensnoop", deb6_1_76, nil, []string{"opensnoop_kprobe: fentry→kprobe downgrade [fentry-zap-pid-ns-deadlock]"}},
		{"opensnoop", deb6_12, nil, []string{"opensnoop_fentry: fentry→fentry allow []"}},
		{"latency", deb6_1_76, nil, []string{
			"latency_kprobe: fentry→kprobe downgrade [fentry-zap-pid-ns-deadlock]",
			"latency_kretprobe: fexit→kretprobe downgrade maxactive=512 [fentry-zap-pid-ns-deadlock kretprobe-pool-exhaustion]",
		}},
		{"latency", deb6_1_76, &loader.Options{Policy: capPolicy}, []string{
			"latency_kprobe: fentry→kprobe downgrade [fentry-zap-pid-ns-deadlock]",
			"latency_kretprobe: fexit→kretprobe downgrade maxactive=512 [fentry-zap-pid-ns-deadlock kretprobe-contention kretprobe-pool-exhaustion]",
		}},
		{"latency", deb6_12, nil, []string{"latency_fentry: fentry→fentry allow []", "latency_fexit: fexit→fexit allow []"}},
		// The profiler only takes user stacks: fixed in 6.0, so 6.1.20 keeps the hardware event.
		{"profiler", deb6_1_20, nil, []string{"profile: perf-event-hardware→perf-event-hardware allow perf=hardware@99Hz []"}},
		{"profiler", deb6_1_76, nil, []string{"profile: perf-event-hardware→perf-event-hardware allow perf=hardware@99Hz []"}},
		{"readline", deb6_1_76, nil, []string{"readline_ret: uretprobe→uretprobe pace paced=1ms/1 [uprobe-mmap-lock-stall]"}},
		{"readline", deb6_1_76, &loader.Options{Policy: pacePolicy}, []string{"readline_ret: uretprobe→uretprobe pace paced=25ms/1 [uprobe-mmap-lock-stall]"}},
		// The seccomp passthrough reached 6.12 in 6.12.14 (research C3).
		{"readline", deb6_12_9, nil, []string{"readline_ret: uretprobe→ refuse [uretprobe-seccomp-kill]"}},
		{"readline", deb6_12, nil, []string{"readline_ret: uretprobe→uretprobe pace paced=1ms/1 [uprobe-mmap-lock-stall]"}},
		{"readline", deb6_12_9, &loader.Options{Force: []hazards.ID{"uretprobe-seccomp-kill"}}, []string{
			"readline_ret: uretprobe→uretprobe pace paced=1ms/1 [uprobe-mmap-lock-stall uretprobe-seccomp-kill]",
		}},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%s/%s", tt.example, tt.kernel.Release)
		if tt.opts != nil {
			name += "/policy"
		}
		t.Run(name, func(t *testing.T) {
			spec, err := ebpf.LoadCollectionSpec(filepath.Join(tt.example, tt.example+"_x86_bpfel.o"))
			if err != nil {
				t.Fatal(err)
			}
			plans, err := loader.PlanSpec(spec, tt.kernel, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, summarize(plans)); diff != "" {
				t.Errorf("decisions (-want +got):\n%s", diff)
			}
		})
	}
}
