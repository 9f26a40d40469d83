package kcode_test

import (
	"bytes"
	"debug/elf"
	"errors"
	"strings"
	"testing"

	"github.com/safebpf/safebpf/internal/kcode"
	"github.com/safebpf/safebpf/internal/kcode/kcodetest"
)

func FuzzReadSymbols(f *testing.F) {
	b := kcodetest.Kernel{NofaultFix: true, Pfx: true}.Image().Build()
	f.Add(b.Kallsyms(false))
	f.Add(b.Kallsyms(true))
	f.Add("ffffffff81000000 T a\nffffffff81000000 t b\n")
	f.Add("ffffffffffffffff T x\n0 T y\n")
	f.Add("fffffffff81000000 T too_long_address\n")
	f.Fuzz(func(t *testing.T, text string) {
		s, err := kcode.ReadSymbols(strings.NewReader(text))
		if err != nil {
			return
		}
		if s.Len() == 0 || s.Lines == 0 {
			t.Fatalf("no symbols and no error")
		}
		for i := range s.Len() {
			if s.Name(i) == "" || strings.ContainsAny(s.Name(i), " \t\n") {
				t.Fatalf("symbol %d has name %q", i, s.Name(i))
			}
			if i > 0 && s.Addr(i) < s.Addr(i-1) {
				t.Fatalf("not sorted at %d", i)
			}
			if j, ok := s.At(s.Addr(i)); !ok || s.Addr(j) != s.Addr(i) {
				t.Fatalf("At(Addr(%d)) = %d %v", i, j, ok)
			}
			if end, ok := s.End(i); ok && end <= s.Addr(i) {
				t.Fatalf("End(%d) = %#x not above %#x", i, end, s.Addr(i))
			}
		}
	})
}

func FuzzOpenCore(f *testing.F) {
	b := kcodetest.Kernel{NofaultFix: true}.Image().Build()
	f.Add(b.KernelCore(), b.Base, 64)
	f.Add(kcodetest.Core(elf.EM_X86_64, kcodetest.Segment{Vaddr: ^uint64(0) - 8, Data: make([]byte, 16)}), ^uint64(0)-4, 8)
	f.Add([]byte("\x7fELF\x02\x01\x01"), uint64(0), 1)
	f.Fuzz(func(t *testing.T, data []byte, addr uint64, n int) {
		c, err := kcode.OpenCore(bytes.NewReader(data))
		if err != nil {
			return
		}
		n %= 1 << 16
		got, err := c.Read(addr, n)
		if err == nil && n > 0 && len(got) != n {
			t.Fatalf("Read(%#x, %d) returned %d bytes", addr, n, len(got))
		}
	})
}

// fuzzMem is kernel memory from a byte slice at a base address.
type fuzzMem struct {
	base uint64
	b    []byte
}

func (m fuzzMem) Read(addr uint64, n int) ([]byte, error) {
	if addr < m.base || addr-m.base+uint64(n) > uint64(len(m.b)) {
		return nil, kcode.ErrNotMapped
	}
	return m.b[addr-m.base : addr-m.base+uint64(n)], nil
}

// FuzzFindCall decodes arbitrary bytes as copy_from_user_nofault: no
// panic, and "found" always names the instruction.
func FuzzFindCall(f *testing.F) {
	b := kcodetest.Kernel{NofaultFix: true}.Image().Build()
	f.Add(b.Text[:0x40])
	f.Add([]byte{0xe8, 0xfb, 0, 0, 0, 0xc3})
	f.Add([]byte{0xc4, 0xe2, 0xeb, 0xf7, 0xc0, 0x0f, 0x01, 0xcb})
	const base = 0xffffffff81000000
	// copy_from_user_nofault holds the fuzzed bytes, then come the callee and the end.
	syms, err := kcode.ReadSymbols(strings.NewReader("ffffffff81000000 T copy_from_user_nofault\nffffffff81000100 T nmi_uaccess_okay\nffffffff81000110 T _etext\n"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, code []byte) {
		mem := fuzzMem{base, make([]byte, 0x110)}
		copy(mem.b, code)
		mem.b[0x100] = 0xc3
		for _, arch := range []string{"amd64", "arm64"} {
			fd, err := kcode.FindCall(syms, mem, arch, kcode.Query{Function: "copy_from_user_nofault", Callee: "nmi_uaccess_okay"})
			var de *kcode.DecodeError
			if err != nil && !errors.As(err, &de) && !strings.Contains(err.Error(), "zero bytes") {
				t.Fatalf("%s: unexpected error %v", arch, err)
			}
			if fd != nil && fd.Found && !strings.Contains(fd.Site, "nmi_uaccess_okay") {
				t.Fatalf("%s: found, but site %q", arch, fd.Site)
			}
		}
	})
}
