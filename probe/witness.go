package probe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"weak"

	"github.com/safebpf/safebpf/internal/kcode"
	"github.com/safebpf/safebpf/internal/kernel"
)

// observeWitness answers a fact that is not a kallsyms symbol from the
// kernel h describes: machine code read from /proc/kcore (FactCall), the
// kernel's BTF (FactBTF) or a live self-test (FactSelfTest, only on the
// running host). k is the partly filled Kernel (Arch, Release, Kallsyms).
// Whatever cannot be established is Unobserved with the reason; nothing is
// ever guessed "does not hold". A call that is not in the code counts only
// when the code was decoded completely, no callee can have been inlined
// across files (see crossFileInlining) and debugfs lists no kprobe in the
// code read (its int3 or jump would hide the instruction; without debugfs
// this cannot be checked).
//
// Work shared between facts of one Detect (the kallsyms table, the BTF
// spec) is kept only as long as h is alive; the self-test's result is kept
// for the life of the process.
func observeWitness(ctx context.Context, h *kernel.Host, k *Kernel, f Fact) Observation {
	if err := ctx.Err(); err != nil {
		return Unobserved(fmt.Sprintf("%s: %v", f, err))
	}
	if k == nil {
		k = &Kernel{} // no arch: every arch-bound witness says so
	}
	switch f.Kind {
	case FactCall:
		return observeCall(h, k, f)
	case FactBTF:
		return observeBTF(h, f)
	case FactSelfTest:
		return observeSelfTest(ctx, h, k, f)
	}
	return Unobserved(fmt.Sprintf("%s: no witness for facts of kind %q", f, f.Kind))
}

// callFollow lists, per function a call fact names, the static helpers GCC
// may or may not inline into it: their direct calls count as the
// function's (one level). mm/usercopy.c: 0aef499f3172 "mm/usercopy:
// Detect vmalloc overruns" put the find_vmap_area lookup in the static
// check_heap_object, which __check_object_size calls.
var callFollow = map[string][]string{
	"__check_object_size": {"check_heap_object"},
}

// observeCall answers "function->callee" from the machine code.
func observeCall(h *kernel.Host, k *Kernel, f Fact) Observation {
	fn, callee, ok := f.CallParts()
	if !ok {
		return Unobserved(fmt.Sprintf("call fact %q: want \"function->callee\"", f.Name))
	}
	arch := k.Arch
	if arch != "amd64" && arch != "arm64" {
		return Unobserved(fmt.Sprintf("%s: arch %s: no disassembler for its machine code", f, arch))
	}
	if arch == "arm64" && callee == "nmi_uaccess_okay" {
		// include/asm-generic/tlb.h: nmi_uaccess_okay() is the constant
		// true outside x86, so the fix leaves no call on arm64.
		return Unobserved(fmt.Sprintf("%s: arch arm64: nmi_uaccess_okay is compiled away there, no call to look for", f))
	}
	// kcore first: where it is missing (this is common) the kallsyms read
	// is saved.
	core, closeCore, why := openKcore(h)
	if why != "" {
		return Unobserved(fmt.Sprintf("%s: %s", f, why))
	}
	defer closeCore()
	if want := map[string]string{"amd64": "EM_X86_64", "arm64": "EM_AARCH64"}[arch]; core.Machine.String() != want {
		return Unobserved(fmt.Sprintf("%s: /proc/kcore is %v, the kernel is %s", f, core.Machine, arch))
	}
	syms, err := hostSymbols(h)
	if err != nil {
		return Unobserved(fmt.Sprintf("%s: %v", f, err))
	}
	found, err := kcode.FindCall(syms, core, arch, kcode.Query{Function: fn, Callee: callee, Follow: callFollow[fn]})
	switch {
	case found != nil && found.Found:
		return Observed(true, found.Site+" (kcore)")
	case err != nil:
		return Unobserved(fmt.Sprintf("%s: %v", f, err))
	}
	if why := crossFileInlining(h, k); why != "" {
		return Unobserved(fmt.Sprintf("%s: no call found, but %s: %s may be inlined into %s", f, why, callee, fn))
	}
	if found.NoCallee {
		return Observed(false, fmt.Sprintf("%s is not in kallsyms: the kernel has no function of that name to call", callee))
	}
	if at := kprobeIn(h, found.Spans); at != "" {
		return Unobserved(fmt.Sprintf("%s: no call found, but a kprobe at %s patches the code read (its int3 or jump hides what was there)", f, at))
	}
	return Observed(false, fmt.Sprintf("no call to %s in %s (kcore); direct calls seen: %s",
		callee, strings.Join(found.Read, ", "), strings.Join(found.Calls, ", ")))
}

// crossFileInlining says why the compiler may have inlined a function of
// one file into another (link-time optimisation), or "" when it cannot
// have. A call fact names a callee defined in another file than the
// function, so without LTO the absence of a call is the absence of the
// callee's code. GCC-built kernels have no LTO; Clang-built ones do when
// CONFIG_LTO_CLANG is set (Android GKI, ChromeOS).
func crossFileInlining(h *kernel.Host, k *Kernel) string {
	if v, known := k.ConfigValue("CONFIG_LTO_CLANG"); known {
		if v == "y" {
			return "the kernel is built with LTO (CONFIG_LTO_CLANG=y)"
		}
		return ""
	}
	pv := k.ProcVersion
	if pv == "" {
		pv, _ = h.ProcVersion()
	}
	switch {
	case strings.Contains(pv, "clang"):
		return "the kernel is built with Clang and its config is unreadable, so LTO cannot be ruled out"
	case strings.Contains(pv, "gcc"):
		return ""
	}
	return "neither /proc/version nor the config tells the compiler, so LTO cannot be ruled out"
}

// kprobeIn returns where a kprobe (other than an ftrace-based one, which
// only changes the entry's nop) sits in the spans, from debugfs's
// kprobes/list; "" when there is none or the list cannot be read.
func kprobeIn(h *kernel.Host, spans []kcode.Span) string {
	b, err := h.ReadFile("sys/kernel/debug/kprobes/list")
	if err != nil {
		return ""
	}
	// "ffffffff8123c037  k  copy_from_user_nofault+0x37    [OPTIMIZED]"
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 3 || strings.Contains(line, "[FTRACE]") {
			continue
		}
		addr, _ := strconv.ParseUint(fields[0], 16, 64)
		sym, offText, _ := strings.Cut(fields[2], "+0x")
		off, _ := strconv.ParseUint(offText, 16, 64)
		for _, sp := range spans {
			if (addr != 0 && addr >= sp.Start && addr < sp.End) || (addr == 0 && sym == sp.Name && sp.Start+off < sp.End) {
				return fields[2]
			}
		}
	}
	return ""
}

// openKcore opens /proc/kcore under h and reads its headers, or says why
// it cannot.
func openKcore(h *kernel.Host) (*kcode.Core, func(), string) {
	file, err := h.Open("proc/kcore")
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, nil, "/proc/kcore: no such file (CONFIG_PROC_KCORE off?)"
		case errors.Is(err, fs.ErrPermission):
			if mode := lockdownMode(h); mode == "confidentiality" {
				return nil, nil, "/proc/kcore: lockdown: confidentiality"
			}
			if !kernel.Privileged() {
				return nil, nil, "/proc/kcore: not root (reading it needs CAP_SYS_RAWIO)"
			}
		}
		return nil, nil, fmt.Sprintf("open /proc/kcore: %v", err)
	}
	ra, ok := file.(io.ReaderAt)
	if !ok {
		file.Close()
		return nil, nil, "/proc/kcore: the file system gives no random access to it"
	}
	core, err := kcode.OpenCore(ra)
	if err != nil {
		file.Close()
		if errors.Is(err, fs.ErrPermission) && lockdownMode(h) == "confidentiality" {
			return nil, nil, "/proc/kcore: lockdown: confidentiality"
		}
		return nil, nil, fmt.Sprintf("/proc/kcore: %v", err)
	}
	return core, func() { file.Close() }, ""
}

// lockdown returns the active lockdown mode ("none", "integrity",
// "confidentiality"), or "" when unknown.
func lockdownMode(h *kernel.Host) string {
	b, err := h.ReadFile("sys/kernel/security/lockdown")
	if err != nil {
		return ""
	}
	// "none [integrity] confidentiality"
	if _, rest, ok := bytes.Cut(b, []byte("[")); ok {
		if mode, _, ok := bytes.Cut(rest, []byte("]")); ok {
			return string(mode)
		}
	}
	return ""
}

// witnessCache keeps what several facts of one Detect share, for as long
// as that Detect's Host is alive: the key is weak and a cleanup drops the
// values once the Host is collected.
var witnessCache struct {
	sync.Mutex
	host weak.Pointer[kernel.Host]
	syms *witnessValue[*kcode.Symbols]
	btf  *witnessValue[btfSpec]
}

type witnessValue[T any] struct {
	v   T
	err error
}

// cached returns the value load gives for h, loading it at most once per
// Host. Context errors are not cached.
func witnessCached[T any](h *kernel.Host, slot func() **witnessValue[T], load func() (T, error)) (T, error) {
	witnessCache.Lock()
	defer witnessCache.Unlock()
	if key := weak.Make(h); witnessCache.host != key || h == nil {
		witnessCache.host = key
		witnessCache.syms, witnessCache.btf = nil, nil
		if h != nil {
			runtime.AddCleanup(h, dropWitnessCache, key)
		}
	}
	if s := slot(); *s != nil {
		return (*s).v, (*s).err
	}
	v, err := load()
	if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		*slot() = &witnessValue[T]{v, err}
	}
	return v, err
}

func dropWitnessCache(key weak.Pointer[kernel.Host]) {
	witnessCache.Lock()
	defer witnessCache.Unlock()
	if witnessCache.host == key {
		witnessCache.host = weak.Pointer[kernel.Host]{}
		witnessCache.syms, witnessCache.btf = nil, nil
	}
}

// hostSymbols reads h's /proc/kallsyms into a symbol table, once per Host.
func hostSymbols(h *kernel.Host) (*kcode.Symbols, error) {
	return witnessCached(h, func() **witnessValue[*kcode.Symbols] { return &witnessCache.syms }, func() (*kcode.Symbols, error) {
		file, err := h.OpenKallsyms() // bounded by kernel.MaxKallsymsSize
		if err != nil {
			return nil, err
		}
		defer file.Close()
		return kcode.ReadSymbols(file)
	})
}
