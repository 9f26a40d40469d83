package kcode_test

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/safebpf/safebpf/internal/kcode"
	"github.com/safebpf/safebpf/internal/kcode/kcodetest"
)

// assemble assembles src for target with clang (an independent assembler)
// and lays its .text out at base as a kernel would show it: kallsyms text
// of its function symbols (and an _etext after them) and a core.
func assemble(t *testing.T, target string, machine elf.Machine, src string) (*kcode.Symbols, *kcode.Core) {
	t.Helper()
	clang, err := exec.LookPath("clang")
	if err != nil {
		t.Skip("needs clang as an independent assembler")
	}
	dir := t.TempDir()
	in, obj := filepath.Join(dir, "f.s"), filepath.Join(dir, "f.o")
	if err := os.WriteFile(in, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(clang, "--target="+target, "-c", "-o", obj, in).CombinedOutput(); err != nil {
		t.Skipf("clang cannot assemble for %s: %v\n%s", target, err, out)
	}
	f, err := elf.Open(obj)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	text := f.Section(".text")
	code, err := text.Data()
	if err != nil {
		t.Fatal(err)
	}
	if sec := f.Section(".rela.text"); sec != nil && sec.Size > 0 {
		t.Fatalf("unresolved relocations in .text: make every branch target local")
	}
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	const base = 0xffff800080010000
	var lines []string
	for _, s := range syms {
		if elf.ST_TYPE(s.Info) == elf.STT_FUNC {
			lines = append(lines, fmt.Sprintf("%016x t %s", base+s.Value, s.Name))
		}
	}
	sort.Strings(lines)
	lines = append(lines, fmt.Sprintf("%016x T _etext", base+uint64(len(code))))
	table, err := kcode.ReadSymbols(strings.NewReader(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	core, err := kcode.OpenCore(bytes.NewReader(kcodetest.Core(machine, kcodetest.Segment{Vaddr: base, Data: code})))
	if err != nil {
		t.Fatal(err)
	}
	return table, core
}

// arm64Kernel is arm64 code in the shape GCC gives kernel functions (BTI
// landing pad, pointer authentication, frame record): a direct call, a
// conditional tail call and an unconditional one.
const arm64Kernel = `
	.text
	.type copy_from_user_nmi, %function
copy_from_user_nmi:
	bti c
	paciasp
	stp x29, x30, [sp, #-32]!
	mov x29, sp
	bl nmi_uaccess_okay
	tbz w0, #0, 1f
	bl __check_object_size
1:	ldp x29, x30, [sp], #32
	autiasp
	ret
	.size copy_from_user_nmi, .-copy_from_user_nmi

	.p2align 4
	.type __check_object_size, %function
__check_object_size:
	bti c
	cbz x1, 2f
	cmp x1, #64
	b.hi check_heap_object
2:	ret

	.p2align 4
	.type check_heap_object, %function
check_heap_object:
	bti c
	b find_vmap_area

	.p2align 4
	.type nmi_uaccess_okay, %function
nmi_uaccess_okay:
	mov w0, #1
	ret

	.p2align 4
	.type find_vmap_area, %function
find_vmap_area:
	mov x0, xzr
	ret
	.p2align 4
`

// TestFindCallARM64 runs the arm64 decoder on code clang assembled.
func TestFindCallARM64(t *testing.T) {
	syms, core := assemble(t, "aarch64-linux-gnu", elf.EM_AARCH64, arm64Kernel)
	if core.Machine != elf.EM_AARCH64 {
		t.Fatalf("machine %v", core.Machine)
	}
	for _, tt := range []struct {
		q     kcode.Query
		found bool
		site  string
	}{
		// bti (4) paciasp (4) stp (4) mov (4) bl nmi_uaccess_okay (+0x10), tbz (+0x14), bl (+0x18)
		{kcode.Query{Function: "copy_from_user_nmi", Callee: "__check_object_size"}, true, "bl __check_object_size at copy_from_user_nmi+0x18"},
		{kcode.Query{Function: "copy_from_user_nmi", Callee: "nmi_uaccess_okay"}, true, "bl nmi_uaccess_okay at copy_from_user_nmi+0x10"},
		// bti (4) cbz (4) cmp (4) b.hi (+0xc)
		{kcode.Query{Function: "__check_object_size", Callee: "check_heap_object"}, true, "b.hi check_heap_object at __check_object_size+0xc (tail call)"},
		{kcode.Query{Function: "__check_object_size", Callee: "find_vmap_area", Follow: []string{"check_heap_object"}}, true,
			"b find_vmap_area at check_heap_object+0x4 (tail call), in check_heap_object called at __check_object_size+0xc"},
		{kcode.Query{Function: "__check_object_size", Callee: "find_vmap_area"}, false, ""},
		{kcode.Query{Function: "nmi_uaccess_okay", Callee: "find_vmap_area"}, false, ""},
	} {
		f, err := kcode.FindCall(syms, core, "arm64", tt.q)
		if err != nil {
			t.Fatalf("%+v: %v", tt.q, err)
		}
		if f.Found != tt.found || f.Site != tt.site {
			t.Errorf("%+v: found %v %q, want %v %q (calls %v)", tt.q, f.Found, f.Site, tt.found, tt.site, f.Calls)
		}
	}
	l, err := kcode.Listing(syms, core, "arm64", "copy_from_user_nmi")
	if err != nil || !strings.Contains(l, "copy_from_user_nmi+0x10") || !strings.Contains(l, "bl ") {
		t.Errorf("Listing = %q, %v", l, err)
	}
}
