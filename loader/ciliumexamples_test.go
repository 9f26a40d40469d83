package loader

import (
	"bytes"
	"embed"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/perf"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/safebpf/safebpf/probe"
)

// cilium/ebpf's examples, ported by following the README's migration
// section literally (link.X(...) becomes l.X(...), link.OpenExecutable
// becomes l.OpenExecutable, or loadBpfObjects becomes LoadAndAttach plus
// Assign), on cilium/ebpf's own BPF C. go generate ./loader compiles the
// C into testdata/cilium (not committed: it is cilium/ebpf's code) so the
// guests run the ports too; otherwise the host compiles it here.
//
//go:generate sh testdata/cilium/gen.sh
//go:embed testdata/cilium
var ciliumObjects embed.FS

// ciliumExample returns the CollectionSpec of cilium/ebpf's example name.
func ciliumExample(tb testing.TB, name string) *ebpf.CollectionSpec {
	tb.Helper()
	b, err := ciliumObjects.ReadFile("testdata/cilium/" + name + ".o")
	if err == nil {
		if v, verr := ciliumObjects.ReadFile("testdata/cilium/VERSION"); verr == nil {
			if want := ciliumVersion(); want != "" && strings.TrimSpace(string(v)) != want {
				err = errors.New("testdata/cilium was generated for cilium/ebpf " + strings.TrimSpace(string(v)))
			}
		}
	}
	if err != nil {
		b, err = compileCiliumExample(tb, name)
		if err != nil {
			tb.Skipf("cilium/ebpf's %s example: not embedded (go generate ./loader) and cannot compile it here: %v", name, err)
		}
	}
	spec, err := ebpf.LoadCollectionSpecFromReader(bytes.NewReader(b))
	if err != nil {
		tb.Fatalf("parse cilium/ebpf's %s example: %v", name, err)
	}
	return spec
}

// ciliumVersion is the cilium/ebpf version go.mod requires, "" without
// the source tree.
func ciliumVersion() string {
	mod, err := os.ReadFile(filepath.Join("..", "go.mod"))
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(mod), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "github.com/cilium/ebpf" {
			return f[1]
		}
	}
	return ""
}

func compileCiliumExample(tb testing.TB, name string) ([]byte, error) {
	if _, err := exec.LookPath("clang"); err != nil {
		return nil, err
	}
	dir := filepath.Join(ciliumDir(tb), "examples")
	srcs, _ := filepath.Glob(filepath.Join(dir, name, "*.c"))
	if len(srcs) != 1 {
		return nil, errors.New("no C source in " + filepath.Join(dir, name))
	}
	out := filepath.Join(tb.TempDir(), name+".o")
	cmd := exec.Command("clang", "-O2", "-g", "-Wall", "-target", "bpf", "-D__TARGET_ARCH_x86",
		"-I"+filepath.Join(dir, "headers"), "-c", srcs[0], "-o", out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, errors.New(err.Error() + ": " + string(msg))
	}
	return os.ReadFile(out)
}

// sameSentinels checks safebpf's error against cilium/ebpf's own for the
// same call on this kernel: every sentinel cilium's matches, safebpf's
// matches too (and ErrRefused).
func sameSentinels(t *testing.T, ours, theirs error) {
	t.Helper()
	if !errors.Is(ours, ErrRefused) {
		t.Errorf("safebpf: %v: want a refusal (ErrRefused)", ours)
	}
	for _, s := range []error{ErrNotSupported, os.ErrNotExist} {
		if errors.Is(theirs, s) && !errors.Is(ours, s) {
			t.Errorf("cilium/ebpf's error (%v) matches %v, safebpf's (%v) does not", theirs, s, ours)
		}
	}
	t.Logf("refused like cilium/ebpf: safebpf %v; cilium/ebpf %v", ours, theirs)
}

// execSelf runs this test binary (running no test) n times: n execve
// calls. It returns the pids.
func execSelf(t *testing.T, n int) []int {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for range n {
		cmd := exec.Command(self, "-test.run=^$")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("exec %s: %v: %s", self, err, out)
		}
		pids = append(pids, cmd.Process.Pid)
	}
	return pids
}

// TestCiliumExamplePorts runs the ports. Each mirrors the example's
// main.go with the migration applied and checks its events; where the
// kernel lacks what the example needs, the refusal must match what
// cilium/ebpf's own call fails with.
func TestCiliumExamplePorts(t *testing.T) {
	// kprobe: link.Kprobe("sys_execve", objs.KprobeExecve, nil) becomes
	// l.Kprobe(...); loadBpfObjects is unchanged.
	t.Run("kprobe", func(t *testing.T) {
		l := newHostLoader(t, nil)
		var objs struct {
			KprobeExecve *ebpf.Program `ebpf:"kprobe_execve"`
			KprobeMap    *ebpf.Map     `ebpf:"kprobe_map"`
		}
		if err := ciliumExample(t, "kprobe").LoadAndAssign(&objs, nil); err != nil { // loadBpfObjects
			t.Fatal(err)
		}
		defer objs.KprobeExecve.Close()
		defer objs.KprobeMap.Close()
		kp, err := l.Kprobe("sys_execve", objs.KprobeExecve, nil)
		if err != nil {
			theirs, cerr := link.Kprobe("sys_execve", objs.KprobeExecve, nil)
			if cerr == nil {
				theirs.Close()
				if !errors.Is(err, ErrRefused) || errors.Is(err, ErrNotSupported) {
					t.Fatalf("cilium/ebpf attaches here, safebpf: %v (want a hazard's refusal if anything)", err)
				}
				t.Logf("refused for a hazard: %v", err)
				return
			}
			sameSentinels(t, err, cerr)
			return
		}
		defer kp.Close()
		t.Logf("kernel %s: %s", l.Kernel().Release, Explain(kp.Decision()))
		execSelf(t, 3)
		var value uint64
		if err := objs.KprobeMap.Lookup(uint32(0), &value); err != nil {
			t.Fatal(err)
		}
		if value < 3 {
			t.Errorf("sys_execve called %d times, want >= 3", value)
		}
	})

	// The same example the collection way: LoadAndAttach attaches
	// kprobe/sys_execve from its section, Assign fills the objects.
	t.Run("kprobe/LoadAndAttach", func(t *testing.T) {
		l := newHostLoader(t, nil)
		coll, err := l.LoadAndAttach(ciliumExample(t, "kprobe"), nil)
		if err != nil {
			if !l.Kernel().Support(probe.Kprobe).Yes() && !l.Kernel().Support(probe.Fentry).Yes() {
				wantRefusal(t, err, "kprobe/sys_execve")
				return
			}
			t.Fatal(err)
		}
		defer coll.Close()
		var objs struct {
			KprobeExecve *ebpf.Program `ebpf:"kprobe_execve"`
			KprobeMap    *ebpf.Map     `ebpf:"kprobe_map"`
		}
		if err := coll.Assign(&objs); err != nil {
			t.Fatal(err)
		}
		defer objs.KprobeExecve.Close()
		defer objs.KprobeMap.Close()
		d, _ := coll.Decision("kprobe_execve")
		t.Logf("kernel %s: %s", l.Kernel().Release, Explain(d))
		execSelf(t, 3)
		var value uint64
		if err := objs.KprobeMap.Lookup(uint32(0), &value); err != nil {
			t.Fatal(err)
		}
		if value < 3 {
			t.Errorf("sys_execve called %d times, want >= 3", value)
		}
	})

	t.Run("kprobe_percpu", func(t *testing.T) {
		l := newHostLoader(t, nil)
		var objs struct {
			KprobeExecve *ebpf.Program `ebpf:"kprobe_execve"`
			KprobeMap    *ebpf.Map     `ebpf:"kprobe_map"`
		}
		if err := ciliumExample(t, "kprobe_percpu").LoadAndAssign(&objs, nil); err != nil {
			t.Fatal(err)
		}
		defer objs.KprobeExecve.Close()
		defer objs.KprobeMap.Close()
		kp, err := l.Kprobe("sys_execve", objs.KprobeExecve, nil)
		if err != nil {
			_, cerr := link.Kprobe("sys_execve", objs.KprobeExecve, nil)
			if cerr == nil {
				t.Fatalf("cilium/ebpf attaches here, safebpf: %v", err)
			}
			sameSentinels(t, err, cerr)
			return
		}
		defer kp.Close()
		execSelf(t, 3)
		var all []uint64
		if err := objs.KprobeMap.Lookup(uint32(0), &all); err != nil {
			t.Fatal(err)
		}
		var sum uint64
		for _, v := range all {
			sum += v
		}
		if sum < 3 {
			t.Errorf("sys_execve called %d times over %d CPUs, want >= 3", sum, len(all))
		}
	})

	t.Run("tracepoint_in_c", func(t *testing.T) {
		l := newHostLoader(t, nil)
		mountTracefs(t)
		var objs struct {
			MmPageAlloc *ebpf.Program `ebpf:"mm_page_alloc"`
			CountingMap *ebpf.Map     `ebpf:"counting_map"`
		}
		if err := ciliumExample(t, "tracepoint_in_c").LoadAndAssign(&objs, nil); err != nil {
			t.Fatal(err)
		}
		defer objs.MmPageAlloc.Close()
		defer objs.CountingMap.Close()
		tp, err := l.Tracepoint("kmem", "mm_page_alloc", objs.MmPageAlloc, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tp.Close()
		t.Logf("kernel %s: %s", l.Kernel().Release, Explain(tp.Decision()))
		mem := make([]byte, 32<<20)
		for i := 0; i < len(mem); i += 4096 {
			mem[i] = 1
		}
		var value uint64
		if err := objs.CountingMap.Lookup(uint32(0), &value); err != nil {
			t.Fatal(err)
		}
		if value == 0 {
			t.Error("no page allocation counted after touching 32 MiB")
		}
	})

	// uretprobe: link.OpenExecutable becomes l.OpenExecutable;
	// ex.Uretprobe is unchanged.
	t.Run("uretprobe", func(t *testing.T) {
		l := newHostLoader(t, nil)
		const binPath, symbol = "/bin/bash", "readline"
		if _, err := os.Stat(binPath); err != nil {
			t.Skipf("the example traces %s: %v", binPath, err)
		}
		var objs struct {
			UretprobeBashReadline *ebpf.Program `ebpf:"uretprobe_bash_readline"`
			Events                *ebpf.Map     `ebpf:"events"`
		}
		if err := ciliumExample(t, "uretprobe").LoadAndAssign(&objs, nil); err != nil {
			t.Fatal(err)
		}
		defer objs.UretprobeBashReadline.Close()
		defer objs.Events.Close()
		ex, err := l.OpenExecutable(binPath)
		if err != nil {
			t.Fatal(err)
		}
		up, err := ex.Uretprobe(symbol, objs.UretprobeBashReadline, nil)
		if err != nil {
			// Without NoSeccomp a uretprobe is refused where
			// uretprobe-seccomp-kill applies: the drop-in default.
			if !errors.Is(err, ErrRefused) {
				t.Fatal(err)
			}
			t.Logf("kernel %s: refused: %v", l.Kernel().Release, err)
			return
		}
		defer up.Close()
		t.Logf("kernel %s: %s", l.Kernel().Release, Explain(up.Decision()))
		rd, err := perf.NewReader(objs.Events, os.Getpagesize())
		if err != nil {
			t.Fatal(err)
		}
		defer rd.Close()
		if _, err := exec.LookPath("script"); err != nil {
			t.Skip("needs script(1) to give bash a terminal (readline reads only from one)")
		}
		// An interactive bash on a pseudo-terminal reads one line with
		// readline.
		cmd := exec.Command("script", "-q", "-c", "bash --norc --noprofile -i", "/dev/null")
		cmd.Stdin = strings.NewReader("echo safebpf-port\nexit\n")
		cmd.Env = append(os.Environ(), "TERM=dumb")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("interactive bash: %v: %s", err, out)
		}
		rd.SetDeadline(time.Now().Add(5 * time.Second))
		for {
			rec, err := rd.Read()
			if err != nil {
				t.Fatalf("no readline return value read (%v)", err)
			}
			var ev struct {
				PID  uint32
				Line [80]byte
			}
			if err := binary.Read(bytes.NewReader(rec.RawSample), binary.LittleEndian, &ev); err != nil {
				t.Fatal(err)
			}
			if line := unix.ByteSliceToString(ev.Line[:]); line == "echo safebpf-port" {
				return // readline's return value, seen at return
			}
		}
	})

	// fentry: link.AttachTracing(link.TracingOptions{Program: ...}),
	// without AttachType, becomes l.AttachTracing(...).
	t.Run("fentry", func(t *testing.T) {
		l := newHostLoader(t, nil)
		k := l.Kernel()
		if !k.Support(probe.Fentry).Yes() {
			t.Skipf("kernel lacks fentry (%s): cilium/ebpf cannot load the example either", k.Support(probe.Fentry).Reason)
		}
		var objs struct {
			TcpConnect *ebpf.Program `ebpf:"tcp_connect"`
			Events     *ebpf.Map     `ebpf:"events"`
		}
		if err := ciliumExample(t, "fentry").LoadAndAssign(&objs, nil); err != nil {
			t.Fatal(err)
		}
		defer objs.TcpConnect.Close()
		defer objs.Events.Close()
		lk, err := l.AttachTracing(link.TracingOptions{Program: objs.TcpConnect})
		if err != nil {
			// Loud, and only where fentry would not attach as is here.
			if !strings.Contains(err.Error(), "AttachType") {
				t.Fatalf("refusal does not say how to help: %v", err)
			}
			t.Logf("kernel %s: refused loudly: %v", k.Release, err)
			return
		}
		defer lk.Close()
		t.Logf("kernel %s: %s", k.Release, Explain(lk.Decision()))
		if lk.Decision().Chosen != probe.Fentry {
			t.Errorf("attached as %s, want fentry", lk.Decision().Chosen)
		}
		rd, err := ringbuf.NewReader(objs.Events)
		if err != nil {
			t.Fatal(err)
		}
		defer rd.Close()
		ln, err := listenLoopback(t)
		if err != nil {
			t.Skipf("no loopback TCP here: %v", err)
		}
		defer ln.Close()
		port := ln.Addr().(*net.TCPAddr).Port
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		rd.SetDeadline(time.Now().Add(5 * time.Second))
		for {
			rec, err := rd.Read()
			if err != nil {
				t.Fatalf("no tcp_connect event for port %d (%v)", port, err)
			}
			var ev struct {
				Comm  [16]byte
				Sport uint16
				Dport uint16
				Saddr uint32
				Daddr uint32
			}
			if err := binary.Read(bytes.NewReader(rec.RawSample), binary.LittleEndian, &ev); err != nil {
				t.Fatal(err)
			}
			dport := ev.Dport>>8 | ev.Dport<<8 // network byte order
			if int(dport) == port {
				return
			}
		}
	})

	t.Run("ringbuffer", func(t *testing.T) {
		l := newHostLoader(t, nil)
		var objs struct {
			KprobeExecve *ebpf.Program `ebpf:"kprobe_execve"`
			Events       *ebpf.Map     `ebpf:"events"`
		}
		if err := ciliumExample(t, "ringbuffer").LoadAndAssign(&objs, nil); err != nil {
			t.Fatal(err)
		}
		defer objs.KprobeExecve.Close()
		defer objs.Events.Close()
		kp, err := l.Kprobe("sys_execve", objs.KprobeExecve, nil)
		if err != nil {
			_, cerr := link.Kprobe("sys_execve", objs.KprobeExecve, nil)
			if cerr == nil {
				t.Fatalf("cilium/ebpf attaches here, safebpf: %v", err)
			}
			sameSentinels(t, err, cerr)
			return
		}
		defer kp.Close()
		rd, err := ringbuf.NewReader(objs.Events)
		if err != nil {
			t.Fatal(err)
		}
		defer rd.Close()
		pids := execSelf(t, 1)
		rd.SetDeadline(time.Now().Add(5 * time.Second))
		for {
			rec, err := rd.Read()
			if err != nil {
				t.Fatalf("no execve event from pid %d (%v)", pids[0], err)
			}
			if binary.LittleEndian.Uint32(rec.RawSample) == uint32(pids[0]) {
				return
			}
		}
	})
}

// listenLoopback listens on 127.0.0.1, bringing the loopback interface up
// first when it is down (the kernel-matrix guests start with it down).
func listenLoopback(t *testing.T) (net.Listener, error) {
	if ifi, err := net.InterfaceByName("lo"); err == nil && ifi.Flags&net.FlagUp == 0 {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err == nil {
			ifr, _ := unix.NewIfreq("lo")
			if unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr) == nil {
				ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
				_ = unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
			}
			unix.Close(fd)
		}
	}
	return net.Listen("tcp4", "127.0.0.1:0")
}
