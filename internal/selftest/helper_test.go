package selftest

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/arch/x86/x86asm"
)

// disassemble lists the helper's code (from its entry to the end of the
// probed function) in GNU syntax with x86asm.
func disassemble(t *testing.T, img helperImage) []string {
	t.Helper()
	code := img.elf[codeOffset : img.probedOffset+12]
	var lines []string
	for off := 0; off < len(code); {
		inst, err := x86asm.Decode(code[off:], 64)
		if err != nil {
			t.Fatalf("decode at %#x: %v", codeOffset+off, err)
		}
		pc := uint64(helperBase + codeOffset + off)
		if s := x86asm.GNUSyntax(inst, pc, nil); s != "int3" {
			lines = append(lines, fmt.Sprintf("%x: %s", pc, s))
		}
		off += inst.Len
	}
	return lines
}

// TestHelperProgram holds the generated helper against the program it is
// meant to be, instruction by instruction.
func TestHelperProgram(t *testing.T) {
	filter, err := FilterAllowList.filter()
	if err != nil {
		t.Fatal(err)
	}
	img, err := buildHelper(filter, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"400080: mov $0x9d,%eax", // prctl
		"400085: mov $0x26,%edi", // PR_SET_NO_NEW_PRIVS
		"40008a: mov $0x1,%esi",
		"40008f: xor %edx,%edx",
		"400091: xor %r10,%r10",
		"400094: xor %r8,%r8",
		"400097: syscall",
		"400099: test %rax,%rax",
		"40009c: jne 0x4000de",    // → fail
		"4000a2: mov $0x13d,%eax", // seccomp
		"4000a7: mov $0x1,%edi",   // SECCOMP_SET_MODE_FILTER
		"4000ac: xor %esi,%esi",
		"4000ae: mov $0x400178,%edx", // &fprog
		"4000b3: syscall",
		"4000b5: test %rax,%rax",
		"4000b8: jne 0x4000de",
		"4000be: callq 0x400100", // the probed function
		"4000c3: cmp $0x2a,%eax",
		"4000c6: jne 0x4000e8",   // → badret
		"4000cc: mov $0x27,%eax", // getpid
		"4000d1: syscall",
		"4000d3: xor %edi,%edi",
		"4000d5: mov $0xe7,%eax", // exit: exit_group(%edi)
		"4000da: syscall",
		"4000dc: ud2",
		"4000de: mov $0x3,%edi", // fail
		"4000e3: jmpq 0x4000d5",
		"4000e8: mov $0x4,%edi", // badret
		"4000ed: jmpq 0x4000d5",
		"400100: push %rbp", // probed: return 42
		"400101: mov %rsp,%rbp",
		"400104: mov $0x2a,%eax",
		"400109: pop %rbp",
		"40010a: retq",
	}
	if diff := cmp.Diff(want, disassemble(t, img)); diff != "" {
		t.Errorf("helper program (-want +got):\n%s", diff)
	}
	if img.probedOffset != 0x100 {
		t.Errorf("probedOffset = %#x, want 0x100", img.probedOffset)
	}

	// The ELF headers, as debug/elf reads them.
	f, err := elf.NewFile(bytes.NewReader(img.elf))
	if err != nil {
		t.Fatal(err)
	}
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 || f.Type != elf.ET_EXEC || f.Entry != 0x400080 || len(f.Progs) != 1 {
		t.Fatalf("ELF header: %+v, %d program headers", f.FileHeader, len(f.Progs))
	}
	if p := f.Progs[0]; p.Type != elf.PT_LOAD || p.Flags != elf.PF_R|elf.PF_X || p.Off != 0 || p.Vaddr != helperBase || p.Filesz != uint64(len(img.elf)) {
		t.Errorf("PT_LOAD = %+v", p.ProgHeader)
	}

	// The filter and its sock_fprog, where the code says they are.
	fprog := 0x400178 - helperBase
	if n := int(img.elf[fprog]) | int(img.elf[fprog+1])<<8; n != len(filter) {
		t.Errorf("fprog.len = %d, want %d", n, len(filter))
	}
	ptr := uint64(0)
	for i := 7; i >= 0; i-- {
		ptr = ptr<<8 | uint64(img.elf[fprog+8+i])
	}
	if at := int(ptr - helperBase); at+8*len(filter) != fprog {
		t.Errorf("fprog.filter = %#x: the filter does not end at fprog", ptr)
	}
}

// TestSeccompFilter checks the classic BPF filters rule by rule.
func TestSeccompFilter(t *testing.T) {
	f, err := FilterKillAfterReturn.filter()
	if err != nil {
		t.Fatal(err)
	}
	want := []sockFilter{
		{bpfLdWAbs, 0, 0, 4}, {bpfJeqK, 1, 0, auditArchX8664}, {bpfRetK, 0, 0, retKillProcess},
		{bpfLdWAbs, 0, 0, 0},
		{bpfJeqK, 0, 1, sysRtSigreturn}, {bpfRetK, 0, 0, retAllow},
		{bpfJeqK, 0, 1, sysGetpid}, {bpfRetK, 0, 0, retKillProcess},
		{bpfJeqK, 0, 1, sysExit}, {bpfRetK, 0, 0, retAllow},
		{bpfJeqK, 0, 1, sysExitGroup}, {bpfRetK, 0, 0, retAllow},
		{bpfRetK, 0, 0, retErrno | errnoEPERM},
	}
	if diff := cmp.Diff(want, f); diff != "" {
		t.Errorf("filter (-want +got):\n%s", diff)
	}
	if f, _ := FilterNone.filter(); f != nil {
		t.Errorf("FilterNone has a filter")
	}
	if _, err := Filter(99).filter(); err == nil {
		t.Errorf("Filter(99): no error")
	}
}

// TestHelperMatchesObjdump has GNU objdump, an independent disassembler,
// read the helper: it must see the same calls and system calls.
func TestHelperMatchesObjdump(t *testing.T) {
	if _, err := exec.LookPath("objdump"); err != nil {
		t.Skip("needs GNU objdump (binutils)")
	}
	filter, _ := FilterAllowList.filter()
	img, err := buildHelper(filter, false)
	if err != nil {
		t.Fatal(err)
	}
	path := t.TempDir() + "/helper"
	if err := writeFile(path, img.elf); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("objdump", "-D", "-b", "binary", "-m", "i386:x86-64", "--adjust-vma=0x400000",
		"--start-address=0x400080", fmt.Sprintf("--stop-address=%#x", helperBase+img.probedOffset+12), path).CombinedOutput()
	if err != nil {
		t.Fatalf("objdump: %v\n%s", err, out)
	}
	var got []string
	for _, line := range strings.Split(string(out), "\n") {
		if i := strings.Index(line, "\t"); i > 0 && strings.Count(line, "\t") >= 2 {
			insn := strings.Join(strings.Fields(line[strings.LastIndex(line, "\t")+1:]), " ")
			if insn != "int3" {
				got = append(got, strings.TrimSpace(line[:i])+" "+insn)
			}
		}
	}
	var ours []string
	for _, l := range disassemble(t, img) {
		ours = append(ours, l)
	}
	if len(got) != len(ours) {
		t.Fatalf("objdump sees %d instructions, x86asm %d:\n%s", len(got), len(ours), strings.Join(got, "\n"))
	}
	for i := range got {
		// Compare address and mnemonic: the two print operands differently.
		g, o := strings.Fields(got[i]), strings.Fields(ours[i])
		if g[0] != o[0] || strings.TrimSuffix(g[1], "q") != strings.TrimSuffix(o[1], "q") {
			t.Errorf("instruction %d: objdump %q, x86asm %q", i, got[i], ours[i])
		}
	}
}
