//go:build linux && amd64

package main

// Scenario 5: the user-read deadlock (HAZARDS-RESEARCH.md §1 and C1), on
// the lab kernel (Debian's 6.1 with d319f344561d reverted) and, as the
// control, on Debian's own 6.1.
//
//   - witness: reads the machine code of copy_from_user_nofault through
//     /proc/kcore and looks for the call to nmi_uaccess_okay that
//     d319f344561d added: absent = affected, present = fixed. (A minimal
//     stand-in for the "witness" helper's probe-level witness.)
//   - safebpf: asks package loader to attach a profiler that reads user
//     memory to the software cpu-clock event; the decision is reported.
//   - repro: a software cpu-clock perf_event program on CPU 1 calls
//     bpf_probe_read_user() into its stack (in hard IRQ that is the vmapped
//     IRQ stack) and into a BPF_F_MMAPABLE array value (vmalloc memory),
//     while helper processes pinned to CPU 1 take vmap_area_lock in a loop
//     (reading /proc/vmallocinfo holds it while the seq buffer fills;
//     creating and closing mmapable array maps vmallocs and vfrees). The
//     controller runs pinned to CPU 0 and watches their progress; when both
//     stop it reads the lockup detectors' reports from /dev/kmsg. CPU 0 is
//     the healthy one because it keeps time: the guest boots with nohz=off,
//     so the boot CPU updates jiffies and the clocksource base, which the
//     detectors and every sleep depend on (with TCG's unstable TSC the
//     clocksource is a counter that wraps within minutes).

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/internal/kcode"
	"github.com/safebpf/safebpf/internal/vmtest/vmproto"
	"github.com/safebpf/safebpf/loader"
)

// s5Source is the user address the program reads: below TASK_SIZE, so
// access_ok() passes and check_object_size() runs on the destination; the
// read itself may fault (the result does not matter).
const s5Source = 0x10000

// The CPU the profiler and the lock takers run on, and the CPU the
// controller watches from (the boot CPU, which keeps time).
const (
	lockupCPU  = 1
	healthyCPU = 0
)

func s5(arm string, d time.Duration, freq uint64) vmproto.LabRecord {
	r := vmproto.LabRecord{Scenario: "5", Arm: arm, Safebpf: arm == "safebpf", Numbers: map[string]float64{}}
	switch arm {
	case "witness":
		return s5Witness(r)
	case "safebpf":
		return s5Safebpf(r, freq)
	case "repro":
		return s5Repro(r, d, freq)
	}
	return failed(r, "unknown arm %q", arm)
}

// s5Witness asks internal/kcode (the machine-code reader behind probe's
// "call" facts) whether copy_from_user_nofault calls nmi_uaccess_okay in
// the running kernel's code, read from /proc/kcore.
func s5Witness(r vmproto.LabRecord) vmproto.LabRecord {
	r.Mechanism = "machine code of copy_from_user_nofault (/proc/kcore, internal/kcode)"
	kf, err := os.Open("/proc/kallsyms")
	if err != nil {
		return failed(r, "%v", err)
	}
	syms, err := kcode.ReadSymbols(kf)
	kf.Close()
	if err != nil {
		return failed(r, "read kallsyms: %v", err)
	}
	cf, err := os.Open("/proc/kcore")
	if err != nil {
		return failed(r, "%v", err)
	}
	defer cf.Close()
	core, err := kcode.OpenCore(cf)
	if err != nil {
		return failed(r, "%v", err)
	}
	f, err := kcode.FindCall(syms, core, "amd64", kcode.Query{Function: "copy_from_user_nofault", Callee: "nmi_uaccess_okay"})
	if f != nil {
		r.Evidence = append(r.Evidence, fmt.Sprintf("read %s; direct calls: %s", strings.Join(f.Read, ", "), strings.Join(f.Calls, ", ")))
		r.Numbers["direct_calls"] = float64(len(f.Calls))
	}
	switch {
	case f != nil && f.Found:
		r.Outcome = "fixed"
		r.Summary = "fixed: " + f.Site + " (d319f344561d)"
	case err != nil:
		return failed(r, "inconclusive: %v", err)
	case f.NoCallee:
		return failed(r, "inconclusive: the kernel has no nmi_uaccess_okay")
	default:
		r.Outcome = "affected"
		r.Summary = fmt.Sprintf("affected: copy_from_user_nofault calls %s, not nmi_uaccess_okay", strings.Join(f.Calls, ", "))
	}
	return r
}

// profilerSpec is the perf_event program of the scenario: it counts its
// runs (slot 0), reads user memory into its stack and into the value of
// vbuf, and records both destination addresses (slots 2 and 3).
func profilerSpec(counts, vbuf *ebpf.Map) *ebpf.ProgramSpec {
	lookup := func(m *ebpf.Map, key int32) asm.Instructions {
		return asm.Instructions{
			asm.StoreImm(asm.R10, -4, int64(key), asm.Word),
			asm.Mov.Reg(asm.R2, asm.R10),
			asm.Add.Imm(asm.R2, -4),
			asm.LoadMapPtr(asm.R1, m.FD()),
			asm.FnMapLookupElem.Call(),
		}
	}
	var in asm.Instructions
	in = append(in, lookup(counts, 0)...)
	in = append(in,
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
		// bpf_probe_read_user(stack buffer, 32, s5Source)
		asm.Mov.Reg(asm.R1, asm.R10),
		asm.Add.Imm(asm.R1, -64),
		asm.Mov.Imm(asm.R2, 32),
		asm.Mov.Imm(asm.R3, s5Source),
		asm.FnProbeReadUser.Call(),
	)
	in = append(in, lookup(counts, 2)...)
	in = append(in,
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.Mov.Reg(asm.R1, asm.R10),
		asm.Add.Imm(asm.R1, -64),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
	)
	in = append(in, lookup(vbuf, 0)...)
	in = append(in,
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.Mov.Reg(asm.R7, asm.R0),
		// bpf_probe_read_user(map value, 32, s5Source)
		asm.Mov.Reg(asm.R1, asm.R7),
		asm.Mov.Imm(asm.R2, 32),
		asm.Mov.Imm(asm.R3, s5Source),
		asm.FnProbeReadUser.Call(),
	)
	in = append(in, lookup(counts, 3)...)
	in = append(in,
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.StoreMem(asm.R0, 0, asm.R7, asm.DWord),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("out"),
		asm.Return(),
	)
	return &ebpf.ProgramSpec{Name: "lab_s5_profiler", Type: ebpf.PerfEvent, License: "GPL", Instructions: in}
}

// mmapableArray creates the vmalloc-backed array the program reads into.
func mmapableArray() (*ebpf.Map, error) {
	return ebpf.NewMap(&ebpf.MapSpec{Name: "lab_s5_vbuf", Type: ebpf.Array, KeySize: 4, ValueSize: 4096, MaxEntries: 16, Flags: unix.BPF_F_MMAPABLE})
}

func s5Safebpf(r vmproto.LabRecord, freq uint64) vmproto.LabRecord {
	counts, err := counters()
	if err != nil {
		return failed(r, "%v", err)
	}
	defer counts.Close()
	vbuf, err := mmapableArray()
	if err != nil {
		return failed(r, "create mmapable array: %v", err)
	}
	defer vbuf.Close()
	spec := profilerSpec(counts, vbuf)
	prog, err := ebpf.NewProgram(spec)
	if err != nil {
		return failed(r, "load profiler: %v", err)
	}
	defer prog.Close()
	l, err := loader.New(nil)
	if err != nil {
		return failed(r, "safebpf loader: %v", err)
	}
	defer l.Close()
	lk, err := l.AttachPerfEvent(prog, loader.PerfEventOptions{Frequency: freq, CPUs: []int{lockupCPU}}, &loader.Extra{Spec: spec})
	if err != nil {
		r.Decision = decisionOf(err)
		if !errors.Is(err, fallback.ErrRefused) {
			return failed(r, "safebpf profiler: %v", err)
		}
		r.Outcome = "refused"
		r.Summary = "refused the profiler: " + r.Decision
		return r
	}
	lk.Close() // attached for real: close before anything can race
	d := lk.Decision()
	r.Decision = loader.Explain(d)
	r.Mechanism = string(d.Chosen)
	r.Outcome = "attached"
	r.Summary = "attached the profiler: " + r.Decision
	return r
}

// pinned re-executes the process with its affinity set to cpu, so that
// every thread of the new image runs there (exec keeps the mask of the
// calling thread, and Go's threads inherit it).
func pinned(cpu int) {
	want := strconv.Itoa(cpu)
	if os.Getenv("LAB_PINNED_CPU") == want {
		return
	}
	var set unix.CPUSet
	set.Set(cpu)
	runtime.LockOSThread()
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		logf("pin to CPU %d: %v", cpu, err)
		return
	}
	self, err := os.Executable()
	if err != nil {
		logf("pin to CPU %d: %v", cpu, err)
		return
	}
	env := append(environWithout("LAB_PINNED_CPU"), "LAB_PINNED_CPU="+want)
	if err := syscall.Exec(self, os.Args, env); err != nil {
		logf("pin to CPU %d: re-exec: %v", cpu, err)
	}
}

func s5Repro(r vmproto.LabRecord, d time.Duration, freq uint64) vmproto.LabRecord {
	if os.Getenv("LAB_TAKER") == "" {
		pinned(healthyCPU)
	}
	if os.Getenv("LAB_TAKER") != "" {
		s5Taker(os.Getenv("LAB_TAKER"))
		os.Exit(0)
	}
	r.Numbers["duration_s"] = d.Seconds()
	r.Numbers["freq_hz"] = float64(freq)
	r.Mechanism = fmt.Sprintf("software cpu-clock perf_event on CPU %d at %d Hz, bpf_probe_read_user into IRQ stack and mmapable array", lockupCPU, freq)
	counts, err := counters()
	if err != nil {
		return failed(r, "%v", err)
	}
	vbuf, err := mmapableArray()
	if err != nil {
		return failed(r, "create mmapable array: %v", err)
	}
	prog, err := ebpf.NewProgram(profilerSpec(counts, vbuf))
	if err != nil {
		return failed(r, "load profiler: %v", err)
	}
	attr := unix.PerfEventAttr{
		Type:   unix.PERF_TYPE_SOFTWARE,
		Config: unix.PERF_COUNT_SW_CPU_CLOCK,
		Size:   uint32(unsafe.Sizeof(unix.PerfEventAttr{})),
		Sample: freq,
		Bits:   unix.PerfBitFreq | unix.PerfBitDisabled,
	}
	fd, err := unix.PerfEventOpen(&attr, -1, lockupCPU, -1, unix.PERF_FLAG_FD_CLOEXEC)
	if err != nil {
		return failed(r, "open cpu-clock event on CPU %d: %v", lockupCPU, err)
	}
	if err := unix.IoctlSetInt(fd, unix.PERF_EVENT_IOC_SET_BPF, prog.FD()); err != nil {
		return failed(r, "attach profiler: %v", err)
	}
	if err := unix.IoctlSetInt(fd, unix.PERF_EVENT_IOC_ENABLE, 0); err != nil {
		return failed(r, "enable event: %v", err)
	}
	// What the destinations really are: find them in /proc/vmallocinfo
	// (read once, from the healthy CPU, before the lock takers start). It prints
	// real addresses only with kptr_restrict=1 (0 hashes %pK) to root.
	_ = os.WriteFile("/proc/sys/kernel/kptr_restrict", []byte("1"), 0o644)
	time.Sleep(time.Second)
	stackDst, valueDst := count(counts, 2), count(counts, 3)
	r.Evidence = append(r.Evidence, vmallocOwner("stack destination (in IRQ context)", stackDst), vmallocOwner("map value destination", valueDst))

	self, _ := os.Executable()
	type taker struct {
		name string
		cmd  *exec.Cmd
		out  io.ReadCloser
		n    atomic.Uint64
	}
	var takers []*taker
	for _, kind := range []string{"vmallocinfo", "maps"} {
		cmd := exec.Command(self, os.Args[1:]...)
		cmd.Env = append(environWithout("LAB_PINNED_CPU"), "LAB_TAKER="+kind)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			return failed(r, "%v", err)
		}
		if err := cmd.Start(); err != nil {
			return failed(r, "start lock taker %s: %v", kind, err)
		}
		t := &taker{name: kind, cmd: cmd, out: out}
		takers = append(takers, t)
		go func() {
			b := make([]byte, 64)
			for {
				n, err := out.Read(b)
				t.n.Add(uint64(n)) // one byte per 16 iterations
				if err != nil {
					return
				}
			}
		}()
	}
	start := time.Now()
	fmt.Fprintf(os.Stderr, "labguest: s5 repro started at uptime %s\n", uptime())
	r.Evidence = append(r.Evidence, "started at uptime "+uptime())
	lastProgress := start
	var lastSum, lastRuns uint64
	stalled := false
	for time.Since(start) < d {
		time.Sleep(time.Second)
		var sum uint64
		for _, t := range takers {
			sum += t.n.Load()
		}
		runs := count(counts, 0)
		if sum != lastSum || runs != lastRuns {
			lastProgress, lastSum, lastRuns = time.Now(), sum, runs
		}
		if int(time.Since(start).Seconds())%10 == 0 {
			fmt.Fprintf(os.Stderr, "labguest: s5 %s: %d program runs, %d×16 lock-taker iterations\n", time.Since(start).Round(time.Second), runs, sum)
		}
		if time.Since(lastProgress) > 6*time.Second {
			stalled = true
			break
		}
	}
	elapsed := time.Since(start)
	r.Numbers["program_runs"] = float64(lastRuns)
	for _, t := range takers {
		r.Numbers[t.name+"_iterations"] = float64(t.n.Load() * 16)
	}
	if !stalled {
		for _, t := range takers {
			_ = t.cmd.Process.Kill()
			_ = t.cmd.Wait()
		}
		unix.Close(fd)
		r.Numbers["elapsed_s"] = elapsed.Seconds()
		r.Outcome = "no-lockup"
		r.Summary = fmt.Sprintf("no lockup in %s: %d bpf_probe_read_user pairs from IRQ, %.0f vmallocinfo reads, %.0f mmapable map create/free",
			elapsed.Round(time.Second), lastRuns, r.Numbers["vmallocinfo_iterations"], r.Numbers["maps_iterations"])
		return r
	}
	stallAt := lastProgress.Sub(start)
	r.Numbers["stall_after_s"] = stallAt.Seconds()
	fmt.Fprintf(os.Stderr, "labguest: s5 progress stopped %s after the start; reading the lockup detectors\n", stallAt.Round(time.Second))
	lines := kmsgLockup(30 * time.Second)
	r.Evidence = append(r.Evidence, lines...)
	r.Outcome = "lockup"
	r.Summary = fmt.Sprintf("LOCKUP: CPU %d stopped %s after the start (%d program runs); %d detector line(s)",
		lockupCPU, stallAt.Round(time.Second), lastRuns, len(lines))
	// The console is busy with the detectors' reports, which can break a
	// line: print the record a few times (the lab keeps the last intact
	// one). Then wait: nothing can end this process or power the guest
	// off any more (closing the perf event and kernel_power_off both wait
	// for the locked CPU); the lab ends the guest from the host.
	for range 3 {
		emit(r)
		emitKmsg(r)
		time.Sleep(2 * time.Second)
	}
	for {
		time.Sleep(time.Hour)
	}
}

// s5Taker takes vmap_area_lock in a loop on lockupCPU, writing one byte to
// stdout every 16 iterations.
func s5Taker(kind string) {
	pinned(lockupCPU)
	one := []byte{1}
	for i := uint64(1); ; i++ {
		switch kind {
		case "vmallocinfo":
			f, err := os.Open("/proc/vmallocinfo")
			if err == nil {
				_, _ = io.Copy(io.Discard, f)
				f.Close()
			}
		case "maps":
			m, err := mmapableArray()
			if err == nil {
				m.Close()
			}
		}
		if i%16 == 0 {
			if _, err := os.Stdout.Write(one); err != nil {
				return
			}
		}
	}
}

// vmallocOwner names the /proc/vmallocinfo area holding addr.
func vmallocOwner(what string, addr uint64) string {
	if addr == 0 {
		return what + ": not recorded (the program did not run)"
	}
	f, err := os.Open("/proc/vmallocinfo")
	if err != nil {
		return fmt.Sprintf("%s %#x: /proc/vmallocinfo unreadable: %v", what, addr, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) < 3 {
			continue
		}
		lo, hi, ok := strings.Cut(fl[0], "-")
		if !ok {
			continue
		}
		a, err1 := strconv.ParseUint(strings.TrimPrefix(lo, "0x"), 16, 64)
		b, err2 := strconv.ParseUint(strings.TrimPrefix(hi, "0x"), 16, 64)
		if err1 == nil && err2 == nil && addr >= a && addr < b {
			return fmt.Sprintf("%s %#x: vmalloc area %s", what, addr, strings.Join(fl, " "))
		}
	}
	return fmt.Sprintf("%s %#x: not in any vmalloc area", what, addr)
}

func uptime() string {
	b, _ := os.ReadFile("/proc/uptime")
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0] + "s"
}

// kmsgLockup reads /dev/kmsg for up to wait and returns the lines of the
// lockup detectors' reports (soft/hard lockup, RCU stall) and the frames
// that show the deadlock.
func kmsgLockup(wait time.Duration) []string {
	f, err := os.OpenFile("/dev/kmsg", os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return []string{"/dev/kmsg unreadable: " + err.Error()}
	}
	defer f.Close()
	// The detectors' first lines, the frames of the deadlock in IRQ
	// context, and the interrupted lock holder's (RIP and the vmalloc or
	// /proc/vmallocinfo frames under it).
	keys := []string{"soft lockup", "hard LOCKUP", "detected stalls", "NMI backtrace", "RIP: 0010:",
		"find_vmap_area", "__check_object_size", "copy_from_user_nofault", "bpf_probe_read_user",
		"alloc_vmap_area", "__get_vm_area_node", "__vmalloc_node_range", "kernel_clone", "s_show", "s_start", "seq_read",
		"remove_vm_area", "vfree", "array_map_alloc", "bpf_map_free_deferred"}
	var out []string
	seen := map[string]bool{}
	deadline := time.Now().Add(wait)
	buf := make([]byte, 8192)
	detector := false
	for time.Now().Before(deadline) && len(out) < 40 {
		n, err := f.Read(buf)
		if err != nil {
			if detector {
				break // the log is drained and a detector has reported
			}
			time.Sleep(500 * time.Millisecond)
			continue
		}
		rec := string(buf[:n])
		_, msg, _ := strings.Cut(rec, ";")
		msg = strings.TrimSpace(strings.SplitN(msg, "\n", 2)[0])
		for _, k := range keys {
			if strings.Contains(msg, k) && !seen[msg] {
				seen[msg] = true
				out = append(out, "kmsg: "+msg)
				if strings.Contains(msg, "lockup") || strings.Contains(msg, "stall") {
					detector = true
				}
				break
			}
		}
	}
	if !detector {
		out = append(out, fmt.Sprintf("no lockup detector report in /dev/kmsg within %s", wait))
	}
	return out
}

// environWithout returns the environment without key (a process sees the
// first of duplicate keys, so appending does not override).
func environWithout(key string) []string {
	var out []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, key+"=") {
			out = append(out, e)
		}
	}
	return out
}

// emitKmsg writes r, without its evidence, as a kernel log line: printk
// reaches the serial console by polling, so it gets out when the console's
// interrupt-driven path for user writes is stuck behind a dead CPU. A
// kernel log line holds at most about 1000 bytes.
func emitKmsg(r vmproto.LabRecord) {
	r.Evidence = nil
	if len(r.Summary) > 400 {
		r.Summary = r.Summary[:400]
	}
	b, err := json.Marshal(r)
	if err != nil {
		return
	}
	f, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = f.Write(append([]byte(vmproto.Prefix+vmproto.LabTag+" "), b...))
}
