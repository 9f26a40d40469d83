package loader

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"

	"github.com/safebpf/safebpf/internal/testutil"
	"github.com/safebpf/safebpf/probe"
)

// counterInsns counts into slot key of the array map "counts". When pid is
// non-zero only that process's calls count.
func counterInsns(name string, key int32, pid int) asm.Instructions {
	insns := asm.Instructions{asm.Mov.Imm(asm.R6, 0).WithSymbol(name)}
	if pid != 0 {
		insns = append(insns,
			asm.FnGetCurrentPidTgid.Call(),
			asm.RSh.Imm(asm.R0, 32),
			asm.JNE.Imm(asm.R0, int32(pid), "out"),
		)
	}
	return append(insns,
		asm.StoreImm(asm.R10, -4, int64(key), asm.Word),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, -4),
		asm.LoadMapPtr(asm.R1, 0).WithReference("counts"),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("out"),
		asm.Return(),
	)
}

// counterProg is a program in section that counts into slot key.
func counterProg(name, section string, typ ebpf.ProgramType, key int32, pid int) *ebpf.ProgramSpec {
	ps := &ebpf.ProgramSpec{
		Name:         name,
		Type:         typ,
		SectionName:  section,
		License:      "GPL",
		Instructions: counterInsns(name, key, pid),
	}
	switch {
	case strings.HasPrefix(section, "fentry/"):
		ps.AttachType, ps.AttachTo = ebpf.AttachTraceFEntry, strings.TrimPrefix(section, "fentry/")
	case strings.HasPrefix(section, "fexit/"):
		ps.AttachType, ps.AttachTo = ebpf.AttachTraceFExit, strings.TrimPrefix(section, "fexit/")
	}
	return ps
}

func countsMap() *ebpf.MapSpec {
	return &ebpf.MapSpec{Name: "counts", Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 8}
}

func spec(progs ...*ebpf.ProgramSpec) *ebpf.CollectionSpec {
	cs := &ebpf.CollectionSpec{Maps: map[string]*ebpf.MapSpec{"counts": countsMap()}, Programs: map[string]*ebpf.ProgramSpec{}}
	for _, p := range progs {
		cs.Programs[p.Name] = p
	}
	return cs
}

func readCount(tb testing.TB, m *ebpf.Map, key uint32) uint64 {
	tb.Helper()
	var v uint64
	if err := m.Lookup(key, &v); err != nil {
		tb.Fatalf("read counts[%d]: %v", key, err)
	}
	return v
}

// target is a binary the uprobe tests attach to: Path's function Symbol
// is called once per iteration of Run.
type target struct {
	Path, Symbol string
	selfExec     bool
}

var (
	targetOnce sync.Once
	theTarget  target
)

// buildTarget builds testdata/target (a Go program calling the noinline
// function main.hit N times) into a temporary directory, or uses the copy
// the kernel-matrix harness prebuilt (SAFEBPF_VM_PREBUILT). Failing both,
// the test binary itself is the target: run with SAFEBPF_LOADER_TARGET=N it calls
// uprobeTarget N times (see TestMain).
func buildTarget(tb testing.TB) target {
	tb.Helper()
	targetOnce.Do(func() {
		// The kernel-matrix harness prebuilds testdata mains for guests,
		// which have no go tool.
		if dir := os.Getenv("SAFEBPF_VM_PREBUILT"); dir != "" {
			p := filepath.Join(dir, "loader", "testdata", "target", "target")
			if _, err := os.Stat(p); err == nil {
				theTarget = target{Path: p, Symbol: "main.hit"}
				return
			}
		}
		if _, err := exec.LookPath("go"); err == nil && os.Getenv("SAFEBPF_TEST_SELF_TARGET") == "" {
			dir, err := os.MkdirTemp("", "safebpf-loader-target")
			if err == nil {
				p := filepath.Join(dir, "target")
				cmd := exec.Command("go", "build", "-o", p, "./testdata/target")
				cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
				if out, err := cmd.CombinedOutput(); err == nil {
					theTarget = target{Path: p, Symbol: "main.hit"}
					return
				} else {
					fmt.Fprintf(os.Stderr, "build testdata/target: %v: %s; using the test binary\n", err, out)
				}
			}
		}
		self, err := os.Executable()
		if err != nil {
			return
		}
		theTarget = target{Path: self, Symbol: "github.com/safebpf/safebpf/loader.uprobeTarget", selfExec: true}
	})
	if theTarget.Path == "" {
		tb.Skip("no uprobe target: cannot build testdata/target and cannot find the test binary")
	}
	return theTarget
}

// runTarget runs the target so that its symbol is called n times.
func runTarget(tb testing.TB, tg target, n int) {
	tb.Helper()
	cmd := exec.Command(tg.Path, strings.Repeat("x", n))
	// A uretprobe rewrites return addresses; keep the Go runtime from
	// unwinding the target's stack while it runs.
	cmd.Env = append(os.Environ(), "GOGC=off", "GODEBUG=asyncpreemptoff=1")
	if tg.selfExec {
		cmd = exec.Command(tg.Path, "-test.run=^$")
		cmd.Env = append(os.Environ(), "GOGC=off", "GODEBUG=asyncpreemptoff=1", fmt.Sprintf("SAFEBPF_LOADER_TARGET=%d", n))
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("run target: %v: %s", err, out)
	}
}

var targetSink int

//go:noinline
func uprobeTarget(i int) int { return i*2 + 1 }

func TestMain(m *testing.M) {
	if v := os.Getenv("SAFEBPF_LOADER_TARGET"); v != "" {
		n, _ := strconv.Atoi(v)
		for i := 0; i < n; i++ {
			targetSink += uprobeTarget(i)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// mountTracefs makes tracefs available, mounting it if needed (root).
func mountTracefs(tb testing.TB) {
	tb.Helper()
	for _, p := range []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"} {
		if _, err := os.Stat(filepath.Join(p, "events")); err == nil {
			return
		}
	}
	if err := unix.Mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, ""); err != nil {
		tb.Skipf("tracefs is not mounted and mounting it failed: %v", err)
	}
}

// kernelFDs counts this process's BPF and perf file descriptors.
func kernelFDs(tb testing.TB) map[string]int {
	tb.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]int{}
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil {
			continue // closed meanwhile (the ReadDir fd itself)
		}
		if strings.HasPrefix(target, "anon_inode:bpf") || strings.HasPrefix(target, "anon_inode:btf") ||
			target == "anon_inode:[perf_event]" {
			out[target]++
		}
	}
	return out
}

var (
	hostOnce   sync.Once
	hostKernel *probe.Kernel
	hostErr    error
)

// newHostLoader returns a Loader for this machine (root only), sharing one
// detection across tests.
func newHostLoader(tb testing.TB, opts *Options) *Loader {
	tb.Helper()
	testutil.RequirePrivileged(tb)
	hostOnce.Do(func() {
		l, err := New(nil)
		if err != nil {
			hostErr = err
			return
		}
		hostKernel = l.Kernel()
		l.Close()
	})
	if hostErr != nil {
		tb.Fatalf("detect kernel: %v", hostErr)
	}
	o := Options{}
	if opts != nil {
		o = *opts
	}
	if o.Kernel == nil {
		o.Kernel = hostKernel
	}
	l, err := New(&o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	return l
}

// readerProg is counterProg preceded by a bpf_probe_read_user of 8 bytes
// at address 0 into the stack (it fails harmlessly at run time).
func readerProg(name, section string, typ ebpf.ProgramType, key int32) *ebpf.ProgramSpec {
	ps := counterProg(name, section, typ, key, 0)
	body := ps.Instructions
	body[0] = body[0].WithSymbol("")
	ps.Instructions = append(asm.Instructions{
		asm.Mov.Reg(asm.R1, asm.R10).WithSymbol(name),
		asm.Add.Imm(asm.R1, -16),
		asm.Mov.Imm(asm.R2, 8),
		asm.Mov.Imm(asm.R3, 0),
		asm.FnProbeReadUser.Call(),
	}, body...)
	return ps
}

func asmReturn0(name string) asm.Instructions {
	return asm.Instructions{asm.Mov.Imm(asm.R0, 0).WithSymbol(name), asm.Return()}
}

func syscallGetpid() { unix.Getpid() }
