//go:build linux

package main

import (
	"encoding/json"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/safebpf/safebpf/internal/testutil"
	"github.com/safebpf/safebpf/probe"
)

// TestProbeHostIntegration runs `safebpf probe --json` on this machine and
// checks each reported availability against an independent attempt made
// here (not against a hard-coded list): kprobe, fentry, hardware and
// software perf events.
func TestProbeHostIntegration(t *testing.T) {
	testutil.RequirePrivileged(t)

	r := runCLI(t, "probe", "--json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var p probeJSON
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if p.Kernel["release"] == "" || p.Kernel["version_source"] == "" {
		t.Errorf("kernel identity missing: %v", p.Kernel)
	}

	independent := map[probe.Mechanism]func(t *testing.T) error{
		probe.Kprobe:            tryKprobe,
		probe.Fentry:            tryFentry,
		probe.PerfEventHardware: func(*testing.T) error { return tryPerf(unix.PERF_TYPE_HARDWARE, unix.PERF_COUNT_HW_CPU_CYCLES) },
		probe.PerfEventSoftware: func(*testing.T) error { return tryPerf(unix.PERF_TYPE_SOFTWARE, unix.PERF_COUNT_SW_CPU_CLOCK) },
		probe.Uprobe:            tryUprobe,
		probe.Tracepoint:        tryTracepoint,
	}
	for m, try := range independent {
		t.Run(string(m), func(t *testing.T) {
			s, ok := p.Mechanisms[string(m)]
			if !ok {
				t.Fatalf("probe --json lacks %s", m)
			}
			if s.Available == nil {
				t.Fatalf("%s undecided as root: %v", m, deref(s.Reason))
			}
			err := try(t)
			if really := err == nil; *s.Available != really {
				t.Errorf("probe says %s available=%v (%s), but an independent attempt gave err=%v", m, *s.Available, deref(s.Reason), err)
			}
			t.Logf("%s: available=%v (%s); independent attempt: %v", m, *s.Available, deref(s.Reason), err)
		})
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

var retZero = asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}

// tryKprobe loads a kprobe program and attaches it to vfs_read.
func tryKprobe(t *testing.T) error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.Kprobe, License: "GPL", Instructions: retZero})
	if err != nil {
		t.Fatalf("kprobe program type should load as root: %v", err)
	}
	defer prog.Close()
	l, err := link.Kprobe("vfs_read", prog, nil)
	if err != nil {
		return err
	}
	return l.Close()
}

// tryUprobe attaches a uprobe to the C library's getpid (this Go test
// binary has no symbol table to attach to).
func tryUprobe(t *testing.T) error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.Kprobe, License: "GPL", Instructions: retZero})
	if err != nil {
		t.Fatalf("kprobe program type should load as root: %v", err)
	}
	defer prog.Close()
	var ex *link.Executable
	for _, path := range []string{"/lib/x86_64-linux-gnu/libc.so.6", "/lib/aarch64-linux-gnu/libc.so.6", "/usr/lib64/libc.so.6", "/lib64/libc.so.6", "/usr/lib/libc.so.6"} {
		if ex, err = link.OpenExecutable(path); err == nil {
			break
		}
	}
	if ex == nil {
		t.Skip("no C library found to attach a uprobe to")
	}
	l, err := ex.Uprobe("getpid", prog, nil)
	if err != nil {
		return err
	}
	return l.Close()
}

// tryTracepoint attaches to syscalls/sys_enter_getpid.
func tryTracepoint(t *testing.T) error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.TracePoint, License: "GPL", Instructions: retZero})
	if err != nil {
		return err
	}
	defer prog.Close()
	l, err := link.Tracepoint("syscalls", "sys_enter_getpid", prog, nil)
	if err != nil {
		return err
	}
	return l.Close()
}

// tryFentry loads an fentry program for vfs_read and attaches it.
func tryFentry(*testing.T) error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type: ebpf.Tracing, AttachType: ebpf.AttachTraceFEntry, AttachTo: "vfs_read",
		License: "GPL", Instructions: retZero,
	})
	if err != nil {
		return err
	}
	defer prog.Close()
	l, err := link.AttachTracing(link.TracingOptions{Program: prog})
	if err != nil {
		return err
	}
	return l.Close()
}

// tryPerf opens a perf event on CPU 0 for all processes.
func tryPerf(typ uint32, config uint64) error {
	attr := unix.PerfEventAttr{Type: typ, Config: config, Bits: unix.PerfBitDisabled}
	attr.Size = uint32(unsafe.Sizeof(attr))
	fd, err := unix.PerfEventOpen(&attr, -1, 0, -1, unix.PERF_FLAG_FD_CLOEXEC)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}
