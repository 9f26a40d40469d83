//go:build linux

package selftest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// RunUretprobeSeccomp runs the uretprobe-under-seccomp self-test once,
// uncached, as opts say (nil: the self-test proper). It fails when the
// test could not run or its result means nothing (the control run did not
// exit cleanly, the helper survived but the uretprobe never fired, the
// bound expired); the result is filled as far as the run got.
func RunUretprobeSeccomp(ctx context.Context, opts *UretprobeOptions) (UretprobeResult, error) {
	o := opts.opts()
	start := time.Now()
	res := UretprobeResult{Filter: o.Filter}
	done := func(err error) (UretprobeResult, error) {
		res.Elapsed = time.Since(start)
		if err != nil {
			err = fmt.Errorf("uretprobe self-test: %w", err)
		}
		return res, err
	}
	if runtime.GOARCH != "amd64" {
		return done(fmt.Errorf("the helper is x86-64 code and this is %s: %w", runtime.GOARCH, ErrNotSupported))
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()

	filter, err := o.Filter.filter()
	if err != nil {
		return done(err)
	}
	img, err := buildHelper(filter, o.DirectSyscall)
	if err != nil {
		return done(err)
	}
	exe, err := memExecutable(img.elf)
	if err != nil {
		return done(err)
	}
	defer exe.Close()
	path := fmt.Sprintf("/proc/self/fd/%d", exe.Fd())

	if !o.NoProbe && !o.DirectSyscall {
		control, err := runHelper(ctx, path)
		if err != nil {
			return done(fmt.Errorf("control run: %w", err))
		}
		res.Control = control.String()
		if want := o.Filter.control(); control != want {
			return done(fmt.Errorf("control run without probe: %s, want %s: the helper or its filter is broken, a kill would mean nothing", control, want))
		}
		counter, detach, err := attachCounter(path, img.probedOffset)
		if err != nil {
			return done(err)
		}
		defer detach()
		res.Probed = true
		run, err := runHelper(ctx, path)
		res.Outcome, res.ExitCode, res.Signal = run.Outcome, run.ExitCode, run.Signal
		if err != nil {
			return done(err)
		}
		if err := counter.Lookup(uint32(0), &res.Fired); err != nil {
			return done(fmt.Errorf("read the uretprobe counter: %w", err))
		}
		if res.Outcome == Survived && res.Fired == 0 {
			return done(fmt.Errorf("the helper survived but the uretprobe never fired (%s): nothing was tested", run))
		}
		runtime.KeepAlive(exe)
		return done(nil)
	}
	run, err := runHelper(ctx, path)
	res.Outcome, res.ExitCode, res.Signal = run.Outcome, run.ExitCode, run.Signal
	runtime.KeepAlive(exe)
	return done(err)
}

// memExecutable puts an executable in a memfd and returns it reopened
// read-only (a file open for writing cannot be executed: ETXTBSY). Nothing
// reaches a file system; closing the returned file frees it.
func memExecutable(image []byte) (*os.File, error) {
	const name = "safebpf-selftest"
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_EXEC)
	if errors.Is(err, unix.EINVAL) { // MFD_EXEC is 6.3+
		fd, err = unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	}
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	w := os.NewFile(uintptr(fd), name)
	defer w.Close()
	if _, err := w.Write(image); err != nil {
		return nil, fmt.Errorf("write helper to memfd: %w", err)
	}
	r, err := os.Open(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		return nil, fmt.Errorf("reopen helper memfd read-only: %w", err)
	}
	return r, nil
}

// attachCounter attaches a uretprobe that counts its runs in an array map
// to the function at offset in the executable at path.
func attachCounter(path string, offset uint64) (*ebpf.Map, func(), error) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "safebpf_st_hits", Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		return nil, nil, fmt.Errorf("create counter map: %w", err)
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:    "safebpf_st_ret",
		Type:    ebpf.Kprobe,
		License: "GPL",
		Instructions: asm.Instructions{
			asm.StoreImm(asm.RFP, -4, 0, asm.Word), // key = 0
			asm.LoadMapPtr(asm.R1, m.FD()),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -4),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "out"),
			asm.Mov.Imm(asm.R1, 1),
			asm.StoreXAdd(asm.R0, asm.R1, asm.DWord), // atomic (*value)++
			asm.Mov.Imm(asm.R0, 0).WithSymbol("out"),
			asm.Return(),
		},
	})
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("load uretprobe program: %w", err)
	}
	ex, err := link.OpenExecutable(path)
	if err == nil {
		var l link.Link
		l, err = ex.Uretprobe(ProbedFunction, prog, &link.UprobeOptions{Address: offset})
		if err == nil {
			return m, func() { l.Close(); prog.Close(); m.Close() }, nil
		}
	}
	prog.Close()
	m.Close()
	return nil, nil, fmt.Errorf("attach uretprobe to the helper: %w", err)
}

// runHelper runs the helper at path to its end, or kills it when ctx
// expires (an error: the helper never blocks).
func runHelper(ctx context.Context, path string) (helperRun, error) {
	cmd := exec.CommandContext(ctx, path)
	cmd.Env = []string{}
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		return helperRun{}, fmt.Errorf("helper did not finish in time: %w", ctx.Err())
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return helperRun{}, fmt.Errorf("run helper: %w", err)
	}
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	switch {
	case !ok:
		return helperRun{}, fmt.Errorf("run helper: no wait status")
	case ws.Signaled():
		return helperRun{Outcome: Killed, Signal: ws.Signal()}, nil
	}
	return helperRun{Outcome: Survived, ExitCode: ws.ExitStatus()}, nil
}
