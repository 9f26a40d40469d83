package kcode

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
)

// ErrAddressesHidden is returned by [ReadSymbols] when kallsyms lists every
// address as zero: kernel.kptr_restrict hides them from a reader without
// CAP_SYSLOG (or from everyone, with kptr_restrict=2).
var ErrAddressesHidden = errors.New("kallsyms addresses are zero: kptr_restrict (needs root/CAP_SYSLOG, and kernel.kptr_restrict < 2)")

// Symbols is the core kernel's text symbol table (kallsyms types t, T, w
// and W, without module, BPF or ftrace trampoline symbols), sorted by
// address. Aliases (several names at one address) keep their kallsyms
// order. The zero value is an empty table.
type Symbols struct {
	addrs []uint64
	ends  []uint32 // ends[i] is the end of name i in blob
	blob  []byte
	// Lines is the number of kallsyms lines read, of every type.
	Lines int
}

// Len returns the number of symbols.
func (s *Symbols) Len() int { return len(s.addrs) }

// Addr returns the address of symbol i.
func (s *Symbols) Addr(i int) uint64 { return s.addrs[i] }

// Name returns the name of symbol i.
func (s *Symbols) Name(i int) string { return string(s.name(i)) }

func (s *Symbols) name(i int) []byte {
	start := uint32(0)
	if i > 0 {
		start = s.ends[i-1]
	}
	return s.blob[start:s.ends[i]]
}

// Lookup returns the indices of the symbols called name, in address order.
func (s *Symbols) Lookup(name string) []int {
	var is []int
	for i := range s.addrs {
		if string(s.name(i)) == name {
			is = append(is, i)
		}
	}
	return is
}

// At returns the symbol containing addr: the last one (in table order) at
// the greatest address not above addr. ok is false below the first symbol.
func (s *Symbols) At(addr uint64) (i int, ok bool) {
	n := s.above(addr)
	if n == 0 {
		return 0, false
	}
	return n - 1, true
}

// End returns the address where symbol i ends: that of the next symbol at
// a higher address. ok is false for the last address in the table.
func (s *Symbols) End(i int) (end uint64, ok bool) {
	n := s.above(s.addrs[i])
	if n == len(s.addrs) {
		return 0, false
	}
	return s.addrs[n], true
}

// above returns the index of the first symbol above addr.
func (s *Symbols) above(addr uint64) int {
	return sort.Search(len(s.addrs), func(i int) bool { return s.addrs[i] > addr })
}

// ReadSymbols reads /proc/kallsyms-formatted text ("ADDR TYPE NAME
// [\t[MODULE]]") and keeps the core kernel's text symbols. Malformed lines
// are skipped. It fails with [ErrAddressesHidden] when every address is
// zero, and when no text symbol is listed at all.
func ReadSymbols(r io.Reader) (*Symbols, error) {
	// A kernel lists 100k–250k text symbols; start at a size that spares
	// most of the copying growth costs.
	s := &Symbols{addrs: make([]uint64, 0, 1<<16), ends: make([]uint32, 0, 1<<16), blob: make([]byte, 0, 1<<20)}
	br := bufio.NewReaderSize(r, 64*1024)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 && err != bufio.ErrBufferFull {
			s.Lines++
			s.add(line)
		}
		for err == bufio.ErrBufferFull { // an absurdly long line: skip it
			_, err = br.ReadSlice('\n')
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read kallsyms: %w", err)
		}
	}
	if len(s.addrs) == 0 {
		return nil, fmt.Errorf("read kallsyms: no text symbols in %d lines", s.Lines)
	}
	if slices.Max(s.addrs) == 0 {
		return nil, ErrAddressesHidden
	}
	if !slices.IsSorted(s.addrs) {
		s.sort()
	}
	return s, nil
}

// add parses one line and keeps it when it is a core text symbol.
func (s *Symbols) add(line []byte) {
	// ADDR SP TYPE SP NAME [\t[MODULE]] \n
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 || sp > 16 || sp+3 >= len(line) || line[sp+2] != ' ' {
		return
	}
	switch line[sp+1] {
	case 't', 'T', 'w', 'W':
	default:
		return
	}
	var addr uint64
	for _, c := range line[:sp] {
		d, ok := hexDigit(c)
		if !ok {
			return
		}
		addr = addr<<4 | uint64(d)
	}
	name := line[sp+3:]
	for i, c := range name {
		if c == '\t' {
			return // "\t[module]": not the core kernel
		}
		if c == ' ' || c == '\n' || c == '\r' {
			name = name[:i]
			break
		}
	}
	if len(name) == 0 || len(s.blob)+len(name) > 1<<32-1 {
		return
	}
	s.addrs = append(s.addrs, addr)
	s.blob = append(s.blob, name...)
	s.ends = append(s.ends, uint32(len(s.blob)))
}

// sort orders the table by address, keeping aliases in file order.
func (s *Symbols) sort() {
	idx := make([]int, len(s.addrs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case s.addrs[a] < s.addrs[b]:
			return -1
		case s.addrs[a] > s.addrs[b]:
			return 1
		}
		return 0
	})
	n := &Symbols{Lines: s.Lines, blob: make([]byte, 0, len(s.blob))}
	for _, i := range idx {
		n.addrs = append(n.addrs, s.addrs[i])
		n.blob = append(n.blob, s.name(i)...)
		n.ends = append(n.ends, uint32(len(n.blob)))
	}
	*s = *n
}

// describe names addr as "symbol+0xoff", or the bare address when no
// symbol contains it.
func (s *Symbols) describe(addr uint64) string {
	i, ok := s.At(addr)
	if !ok {
		return fmt.Sprintf("%#x", addr)
	}
	if off := addr - s.addrs[i]; off != 0 {
		return fmt.Sprintf("%s+%#x", s.name(i), off)
	}
	return string(s.name(i))
}

// isClone reports whether name is fn or a GCC clone of it
// ("fn.constprop.0", "fn.isra.0", "fn.part.0"); a ".cold" part is not.
func isClone(name, fn string) bool {
	if name == fn {
		return true
	}
	rest, ok := strings.CutPrefix(name, fn+".")
	return ok && rest != "" && !slices.Contains(strings.Split(rest, "."), "cold")
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
