package probe

import (
	"context"
	"fmt"
	"runtime"

	"github.com/safebpf/safebpf/internal/kernel"
	"github.com/safebpf/safebpf/internal/selftest"
)

// selfTestUretprobeSeccomp names the uretprobe-under-seccomp self-test
// (package internal/selftest): it holds when a process whose seccomp
// filter does not allow the uretprobe syscall is killed on returning from
// a function that has a uretprobe.
const selfTestUretprobeSeccomp = "uretprobe-seccomp-kill"

// uretprobeSyscall is the x86-64 entry of the uretprobe syscall (6.11+).
const uretprobeSyscall = "__x64_sys_uretprobe"

// observeSelfTest runs a live self-test, only on the running host and only
// where it can matter.
func observeSelfTest(ctx context.Context, h *kernel.Host, k *Kernel, f Fact) Observation {
	if f.Name != selfTestUretprobeSeccomp {
		return Unobserved(fmt.Sprintf("%s: no such self-test", f))
	}
	if h != nil && h.FS != nil {
		return Unobserved(fmt.Sprintf("%s: self-tests run only on the live host, not on files read from a root", f))
	}
	if k.Arch != "amd64" || runtime.GOARCH != "amd64" {
		return Unobserved(fmt.Sprintf("%s: arch %s: the uretprobe syscall and the self-test's helper are x86-64 only", f, k.Arch))
	}
	if !kernel.Privileged() {
		return Unobserved(fmt.Sprintf("%s: not root (attaching the uretprobe needs CAP_BPF and CAP_PERFMON)", f))
	}
	if s := k.Support(Uretprobe); s.No() {
		return Unobserved(fmt.Sprintf("%s: uretprobes unavailable: %s", f, s.Reason))
	}
	present, known := k.Symbol(uretprobeSyscall)
	if !known {
		scan, err := h.Kallsyms([]string{uretprobeSyscall})
		if err != nil {
			return Unobserved(fmt.Sprintf("%s: %v", f, err))
		}
		if scan.Lines == 0 {
			return Unobserved(fmt.Sprintf("%s: /proc/kallsyms is empty", f))
		}
		present = scan.Found[uretprobeSyscall]
	}
	if !present {
		return Unobserved(fmt.Sprintf("%s: no uretprobe syscall (%s not in kallsyms): nothing to test", f, uretprobeSyscall))
	}
	r, err := selftest.UretprobeSeccomp(ctx)
	if err != nil {
		return Unobserved(fmt.Sprintf("%s: %v", f, err))
	}
	return Observed(r.Outcome == selftest.Killed, "self-test: helper "+r.String())
}
