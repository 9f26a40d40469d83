package selftest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
)

// The helper is a static x86-64 ELF executable generated here, byte by
// byte, so that no compiler is needed at run time and no binary is checked
// in. It sets PR_SET_NO_NEW_PRIVS, installs its seccomp filter, calls
// [ProbedFunction] (or issues the uretprobe system call itself), checks the
// value it returned, calls getpid and exits:
//
//	exit 0   returned from the probed function with its value intact
//	exit 3   prctl or seccomp failed
//	exit 4   the probed function's return value came back wrong
//	exit 5   the direct uretprobe system call returned instead of killing
//
// Only the syscalls the helper makes after installing the filter matter
// to it: getpid, exit_group (and exit, rt_sigreturn for good measure).

// ProbedFunction is the helper's function the self-test attaches its
// uretprobe to; its return value is 42.
const ProbedFunction = "safebpf_selftest_probed"

const (
	helperBase   = 0x400000 // load address of the single PT_LOAD segment
	ehdrSize     = 64
	phdrSize     = 56
	codeOffset   = 0x80
	probedReturn = 42
)

// x86-64 system call numbers (arch/x86/entry/syscalls/syscall_64.tbl).
const (
	sysRtSigreturn = 15
	sysGetpid      = 39
	sysExit        = 60
	sysPrctl       = 157
	sysExitGroup   = 231
	sysSeccomp     = 317
	sysUretprobe   = 335 // 6.11+, ff474a78cef5 "uprobe: Add uretprobe syscall to speed up return probe"
)

// Exit codes of the helper.
const (
	exitOK           = 0
	exitSetupFailed  = 3
	exitBadReturn    = 4
	exitSyscallBack  = 5
	prSetNoNewPrivs  = 38
	seccompSetFilter = 1 // SECCOMP_SET_MODE_FILTER
)

// Classic BPF (seccomp filter) encodings, include/uapi/linux/filter.h and
// seccomp.h.
const (
	bpfLdWAbs      = 0x20 // BPF_LD | BPF_W | BPF_ABS
	bpfJeqK        = 0x15 // BPF_JMP | BPF_JEQ | BPF_K
	bpfRetK        = 0x06 // BPF_RET | BPF_K
	auditArchX8664 = 0xc000003e
	retKillProcess = 0x80000000 // SECCOMP_RET_KILL_PROCESS (4.14+)
	retErrno       = 0x00050000 // SECCOMP_RET_ERRNO | errno
	retAllow       = 0x7fff0000
	errnoEPERM     = 1
)

// sockFilter is struct sock_filter.
type sockFilter struct {
	Code   uint16
	Jt, Jf uint8
	K      uint32
}

// seccompFilter builds a filter that kills other architectures, applies
// rules (syscall number → action) and returns def for everything else.
func seccompFilter(rules map[uint32]uint32, def uint32) []sockFilter {
	f := []sockFilter{
		{bpfLdWAbs, 0, 0, 4}, // seccomp_data.arch
		{bpfJeqK, 1, 0, auditArchX8664},
		{bpfRetK, 0, 0, retKillProcess},
		{bpfLdWAbs, 0, 0, 0}, // seccomp_data.nr
	}
	nrs := make([]uint32, 0, len(rules))
	for nr := range rules {
		nrs = append(nrs, nr)
	}
	slices.Sort(nrs)
	for _, nr := range nrs {
		f = append(f, sockFilter{bpfJeqK, 0, 1, nr}, sockFilter{bpfRetK, 0, 0, rules[nr]})
	}
	return append(f, sockFilter{bpfRetK, 0, 0, def})
}

// helperImage is a generated helper and where its probed function lies.
type helperImage struct {
	elf []byte
	// probedOffset is the file offset of the probed function (what a
	// uprobe is attached at).
	probedOffset uint64
}

// assembler is a minimal x86-64 assembler: bytes plus fixups to labels, either
// relative (rel32 branches) or absolute (addresses of data in the image).
type assembler struct {
	b      []byte
	labels map[string]int
	fixups []fixup
}

type fixup struct {
	at    int // where the value goes
	size  int // 4 or 8
	rel   bool
	label string
}

// vaddr is the run-time address of offset off in the code.
func vaddr(off int) uint64 { return helperBase + codeOffset + uint64(off) }

func (a *assembler) emit(b ...byte)    { a.b = append(a.b, b...) }
func (a *assembler) label(name string) { a.labels[name] = len(a.b) }

// rel32 emits op followed by a 32-bit displacement to label.
func (a *assembler) rel32(label string, op ...byte) {
	a.emit(op...)
	a.fixups = append(a.fixups, fixup{len(a.b), 4, true, label})
	a.emit(0, 0, 0, 0)
}

// abs emits the size-byte address of label.
func (a *assembler) abs(label string, size int) {
	a.fixups = append(a.fixups, fixup{len(a.b), size, false, label})
	a.emit(make([]byte, size)...)
}

func (a *assembler) movImm(op byte, v uint32) {
	a.emit(op)
	a.b = binary.LittleEndian.AppendUint32(a.b, v)
}
func (a *assembler) movEAX(v uint32) { a.movImm(0xb8, v) } // mov $v,%eax
func (a *assembler) movEDI(v uint32) { a.movImm(0xbf, v) } // mov $v,%edi
func (a *assembler) movESI(v uint32) { a.movImm(0xbe, v) } // mov $v,%esi
func (a *assembler) syscall()        { a.emit(0x0f, 0x05) }

func (a *assembler) align(n int, fill byte) {
	for len(a.b)%n != 0 {
		a.emit(fill)
	}
}

func (a *assembler) resolve() error {
	for _, f := range a.fixups {
		t, ok := a.labels[f.label]
		if !ok {
			return fmt.Errorf("helper: undefined label %s", f.label)
		}
		switch {
		case f.rel:
			binary.LittleEndian.PutUint32(a.b[f.at:], uint32(int32(t-(f.at+4))))
		case f.size == 4:
			binary.LittleEndian.PutUint32(a.b[f.at:], uint32(vaddr(t)))
		default:
			binary.LittleEndian.PutUint64(a.b[f.at:], vaddr(t))
		}
	}
	return nil
}

// buildHelper generates the helper executable. filter nil installs no
// seccomp filter; direct makes the helper issue the uretprobe system call
// itself instead of calling the probed function.
func buildHelper(filter []sockFilter, direct bool) (helperImage, error) {
	a := &assembler{labels: map[string]int{}}
	// prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0): lets an unprivileged
	// process install a filter; harmless for root.
	a.movEAX(sysPrctl)
	a.movEDI(prSetNoNewPrivs)
	a.movESI(1)
	a.emit(0x31, 0xd2)       // xor %edx,%edx
	a.emit(0x4d, 0x31, 0xd2) // xor %r10,%r10
	a.emit(0x4d, 0x31, 0xc0) // xor %r8,%r8
	a.syscall()
	a.emit(0x48, 0x85, 0xc0)    // test %rax,%rax
	a.rel32("fail", 0x0f, 0x85) // jne fail
	if filter != nil {
		// seccomp(SECCOMP_SET_MODE_FILTER, 0, &fprog)
		a.movEAX(sysSeccomp)
		a.movEDI(seccompSetFilter)
		a.emit(0x31, 0xf6) // xor %esi,%esi
		a.emit(0xba)       // mov $fprog,%edx
		a.abs("fprog", 4)
		a.syscall()
		a.emit(0x48, 0x85, 0xc0)
		a.rel32("fail", 0x0f, 0x85)
	}
	if direct {
		a.movEAX(sysUretprobe)
		a.syscall()
		a.movEDI(exitSyscallBack)
		a.rel32("exit", 0xe9) // jmp exit
	} else {
		a.rel32("probed", 0xe8)          // call probed
		a.emit(0x83, 0xf8, probedReturn) // cmp $42,%eax
		a.rel32("badret", 0x0f, 0x85)    // jne badret
		a.movEAX(sysGetpid)
		a.syscall()
		a.emit(0x31, 0xff) // xor %edi,%edi
	}
	a.label("exit")
	a.movEAX(sysExitGroup)
	a.syscall()
	a.emit(0x0f, 0x0b) // ud2: exit_group does not return
	a.label("fail")
	a.movEDI(exitSetupFailed)
	a.rel32("exit", 0xe9)
	a.label("badret")
	a.movEDI(exitBadReturn)
	a.rel32("exit", 0xe9)

	a.align(16, 0xcc)
	a.label("probed")
	a.emit(0x55)             // push %rbp
	a.emit(0x48, 0x89, 0xe5) // mov %rsp,%rbp
	a.movEAX(probedReturn)   // mov $42,%eax
	a.emit(0x5d)             // pop %rbp
	a.emit(0xc3)             // ret
	a.align(8, 0xcc)

	if filter != nil {
		a.label("filter")
		for _, f := range filter {
			a.b = binary.LittleEndian.AppendUint16(a.b, f.Code)
			a.emit(f.Jt, f.Jf)
			a.b = binary.LittleEndian.AppendUint32(a.b, f.K)
		}
		// struct sock_fprog { unsigned short len; struct sock_filter *filter; }
		a.label("fprog")
		a.b = binary.LittleEndian.AppendUint16(a.b, uint16(len(filter)))
		a.emit(0, 0, 0, 0, 0, 0)
		a.abs("filter", 8)
	}
	if err := a.resolve(); err != nil {
		return helperImage{}, err
	}
	return helperImage{
		elf:          elfExecutable(a.b),
		probedOffset: codeOffset + uint64(a.labels["probed"]),
	}, nil
}

// elfExecutable wraps code in an ELF64 x86-64 ET_EXEC file with one
// read+execute PT_LOAD segment mapping the whole file at helperBase; the
// entry point is the first byte of code, at file offset codeOffset.
func elfExecutable(code []byte) []byte {
	size := uint64(codeOffset + len(code))
	var buf bytes.Buffer
	le := binary.LittleEndian
	buf.Write([]byte{0x7f, 'E', 'L', 'F', 2 /* ELFCLASS64 */, 1 /* ELFDATA2LSB */, 1 /* EV_CURRENT */, 0 /* ELFOSABI_NONE */})
	buf.Write(make([]byte, 8))
	_ = binary.Write(&buf, le, struct {
		Type, Machine                                        uint16
		Version                                              uint32
		Entry, Phoff, Shoff                                  uint64
		Flags                                                uint32
		Ehsize, Phentsize, Phnum, Shentsize, Shnum, Shstrndx uint16
	}{2 /* ET_EXEC */, 62 /* EM_X86_64 */, 1, helperBase + codeOffset, ehdrSize, 0, 0, ehdrSize, phdrSize, 1, 64, 0, 0})
	_ = binary.Write(&buf, le, struct {
		Type, Flags                             uint32
		Off, Vaddr, Paddr, Filesz, Memsz, Align uint64
	}{1 /* PT_LOAD */, 5 /* PF_R|PF_X */, 0, helperBase, helperBase, size, size, 0x1000})
	buf.Write(make([]byte, codeOffset-buf.Len()))
	buf.Write(code)
	return buf.Bytes()
}
