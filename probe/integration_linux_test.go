//go:build linux

package probe

import (
	"context"
	"errors"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/safebpf/safebpf/internal/testutil"
)

// uprobeTarget is a function of the test binary for uprobes to attach to.
// It is never called while a probe is attached.
//
//go:noinline
func uprobeTarget(x int) int { return x*3 + 1 }

// uprobeTargetOffset returns uprobeTarget's offset in the test executable,
// from its run-time address and /proc/self/maps: `go test` strips the
// symbol table, so the symbol cannot be looked up by name.
func uprobeTargetOffset(tb testing.TB) uint64 {
	tb.Helper()
	pc := uint64(reflect.ValueOf(uprobeTarget).Pointer())
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		tb.Fatal(err)
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(maps), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || f[5] != exe {
			continue
		}
		lo, hi, _ := strings.Cut(f[0], "-")
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		off, err3 := strconv.ParseUint(f[2], 16, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		if start <= pc && pc < end {
			return pc - start + off
		}
	}
	tb.Fatalf("uprobeTarget at %#x is in no mapping of %s", pc, exe)
	return 0
}

func loadTrivial(tb testing.TB, spec *ebpf.ProgramSpec) (*ebpf.Program, error) {
	tb.Helper()
	spec.License = "GPL"
	spec.Instructions = asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}
	prog, err := ebpf.NewProgramWithOptions(spec, ebpf.ProgramOptions{LogDisabled: true})
	if err != nil {
		return nil, err
	}
	tb.Cleanup(func() { prog.Close() })
	return prog, nil
}

// attachWith loads spec and hands the program to attach; the link is closed
// at once. The error is the first failure, load or attach.
func attachWith(tb testing.TB, spec *ebpf.ProgramSpec, attach func(*ebpf.Program) (link.Link, error)) error {
	tb.Helper()
	prog, err := loadTrivial(tb, spec)
	if err != nil {
		return err
	}
	l, err := attach(prog)
	if err != nil {
		return err
	}
	return l.Close()
}

// perfOpen opens a counting perf event for this process on any CPU: a
// different call from the prober's system-wide sampling event on CPU 0.
func perfOpen(typ uint32, config uint64) error {
	attr := unix.PerfEventAttr{Type: typ, Config: config, Size: uint32(unsafe.Sizeof(unix.PerfEventAttr{})), Bits: unix.PerfBitDisabled}
	fd, err := unix.PerfEventOpen(&attr, 0, -1, -1, unix.PERF_FLAG_FD_CLOEXEC)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

// ensureTracefs mounts tracefs at /sys/kernel/tracing when nothing is
// mounted there (KERNELS.md: tests may). It is left mounted: other tests in
// this machine's processes may rely on it.
func ensureTracefs(tb testing.TB) {
	tb.Helper()
	if _, err := os.Stat("/sys/kernel/tracing/events"); err == nil {
		return
	}
	if err := unix.Mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
		tb.Logf("mount tracefs: %v (tracepoint attach will tell)", err)
	}
}

func TestDetectAgainstKernel(t *testing.T) {
	testutil.RequirePrivileged(t)
	ensureTracefs(t)
	_ = uprobeTarget(1)

	k, err := Detect(context.Background(), &Options{})
	if err != nil {
		t.Fatalf("Detect: %v", err)
	}
	t.Logf("kernel %s: version %v from %s", k.Release, k.Version, k.VersionSource)
	if _, err := ParseRelease(k.Release); err != nil {
		t.Errorf("this host's release does not parse: %v", err)
	}
	if k.Version == nil {
		t.Errorf("no trusted version on this host: %s", k.VersionNote)
	}

	exe, err := link.OpenExecutable("/proc/self/exe")
	if err != nil {
		t.Fatalf("open test executable: %v", err)
	}
	uprobeAt := uprobeTargetOffset(t)
	trampolineAttempt := func(at ebpf.AttachType) error {
		var err error
		for _, target := range []string{"do_unlinkat", "vfs_read", "bpf_fentry_test1"} {
			err = attachWith(t, &ebpf.ProgramSpec{Type: ebpf.Tracing, AttachType: at, AttachTo: target},
				func(p *ebpf.Program) (link.Link, error) { return link.AttachTracing(link.TracingOptions{Program: p}) })
			if err == nil {
				return nil
			}
		}
		return err
	}
	kprobeSpec := func() *ebpf.ProgramSpec { return &ebpf.ProgramSpec{Type: ebpf.Kprobe} }

	attempts := map[Mechanism]func() error{
		Kprobe: func() error {
			return attachWith(t, kprobeSpec(), func(p *ebpf.Program) (link.Link, error) { return link.Kprobe("do_unlinkat", p, nil) })
		},
		Kretprobe: func() error {
			return attachWith(t, kprobeSpec(), func(p *ebpf.Program) (link.Link, error) { return link.Kretprobe("do_unlinkat", p, nil) })
		},
		KprobeMulti: func() error {
			return attachWith(t, &ebpf.ProgramSpec{Type: ebpf.Kprobe, AttachType: ebpf.AttachTraceKprobeMulti}, func(p *ebpf.Program) (link.Link, error) {
				return link.KprobeMulti(p, link.KprobeMultiOptions{Symbols: []string{"do_unlinkat"}})
			})
		},
		KretprobeMulti: func() error {
			return attachWith(t, &ebpf.ProgramSpec{Type: ebpf.Kprobe, AttachType: ebpf.AttachTraceKprobeMulti}, func(p *ebpf.Program) (link.Link, error) {
				return link.KretprobeMulti(p, link.KprobeMultiOptions{Symbols: []string{"do_unlinkat"}})
			})
		},
		Uprobe: func() error {
			return attachWith(t, kprobeSpec(), func(p *ebpf.Program) (link.Link, error) {
				return exe.Uprobe("uprobeTarget", p, &link.UprobeOptions{Address: uprobeAt})
			})
		},
		Uretprobe: func() error {
			return attachWith(t, kprobeSpec(), func(p *ebpf.Program) (link.Link, error) {
				return exe.Uretprobe("uprobeTarget", p, &link.UprobeOptions{Address: uprobeAt})
			})
		},
		UprobeMulti: func() error {
			return attachWith(t, &ebpf.ProgramSpec{Type: ebpf.Kprobe, AttachType: ebpf.AttachTraceUprobeMulti}, func(p *ebpf.Program) (link.Link, error) {
				return exe.UprobeMulti(nil, p, &link.UprobeMultiOptions{Addresses: []uint64{uprobeAt}})
			})
		},
		Tracepoint: func() error {
			return attachWith(t, &ebpf.ProgramSpec{Type: ebpf.TracePoint}, func(p *ebpf.Program) (link.Link, error) {
				return link.Tracepoint("sched", "sched_process_exec", p, nil)
			})
		},
		RawTracepoint: func() error {
			return attachWith(t, &ebpf.ProgramSpec{Type: ebpf.RawTracepoint}, func(p *ebpf.Program) (link.Link, error) {
				return link.AttachRawTracepoint(link.RawTracepointOptions{Name: "sched_process_exec", Program: p})
			})
		},
		Fentry: func() error { return trampolineAttempt(ebpf.AttachTraceFEntry) },
		Fexit:  func() error { return trampolineAttempt(ebpf.AttachTraceFExit) },
		FmodRet: func() error {
			return attachWith(t, &ebpf.ProgramSpec{Type: ebpf.Tracing, AttachType: ebpf.AttachModifyReturn, AttachTo: "bpf_modify_return_test"},
				func(p *ebpf.Program) (link.Link, error) { return link.AttachTracing(link.TracingOptions{Program: p}) })
		},
		TpBTF: func() error {
			return attachWith(t, &ebpf.ProgramSpec{Type: ebpf.Tracing, AttachType: ebpf.AttachTraceRawTp, AttachTo: "sched_process_exec"},
				func(p *ebpf.Program) (link.Link, error) { return link.AttachTracing(link.TracingOptions{Program: p}) })
		},
		Iter: func() error {
			return attachWith(t, &ebpf.ProgramSpec{Type: ebpf.Tracing, AttachType: ebpf.AttachTraceIter, AttachTo: "task"},
				func(p *ebpf.Program) (link.Link, error) { return link.AttachIter(link.IterOptions{Program: p}) })
		},
		LSM: func() error { return lsmRuns(t) },
		UretprobeMulti: func() error {
			return attachWith(t, &ebpf.ProgramSpec{Type: ebpf.Kprobe, AttachType: ebpf.AttachTraceUprobeMulti}, func(p *ebpf.Program) (link.Link, error) {
				return exe.UretprobeMulti(nil, p, &link.UprobeMultiOptions{Addresses: []uint64{uprobeAt}})
			})
		},
		PerfEventHardware: func() error {
			return perfOpen(unix.PERF_TYPE_HARDWARE, unix.PERF_COUNT_HW_INSTRUCTIONS)
		},
		PerfEventSoftware: func() error {
			return perfOpen(unix.PERF_TYPE_SOFTWARE, unix.PERF_COUNT_SW_CPU_CLOCK)
		},
	}
	for _, m := range Mechanisms() {
		t.Run(string(m), func(t *testing.T) {
			s := k.Support(m)
			attempt, ok := attempts[m]
			if !ok {
				t.Fatalf("no independent attempt for %s", m)
			}
			err := attempt()
			t.Logf("probe: %v (%s); independent attempt: %v", fmtAvail(s), s.Reason, err)
			switch {
			case !s.Known():
				t.Errorf("%s undecided as root: %s (attempt: %v)", m, s.Reason, err)
			case s.Yes() && err != nil:
				t.Errorf("%s reported available (%s) but the attempt failed: %v", m, s.Reason, err)
			case s.No() && err == nil:
				t.Errorf("%s reported unavailable (%s) but the attempt succeeded", m, s.Reason)
			}
		})
	}
}

// lsmRuns attaches a BPF LSM program to file_open that counts its runs,
// opens a file, and fails unless the program ran: an LSM program attaches
// even when bpf is not an active LSM, and then never runs.
func lsmRuns(tb testing.TB) error {
	counter, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		return err
	}
	defer counter.Close()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type: ebpf.LSM, AttachType: ebpf.AttachLSMMac, AttachTo: "file_open", License: "GPL",
		Instructions: asm.Instructions{
			asm.StoreImm(asm.RFP, -4, 0, asm.Word),
			asm.LoadMapPtr(asm.R1, counter.FD()),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -4),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "out"),
			asm.Mov.Imm(asm.R1, 1),
			asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
			asm.Mov.Imm(asm.R0, 0).WithSymbol("out"),
			asm.Return(),
		},
	})
	if err != nil {
		return err
	}
	defer prog.Close()
	l, err := link.AttachLSM(link.LSMOptions{Program: prog})
	if err != nil {
		return err
	}
	defer l.Close()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return err
	}
	f.Close()
	var n uint64
	if err := counter.Lookup(uint32(0), &n); err != nil {
		return err
	}
	if n == 0 {
		return errors.New("LSM program attached but never ran on file_open (bpf is not an active LSM)")
	}
	return nil
}

func fmtAvail(s Support) string {
	switch {
	case s.Yes():
		return "available"
	case s.No():
		return "unavailable"
	}
	return "undecided"
}
