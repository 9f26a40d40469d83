package perf

import (
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/safebpf/safebpf/internal/testutil"
	"github.com/safebpf/safebpf/internal/tracefs"
	"golang.org/x/sys/unix"
)

// counterProgram loads a program of type typ that increments slot 0 of a
// one-element array map, and returns both.
func counterProgram(t *testing.T, typ ebpf.ProgramType) (*ebpf.Program, *ebpf.Map) {
	t.Helper()
	testutil.RequirePrivileged(t)
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:    typ,
		License: "GPL",
		Instructions: asm.Instructions{
			asm.StoreImm(asm.RFP, -4, 0, asm.Word),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -4),
			asm.LoadMapPtr(asm.R1, m.FD()),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "exit"),
			asm.Mov.Imm(asm.R1, 1),
			asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
			asm.Mov.Imm(asm.R0, 0).WithSymbol("exit"),
			asm.Return(),
		},
	})
	testutil.SkipIfNotSupported(t, typ.String()+" programs", err)
	t.Cleanup(func() { prog.Close() })
	return prog, m
}

func count(t *testing.T, m *ebpf.Map) uint64 {
	t.Helper()
	var v uint64
	if err := m.Lookup(uint32(0), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func spin(d time.Duration) {
	for end := time.Now().Add(d); time.Now().Before(end); {
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func TestSoftwareCPUClock(t *testing.T) {
	prog, m := counterProgram(t, ebpf.PerfEvent)
	for _, tc := range []struct {
		name       string
		forceIoctl bool
	}{{"preferred", false}, {"ioctl", true}} {
		t.Run(tc.name, func(t *testing.T) {
			if err := m.Put(uint32(0), uint64(0)); err != nil {
				t.Fatal(err)
			}
			set, err := Open(Event{Frequency: 99})
			testutil.SkipIfNotSupported(t, "software cpu-clock perf events", err)
			online, err := OnlineCPUs()
			if err != nil {
				t.Fatal(err)
			}
			if len(set.FDs) != len(online) {
				t.Fatalf("opened %d events; want one per online CPU (%v)", len(set.FDs), online)
			}
			multi := &Multi{}
			defer multi.Close()
			for _, fd := range set.FDs {
				a, err := attach(prog, fd, tc.forceIoctl)
				if err != nil {
					_ = set.Close()
					t.Fatal(err)
				}
				multi.Attachments = append(multi.Attachments, a)
				if tc.forceIoctl && a.Mode() != ModeIoctl {
					t.Errorf("Mode = %v; want ioctl", a.Mode())
				}
				if a.Mode() == ModeLink && a.Link() == nil {
					t.Errorf("link mode without a link")
				}
				t.Logf("cpu %d attached via %v", a.CPU(), a.Mode())
			}
			spin(300 * time.Millisecond)
			if n := count(t, m); n == 0 {
				t.Errorf("no cpu-clock samples in 300ms of spinning at 99 Hz")
			} else {
				t.Logf("%d samples", n)
			}
			if err := multi.Close(); err != nil {
				t.Fatal(err)
			}
			// Detached: the counter must stop moving. Let a program that
			// was running during Close finish first.
			time.Sleep(20 * time.Millisecond)
			before := count(t, m)
			spin(100 * time.Millisecond)
			if after := count(t, m); after != before {
				t.Errorf("counter moved from %d to %d after Close", before, after)
			}
		})
	}
}

func TestAttachEvent(t *testing.T) {
	prog, m := counterProgram(t, ebpf.PerfEvent)
	multi, err := AttachEvent(prog, Event{Period: 10_000_000, CPUs: []int{0}})
	testutil.SkipIfNotSupported(t, "software cpu-clock perf events", err)
	defer multi.Close()
	if len(multi.Attachments) != 1 || multi.Attachments[0].CPU() != 0 {
		t.Fatalf("attachments %+v; want one on cpu 0", multi.Attachments)
	}
	// Pin this goroutine's thread to CPU 0 so the samples land there.
	var set unix.CPUSet
	set.Set(0)
	if err := unix.SchedSetaffinity(0, &set); err == nil {
		defer func() {
			var all unix.CPUSet
			for i := 0; i < 1024; i++ {
				all.Set(i)
			}
			_ = unix.SchedSetaffinity(0, &all)
		}()
	}
	// A 10ms period: 1ms starves the emulated CPUs of the kernel matrix
	// (TCG) into soft lockups.
	spin(300 * time.Millisecond)
	if count(t, m) == 0 {
		t.Error("no samples on cpu 0 at a 10ms period")
	}
}

func TestHardwareMatchesKernel(t *testing.T) {
	testutil.RequirePrivileged(t)
	// Ask the kernel directly, then check Open reports the same.
	attr := unix.PerfEventAttr{
		Type:   unix.PERF_TYPE_HARDWARE,
		Config: unix.PERF_COUNT_HW_CPU_CYCLES,
		Sample: 99,
		Bits:   unix.PerfBitDisabled | unix.PerfBitFreq,
	}
	attr.Size = uint32(unsafe.Sizeof(attr))
	fd, rawErr := unix.PerfEventOpen(&attr, -1, 0, -1, unix.PERF_FLAG_FD_CLOEXEC)
	if rawErr == nil {
		unix.Close(fd)
	}

	set, err := Open(Event{Hardware: true, Frequency: 99, CPUs: []int{0}})
	switch {
	case rawErr == nil:
		if err != nil {
			t.Fatalf("kernel opens cpu-cycles but Open fails: %v", err)
		}
		set.Close()
	case errors.Is(rawErr, unix.ENOENT) || errors.Is(rawErr, unix.EOPNOTSUPP):
		if !errors.Is(err, ebpf.ErrNotSupported) || !errors.Is(err, rawErr) {
			t.Fatalf("kernel says %v; Open = %v; want ErrNotSupported wrapping the errno", rawErr, err)
		}
		t.Logf("hardware events unavailable as expected: %v", err)
	default:
		if err == nil || !errors.Is(err, rawErr) || errors.Is(err, ebpf.ErrNotSupported) {
			t.Fatalf("kernel says %v; Open = %v; want the same errno, not ErrNotSupported", rawErr, err)
		}
	}
}

func TestOpenRollback(t *testing.T) {
	prog, _ := counterProgram(t, ebpf.PerfEvent)
	// Warm up lazily opened descriptors (feature probes, runtime).
	if multi, err := AttachEvent(prog, Event{Frequency: 99, CPUs: []int{0}}); err != nil {
		testutil.SkipIfNotSupported(t, "software cpu-clock perf events", err)
	} else {
		multi.Close()
	}
	before := openFDs(t)

	if set, err := Open(Event{Frequency: 99, CPUs: []int{0, 4095}}); err == nil {
		set.Close()
		t.Fatal("Open on cpu 4095 succeeded; want an error")
	} else {
		t.Logf("Open on cpu 4095: %v", err)
	}
	if after := openFDs(t); after != before {
		t.Errorf("open fds %d before, %d after a failed Open", before, after)
	}

	// A closed event in the middle of a set makes AttachSet fail after the
	// first CPU was attached: everything must be closed.
	set, err := Open(Event{Frequency: 99, CPUs: []int{0}})
	if err != nil {
		t.Fatal(err)
	}
	extra, err := Open(Event{Frequency: 99, CPUs: []int{0}})
	if err != nil {
		t.Fatal(err)
	}
	closed := &FD{fd: -1, cpu: 1}
	set.FDs = append(set.FDs, closed, extra.FDs[0])
	if multi, err := AttachSet(prog, set); err == nil {
		multi.Close()
		t.Fatal("AttachSet with a closed event succeeded")
	}
	if after := openFDs(t); after != before {
		t.Errorf("open fds %d before, %d after a failed AttachSet", before, after)
	}
}

// libcSymbol places the uprobe tests on libc; they make /bin/true call
// into it, and a minimal guest (the kernel-matrix initramfs) has neither.
func libcSymbol(t *testing.T, symbol string) (string, uint64) {
	t.Helper()
	if _, err := os.Stat("/bin/true"); err != nil {
		t.Skipf("needs /bin/true, a dynamically linked program, to fire a libc uprobe: %v", err)
	}
	return testutil.LibcSymbol(t, symbol)
}

// TestTracefsUprobe attaches through a tracefs uprobe event opened as a
// tracepoint perf event: the path a kretprobe with maxactive takes.
func TestTracefsUprobe(t *testing.T) {
	prog, m := counterProgram(t, ebpf.Kprobe)
	fs, err := tracefs.Mount()
	if errors.Is(err, tracefs.ErrNotMounted) {
		t.Skipf("kernel lacks tracefs: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	lib, off := libcSymbol(t, "__libc_start_main")
	for _, tc := range []struct {
		name       string
		forceIoctl bool
	}{{"preferred", false}, {"ioctl", true}} {
		t.Run(tc.name, func(t *testing.T) {
			if err := m.Put(uint32(0), uint64(0)); err != nil {
				t.Fatal(err)
			}
			ev, err := fs.Uprobe(lib, off, nil)
			testutil.SkipIfNotSupported(t, "uprobe_events", err)
			defer ev.Close()
			fd, err := OpenTracepoint(ev.ID)
			if err != nil {
				t.Fatal(err)
			}
			a, err := attach(prog, fd, tc.forceIoctl)
			if err != nil {
				fd.Close()
				t.Fatal(err)
			}
			defer a.Close()
			t.Logf("attached via %v", a.Mode())
			if err := exec.Command("/bin/true").Run(); err != nil {
				t.Fatal(err)
			}
			if count(t, m) == 0 {
				t.Errorf("uprobe on %s:0x%x did not fire for /bin/true", lib, off)
			}
			if err := ev.Close(); !errors.Is(err, unix.EBUSY) {
				t.Errorf("removing an attached event = %v; want EBUSY", err)
			}
			// The event is busy while attached, and removable after.
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			if err := ev.Close(); err != nil {
				t.Errorf("remove event after detach: %v", err)
			}
		})
	}
}

func TestAttachTracepoint(t *testing.T) {
	prog, m := counterProgram(t, ebpf.TracePoint)
	fs, err := tracefs.Mount()
	if errors.Is(err, tracefs.ErrNotMounted) {
		t.Skipf("kernel lacks tracefs: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	id, err := fs.EventID("syscalls", "sys_enter_getppid")
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("kernel lacks the syscalls/sys_enter_getppid tracepoint (CONFIG_FTRACE_SYSCALLS): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	a, err := AttachTracepoint(prog, id)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for i := 0; i < 10; i++ {
		unix.Getppid()
	}
	if n := count(t, m); n < 10 {
		t.Errorf("tracepoint fired %d times for 10 getppid calls; want at least 10", n)
	}
}

func TestAttachTraceEventOwnsEvent(t *testing.T) {
	prog, m := counterProgram(t, ebpf.Kprobe)
	fs, err := tracefs.Mount()
	if errors.Is(err, tracefs.ErrNotMounted) {
		t.Skipf("kernel lacks tracefs: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	// __libc_start_main never returns; __cxa_atexit does, and every
	// coreutils program calls it (atexit(close_stdout)).
	lib, off := libcSymbol(t, "__cxa_atexit")
	ev, err := fs.Uprobe(lib, off, &tracefs.UprobeOptions{Return: true})
	testutil.SkipIfNotSupported(t, "uprobe_events", err)
	a, err := AttachTraceEvent(prog, ev)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.Event() != ev {
		t.Errorf("Event() = %p; want %p", a.Event(), ev)
	}
	if err := exec.Command("/bin/true").Run(); err != nil {
		t.Fatal(err)
	}
	if count(t, m) == 0 {
		t.Errorf("uretprobe on %s:0x%x did not fire for /bin/true", lib, off)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := fs.EventID(ev.Group, ev.Name); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("event %s/%s still exists after Close: %v", ev.Group, ev.Name, err)
	}

	// A failed attach removes the event too: a tracepoint-type program
	// cannot attach to a uprobe event.
	tpProg, _ := counterProgram(t, ebpf.TracePoint)
	ev2, err := fs.Uprobe(lib, off, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a2, err := AttachTraceEvent(tpProg, ev2); err == nil {
		a2.Close()
		t.Fatal("attaching a tracepoint program to a uprobe event succeeded")
	} else {
		t.Logf("expected failure: %v", err)
	}
	if _, err := fs.EventID(ev2.Group, ev2.Name); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("event %s/%s still exists after a failed attach: %v", ev2.Group, ev2.Name, err)
	}
}
