//go:build linux

package probe

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/safebpf/safebpf/internal/kcode"
	"github.com/safebpf/safebpf/internal/kernel"
	"github.com/safebpf/safebpf/internal/testutil"
)

// witnessWant is what a kernel must say about a fact, and what its witness must
// say.
type witnessWant struct {
	mode     witnessMode
	contains string
}

type witnessMode int

const (
	wantHolds      witnessMode = iota + 1
	wantHoldsNot               // conclusively not
	wantUnobserved             // inconclusive, for the reason in contains
)

func witnessHolds(s string) witnessWant      { return witnessWant{wantHolds, s} }
func witnessHoldsNot(s string) witnessWant   { return witnessWant{wantHoldsNot, s} }
func witnessUnobserved(s string) witnessWant { return witnessWant{wantUnobserved, s} }

// liveWants is the ground truth for each kernel the tests run on: the
// kernel matrix's Debian guests (SAFEBPF_VM_KERNEL) and, for "", the
// development host (Firecracker 6.18: no /proc/kcore). Sources: upstream
// releases (HAZARDS-RESEARCH §0, §1, §6) and Debian's changelog of each
// guest's package (usr/share/doc/linux-image-*/changelog.gz), which lists
// every stable commit it took:
//   - d319f344561d "mm: Fix copy_from_user_nofault()." (6.4; Debian
//     6.1.37-1): 6.1.192 and 6.12.117 call nmi_uaccess_okay; 5.10.262's
//     changelog does not list it.
//   - 0aef499f3172 "mm/usercopy: Detect vmalloc overruns" (5.19): the
//     vmalloc lookup is in 6.1 and 6.12; 5.10 has no find_vmap_area at all.
//   - 59298997df89 "x86/uaccess: avoid check_object_size() in
//     copy_from_user_nmi()" (6.0): 6.1 and 6.12 no longer check there;
//     5.10.262's changelog does not list it, so 5.10 still calls
//     __check_object_size (harmless there: no vmalloc lookup).
//   - 28ead3eaabc1 "bpf: Prevent tail call between progs attached to
//     different hooks" (6.12-rc1; Debian 6.1.135-1 and 6.11.4-1) added
//     owner.attach_func_proto, and "bpf: Move bpf map owner out of common
//     struct" (Debian 6.1.153-1 and 6.12.48-1) made owner a pointer to
//     struct bpf_map_owner; 5.10's bpf_map has no owner at all.
//   - cf6cb56ef244 "seccomp: passthrough uretprobe systemcall without
//     filtering" (6.14, 6.12.14; Debian 6.12.15-1): 6.12.117 and 6.18 let
//     the helper live; 5.10 and 6.1 have no uretprobe syscall.
var liveWants = map[string]map[Fact]witnessWant{
	"debian-5.10": {
		factNofaultFix:   witnessHoldsNot("no call to nmi_uaccess_okay in copy_from_user_nofault"),
		factVmallocCheck: witnessHoldsNot("find_vmap_area is not in kallsyms"),
		factNMICheck:     witnessHolds("call __check_object_size at copy_from_user_nmi+0x"),
		factTailCallBTF:  witnessHoldsNot("struct bpf_map has no member owner"),
		factSeccomp:      witnessUnobserved("__x64_sys_uretprobe not in kallsyms"),
	},
	"debian-6.1": {
		factNofaultFix:   witnessHolds("call nmi_uaccess_okay at copy_from_user_nofault+0x"),
		factVmallocCheck: witnessHolds("call find_vmap_area at "),
		factNMICheck:     witnessHoldsNot("no call to __check_object_size"),
		factTailCallBTF:  witnessHolds("member struct bpf_map.owner (struct bpf_map_owner *).attach_func_proto present"),
		factSeccomp:      witnessUnobserved("__x64_sys_uretprobe not in kallsyms"),
	},
	"debian-6.12": {
		factNofaultFix:   witnessHolds("call nmi_uaccess_okay at copy_from_user_nofault+0x"),
		factVmallocCheck: witnessHolds("call find_vmap_area at "),
		factNMICheck:     witnessHoldsNot("no call to __check_object_size"),
		factTailCallBTF:  witnessHolds("member struct bpf_map.owner (struct bpf_map_owner *).attach_func_proto present"),
		factSeccomp:      witnessHoldsNot("survived: exit 0, uretprobe fired 1 time(s)"),
	},
	"": {
		factNofaultFix:   witnessUnobserved("/proc/kcore: no such file"),
		factVmallocCheck: witnessUnobserved("/proc/kcore: no such file"),
		factNMICheck:     witnessUnobserved("/proc/kcore: no such file"),
		factTailCallBTF:  witnessHolds("attach_func_proto present"),
		factSeccomp:      witnessHoldsNot("survived: exit 0, uretprobe fired 1 time(s)"),
	},
}

// TestWitnessLiveKernel asks the running kernel every fact of issue 9 and
// holds the answers against the sources above. In the kernel matrix it
// runs in each Debian guest; its log names the instructions found and what
// each witness cost.
func TestWitnessLiveKernel(t *testing.T) {
	testutil.RequirePrivileged(t)
	guest := os.Getenv("SAFEBPF_VM_KERNEL")
	wants, ok := liveWants[guest]
	if !ok {
		t.Skipf("no ground truth for guest kernel %q", guest)
	}
	if guest == "" && !strings.Contains(witnessHostRelease(t), "fc") {
		t.Skipf("ground truth is known for the matrix guests and the Firecracker 6.18 development host, not for %s", witnessHostRelease(t))
	}
	before := witnessChildren(t)
	if core, closeCore, why := openKcore(&kernel.Host{}); why == "" {
		closeCore()
		start := time.Now()
		syms, err := hostSymbols(&kernel.Host{})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("kcore: %v; kallsyms: %d text symbols of %d lines read in %s (the first call fact pays this)",
			core.Machine, syms.Len(), syms.Lines, time.Since(start).Round(10*time.Microsecond))
	}
	h := &kernel.Host{}
	k := &Kernel{Arch: runtime.GOARCH}
	for _, f := range witnessFacts {
		start := time.Now()
		o := observeWitness(context.Background(), h, k, f)
		elapsed := time.Since(start)
		verdict := "unobserved"
		if o.Known() {
			verdict = map[bool]string{true: "holds", false: "does not hold"}[*o.Holds]
		}
		t.Logf("%s: %s in %s: %s", f, verdict, elapsed.Round(10*time.Microsecond), o.Witness)
		w := wants[f]
		switch {
		case w.mode == wantUnobserved:
			if o.Known() {
				t.Errorf("%s: conclusive (holds=%v), want inconclusive", f, *o.Holds)
			}
		case !o.Known():
			t.Errorf("%s: inconclusive (%s), want a conclusive answer", f, o.Witness)
		case *o.Holds != (w.mode == wantHolds):
			t.Errorf("%s: holds=%v, want %v", f, *o.Holds, w.mode == wantHolds)
		}
		if !strings.Contains(o.Witness, w.contains) {
			t.Errorf("%s: witness %q does not say %q", f, o.Witness, w.contains)
		}
	}
	if after := witnessChildren(t); after != before {
		t.Errorf("child processes left behind: %q, before %q", after, before)
	}
	logWitnessListings(t, h)
}

// logWitnessListings logs the direct branches of the functions the call facts
// read, for the record.
func logWitnessListings(t *testing.T, h *kernel.Host) {
	core, closeCore, why := openKcore(h)
	if why != "" {
		return
	}
	defer closeCore()
	syms, err := hostSymbols(h)
	if err != nil {
		t.Logf("kallsyms: %v", err)
		return
	}
	for _, fn := range []string{"copy_from_user_nofault", "__check_object_size", "check_heap_object", "copy_from_user_nmi"} {
		l, err := kcode.Listing(syms, core, runtime.GOARCH, fn)
		if err != nil {
			t.Logf("%s: %v", fn, err)
			continue
		}
		var branches []string
		for _, line := range strings.Split(l, "\n") {
			if f := strings.Split(line, "\t"); len(f) == 3 && (strings.HasPrefix(f[2], "call") || strings.HasPrefix(f[2], "jmp")) {
				branches = append(branches, "\t"+line)
			}
		}
		t.Logf("%s: %d instructions; direct calls and jumps:\n%s", fn, strings.Count(l, "\n"), strings.Join(branches, "\n"))
	}
}

func witnessHostRelease(t *testing.T) string {
	r, _, err := (&kernel.Host{}).UnameStrings()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// witnessChildren lists this process's children (all threads).
func witnessChildren(t *testing.T) string {
	t.Helper()
	files, _ := filepath.Glob("/proc/self/task/*/children")
	var kids []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		kids = append(kids, strings.Fields(string(b))...)
	}
	return strings.Join(kids, " ")
}
