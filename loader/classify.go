package loader

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/safebpf/safebpf/probe"
)

// bpfFSleepable is BPF_F_SLEEPABLE (include/uapi/linux/bpf.h), the flag
// cilium/ebpf sets on ProgramSpec.Flags for ".s" sections.
const bpfFSleepable = 1 << 4

// use says what LoadAndAttach does with a program.
type use int

const (
	// useAttach: a tracing program LoadAndAttach plans and attaches.
	useAttach use = iota
	// useLoadOnly: not a tracing program (socket filter, XDP, TC, cgroup,
	// struct_ops, freplace, syscall, ...) or listed in
	// CollectionOptions.Manual: loaded, never attached.
	useLoadOnly
)

// attachPoint is where a program attaches, as classified from what
// cilium/ebpf parsed (ProgramSpec.Type, AttachType, AttachTo and the
// section name) and completed by resolve.
type attachPoint struct {
	// mech is the mechanism the program is built for.
	mech probe.Mechanism
	// target names the function, event or "path:symbol", for messages,
	// decisions and grouping.
	target string
	// symbol is the kernel function (kprobe family, trampolines), the user
	// symbol (uprobes) or the glob pattern (multi sections); for ksyscall
	// the resolved wrapper once resolve has run.
	symbol string
	// offset is the "+offset" of a kprobe or uprobe section.
	offset uint64
	// syscall is the syscall name of a ksyscall/kretsyscall section.
	syscall string
	// group and name split a tracepoint; name alone is a raw tracepoint,
	// a tp_btf event, an LSM hook or an iterator.
	group, name string
	// path is the binary of a uprobe.
	path string
	// glob is set when symbol is a pattern (kprobe.multi/uprobe.multi).
	glob bool
	// symbols and addrs are a multi section's targets once resolved:
	// symbol names, and for kprobe.multi the addresses libbpf would pass.
	symbols []string
	addrs   []uintptr
	// cookies gives each of symbols its BPF cookie (CollectionOptions.Batches).
	cookies []uint64
	// batch is set when symbols come from CollectionOptions.Batches.
	batch bool
	// needsTarget names what the section does not say ("binary and
	// symbol", "perf event"): the caller's options must supply it.
	needsTarget string
	// retargeted is set when the caller changed AttachTo away from the
	// section's own target.
	retargeted bool
}

// targets is the number of functions or symbols the attach point covers.
func (ap attachPoint) targets() int {
	if n := max(len(ap.symbols), len(ap.addrs)); n > 0 {
		return n
	}
	return 1
}

// attachTo returns what the attach point attaches to, as the kernel names
// it (fallback.Request.AttachTo): the function of a kprobe, kretprobe or
// trampoline program (for ksyscall, the wrapper resolve chose), the
// functions of a multi link (resolved, or its pattern), "group/name" for
// a tracepoint, the event of a raw or BTF tracepoint. Nil when the
// mechanism's context does not depend on it or it is not known.
func (ap attachPoint) attachTo() []string {
	switch ap.mech {
	case probe.Kprobe, probe.Kretprobe, probe.Fentry, probe.Fexit, probe.FmodRet:
		if ap.symbol != "" {
			return []string{ap.symbol}
		}
	case probe.KprobeMulti, probe.KretprobeMulti:
		switch {
		case len(ap.symbols) > 0:
			return ap.symbols
		case len(ap.addrs) == 0 && ap.symbol != "":
			return []string{ap.symbol}
		}
	case probe.Tracepoint:
		if ap.group != "" && ap.name != "" {
			return []string{ap.group + "/" + ap.name}
		}
	case probe.RawTracepoint, probe.TpBTF:
		if ap.name != "" {
			return []string{ap.name}
		}
	}
	return nil
}

// classification is the result of classify for one program.
type classification struct {
	use      use
	ap       attachPoint
	optional bool // section name starts with "?" (libbpf: not autoloaded)
	// why says why a program is load-only ("socket filter: not a tracing
	// program").
	why string
}

// errSection wraps every classification failure: a section that
// safebpf cannot attach as written.
type sectionError struct {
	Program, Section string
	Err              error
}

func (e *sectionError) Error() string {
	return fmt.Sprintf("program %q in section %q: %v", e.Program, e.Section, e.Err)
}

func (e *sectionError) Unwrap() error { return e.Err }

// classify tells what ps is and where it attaches, from the fields
// cilium/ebpf filled in when it read the ELF section (Type, AttachType,
// Flags, AttachTo) and the section name, which alone tells entry from
// return and kernel from user probes for kprobe-type programs (cilium/ebpf
// gives kretprobe/ and kprobe/ the same type and attach type).
// ps.AttachTo wins over the section's own target: a caller may retarget
// a placeholder program (libbpf-tools' "kprobe/dummy_kprobe" pattern); an
// empty AttachTo means the section's.
func classify(ps *ebpf.ProgramSpec) (classification, error) {
	sec := ps.SectionName
	var c classification
	if strings.HasPrefix(sec, "?") {
		c.optional = true
		sec = sec[1:]
	}
	prefix, secTarget, _ := strings.Cut(sec, "/")
	// cilium/ebpf sets AttachTo to the section's target; a spec built by
	// hand may leave it empty and name the target in its section only.
	to := ps.AttachTo
	if to == "" {
		to = secTarget
	}
	c.ap.retargeted = to != secTarget
	fail := func(format string, args ...any) (classification, error) {
		return c, &sectionError{Program: ps.Name, Section: ps.SectionName, Err: fmt.Errorf(format, args...)}
	}
	unsupported := func(format string, args ...any) (classification, error) {
		return c, &sectionError{Program: ps.Name, Section: ps.SectionName,
			Err: fmt.Errorf(format+": %w", append(args, ErrNotSupported)...)}
	}
	loadOnly := func(why string) (classification, error) {
		c.use = useLoadOnly
		c.why = why
		return c, nil
	}

	switch ps.Type {
	case ebpf.Kprobe:
		return classifyKprobe(c, ps, prefix, to, fail, unsupported)

	case ebpf.TracePoint:
		c.ap.mech = probe.Tracepoint
		if to == "" {
			c.ap.needsTarget = "tracepoint"
			return c, nil
		}
		g, n, ok := strings.Cut(to, "/")
		if !ok || g == "" || n == "" || strings.Contains(n, "/") {
			return fail("tracepoint %q: want GROUP/NAME (as in tracepoint/syscalls/sys_enter_openat)", to)
		}
		c.ap.group, c.ap.name, c.ap.target = g, n, to
		return c, nil

	case ebpf.RawTracepoint, ebpf.RawTracepointWritable:
		c.ap.mech = probe.RawTracepoint
		if to == "" {
			c.ap.needsTarget = "raw tracepoint"
			return c, nil
		}
		c.ap.name, c.ap.target = to, to
		return c, nil

	case ebpf.Tracing:
		at := ps.AttachType
		if at == ebpf.AttachNone {
			// A spec built by hand, without the attach type cilium/ebpf's
			// ELF reader derives from the section: derive it the same way.
			at = tracingAttachType[strings.TrimSuffix(prefix, ".s")]
		}
		switch at {
		case ebpf.AttachTraceFEntry:
			c.ap.mech = probe.Fentry
		case ebpf.AttachTraceFExit:
			c.ap.mech = probe.Fexit
		case ebpf.AttachModifyReturn:
			c.ap.mech = probe.FmodRet
		case ebpf.AttachTraceRawTp:
			c.ap.mech = probe.TpBTF
		case ebpf.AttachTraceIter:
			c.ap.mech = probe.Iter
		default:
			if strings.HasPrefix(prefix, "fsession") {
				return unsupported("fsession programs run at entry and return through one trampoline, which safebpf does not plan yet")
			}
			return fail("tracing program with attach type %s: want fentry, fexit, fmod_ret, tp_btf or iter", at)
		}
		if to == "" {
			return fail("%s program without a target: set ProgramSpec.AttachTo before loading", c.ap.mech)
		}
		c.ap.target, c.ap.symbol, c.ap.name = to, to, to
		return c, nil

	case ebpf.LSM:
		if ps.AttachType == ebpf.AttachLSMCgroup {
			return loadOnly("lsm_cgroup program: attaches to a cgroup, not a kernel hook (attach it with link.AttachCgroup)")
		}
		c.ap.mech = probe.LSM
		if to == "" {
			return fail("lsm program without a hook: set ProgramSpec.AttachTo before loading")
		}
		c.ap.target, c.ap.name = to, to
		return c, nil

	case ebpf.PerfEvent:
		c.ap.mech = probe.PerfEventHardware
		c.ap.needsTarget = "perf event"
		return c, nil

	case ebpf.UnspecifiedProgram:
		return fail("cilium/ebpf did not recognise the section (program type unspecified)")

	case ebpf.Extension:
		return loadOnly("freplace program: replaces a function of another BPF program (attach it with link.AttachFreplace)")
	case ebpf.StructOps:
		return loadOnly("struct_ops program: attached through its struct_ops map (link.AttachStructOps)")
	case ebpf.Syscall:
		return loadOnly("syscall program: run with Program.Run, never attached")
	}
	return loadOnly(fmt.Sprintf("%s program: not a tracing program", ps.Type))
}

// tracingAttachType is cilium/ebpf's (and libbpf's) attach type for each
// tracing section prefix.
var tracingAttachType = map[string]ebpf.AttachType{
	"fentry": ebpf.AttachTraceFEntry, "fexit": ebpf.AttachTraceFExit, "fmod_ret": ebpf.AttachModifyReturn,
	"tp_btf": ebpf.AttachTraceRawTp, "iter": ebpf.AttachTraceIter,
}

// classifyKprobe handles BPF_PROG_TYPE_KPROBE programs: kprobes,
// kretprobes, syscall probes, multi probes and every kind of uprobe share
// the type, and cilium/ebpf gives kprobe/ and kretprobe/ the same attach
// type; the section prefix tells them apart, the attach type tells single
// from multi.
func classifyKprobe(c classification, ps *ebpf.ProgramSpec, prefix, to string,
	fail, unsupported func(string, ...any) (classification, error)) (classification, error) {
	user := false
	ret := false
	syscall := false
	multi := ps.AttachType == ebpf.AttachTraceKprobeMulti || ps.AttachType == ebpf.AttachTraceUprobeMulti
	switch strings.TrimSuffix(prefix, ".s") {
	case "kprobe":
	case "kretprobe":
		ret = true
	case "ksyscall":
		syscall = true
	case "kretsyscall":
		syscall, ret = true, true
	case "kprobe.multi":
	case "kretprobe.multi":
		ret = true
	case "uprobe", "uprobe.multi":
		user = true
	case "uretprobe", "uretprobe.multi":
		user, ret = true, true
	case "kprobe.session":
		return unsupported("kprobe.session programs run at entry and return through one link, which safebpf does not plan yet (use kprobe.multi and kretprobe.multi programs)")
	case "uprobe.session":
		return unsupported("uprobe.session programs run at entry and return through one link, which safebpf does not plan yet (use uprobe.multi and uretprobe.multi programs)")
	case "usdt":
		return unsupported("USDT probes need libbpf's USDT support, which cilium/ebpf does not have: attach the probe's uprobe yourself")
	default:
		switch ps.AttachType {
		case ebpf.AttachTraceKprobeMulti:
			// A hand-built spec: a kprobe.multi entry probe.
		case ebpf.AttachTraceUprobeMulti:
			user = true
		case ebpf.AttachTraceKprobeSession:
			return unsupported("kprobe session programs are not planned by safebpf yet")
		default:
			return fail("kprobe-type program: the section name does not say whether it is a kprobe, kretprobe, uprobe or uretprobe (name it as libbpf does, e.g. kprobe/FUNC, or list it in CollectionOptions.Manual)")
		}
	}
	if ps.AttachType == ebpf.AttachTraceKprobeSession {
		return unsupported("kprobe session programs are not planned by safebpf yet")
	}
	if multi && user != (ps.AttachType == ebpf.AttachTraceUprobeMulti) {
		return fail("attach type %s does not match a %s section", ps.AttachType, prefix)
	}
	c.ap.mech = kprobeMechanism(user, ret, multi)

	if user {
		return classifyUprobe(c, to, ret, multi, fail)
	}
	if to == "" {
		c.ap.needsTarget = "kernel function"
		return c, nil
	}
	if syscall {
		if !validSymbol(to) {
			return fail("syscall %q: want a syscall name such as openat", to)
		}
		c.ap.syscall, c.ap.target, c.ap.symbol = to, to, to
		return c, nil
	}
	if multi {
		if !validPattern(to) {
			return fail("pattern %q: want a function name or a glob of letters, digits, '_', '.', '*' and '?'", to)
		}
		c.ap.symbol, c.ap.target, c.ap.glob = to, to, strings.ContainsAny(to, "*?")
		return c, nil
	}
	fn, off, err := splitOffset(to, validSymbol)
	if err != nil {
		return fail("kprobe target %q: %v", to, err)
	}
	if ret && off != 0 {
		return fail("kretprobe target %q: kretprobes take no offset", to)
	}
	c.ap.symbol, c.ap.offset, c.ap.target = fn, off, to
	return c, nil
}

func kprobeMechanism(user, ret, multi bool) probe.Mechanism {
	switch {
	case user && multi && ret:
		return probe.UretprobeMulti
	case user && multi:
		return probe.UprobeMulti
	case user && ret:
		return probe.Uretprobe
	case user:
		return probe.Uprobe
	case multi && ret:
		return probe.KretprobeMulti
	case multi:
		return probe.KprobeMulti
	case ret:
		return probe.Kretprobe
	}
	return probe.Kprobe
}

// classifyUprobe parses a uprobe target as libbpf does:
// "PATH:SYMBOL[+OFFSET]" (the path ends at the first ':'), or "SYMBOL"
// with the binary from the options, or nothing.
func classifyUprobe(c classification, to string, ret, multi bool, fail func(string, ...any) (classification, error)) (classification, error) {
	path, fn, hasPath := strings.Cut(to, ":")
	if !hasPath {
		path, fn = "", to
	}
	if hasPath && (path == "" || fn == "") {
		return fail("uprobe target %q: want BINARY:SYMBOL", to)
	}
	c.ap.path = path
	if fn == "" || path == "" {
		c.ap.needsTarget = "binary and symbol"
	}
	if multi {
		if fn != "" && strings.ContainsAny(fn, "*?") {
			c.ap.glob = true
		}
		c.ap.symbol = fn
	} else if fn != "" {
		// libbpf: a trailing "+OFFSET" that parses to the end is an
		// offset; anything else is part of the symbol.
		sym, off := fn, uint64(0)
		if i := strings.LastIndexByte(fn, '+'); i > 0 {
			if n, err := parseCLong(fn[i+1:]); err == nil {
				sym, off = fn[:i], n
			}
		}
		if ret && off != 0 {
			return fail("uretprobe target %q: uretprobes take no offset", to)
		}
		c.ap.symbol, c.ap.offset = sym, off
	}
	if path != "" && c.ap.symbol != "" {
		c.ap.target = path + ":" + fn
	}
	return c, nil
}

// splitOffset splits "FUNC+OFFSET" as libbpf's attach_kprobe does
// (sscanf "%m[a-zA-Z0-9_.]+%li"), but rejects what libbpf would silently
// truncate.
func splitOffset(s string, valid func(string) bool) (string, uint64, error) {
	fn, offs, hasOff := strings.Cut(s, "+")
	if !valid(fn) {
		return "", 0, fmt.Errorf("%q is not a symbol name (letters, digits, '_' and '.')", fn)
	}
	if !hasOff {
		return fn, 0, nil
	}
	off, err := parseCLong(offs)
	if err != nil {
		return "", 0, fmt.Errorf("offset %q: %v", offs, err)
	}
	return fn, off, nil
}

// parseCLong parses a non-negative integer as C's strtol with base 0:
// decimal, 0x hexadecimal or 0-prefixed octal.
func parseCLong(s string) (uint64, error) {
	if s == "" || strings.ContainsAny(s, "_+- ") {
		return 0, fmt.Errorf("want a non-negative decimal, 0x hexadecimal or 0 octal number")
	}
	base := 10
	digits := s
	switch {
	case strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X"):
		base, digits = 16, s[2:]
	case len(s) > 1 && s[0] == '0':
		base, digits = 8, s[1:]
	}
	n, err := strconv.ParseUint(digits, base, 63)
	if err != nil {
		return 0, fmt.Errorf("want a non-negative decimal, 0x hexadecimal or 0 octal number")
	}
	return n, nil
}

// validSymbol is cilium/ebpf's and libbpf's rule for a kernel symbol:
// [a-zA-Z_][a-zA-Z0-9_.]*.
func validSymbol(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		case i > 0 && (c >= '0' && c <= '9' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// validPattern is libbpf's kprobe.multi pattern alphabet ("%m[a-zA-Z0-9_.*?]").
func validPattern(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '.', c == '*', c == '?':
		default:
			return false
		}
	}
	return true
}

// globMatch is libbpf's glob_match (from perf): '*' matches any run, '?'
// any one character.
func globMatch(str, pat string) bool {
	for len(str) > 0 && len(pat) > 0 && pat[0] != '*' {
		if pat[0] != '?' && str[0] != pat[0] {
			return false
		}
		str, pat = str[1:], pat[1:]
	}
	if len(pat) > 0 && pat[0] == '*' {
		for len(pat) > 0 && pat[0] == '*' {
			pat = pat[1:]
		}
		if pat == "" {
			return true
		}
		for len(str) > 0 {
			if globMatch(str, pat) {
				return true
			}
			str = str[1:]
		}
	}
	return str == "" && pat == ""
}
