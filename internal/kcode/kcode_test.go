package kcode_test

import (
	"bytes"
	"debug/elf"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/safebpf/safebpf/internal/kcode"
	"github.com/safebpf/safebpf/internal/kcode/kcodetest"
)

// load builds k and returns its symbols and core as FindCall reads them.
func load(t *testing.T, im kcodetest.Image) (*kcode.Symbols, *kcode.Core, *kcodetest.Built) {
	t.Helper()
	b := im.Build()
	syms, err := kcode.ReadSymbols(strings.NewReader(b.Kallsyms(false)))
	if err != nil {
		t.Fatal(err)
	}
	core, err := kcode.OpenCore(bytes.NewReader(b.KernelCore()))
	if err != nil {
		t.Fatal(err)
	}
	return syms, core, b
}

var (
	nofaultFix   = kcode.Query{Function: "copy_from_user_nofault", Callee: "nmi_uaccess_okay"}
	vmallocCheck = kcode.Query{Function: "__check_object_size", Callee: "find_vmap_area", Follow: []string{"check_heap_object"}}
	nmiCheck     = kcode.Query{Function: "copy_from_user_nmi", Callee: "__check_object_size"}
)

// The offsets below are counted by hand from the encodings in kcodetest:
// endbr64 (4) nop5 (5) push %rbp (1) mov %rsp,%rbp (3) push %rbx (1)
// mov %rdi,%rbx (3) puts the first call of a prologue'd function at +0x11.
func TestFindCall(t *testing.T) {
	unpatched := kcodetest.Kernel{VmallocLookup: true, NMIObjectCheck: true} // 5.19–6.0: both bugs
	patched := kcodetest.Kernel{NofaultFix: true, VmallocLookup: true}       // 6.1.36+, 6.4+
	old := kcodetest.Kernel{}                                                // 5.10: no vmalloc lookup, nmi path fixed
	tests := []struct {
		name   string
		k      kcodetest.Kernel
		q      kcode.Query
		found  bool
		site   string
		calls  []string // checked when not found
		helper bool
	}{
		{name: "unpatched nofault has no nmi_uaccess_okay call", k: unpatched, q: nofaultFix,
			calls: []string{"__check_object_size", "__x86_return_thunk"}},
		{name: "patched nofault calls nmi_uaccess_okay", k: patched, q: nofaultFix, found: true,
			site: "call nmi_uaccess_okay at copy_from_user_nofault+0x11"},
		{name: "vmalloc lookup in check_heap_object, followed one level", k: unpatched, q: vmallocCheck, found: true,
			// nop5 (5) push (1) mov (3) push (1) mov (3) call __check_heap_object (5) = 0x12
			site: "call find_vmap_area at check_heap_object+0x12, in check_heap_object called at __check_object_size+0x11"},
		{name: "vmalloc lookup not followed without Follow", k: unpatched,
			q:     kcode.Query{Function: "__check_object_size", Callee: "find_vmap_area"},
			calls: []string{"check_heap_object", "usercopy_abort", "__x86_return_thunk"}},
		{name: "no vmalloc lookup before 5.19", k: old, q: vmallocCheck,
			calls: []string{"check_heap_object", "usercopy_abort", "__x86_return_thunk", "__check_heap_object"}},
		{name: "check_heap_object inlined", k: kcodetest.Kernel{VmallocLookup: true, InlineHeapCheck: true}, q: vmallocCheck, found: true,
			site: "call find_vmap_area at __check_object_size+0x16"},
		{name: "tail call to find_vmap_area", k: kcodetest.Kernel{VmallocLookup: true, TailCall: true}, q: vmallocCheck, found: true,
			// 0x12 as above, pop (1) pop (1) = 0x14
			site: "jmp find_vmap_area at check_heap_object+0x14 (tail call), in check_heap_object called at __check_object_size+0x11"},
		{name: "perf path checks the object before 59298997df89", k: unpatched, q: nmiCheck, found: true,
			// 0x11, call nmi_uaccess_okay (5), test (2), je (2), mov (3) = 0x1d
			site: "call __check_object_size at copy_from_user_nmi+0x1d"},
		{name: "perf path fixed", k: patched, q: nmiCheck,
			calls: []string{"nmi_uaccess_okay", "__x86_return_thunk"}},
		{name: "__pfx_ padding symbols", k: kcodetest.Kernel{NofaultFix: true, Pfx: true}, q: nofaultFix, found: true,
			site: "call nmi_uaccess_okay at copy_from_user_nofault+0x11"},
		{name: "call depth thunk in the padding", k: kcodetest.Kernel{NofaultFix: true, Pfx: true, Thunks: true}, q: nofaultFix, found: true,
			site: "call nmi_uaccess_okay (padding thunk) at copy_from_user_nofault+0x11"},
		{name: "call in the .cold part", k: kcodetest.Kernel{NofaultFix: true, Cold: true}, q: nofaultFix, found: true,
			site: "call nmi_uaccess_okay at copy_from_user_nofault.cold+0x0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			syms, core, _ := load(t, tt.k.Image())
			f, err := kcode.FindCall(syms, core, "amd64", tt.q)
			if err != nil {
				t.Fatalf("FindCall: %v", err)
			}
			if f.Found != tt.found || f.Site != tt.site {
				t.Fatalf("FindCall = found %v %q, want %v %q (calls %v, read %v)", f.Found, f.Site, tt.found, tt.site, f.Calls, f.Read)
			}
			if !tt.found {
				if diff := cmp.Diff(tt.calls, f.Calls); diff != "" {
					t.Errorf("calls seen (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// TestFindCallNoPadThunkFromJump: a jump from a .cold part back into the
// last bytes of its function is not a call into the next function's
// padding, even when that function is the callee.
func TestFindCallNoPadThunkFromJump(t *testing.T) {
	im := kcodetest.Image{Funcs: []kcodetest.Func{
		{Name: "f", Body: []kcodetest.Insn{kcodetest.Endbr64, kcodetest.Nop5, kcodetest.Jcc(0x5, "f.cold"), kcodetest.XorEAXEAX, kcodetest.Ret}},
		{Name: "g", Body: []kcodetest.Insn{kcodetest.XorEAXEAX, kcodetest.Ret}},
		{Name: "f.cold", Type: 't', Body: []kcodetest.Insn{{Op: 0xe9, Sym: "f", Addend: 0x1f}}}, // f is 18 bytes, padded to 0x20: jmp f+0x1f, 1 byte before g
	}}
	syms, core, _ := load(t, im)
	f, err := kcode.FindCall(syms, core, "amd64", kcode.Query{Function: "f", Callee: "g"})
	if err != nil || f.Found {
		t.Fatalf("FindCall = %+v, %v; want not found", f, err)
	}
	if diff := cmp.Diff([]string{"f.cold", "f+0x1f"}, f.Calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	// A call to the same place is a padding thunk of g.
	im.Funcs[2].Body[0].Op = 0xe8
	syms, core, _ = load(t, im)
	if f, err := kcode.FindCall(syms, core, "amd64", kcode.Query{Function: "f", Callee: "g"}); err != nil || !f.Found {
		t.Fatalf("FindCall with a call into g's padding = %+v, %v; want found", f, err)
	}
}

func TestFindCallErrors(t *testing.T) {
	patched := kcodetest.Kernel{NofaultFix: true, VmallocLookup: true}.Image()
	b := patched.Build()

	t.Run("callee not in kallsyms", func(t *testing.T) {
		syms, core, _ := load(t, patched)
		f, err := kcode.FindCall(syms, core, "amd64", kcode.Query{Function: "copy_from_user_nofault", Callee: "no_such_fn"})
		if err != nil || f.Found || !f.NoCallee || f.Read != nil {
			t.Fatalf("FindCall = %+v, %v; want NoCallee without reading code", f, err)
		}
	})
	t.Run("function not in kallsyms", func(t *testing.T) {
		syms, core, _ := load(t, patched)
		_, err := kcode.FindCall(syms, core, "amd64", kcode.Query{Function: "nope", Callee: "nmi_uaccess_okay"})
		if !errors.Is(err, kcode.ErrNoSymbol) || !strings.Contains(err.Error(), "function nope") {
			t.Fatalf("err = %v, want ErrNoSymbol naming the function", err)
		}
	})
	t.Run("module symbol of the same name is not the callee", func(t *testing.T) {
		im := kcodetest.Kernel{}.Image()
		im.Funcs = im.Funcs[:1] // only copy_from_user_nofault: the kallsyms module line still names nmi_uaccess_okay
		im.Funcs[0].Body = []kcodetest.Insn{kcodetest.Endbr64, kcodetest.Ret}
		syms, core, _ := load(t, im)
		f, err := kcode.FindCall(syms, core, "amd64", nofaultFix)
		if err != nil || !f.NoCallee {
			t.Fatalf("FindCall = %+v, %v; want NoCallee", f, err)
		}
	})
	t.Run("kptr_restrict", func(t *testing.T) {
		_, err := kcode.ReadSymbols(strings.NewReader(b.Kallsyms(true)))
		if !errors.Is(err, kcode.ErrAddressesHidden) {
			t.Fatalf("err = %v, want ErrAddressesHidden", err)
		}
	})
	t.Run("text not in the core", func(t *testing.T) {
		syms, _, _ := load(t, patched)
		core, err := kcode.OpenCore(bytes.NewReader(kcodetest.Core(elf.EM_X86_64, kcodetest.Segment{Vaddr: 0xffff888000000000, Data: make([]byte, 64)})))
		if err != nil {
			t.Fatal(err)
		}
		f, err := kcode.FindCall(syms, core, "amd64", nofaultFix)
		if !errors.Is(err, kcode.ErrNotMapped) || f.Found {
			t.Fatalf("FindCall = %+v, %v; want ErrNotMapped", f, err)
		}
	})
	t.Run("zeros from the core", func(t *testing.T) {
		syms, _, _ := load(t, patched)
		core, err := kcode.OpenCore(bytes.NewReader(kcodetest.Core(elf.EM_X86_64, kcodetest.Segment{Vaddr: b.Base, Data: make([]byte, len(b.Text))})))
		if err != nil {
			t.Fatal(err)
		}
		if f, err := kcode.FindCall(syms, core, "amd64", nofaultFix); err == nil || f.Found || !strings.Contains(err.Error(), "zero bytes") {
			t.Fatalf("FindCall = %+v, %v; want a zero-bytes error", f, err)
		}
	})
	t.Run("undecodable instruction before any call", func(t *testing.T) {
		im := kcodetest.Kernel{NofaultFix: true}.Image()
		im.Funcs[0].Body = append([]kcodetest.Insn{kcodetest.Raw(0x06)}, im.Funcs[0].Body...) // push %es: invalid in 64-bit mode
		syms, core, b := load(t, im)
		f, err := kcode.FindCall(syms, core, "amd64", nofaultFix)
		var de *kcode.DecodeError
		if !errors.As(err, &de) || f.Found || de.Addr != b.Addr("copy_from_user_nofault") {
			t.Fatalf("FindCall = %+v, %v; want a DecodeError at the entry", f, err)
		}
	})
	t.Run("undecodable instruction after the call", func(t *testing.T) {
		im := kcodetest.Kernel{NofaultFix: true}.Image()
		im.Funcs[0].Body = append(im.Funcs[0].Body, kcodetest.Raw(0x06))
		syms, core, _ := load(t, im)
		f, err := kcode.FindCall(syms, core, "amd64", nofaultFix)
		if err != nil || !f.Found {
			t.Fatalf("FindCall = %+v, %v; want found (the call precedes the bad byte)", f, err)
		}
	})
	t.Run("extent too large", func(t *testing.T) {
		text := "ffffffff81000000 T copy_from_user_nofault\nffffffff81100000 T nmi_uaccess_okay\n"
		syms, err := kcode.ReadSymbols(strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		_, core, _ := load(t, patched)
		if _, err := kcode.FindCall(syms, core, "amd64", nofaultFix); err == nil || !strings.Contains(err.Error(), "exceeds") {
			t.Fatalf("err = %v, want extent too large", err)
		}
	})
	t.Run("ambiguous function", func(t *testing.T) {
		text := "ffffffff81000000 t f\nffffffff81000010 t f\nffffffff81000020 T g\nffffffff81000030 T _etext\n"
		syms, err := kcode.ReadSymbols(strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kcode.FindCall(syms, nil, "amd64", kcode.Query{Function: "f", Callee: "g"}); err == nil || !strings.Contains(err.Error(), "2 symbols") {
			t.Fatalf("err = %v, want ambiguity", err)
		}
	})
	t.Run("arch without disassembler", func(t *testing.T) {
		syms, core, _ := load(t, patched)
		if _, err := kcode.FindCall(syms, core, "riscv64", nofaultFix); err == nil || !strings.Contains(err.Error(), "riscv64") {
			t.Fatalf("err = %v, want no disassembler for riscv64", err)
		}
	})
}

func TestReadSymbols(t *testing.T) {
	text := strings.Join([]string{
		"ffffffff81000200 T b",
		"ffffffff81000100 T a",
		"ffffffff81000100 t a_alias",
		"ffffffff82000000 D jiffies",
		"0000000000000000 A fixed_percpu_data",
		"ffffffffc0000000 t mod_fn\t[mod]",
		"ffffffff81000300 W weak_fn",
		"garbage line",
		"zzzzzzzzzzzzzzzz T bad_addr",
		"ffffffff81000400 T _etext",
	}, "\n")
	s, err := kcode.ReadSymbols(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := range s.Len() {
		got = append(got, s.Name(i))
	}
	if diff := cmp.Diff([]string{"a", "a_alias", "b", "weak_fn", "_etext"}, got); diff != "" {
		t.Errorf("symbols (-want +got):\n%s", diff)
	}
	if s.Lines != 10 {
		t.Errorf("Lines = %d, want 10", s.Lines)
	}
	if i, ok := s.At(0xffffffff81000250); !ok || s.Name(i) != "b" {
		t.Errorf("At(b+0x50) = %d %v", i, ok)
	}
	if _, ok := s.At(0xffffffff81000000); ok {
		t.Errorf("At below the first symbol is ok")
	}
	if end, ok := s.End(0); !ok || end != 0xffffffff81000200 {
		t.Errorf("End(a) = %#x %v, want b's address (skipping the alias)", end, ok)
	}
	if _, ok := s.End(s.Len() - 1); ok {
		t.Errorf("End(_etext) ok")
	}
	if _, err := kcode.ReadSymbols(strings.NewReader("ffffffff82000000 D jiffies\n")); err == nil {
		t.Errorf("no text symbols: no error")
	}
}

func TestOpenCore(t *testing.T) {
	b := kcodetest.Kernel{}.Image().Build()
	core, err := kcode.OpenCore(bytes.NewReader(b.KernelCore()))
	if err != nil {
		t.Fatal(err)
	}
	if core.Machine != elf.EM_X86_64 {
		t.Errorf("Machine = %v", core.Machine)
	}
	got, err := core.Read(b.Base+16, 32)
	if err != nil || !bytes.Equal(got, b.Text[16:48]) {
		t.Errorf("Read = % x, %v; want % x", got, err, b.Text[16:48])
	}
	if _, err := core.Read(b.Base+uint64(len(b.Text))-4, 8); !errors.Is(err, kcode.ErrNotMapped) {
		t.Errorf("Read across the segment end: %v, want ErrNotMapped", err)
	}
	for name, in := range map[string][]byte{
		"empty":      nil,
		"not elf":    []byte("hello, world, this is not an ELF file at all......................"),
		"executable": func() []byte { c := b.KernelCore(); c[16] = byte(elf.ET_EXEC); return c }(),
		"no loads":   kcodetest.Core(elf.EM_X86_64),
	} {
		if _, err := kcode.OpenCore(bytes.NewReader(in)); err == nil {
			t.Errorf("OpenCore(%s): no error", name)
		}
	}
}

func TestListing(t *testing.T) {
	syms, core, _ := load(t, kcodetest.Kernel{NofaultFix: true}.Image())
	l, err := kcode.Listing(syms, core, "amd64", "copy_from_user_nofault")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"copy_from_user_nofault+0x0\tf3 0f 1e fa\tendbr64\n",
		"copy_from_user_nofault+0x11\te8 3a 00 00 00\tcallq nmi_uaccess_okay\n",
		"\t0f 01 cb\tstac\n",
		"\t0f 01 ca\tclac\n",
	} {
		if !strings.Contains(l, want) {
			t.Errorf("listing lacks %q:\n%s", want, l)
		}
	}
	if _, err := kcode.Listing(syms, core, "amd64", "nope"); !errors.Is(err, kcode.ErrNoSymbol) {
		t.Errorf("Listing(nope) = %v, want ErrNoSymbol", err)
	}
}
