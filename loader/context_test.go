package loader

import (
	"bufio"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/probe"
)

// TestAttachPointAttachTo: requests carry what the loader's test objects
// attach to, as the kernel names it (a ksyscall section as the wrapper
// resolve names), and the execution context probe derives from it.
func TestAttachPointAttachTo(t *testing.T) {
	for _, tt := range []struct {
		object, program string
		want            []string
		ctx             probe.Occurrence
	}{
		{"ctx", "getpid_entry", []string{"__x64_sys_getpid"}, probe.Never},
		{"ctx", "timer_tick", []string{"update_process_times"}, probe.Maybe},
		{"ctx", "tp_getpid_entry", []string{"syscalls/sys_enter_getpid"}, probe.Never},
		{"ctx", "tp_timer_tick", []string{"timer/hrtimer_expire_entry"}, probe.Maybe},
		{"syscall", "getpgid_fentry", []string{"__x64_sys_getpgid"}, probe.Never},
		{"syscall", "getpgid_ksyscall", []string{"__x64_sys_getpgid"}, probe.Never},
		{"syscall", "getpgid_return", []string{"__x64_sys_getpgid"}, probe.Never},
		{"tp", "sys_enter_btf", []string{"sys_enter"}, probe.Never},
		{"tp", "sys_enter_raw", []string{"sys_enter"}, probe.Never},
		{"tp", "sys_enter_tp", []string{"raw_syscalls/sys_enter"}, probe.Never},
		{"kglob", "get_id", []string{"__x64_sys_get*id"}, probe.Never},
		{"pair", "read_entry", []string{"vfs_read"}, probe.Maybe},
		{"pair", "read_exit", []string{"vfs_read"}, probe.Maybe},
		{"lsm", "count_open", nil, probe.Maybe},
	} {
		spec := object(t, tt.object)
		ps, ok := spec.Programs[tt.program]
		if !ok {
			t.Errorf("%s.o has no program %s", tt.object, tt.program)
			continue
		}
		c, err := classify(ps)
		if err != nil {
			t.Fatalf("classify %s: %v", tt.program, err)
		}
		if err := (offlineResolver{arch: "amd64"}).resolve(&c.ap); err != nil {
			t.Fatalf("resolve %s: %v", tt.program, err)
		}
		got := c.ap.attachTo()
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s (%s): attachTo %q, want %q", tt.program, ps.SectionName, got, tt.want)
		}
		req := newRequest(c.ap.mech, c.ap.target, nil, requestOptions{attachTo: got})
		if ctx := req.Mechanism.InterruptContext(req.AttachTo...); ctx != tt.ctx {
			t.Errorf("%s (%s on %q): interrupt context %s, want %s", tt.program, req.Mechanism, req.AttachTo, ctx, tt.ctx)
		}
	}
}

// al2023 is Amazon Linux 2023's 6.1.25-37.47.amzn2023 as it describes
// itself (probe/testdata/identities.json): the kernel parca-agent locked
// up (nmi-user-read-deadlock affected: 6.1.25 < 6.1.36).
func al2023(tb testing.TB) *probe.Kernel {
	tb.Helper()
	k, err := probe.Describe(probe.Description{
		Release:     "6.1.25-37.47.amzn2023.x86_64",
		ProcVersion: "Linux version 6.1.25-37.47.amzn2023.x86_64 (mockbuild@ip-10-0-48-7) (gcc (GCC) 11.3.1 20221121 (Red Hat 11.3.1-4), GNU ld version 2.39-6.amzn2023.0.5) #1 SMP PREEMPT_DYNAMIC Mon Apr 24 23:20:16 UTC 2023",
		OSRelease:   "NAME=\"Amazon Linux\"\nVERSION=\"2023\"\nID=\"amzn\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"2023\"\n",
		Arch:        "amd64",
		CPUs:        64,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// TestSyscallEntryPlanOnAffectedKernel: the one agent of ctx.o, which
// reads user memory from both programs, on a kernel with
// nmi-user-read-deadlock: its kprobe on the getpid syscall wrapper is
// allowed (process context only), its kprobe on update_process_times,
// which the timer interrupt calls, is refused as unknown.
func TestSyscallEntryPlanOnAffectedKernel(t *testing.T) {
	k := al2023(t)
	plans, err := PlanSpec(object(t, "ctx"), k, nil)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]ProgramPlan{}
	for _, p := range plans {
		byName[p.Program] = p
	}
	nmi := func(p ProgramPlan) hazards.Finding {
		t.Helper()
		if p.Decision != nil {
			for _, f := range p.Decision.Findings {
				if f.ID == "nmi-user-read-deadlock" && f.Mechanism == probe.Kprobe {
					return f
				}
			}
		}
		t.Fatalf("%s: no nmi-user-read-deadlock finding for kprobe: %+v", p.Program, p.Decision)
		return hazards.Finding{}
	}
	sys, tick := byName["getpid_entry"], byName["timer_tick"]
	for _, p := range []ProgramPlan{sys, tick} {
		if !p.ReadsUserMemory {
			t.Fatalf("%s: the scan says it reads no user memory: %v", p.Program, p.UserMemoryReasons)
		}
	}
	if f := nmi(sys); sys.Refusal != "" || !sys.Chosen || sys.Decision.Chosen != probe.Kprobe || f.Verdict != hazards.NotAffected || !strings.Contains(f.Reason, "process context") {
		t.Errorf("kprobe on __x64_sys_getpid on %s: refusal %q, chosen %v, nmi %s %q; want allowed, not-affected in process context",
			k.Release, sys.Refusal, sys.Chosen, f.Verdict, f.Reason)
	}
	if f := nmi(tick); tick.Refusal == "" || f.Verdict != hazards.Unknown || !strings.Contains(tick.Refusal, "nmi-user-read-deadlock") {
		t.Errorf("kprobe on update_process_times on %s: refusal %q, nmi %s %q; want refused by nmi-user-read-deadlock as unknown",
			k.Release, tick.Refusal, f.Verdict, f.Reason)
	}
	t.Logf("%s: getpid_entry: %s", k.Release, Explain(*sys.Decision))
	t.Logf("%s: timer_tick: %s", k.Release, tick.Refusal)
}

// ctxWitnessValue is the user memory ctx.o reads: a global, whose address
// the garbage collector never moves.
var ctxWitnessValue uint64

// TestSyscallEntryProcessContext is the ground truth behind
// probe.Mechanism.InterruptContext's "never" for syscall entry points, on
// a real kernel: ctx.o's program on a getpid entry point counts the hits
// on the test's thread while the thread calls getpid in a loop for half a
// second, with the timer interrupt going on. Every hit must be one of
// those calls, exactly, and each must read the thread's own user memory.
// The same program on a function or event the timer interrupt reaches is
// the control: there the thread is hit by interrupts it never asked for,
// so a witness that only compared thread IDs would prove nothing, while
// the count does. The kprobe pair (__x64_sys_getpid, update_process_times)
// runs where the kernel has kprobes (the kernel-matrix guests) and also
// checks the syscall function names the classification relies on in this
// kernel's kallsyms; the tracepoint pair (syscalls/sys_enter_getpid,
// timer/hrtimer_expire_entry) runs on the host too.
func TestSyscallEntryProcessContext(t *testing.T) {
	l := newHostLoader(t, nil)
	k := l.Kernel()
	if runtime.GOARCH != "amd64" {
		t.Skip("the witness attaches to __x64_sys_getpid and x86-64 syscall events: x86-64 only")
	}
	t.Run("kprobe", func(t *testing.T) {
		if !k.Support(probe.Kprobe).Yes() {
			t.Skipf("kernel %s lacks kprobes (%s): the witness is a kprobe", k.Release, k.Support(probe.Kprobe).Reason)
		}
		checkSyscallNames(t)
		witnessContext(t, k, probe.Kprobe, "getpid_entry", "__x64_sys_getpid", "timer_tick", "update_process_times")
	})
	t.Run("tracepoint", func(t *testing.T) {
		if !k.Support(probe.Tracepoint).Yes() {
			t.Skipf("kernel %s lacks tracepoints (%s): the witness is a tracepoint", k.Release, k.Support(probe.Tracepoint).Reason)
		}
		mountTracefs(t)
		for _, ev := range []string{"syscalls/sys_enter_getpid", "timer/hrtimer_expire_entry"} {
			if _, err := os.Stat("/sys/kernel/tracing/events/" + ev); err != nil {
				t.Skipf("kernel %s has no tracepoint %s (syscall tracepoints need CONFIG_FTRACE_SYSCALLS): %v", k.Release, ev, err)
			}
		}
		witnessContext(t, k, probe.Tracepoint, "tp_getpid_entry", "syscalls/sys_enter_getpid", "tp_timer_tick", "timer/hrtimer_expire_entry")
	})
}

// witnessContext attaches ctx.o's programs sys (on the getpid entry point
// sysTarget) and tick (the control, on tickTarget) with mechanism m, and
// holds the hits during a getpid loop against the calls made. On a kernel
// where nmi-user-read-deadlock applies (affected, or unknown) the plan
// must allow sys and refuse tick; the witness then forces the hazard for
// tick alone to run (the control runs in hard interrupt context, never
// in NMI, where the hazard's page-table switch race lies).
func witnessContext(t *testing.T, k *probe.Kernel, m probe.Mechanism, sys, sysTarget, tick, tickTarget string) {
	spec := object(t, "ctx")
	for name := range spec.Programs {
		if name != sys && name != tick {
			delete(spec.Programs, name)
		}
	}
	plans, err := PlanSpec(spec, k, nil)
	if err != nil {
		t.Fatalf("plan ctx.o on %s: %v", k.Release, err)
	}
	var opts *Options
	for _, p := range plans {
		switch {
		case p.Refusal == "":
		case p.Program == tick && strings.Contains(p.Refusal, "nmi-user-read-deadlock"):
			t.Logf("%s refused on %s, as the hazard demands outside process context; forcing it for the control: %s", tick, k.Release, p.Refusal)
			opts = &Options{Force: []hazards.ID{"nmi-user-read-deadlock"}}
		default:
			t.Fatalf("%s on %s refused: %s", p.Program, k.Release, p.Refusal)
		}
	}
	l := newHostLoader(t, opts)
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
	tid := unix.Gettid()
	magic := uint64(0x5afeb9f0_00c0ffee) ^ uint64(tid)
	ctxWitnessValue = magic
	for name, v := range map[string]any{"target_tid": uint32(tid), "user_addr": uint64(uintptr(unsafe.Pointer(&ctxWitnessValue))), "user_magic": magic} {
		if err := spec.Variables[name].Set(v); err != nil {
			t.Fatalf("set %s: %v", name, err)
		}
	}
	c, err := l.LoadAndAttach(spec, nil)
	if err != nil {
		t.Fatalf("load ctx.o (%s, %s) on %s: %v", sys, tick, k.Release, err)
	}
	defer c.Close()
	for _, n := range []string{sys, tick} {
		lk, ok := c.Links[n]
		if !ok {
			t.Fatalf("%s not attached: %v", n, linked(c))
		}
		if got := lk.Decision().Chosen; got != m {
			t.Fatalf("%s attached as %s, want %s: %s", n, got, m, Explain(lk.Decision()))
		}
		t.Logf("%s: %s", n, Explain(lk.Decision()))
	}
	counts := c.Maps["counts"]
	read := func() [8]uint64 {
		var out [8]uint64
		for i := range out {
			out[i] = readCount(t, counts, uint32(i))
		}
		return out
	}
	before := read()
	start := time.Now()
	calls := uint64(0)
	for time.Since(start) < 500*time.Millisecond {
		unix.Getpid()
		calls++
	}
	elapsed := time.Since(start)
	after := read()
	d := func(i int) uint64 { return after[i] - before[i] }
	const getpid, timer, mine, other, readBack = 0, 4, 0, 1, 2

	t.Logf("kernel %s: %d getpid calls in %s; %s on %s: %d hits on this thread (%d read its memory), %d on other tasks; "+
		"%s on %s: %d hits on this thread (%d read its memory), %d on other tasks",
		k.Release, calls, elapsed.Round(time.Millisecond), m, sysTarget, d(getpid+mine), d(getpid+readBack), d(getpid+other),
		m, tickTarget, d(timer+mine), d(timer+readBack), d(timer+other))
	if d(timer+mine) == 0 {
		t.Fatalf("no timer interrupt hit this thread in %s: the control did not see interrupt context, so the witness proves nothing here", elapsed)
	}
	if got := d(getpid + mine); got != calls {
		t.Errorf("%s on %s fired %d times on this thread for %d getpid calls: a hit that is not a call ran in another context", m, sysTarget, got, calls)
	}
	if got := d(getpid + readBack); got != calls {
		t.Errorf("%d of %d hits read this thread's user memory back", got, calls)
	}
	if m.InterruptContext(sysTarget) != probe.Never || m.InterruptContext(tickTarget) != probe.Maybe {
		t.Errorf("probe's classification disagrees with what this kernel showed: %s on %s: %s, on %s: %s",
			m, sysTarget, m.InterruptContext(sysTarget), tickTarget, m.InterruptContext(tickTarget))
	}
}

// checkSyscallNames reads /proc/kallsyms and checks that the syscall
// functions the classification and its table test name exist here, and
// that every symbol with a prefix probe treats as a syscall entry point
// belongs to a syscall the kernel lists (no other function shares a
// prefix). It logs how many symbols each prefix has.
func checkSyscallNames(t *testing.T) {
	t.Helper()
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	prefixes := []string{"__x64_sys_", "__ia32_sys_", "__ia32_compat_sys_", "__x64_compat_sys_", "__x32_compat_sys_", "__se_sys_", "__se_compat_sys_", "__do_sys_", "__do_compat_sys_"}
	count := map[string]int{}
	syscalls := map[string]bool{} // names with an __x64_sys_ or __ia32_ wrapper
	var bodies []string           // __se_ and __do_ names, checked against syscalls
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 || len(fields) > 3 { // module symbols are not syscalls
			continue
		}
		name := fields[2]
		seen[name] = true
		for _, p := range prefixes {
			rest, ok := strings.CutPrefix(name, p)
			if !ok {
				continue
			}
			count[p]++
			base, _, _ := strings.Cut(rest, ".")
			switch p {
			case "__x64_sys_", "__ia32_sys_", "__ia32_compat_sys_", "__x64_compat_sys_", "__x32_compat_sys_":
				syscalls[base] = true
			default:
				bodies = append(bodies, name)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("syscall function names in kallsyms: %v", count)
	var present, absent, clones []string
	for _, name := range []string{"__x64_sys_getpid", "__x64_sys_openat", "__x64_sys_getpgid", "__ia32_sys_getpid", "__ia32_sys_openat",
		"__ia32_compat_sys_openat", "__do_sys_getpid", "__se_sys_openat", "__do_compat_sys_ipc", "__do_sys_clone3", "update_process_times",
		"do_sys_openat2", "__sys_bpf", "ksys_read", "x64_sys_call", "sys_fillrect", "sys_getpid", "__x64_sys_uretprobe"} {
		if seen[name] {
			present = append(present, name)
		} else {
			absent = append(absent, name)
		}
	}
	for name := range seen {
		for _, p := range prefixes {
			if strings.HasPrefix(name, p) && strings.Contains(name, ".") {
				clones = append(clones, name)
			}
		}
	}
	slices.Sort(clones)
	t.Logf("present: %v; absent: %v; clones: %v", present, absent, clones)
	if seen["__x64_sys_getpid"] && !seen["__ia32_sys_getpid"] {
		t.Logf("no __ia32_sys_getpid: built without CONFIG_IA32_EMULATION")
	}
	for _, b := range bodies {
		rest := b
		for _, p := range prefixes {
			rest = strings.TrimPrefix(rest, p)
		}
		base, _, _ := strings.Cut(rest, ".")
		if !syscalls[base] {
			t.Errorf("%s has a syscall body's prefix but no syscall %s has a wrapper here", b, base)
		}
	}
}
