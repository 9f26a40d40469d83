package kcode

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/arch/arm64/arm64asm"
	"golang.org/x/arch/x86/x86asm"
)

// branch is a direct call, or a direct jump leaving the decoded range.
type branch struct {
	pc     uint64
	target uint64
	call   bool
	text   string // "call", "jmp", "jne", "bl", "b"
}

// DecodeError is an instruction the disassembler could not decode. The
// bytes after it cannot be decoded reliably on x86, so the code was not
// read completely.
type DecodeError struct {
	Addr  uint64
	Bytes []byte // up to 8 bytes from Addr
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("cannot decode instruction at %#x (% x)", e.Addr, e.Bytes)
}

// x86Extra lists instructions the kernel uses that x86asm does not know
// or mis-decodes: it reads endbr64 as a bare "rep" prefix and rejects stac
// and clac (which x86Length would cover; they are named here for listings).
var x86Extra = []struct {
	enc  []byte
	name string
}{
	{[]byte{0xf3, 0x0f, 0x1e, 0xfa}, "endbr64"},
	{[]byte{0xf3, 0x0f, 0x1e, 0xfb}, "endbr32"},
	{[]byte{0x0f, 0x01, 0xcb}, "stac"},
	{[]byte{0x0f, 0x01, 0xca}, "clac"},
	// x86asm gives vzeroupper and vzeroall 4 bytes instead of 3: a silent
	// desynchronisation, found comparing with objdump on Debian's 6.12.
	{[]byte{0xc5, 0xf8, 0x77}, "vzeroupper"},
	{[]byte{0xc5, 0xfc, 0x77}, "vzeroall"},
}

// branches decodes code, which starts at base, linearly and returns its
// direct calls and the direct jumps whose target lies outside
// [base, base+len(code)). arch is the kernel's GOARCH name.
func branches(arch string, code []byte, base uint64) ([]branch, error) {
	switch arch {
	case "amd64":
		return branchesX86(code, base)
	case "arm64":
		return branchesARM64(code, base), nil
	}
	return nil, fmt.Errorf("arch %s: no disassembler", arch)
}

func branchesX86(code []byte, base uint64) ([]branch, error) {
	var out []branch
	end := base + uint64(len(code))
	for off := 0; off < len(code); {
		pc := base + uint64(off)
		n, inst, err := decodeX86(code[off:])
		if err != nil {
			return out, &DecodeError{Addr: pc, Bytes: bytes.Clone(code[off:min(off+8, len(code))])}
		}
		off += n
		if inst == nil {
			continue
		}
		rel, ok := inst.Args[0].(x86asm.Rel)
		if !ok {
			continue
		}
		target := pc + uint64(inst.Len) + uint64(int64(rel))
		switch {
		case inst.Op == x86asm.CALL:
			out = append(out, branch{pc, target, true, "call"})
		case target < base || target >= end: // jmp, jcc (jrcxz and loop have rel8 only)
			out = append(out, branch{pc, target, false, strings.ToLower(inst.Op.String())})
		}
	}
	return out, nil
}

// decodeX86 decodes the instruction at the start of code: its length and,
// unless it is one of x86Extra (inst nil), what x86asm made of it.
func decodeX86(code []byte) (int, *x86asm.Inst, error) {
	if n := x86Known(code); n > 0 {
		return n, nil, nil
	}
	inst, err := x86asm.Decode(code, 64)
	if err == nil && (inst.Op == 0 || inst.Len == 0) {
		err = errors.New("prefix without instruction")
	}
	if err != nil {
		if n := x86Length(code); n > 0 {
			return n, nil, nil
		}
		return 0, nil, err
	}
	return inst.Len, &inst, nil
}

// x86Length returns the length of two families of instructions x86asm
// does not know, neither of them a branch, or 0:
//   - the 0f 01 group in register form (modrm mod 11: stac, clac,
//     vmcall, vmmcall, encls, serialize, rdpkru, …), 3 bytes after
//     optional 66/f2/f3 prefixes;
//   - BMI1/BMI2 (andn, bzhi, pdep, pext, mulx, shlx, sarx, shrx, bextr,
//     the bls* group: VEX map 0f38 opcodes f2–f7; rorx: map 0f3a f0 with
//     an immediate byte), three-byte VEX (c4) with a modrm operand.
func x86Length(code []byte) int {
	p := 0
	for p < len(code) && p < 2 && (code[p] == 0x66 || code[p] == 0xf2 || code[p] == 0xf3) {
		p++
	}
	if len(code) >= p+3 && code[p] == 0x0f && code[p+1] == 0x01 && code[p+2] >= 0xc0 {
		return p + 3
	}
	if len(code) < 5 || code[0] != 0xc4 {
		return 0
	}
	imm := 0
	switch m, op := code[1]&0x1f, code[3]; {
	case m == 2 && op >= 0xf2 && op <= 0xf7:
	case m == 3 && op == 0xf0:
		imm = 1
	default:
		return 0
	}
	n := modrmLength(code[4:])
	if n == 0 || 4+n+imm > len(code) {
		return 0
	}
	return 4 + n + imm
}

// modrmLength is the length of a 64-bit mode modrm byte with its SIB byte
// and displacement, or 0 when code is too short.
func modrmLength(code []byte) int {
	if len(code) == 0 {
		return 0
	}
	mod, rm := code[0]>>6, code[0]&7
	n := 1
	if mod != 3 && rm == 4 { // SIB
		if len(code) < 2 {
			return 0
		}
		n++
		if mod == 0 && code[1]&7 == 5 {
			n += 4 // no base: disp32
		}
	}
	switch {
	case mod == 0 && rm == 5:
		n += 4 // rip-relative
	case mod == 1:
		n++
	case mod == 2:
		n += 4
	}
	return n
}

// x86Known returns the length of a known instruction x86asm cannot
// decode at the start of code, or 0.
func x86Known(code []byte) int {
	for _, x := range x86Extra {
		if bytes.HasPrefix(code, x.enc) {
			return len(x.enc)
		}
	}
	// rdpid: f3 0f c7 /7 with a register operand (mod 11, reg 111).
	if len(code) >= 4 && code[0] == 0xf3 && code[1] == 0x0f && code[2] == 0xc7 && code[3]&0xf8 == 0xf8 {
		return 4
	}
	return 0
}

// branchesARM64 decodes fixed-width A64 code: an undecodable word cannot
// hide a branch (bl and b always decode), so it is skipped.
func branchesARM64(code []byte, base uint64) []branch {
	var out []branch
	end := base + uint64(len(code))
	for off := 0; off+4 <= len(code); off += 4 {
		pc := base + uint64(off)
		w := binary.LittleEndian.Uint32(code[off:])
		// b / bl imm26 (bits 30..26 = 00101), b.cond imm19 (0101010 0, bit 4 = 0).
		if w&0x7c000000 != 0x14000000 && w&0xff000010 != 0x54000000 {
			continue
		}
		inst, err := arm64asm.Decode(code[off : off+4])
		if err != nil {
			continue
		}
		var rel arm64asm.PCRel
		found := false
		for _, a := range inst.Args {
			if r, ok := a.(arm64asm.PCRel); ok {
				rel, found = r, true
			}
		}
		if !found {
			continue
		}
		target := pc + uint64(int64(rel))
		switch {
		case inst.Op == arm64asm.BL:
			out = append(out, branch{pc, target, true, "bl"})
		case inst.Op == arm64asm.B && (target < base || target >= end):
			text := "b"
			if c, ok := inst.Args[0].(arm64asm.Cond); ok {
				text += "." + strings.ToLower(c.String())
			}
			out = append(out, branch{pc, target, false, text})
		}
	}
	return out
}

// Listing disassembles the named function (not its .cold part) in GNU
// syntax, one instruction per line with branch targets named from syms:
// "copy_from_user_nofault+0x11  e8 ea 6c 1d 00  call nmi_uaccess_okay".
// Meant for logs and reports; its text is not a stable interface.
func Listing(syms *Symbols, mem Memory, arch, fn string) (string, error) {
	i, err := syms.unique(fn)
	if err != nil {
		return "", err
	}
	r, err := syms.region(i, "")
	if err != nil {
		return "", err
	}
	code, err := mem.Read(r.start, int(r.end-r.start))
	if err != nil {
		return "", err
	}
	name := func(addr uint64) (string, uint64) {
		if j, ok := syms.At(addr); ok {
			return syms.Name(j), syms.Addr(j)
		}
		return "", 0
	}
	var sb strings.Builder
	step := 4
	for off := 0; off < len(code); off += step {
		pc := r.start + uint64(off)
		var text string
		switch arch {
		case "amd64":
			n, inst, err := decodeX86(code[off:])
			if err != nil {
				fmt.Fprintf(&sb, "%s+%#x\t% x\t(bad)\n", fn, off, code[off:min(off+8, len(code))])
				return sb.String(), &DecodeError{Addr: pc, Bytes: bytes.Clone(code[off:min(off+8, len(code))])}
			}
			step = n
			if inst != nil {
				text = x86asm.GNUSyntax(*inst, pc, name)
				break
			}
			text = "(not known to x86asm)"
			for _, x := range x86Extra {
				if bytes.HasPrefix(code[off:], x.enc) {
					text = x.name
				}
			}
		case "arm64":
			step = 4
			if off+4 > len(code) {
				return sb.String(), nil
			}
			inst, err := arm64asm.Decode(code[off : off+4])
			if err != nil {
				text = "(undefined)"
			} else {
				text = arm64asm.GNUSyntax(inst)
			}
		default:
			return "", fmt.Errorf("arch %s: no disassembler", arch)
		}
		fmt.Fprintf(&sb, "%s+%#x\t% x\t%s\n", fn, off, code[off:off+step], text)
	}
	return sb.String(), nil
}
