package loader

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cilium/ebpf/btf"

	"github.com/safebpf/safebpf/probe"
)

// errTargetNotFound wraps os.ErrNotExist for an attach point whose target
// the running kernel or binary does not have: a kernel function missing
// from kallsyms or BTF, a tracepoint missing from tracefs, a user symbol
// missing from the binary, a glob that matches nothing. cilium/ebpf's own
// attach calls match os.ErrNotExist in these cases.
var errTargetNotFound = fmt.Errorf("target not found: %w", os.ErrNotExist)

// notFound returns an error matching os.ErrNotExist.
func notFound(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, errTargetNotFound)...)
}

// resolver completes attach points against the machine the programs will
// run on: syscall wrappers, globs, and whether targets exist. Every answer
// is three-valued: resolved, not found (an error matching os.ErrNotExist), or
// unknown (nil error, attach point unchanged), when the facts cannot be
// read; an unknown target is left to the kernel to refuse at load or
// attach time.
type resolver interface {
	resolve(ap *attachPoint) error
}

// syscallPrefix is the arch prefix of syscall wrappers ("__x64_sys_bpf"),
// as libbpf's arch_specific_syscall_pfx; "" for arches without wrappers.
func syscallPrefix(goarch string) string {
	switch goarch {
	case "amd64":
		return "__x64_"
	case "386":
		return "__ia32_"
	case "arm64":
		return "__arm64_"
	case "arm":
		return "__arm_"
	case "s390x":
		return "__s390x_"
	case "riscv64":
		return "__riscv_"
	case "mips", "mipsle", "mips64", "mips64le":
		return "__mips_"
	case "ppc64", "ppc64le":
		return "__powerpc64_"
	}
	return ""
}

// offlineResolver resolves for a described kernel (PlanSpec): nothing can
// be checked, syscall wrappers are named as on a kernel with wrappers.
type offlineResolver struct{ arch string }

func (r offlineResolver) resolve(ap *attachPoint) error {
	if ap.syscall != "" {
		ap.symbol = syscallPrefix(r.arch) + "sys_" + ap.syscall
		if syscallPrefix(r.arch) == "" {
			ap.symbol = "__se_sys_" + ap.syscall
		}
	}
	return nil
}

// hostResolver resolves against this machine: /proc/kallsyms, tracefs's
// available_filter_functions(_addrs) and events, kernel BTF (iterators
// only), and the ELF symbols of user binaries.
type hostResolver struct {
	tracefs func() (string, error)
}

func newHostResolver(tracefs func() (string, error)) *hostResolver {
	return &hostResolver{tracefs: tracefs}
}

// symbolTable is /proc/kallsyms, read once per process and read again
// when a lookup misses and the copy is more than symbolTableMaxAge old
// (a module loaded since may have added the symbol).
var symbolTable struct {
	sync.Mutex
	syms map[string]uintptr
	err  error
	read time.Time
}

const symbolTableMaxAge = 2 * time.Second

func (r *hostResolver) kallsyms() (map[string]uintptr, error) {
	symbolTable.Lock()
	defer symbolTable.Unlock()
	if symbolTable.syms == nil && symbolTable.err == nil {
		symbolTable.syms, symbolTable.err = readKallsyms()
		symbolTable.read = time.Now()
	}
	return symbolTable.syms, symbolTable.err
}

// has looks name up in kallsyms, reading it again on a miss when the copy
// is old. ok is false when kallsyms cannot be read.
func (r *hostResolver) has(names ...string) (found string, ok bool) {
	syms, err := r.kallsyms()
	if err != nil {
		return "", false
	}
	for _, n := range names {
		if _, hit := syms[n]; hit {
			return n, true
		}
	}
	symbolTable.Lock()
	stale := time.Since(symbolTable.read) > symbolTableMaxAge
	if stale {
		if fresh, err := readKallsyms(); err == nil {
			symbolTable.syms, symbolTable.read = fresh, time.Now()
			syms = fresh
		}
	}
	symbolTable.Unlock()
	for _, n := range names {
		if _, hit := syms[n]; hit {
			return n, true
		}
	}
	return "", true
}

func readKallsyms() (map[string]uintptr, error) {
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseKallsyms(f)
}

// parseKallsyms reads the text (function) symbols of a kallsyms listing,
// "ADDRESS TYPE NAME [MODULE]" with types t, T, w and W, and the
// tracepoint data symbols "__tracepoint_NAME" (present only with
// CONFIG_KALLSYMS_ALL).
func parseKallsyms(rd io.Reader) (map[string]uintptr, error) {
	syms := make(map[string]uintptr, 1<<16)
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		// "ffffffff81000000 T _stext" and optionally "\t[module]".
		sp1 := indexByte(line, ' ')
		if sp1 < 0 || sp1+3 > len(line) || line[sp1+2] != ' ' {
			continue
		}
		name := line[sp1+3:]
		if i := indexByte(name, '\t'); i >= 0 {
			name = name[:i]
		}
		switch line[sp1+1] {
		case 't', 'T', 'w', 'W':
		case 'd', 'D':
			if !bytes.HasPrefix(name, []byte("__tracepoint_")) {
				continue
			}
		default:
			continue
		}
		if _, ok := syms[string(name)]; ok {
			continue
		}
		addr, _ := strconv.ParseUint(string(line[:sp1]), 16, 64)
		syms[string(name)] = uintptr(addr)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read kallsyms: %w", err)
	}
	if len(syms) == 0 {
		return nil, errors.New("read kallsyms: no function symbols")
	}
	return syms, nil
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func (r *hostResolver) resolve(ap *attachPoint) error {
	switch ap.mech {
	case probe.Kprobe, probe.Kretprobe:
		return r.kernelFunction(ap)
	case probe.KprobeMulti, probe.KretprobeMulti:
		return r.kernelPattern(ap)
	case probe.Fentry, probe.Fexit, probe.FmodRet:
		// A function without BTF fails to load, and its next
		// alternative is tried then; kallsyms says whether it exists.
		return r.symbol(ap.symbol, "kernel function "+ap.symbol)
	case probe.LSM:
		return r.symbol("bpf_lsm_"+ap.name, "LSM hook "+ap.name)
	case probe.Iter:
		return r.btfFunc(ap, "bpf_iter_"+ap.name, "iterator "+ap.name)
	case probe.TpBTF, probe.RawTracepoint:
		return r.rawTracepoint(ap)
	case probe.Tracepoint:
		return r.tracepoint(ap)
	case probe.Uprobe, probe.Uretprobe, probe.UprobeMulti, probe.UretprobeMulti:
		return r.userSymbol(ap)
	}
	return nil
}

// kernelFunction resolves a kprobe's function, as cilium/ebpf's
// link.Kprobe would find it: the name itself, else with the arch's
// syscall prefix ("sys_execve" is "__x64_sys_execve"). A ksyscall
// section resolves as libbpf's bpf_program__attach_ksyscall: the
// wrapper "__x64_sys_NAME" when the kernel has syscall wrappers,
// "__se_sys_NAME" otherwise.
func (r *hostResolver) kernelFunction(ap *attachPoint) error {
	pfx := syscallPrefix(runtime.GOARCH)
	if ap.syscall != "" {
		wrappers, ok := r.has(pfx + "sys_bpf")
		if !ok {
			return offlineResolver{arch: runtime.GOARCH}.resolve(ap) // unknown: libbpf's guess
		}
		if wrappers != "" && pfx != "" {
			ap.symbol = pfx + "sys_" + ap.syscall
		} else {
			ap.symbol = "__se_sys_" + ap.syscall
		}
		if found, _ := r.has(ap.symbol); found == "" {
			return notFound("syscall %s: no %s in /proc/kallsyms", ap.syscall, ap.symbol)
		}
		return nil
	}
	candidates := []string{ap.symbol}
	if pfx != "" {
		candidates = append(candidates, pfx+ap.symbol)
	}
	found, ok := r.has(candidates...)
	switch {
	case !ok:
		return nil // unknown: the kernel decides
	case found == "":
		return notFound("kernel function %s: not in /proc/kallsyms", ap.symbol)
	}
	ap.symbol = found
	return nil
}

// symbol checks that a kernel function exists.
func (r *hostResolver) symbol(name, what string) error {
	if found, ok := r.has(name); ok && found == "" {
		return notFound("%s: no %s in /proc/kallsyms", what, name)
	}
	return nil
}

// kernelPattern resolves a kprobe.multi pattern as libbpf's
// bpf_program__attach_kprobe_multi_opts: an exact name is passed as is;
// a glob is matched against available_filter_functions_addrs when the
// kernel has it (6.5+), else against kallsyms restricted to the names in
// available_filter_functions.
func (r *hostResolver) kernelPattern(ap *attachPoint) error {
	if !ap.glob {
		if err := r.kernelFunction(ap); err != nil {
			return err
		}
		ap.symbols = []string{ap.symbol}
		return nil
	}
	dir, err := r.tracefs()
	if err != nil {
		return nil // unknown
	}
	names, addrs, err := matchFilterFunctionsAddrs(filepath.Join(dir, "available_filter_functions_addrs"), ap.symbol)
	if errors.Is(err, os.ErrNotExist) {
		var avail map[string]bool
		avail, err = matchFilterFunctions(filepath.Join(dir, "available_filter_functions"), ap.symbol)
		if err == nil {
			syms, kerr := r.kallsyms()
			if kerr != nil {
				return nil // unknown
			}
			names, addrs = nil, nil
			for name, addr := range syms {
				if avail[name] && globMatch(name, ap.symbol) {
					names = append(names, name)
					addrs = append(addrs, addr)
				}
			}
		}
	}
	if err != nil {
		return nil // unknown (e.g. EPERM reading tracefs)
	}
	if len(names) == 0 {
		return notFound("pattern %s: no traceable kernel function matches", ap.symbol)
	}
	sortTogether(names, addrs)
	ap.symbols, ap.addrs = names, addrs
	return nil
}

// sortTogether sorts names and, in step, addrs by name.
func sortTogether(names []string, addrs []uintptr) {
	idx := make([]int, len(names))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return strings.Compare(names[a], names[b]) })
	n2 := make([]string, len(names))
	a2 := make([]uintptr, len(addrs))
	for i, j := range idx {
		n2[i] = names[j]
		if j < len(addrs) {
			a2[i] = addrs[j]
		}
	}
	copy(names, n2)
	copy(addrs, a2)
}

func matchFilterFunctionsAddrs(path, pattern string) ([]string, []uintptr, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	var names []string
	var addrs []uintptr
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || !globMatch(fields[1], pattern) {
			continue
		}
		a, err := strconv.ParseUint(fields[0], 16, 64)
		if err != nil {
			continue
		}
		names = append(names, fields[1])
		addrs = append(addrs, uintptr(a))
	}
	return names, addrs, sc.Err()
}

func matchFilterFunctions(path, pattern string) (map[string]bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 1 && globMatch(fields[0], pattern) {
			out[fields[0]] = true
		}
	}
	return out, sc.Err()
}

// kernelBTF is vmlinux's BTF and the names of the modules with BTF, read
// once per process (parsing it takes seconds on slow machines).
var kernelBTF = sync.OnceValues(func() (*btf.Cache, error) {
	c := btf.NewCache()
	if _, err := c.Kernel(); err != nil {
		return nil, err
	}
	return c, nil
})

var kernelBTFMu sync.Mutex // serialises lookups in the shared specs

// btfHas reports whether kernel or module BTF has a type named name for
// which keep returns true. It returns an error when BTF cannot be read.
func (r *hostResolver) btfHas(name string, keep func(btf.Type) bool) (bool, error) {
	cache, err := kernelBTF()
	if err != nil {
		return false, err
	}
	kernelBTFMu.Lock()
	defer kernelBTFMu.Unlock()
	has := func(s *btf.Spec) bool {
		types, err := s.AnyTypesByName(name)
		if err != nil {
			return false
		}
		return slices.ContainsFunc(types, keep)
	}
	spec, err := cache.Kernel()
	if err != nil {
		return false, err
	}
	if has(spec) {
		return true, nil
	}
	ents, err := os.ReadDir("/sys/kernel/btf")
	if err != nil {
		return false, err
	}
	for _, e := range ents {
		if e.Name() == "vmlinux" {
			continue
		}
		ms, err := cache.Module(e.Name())
		if err != nil {
			return false, err // a module we cannot read might have it
		}
		if has(ms) {
			return true, nil
		}
	}
	return false, nil
}

func isFunc(t btf.Type) bool { _, ok := t.(*btf.Func); return ok }

// btfFunc checks that a trampoline, LSM or iterator target exists as a BTF
// function, where cilium/ebpf will look for it when loading.
func (r *hostResolver) btfFunc(ap *attachPoint, fn, what string) error {
	ok, err := r.btfHas(fn, isFunc)
	if err != nil || ok {
		return nil
	}
	return notFound("%s: no function %s in kernel or module BTF", what, fn)
}

// rawTracepoint checks a raw or BTF tracepoint: its "__tracepoint_NAME"
// in kallsyms (data symbols: only when kallsyms lists them), else a
// tracefs event of that name in any group.
func (r *hostResolver) rawTracepoint(ap *attachPoint) error {
	if syms, err := r.kallsyms(); err == nil && hasTracepointSymbols(syms) {
		if found, _ := r.has("__tracepoint_" + ap.name); found != "" {
			return nil
		}
		return notFound("tracepoint %s: no __tracepoint_%s in /proc/kallsyms", ap.name, ap.name)
	}
	dir, err := r.tracefs()
	if err != nil {
		return nil
	}
	matches, err := filepath.Glob(filepath.Join(dir, "events", "*", ap.name))
	if err != nil || len(matches) > 0 {
		return nil
	}
	return notFound("tracepoint %s: no event of that name in %s/events", ap.name, dir)
}

// hasTracepointSymbols reports whether kallsyms lists tracepoint data
// symbols at all (CONFIG_KALLSYMS_ALL); without them absence proves
// nothing.
func hasTracepointSymbols(syms map[string]uintptr) bool {
	_, ok := syms["__tracepoint_sched_switch"]
	return ok
}

func (r *hostResolver) tracepoint(ap *attachPoint) error {
	dir, err := r.tracefs()
	if err != nil {
		return nil // unknown: tracefs not mounted
	}
	if _, err := os.Stat(filepath.Join(dir, "events", ap.group, ap.name)); errors.Is(err, os.ErrNotExist) {
		return notFound("tracepoint %s/%s: not in %s/events", ap.group, ap.name, dir)
	}
	return nil
}

// userSymbol resolves a uprobe's binary as libbpf does (a name without '/'
// is searched in PATH, or for libraries in LD_LIBRARY_PATH and the system
// library directories) and checks its symbol, or expands a uprobe.multi
// glob to the matching function symbols (.symtab first, .dynsym when
// .symtab has none, as libbpf's elf_resolve_pattern_offsets).
func (r *hostResolver) userSymbol(ap *attachPoint) error {
	if ap.path == "" || ap.symbol == "" {
		return nil
	}
	path, err := resolveBinary(ap.path)
	if err != nil {
		return err
	}
	ap.path = path
	funcs, err := elfFuncsOf(path)
	if err != nil {
		return nil // unknown: cilium/ebpf will say why it cannot read it
	}
	if ap.glob {
		var names []string
		for _, table := range funcs.names {
			for _, s := range table {
				if globMatch(s, ap.symbol) && !slices.Contains(names, s) {
					names = append(names, s)
				}
			}
			if len(names) > 0 {
				break
			}
		}
		if len(names) == 0 {
			return notFound("pattern %s: no function symbol of %s matches", ap.symbol, path)
		}
		slices.Sort(names)
		ap.symbols = names
		return nil
	}
	if funcs.has(ap.symbol) {
		if ap.mech == probe.UprobeMulti || ap.mech == probe.UretprobeMulti {
			ap.symbols = []string{ap.symbol}
		}
		return nil
	}
	return notFound("symbol %s: not a function symbol of %s", ap.symbol, path)
}

// resolveBinary is libbpf's resolve_full_path.
func resolveBinary(file string) (string, error) {
	if strings.Contains(file, "/") {
		if _, err := os.Stat(file); err != nil {
			return "", notFound("binary %s: %v", file, err)
		}
		return file, nil
	}
	var dirs []string
	mode := uint32(4) // R_OK
	if strings.HasSuffix(file, ".so") || strings.Contains(file, ".so.") {
		dirs = append(filepath.SplitList(os.Getenv("LD_LIBRARY_PATH")), "/usr/lib64", "/usr/lib")
		if d := archLibDir(runtime.GOARCH); d != "" {
			dirs = append(dirs, d)
		}
	} else {
		dirs = append(filepath.SplitList(os.Getenv("PATH")), "/usr/bin", "/usr/sbin")
		mode |= 1 // X_OK
	}
	for _, d := range dirs {
		if d == "" {
			continue
		}
		p := filepath.Join(d, file)
		if access(p, mode) {
			return p, nil
		}
	}
	return "", notFound("binary %s: not found in the search path", file)
}

func archLibDir(goarch string) string {
	switch goarch {
	case "amd64":
		return "/lib/x86_64-linux-gnu"
	case "386":
		return "/lib/i386-linux-gnu"
	case "arm64":
		return "/lib/aarch64-linux-gnu"
	case "s390x":
		return "/lib/s390x-linux-gnu"
	case "ppc64le":
		return "/lib/powerpc64le-linux-gnu"
	case "riscv64":
		return "/lib/riscv64-linux-gnu"
	}
	return ""
}

func access(path string, mode uint32) bool {
	fi, err := os.Stat(path)
	if err != nil || fi.IsDir() {
		return false
	}
	if mode&1 != 0 && fi.Mode()&0o111 == 0 {
		return false
	}
	return true
}

// elfFunctions returns the defined function symbols of an ELF file:
// [0] from .symtab, [1] from .dynsym. The answer is kept per file (path,
// size, modification time and inode), so a batch of symbols or several
// programs on one binary read it once.
func elfFunctions(path string) ([2][]string, error) {
	f, err := elfFuncsOf(path)
	if err != nil {
		return [2][]string{}, err
	}
	return f.names, nil
}

// elfFuncs is the function symbols of one ELF file.
type elfFuncs struct {
	names [2][]string
	set   [2]map[string]struct{}
}

// has reports whether name is a function symbol of the file (.symtab or
// .dynsym).
func (f *elfFuncs) has(name string) bool {
	_, a := f.set[0][name]
	_, b := f.set[1][name]
	return a || b
}

type elfCacheKey struct {
	path string
	size int64
	mod  time.Time
	ino  uint64
}

var elfCache struct {
	sync.Mutex
	m map[elfCacheKey]*elfFuncs
}

// maxELFCache bounds the files kept; past it the cache starts over.
const maxELFCache = 64

func elfFuncsOf(path string) (*elfFuncs, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	key := elfCacheKey{path: path, size: st.Size(), mod: st.ModTime()}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		key.ino = sys.Ino
	}
	elfCache.Lock()
	f, ok := elfCache.m[key]
	elfCache.Unlock()
	if ok {
		return f, nil
	}
	f, err = readELFFuncs(path)
	if err != nil {
		return nil, err
	}
	elfCache.Lock()
	if elfCache.m == nil || len(elfCache.m) >= maxELFCache {
		elfCache.m = map[elfCacheKey]*elfFuncs{}
	}
	elfCache.m[key] = f
	elfCache.Unlock()
	return f, nil
}

func readELFFuncs(path string) (*elfFuncs, error) {
	out := &elfFuncs{}
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	for i, read := range []func() ([]elf.Symbol, error){f.Symbols, f.DynamicSymbols} {
		syms, err := read()
		if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
			return nil, err
		}
		out.set[i] = map[string]struct{}{}
		for _, s := range syms {
			if elf.ST_TYPE(s.Info) == elf.STT_FUNC && s.Section != elf.SHN_UNDEF {
				out.names[i] = append(out.names[i], s.Name)
				out.set[i][s.Name] = struct{}{}
			}
		}
	}
	return out, nil
}
