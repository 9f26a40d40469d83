package kcode

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
)

// ErrNotMapped is returned by [Core.Read] for an address range no PT_LOAD
// segment of the core covers.
var ErrNotMapped = errors.New("address not mapped by any PT_LOAD segment")

// Core is a kernel core file (/proc/kcore): an ELF64 ET_CORE file whose
// PT_LOAD segments map kernel virtual addresses to file offsets. Only the
// headers are read when it is opened; code is read on demand with ReadAt.
type Core struct {
	// Machine is the core's ELF machine (elf.EM_X86_64, elf.EM_AARCH64).
	Machine elf.Machine
	loads   []*elf.Prog
}

// OpenCore reads the ELF header and program headers of a kernel core file.
// It never reads the segments themselves.
func OpenCore(r io.ReaderAt) (*Core, error) {
	f, err := elf.NewFile(r)
	if err != nil {
		return nil, fmt.Errorf("read kcore headers: %w", err)
	}
	if f.Class != elf.ELFCLASS64 {
		return nil, fmt.Errorf("read kcore headers: %v, want ELFCLASS64", f.Class)
	}
	if f.Type != elf.ET_CORE {
		return nil, fmt.Errorf("read kcore headers: type %v, want ET_CORE", f.Type)
	}
	c := &Core{Machine: f.Machine}
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && p.Filesz > 0 {
			c.loads = append(c.loads, p)
		}
	}
	if len(c.loads) == 0 {
		return nil, errors.New("read kcore headers: no PT_LOAD segment")
	}
	return c, nil
}

// Read returns n bytes of kernel memory at addr from the first PT_LOAD
// segment that holds all of them.
func (c *Core) Read(addr uint64, n int) ([]byte, error) {
	if n <= 0 {
		return nil, nil
	}
	for _, p := range c.loads {
		if addr < p.Vaddr || addr-p.Vaddr > p.Filesz || uint64(n) > p.Filesz-(addr-p.Vaddr) {
			continue
		}
		b := make([]byte, n)
		if _, err := p.ReadAt(b, int64(addr-p.Vaddr)); err != nil {
			return nil, fmt.Errorf("read kcore at %#x (+%d bytes): %w", addr, n, err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("read kcore at %#x (+%d bytes): %w", addr, n, ErrNotMapped)
}
