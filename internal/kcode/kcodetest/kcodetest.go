// Package kcodetest builds synthetic kernels for tests of package kcode and
// of the probe witnesses: hand-assembled x86-64 functions laid out like
// kernel text, the /proc/kallsyms text that lists them and an ELF64 core
// file (/proc/kcore) whose PT_LOAD segments hold them. Nothing here is a
// checked-in blob: tests generate every file.
package kcodetest

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"strings"
)

// Insn is one instruction of a synthetic function: raw bytes, or a rel32
// call/jump to a symbol (plus Addend, to land in its padding), or a rel8
// jump to a label in the same function.
type Insn struct {
	Raw    []byte
	Op     byte // 0xe8 call rel32, 0xe9 jmp rel32, 0x0f 0x8x jcc rel32 (Op2), 0x74/0xeb rel8 to Label
	Op2    byte
	Sym    string
	Addend int64
	Label  string // for rel8 jumps: the label jumped to; for Here: the label defined
	here   bool
}

// Raw emits bytes as they are.
func Raw(b ...byte) Insn { return Insn{Raw: b} }

// Call emits `call rel32` to sym.
func Call(sym string) Insn { return Insn{Op: 0xe8, Sym: sym} }

// CallPadding emits `call rel32` to 16-off bytes before sym's entry: where
// x86 call depth tracking patches calls (the callee's padding thunk).
func CallPadding(sym string, off int64) Insn { return Insn{Op: 0xe8, Sym: sym, Addend: off - 16} }

// Jmp emits `jmp rel32` to sym (a tail call).
func Jmp(sym string) Insn { return Insn{Op: 0xe9, Sym: sym} }

// Jcc emits a conditional `j<cc> rel32` to sym (cc is the low nibble of
// 0f 8x: 0x4 je, 0x5 jne).
func Jcc(cc byte, sym string) Insn { return Insn{Op: 0x0f, Op2: 0x80 | cc&0xf, Sym: sym} }

// Je8 emits `je rel8` to a label of the same function.
func Je8(label string) Insn { return Insn{Op: 0x74, Label: label} }

// Jmp8 emits `jmp rel8` to a label of the same function.
func Jmp8(label string) Insn { return Insn{Op: 0xeb, Label: label} }

// Here defines a label.
func Here(label string) Insn { return Insn{Label: label, here: true} }

// Common instructions, as GCC emits them in kernel code.
var (
	Endbr64   = Raw(0xf3, 0x0f, 0x1e, 0xfa)                   // endbr64 (IBT)
	Nop5      = Raw(0x0f, 0x1f, 0x44, 0x00, 0x00)             // nopl 0x0(%rax,%rax,1): the patched-out __fentry__ call
	PushRBP   = Raw(0x55)                                     // push %rbp
	PushRBX   = Raw(0x53)                                     // push %rbx
	MovRSPRBP = Raw(0x48, 0x89, 0xe5)                         // mov %rsp,%rbp
	MovRDIRBX = Raw(0x48, 0x89, 0xfb)                         // mov %rdi,%rbx
	MovRBXRDI = Raw(0x48, 0x89, 0xdf)                         // mov %rbx,%rdi
	TestALAL  = Raw(0x84, 0xc0)                               // test %al,%al
	MovEFAULT = Raw(0x48, 0xc7, 0xc0, 0xf2, 0xff, 0xff, 0xff) // mov $-14,%rax
	XorEAXEAX = Raw(0x31, 0xc0)                               // xor %eax,%eax
	Stac      = Raw(0x0f, 0x01, 0xcb)                         // stac (SMAP)
	Clac      = Raw(0x0f, 0x01, 0xca)                         // clac
	RepMovsb  = Raw(0xf3, 0xa4)                               // rep movsb
	PopRBX    = Raw(0x5b)                                     // pop %rbx
	PopRBP    = Raw(0x5d)                                     // pop %rbp
	Ret       = Raw(0xc3)                                     // ret
	Int3      = Raw(0xcc)                                     // int3
	Ud2       = Raw(0x0f, 0x0b)                               // ud2
)

// Func is a synthetic function.
type Func struct {
	Name string
	// Type is the kallsyms type letter; 0 means 'T'.
	Type byte
	Body []Insn
}

// Image lays functions out as kernel text.
type Image struct {
	// Base is the address of the first byte of text; 0 means
	// 0xffffffff81000000.
	Base uint64
	// Pfx gives every function 16 bytes of NOP padding before its entry,
	// listed in kallsyms as __pfx_<name> (CONFIG_FUNCTION_PADDING_BYTES=16,
	// as in kernels built with call depth tracking or FineIBT).
	Pfx   bool
	Funcs []Func
}

// Symbol is one laid-out symbol.
type Symbol struct {
	Addr uint64
	Type byte
	Name string
}

// Built is a laid-out image.
type Built struct {
	Base    uint64
	Text    []byte
	Symbols []Symbol // in address order, ending with _etext
}

// Addr returns the address of the named symbol, panicking when absent
// (a bug in the test).
func (b *Built) Addr(name string) uint64 {
	for _, s := range b.Symbols {
		if s.Name == name {
			return s.Addr
		}
	}
	panic("kcodetest: no symbol " + name)
}

func (in Insn) size() int {
	switch {
	case in.here:
		return 0
	case in.Op == 0xe8 || in.Op == 0xe9:
		return 5
	case in.Op == 0x0f:
		return 6
	case in.Op != 0:
		return 2
	}
	return len(in.Raw)
}

// Build lays the functions out (each entry 16-byte aligned, gaps filled
// with int3) and resolves calls. It panics on an unknown symbol or label.
func (im Image) Build() *Built {
	base := im.Base
	if base == 0 {
		base = 0xffffffff81000000
	}
	b := &Built{Base: base}
	addr := map[string]uint64{}
	starts := make([]uint64, len(im.Funcs))
	pc := base
	for i, f := range im.Funcs {
		if im.Pfx {
			pc += 16 // __pfx_<name>
		}
		starts[i] = pc
		addr[f.Name] = pc
		n := 0
		for _, in := range f.Body {
			n += in.size()
		}
		pc = (pc + uint64(n) + 15) &^ 15
	}
	end := pc
	text := bytes.Repeat([]byte{0xcc}, int(end-base))
	for i, f := range im.Funcs {
		typ := f.Type
		if typ == 0 {
			typ = 'T'
		}
		if im.Pfx {
			copy(text[starts[i]-16-base:], bytes.Repeat([]byte{0x90}, 16))
			b.Symbols = append(b.Symbols, Symbol{starts[i] - 16, 't', "__pfx_" + f.Name})
		}
		b.Symbols = append(b.Symbols, Symbol{starts[i], typ, f.Name})
		labels := map[string]uint64{}
		p := starts[i]
		for _, in := range f.Body {
			if in.here {
				labels[in.Label] = p
			}
			p += uint64(in.size())
		}
		p = starts[i]
		for _, in := range f.Body {
			var enc []byte
			next := p + uint64(in.size())
			switch {
			case in.here:
			case in.Op == 0xe8 || in.Op == 0xe9 || in.Op == 0x0f:
				t, ok := addr[in.Sym]
				if !ok {
					panic("kcodetest: call to unknown symbol " + in.Sym)
				}
				rel := make([]byte, 4)
				binary.LittleEndian.PutUint32(rel, uint32(int32(int64(t)+in.Addend-int64(next))))
				if in.Op == 0x0f {
					enc = append([]byte{0x0f, in.Op2}, rel...)
				} else {
					enc = append([]byte{in.Op}, rel...)
				}
			case in.Op != 0:
				t, ok := labels[in.Label]
				if !ok {
					panic("kcodetest: jump to unknown label " + in.Label)
				}
				enc = []byte{in.Op, byte(int8(int64(t) - int64(next)))}
			default:
				enc = in.Raw
			}
			copy(text[p-base:], enc)
			p = next
		}
	}
	b.Text = text
	b.Symbols = append(b.Symbols, Symbol{end, 'T', "_etext"})
	return b
}

// Kallsyms renders /proc/kallsyms text: the image's symbols, with extra
// lines mixed in as a real kernel lists them (a data symbol, a module
// symbol, a BPF program). zero writes every address as zero, as
// kptr_restrict does.
func (b *Built) Kallsyms(zero bool) string {
	var sb strings.Builder
	line := func(a uint64, t byte, name string) {
		if zero {
			a = 0
		}
		fmt.Fprintf(&sb, "%016x %c %s\n", a, t, name)
	}
	line(b.Base-0x1000, 'A', "fixed_percpu_data")
	for _, s := range b.Symbols {
		line(s.Addr, s.Type, s.Name)
	}
	line(b.Base+0x1000000, 'D', "jiffies")
	// Modules and BPF programs live elsewhere and are not core text.
	line(0xffffffffc0000000, 't', "nmi_uaccess_okay\t[fake_module]")
	line(0xffffffffc0001000, 't', "bpf_prog_6deef7357e7b4530_sd_fw_egress\t[bpf]")
	return sb.String()
}

// Segment is one PT_LOAD segment of a core file.
type Segment struct {
	Vaddr uint64
	Data  []byte
}

// Core renders an x86-64 ELF64 ET_CORE file with a PT_NOTE and one PT_LOAD
// per segment, laid out as /proc/kcore is: headers first, then the
// segments at page-aligned offsets.
func Core(machine elf.Machine, segs ...Segment) []byte {
	const ehsize, phentsize = 64, 56
	phnum := 1 + len(segs)
	off := uint64((ehsize + phentsize*phnum + 4095) &^ 4095)
	type ph struct {
		typ, flags                  uint32
		off, vaddr, paddr, fsz, msz uint64
	}
	phs := []ph{{typ: uint32(elf.PT_NOTE), off: ehsize + uint64(phentsize*phnum)}}
	offs := make([]uint64, len(segs))
	for i, s := range segs {
		offs[i] = off
		phs = append(phs, ph{uint32(elf.PT_LOAD), uint32(elf.PF_R | elf.PF_W | elf.PF_X), off, s.Vaddr, ^uint64(0), uint64(len(s.Data)), uint64(len(s.Data))})
		off = (off + uint64(len(s.Data)) + 4095) &^ 4095
	}
	var buf bytes.Buffer
	le := binary.LittleEndian
	buf.Write([]byte{0x7f, 'E', 'L', 'F', byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT), 0})
	buf.Write(make([]byte, 8))
	_ = binary.Write(&buf, le, struct {
		Type, Machine                                  uint16
		Version                                        uint32
		Entry, Phoff, Shoff                            uint64
		Flags                                          uint32
		Ehsize, Phentsize, Phnum, Shentsize, Shnum, Sh uint16
	}{uint16(elf.ET_CORE), uint16(machine), uint32(elf.EV_CURRENT), 0, ehsize, 0, 0, ehsize, phentsize, uint16(phnum), 64, 0, 0})
	for _, p := range phs {
		_ = binary.Write(&buf, le, struct {
			Type, Flags                           uint32
			Off, Vaddr, Paddr, Filesz, Memsz, Aln uint64
		}{p.typ, p.flags, p.off, p.vaddr, p.paddr, p.fsz, p.msz, 4096})
	}
	for i, s := range segs {
		buf.Write(make([]byte, int(offs[i])-buf.Len()))
		buf.Write(s.Data)
	}
	return buf.Bytes()
}

// KernelCore renders the image as /proc/kcore holds it: a text segment at
// its address, plus a direct-map segment elsewhere (filled with a pattern
// that is not code) so that segment selection is exercised.
func (b *Built) KernelCore() []byte {
	return Core(elf.EM_X86_64,
		Segment{Vaddr: 0xffff888000000000, Data: bytes.Repeat([]byte{0x00, 0xff}, 2048)},
		Segment{Vaddr: b.Base, Data: b.Text},
	)
}
