//go:build linux && (386 || amd64)

package main

import (
	"bufio"
	"debug/elf"
	"debug/gosym"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// mapping is one file-backed line of /proc/PID/maps.
type mapping struct {
	start, end, offset uint64
	path               string
}

// symbolTable holds one ELF file's function symbols, sorted by address, and
// its loadable segments (to turn file offsets into symbol addresses). Go
// binaries also carry .gopclntab, which names every Go function even when
// .symtab is stripped (go test, go run, -ldflags=-s).
type symbolTable struct {
	syms  []elf.Symbol
	gosym *gosym.Table
	loads []elf.ProgHeader
}

// symbolizer turns user addresses of live processes into "function+0xoff".
// It reads /proc/PID/maps once per process and each mapped ELF file once.
type symbolizer struct {
	proc  string // "/proc"
	maps  map[uint32][]mapping
	files map[string]*symbolTable // nil entry: not an ELF file or no symbols
}

func newSymbolizer(proc string) *symbolizer {
	return &symbolizer{proc: proc, maps: map[uint32][]mapping{}, files: map[string]*symbolTable{}}
}

// parseMaps reads the file-backed executable mappings of a /proc/PID/maps file.
func parseMaps(data string) []mapping {
	var out []mapping
	sc := bufio.NewScanner(strings.NewReader(data))
	for sc.Scan() {
		// start-end perms offset dev inode path
		f := strings.Fields(sc.Text())
		if len(f) < 6 || !strings.HasPrefix(f[5], "/") || !strings.Contains(f[1], "x") {
			continue
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		off, err3 := strconv.ParseUint(f[2], 16, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		out = append(out, mapping{start: start, end: end, offset: off, path: strings.Join(f[5:], " ")})
	}
	return out
}

func (s *symbolizer) mappings(pid uint32) []mapping {
	if m, ok := s.maps[pid]; ok {
		return m
	}
	data, err := os.ReadFile(filepath.Join(s.proc, strconv.FormatUint(uint64(pid), 10), "maps"))
	var m []mapping
	if err == nil {
		m = parseMaps(string(data))
	}
	s.maps[pid] = m
	return m
}

func (s *symbolizer) table(pid uint32, m mapping) *symbolTable {
	if t, ok := s.files[m.path]; ok {
		return t
	}
	// map_files reaches the mapped file even inside another mount namespace
	// or after it was deleted; fall back to the path for unprivileged runs.
	candidates := []string{
		filepath.Join(s.proc, strconv.FormatUint(uint64(pid), 10), "map_files", fmt.Sprintf("%x-%x", m.start, m.end)),
		m.path,
	}
	var t *symbolTable
	for _, c := range candidates {
		if t = loadSymbolTable(c); t != nil {
			break
		}
	}
	s.files[m.path] = t
	return t
}

func loadSymbolTable(path string) *symbolTable {
	f, err := elf.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil || len(syms) == 0 {
		syms, _ = f.DynamicSymbols()
	}
	t := &symbolTable{}
	for _, s := range syms {
		if elf.ST_TYPE(s.Info) == elf.STT_FUNC && s.Value != 0 {
			t.syms = append(t.syms, s)
		}
	}
	t.gosym = goTable(f)
	if len(t.syms) == 0 && t.gosym == nil {
		return nil
	}
	sort.Slice(t.syms, func(i, j int) bool { return t.syms[i].Value < t.syms[j].Value })
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			t.loads = append(t.loads, p.ProgHeader)
		}
	}
	return t
}

// goTable reads a Go binary's pclntab, or returns nil.
func goTable(f *elf.File) *gosym.Table {
	pcln := f.Section(".gopclntab")
	text := f.Section(".text")
	if pcln == nil || text == nil {
		return nil
	}
	data, err := pcln.Data()
	if err != nil {
		return nil
	}
	tab, err := gosym.NewTable(nil, gosym.NewLineTable(data, text.Addr))
	if err != nil {
		return nil
	}
	return tab
}

// lookup returns the function containing the ELF virtual address v.
func (t *symbolTable) lookup(v uint64) (string, uint64, bool) {
	// A Go binary's pclntab names every Go function, even when the ELF
	// symbol table is stripped; ELF symbols cover the rest (cgo, C).
	if t.gosym != nil {
		if fn := t.gosym.PCToFunc(v); fn != nil {
			return fn.Name, v - fn.Entry, true
		}
	}
	i := sort.Search(len(t.syms), func(i int) bool { return t.syms[i].Value > v }) - 1
	if i < 0 {
		return "", 0, false
	}
	s := t.syms[i]
	if s.Size != 0 && v >= s.Value+s.Size {
		return "", 0, false
	}
	return s.Name, v - s.Value, true
}

// vaddr turns an offset in the file into the ELF virtual address mapped there.
func (t *symbolTable) vaddr(fileOff uint64) (uint64, bool) {
	for _, p := range t.loads {
		if fileOff >= p.Off && fileOff < p.Off+p.Filesz {
			return fileOff - p.Off + p.Vaddr, true
		}
	}
	return 0, false
}

// symbolize names addr in process pid: "function+0xoff", else
// "0xaddr (file)", else "0xaddr".
func (s *symbolizer) symbolize(pid uint32, addr uint64) string {
	for _, m := range s.mappings(pid) {
		if addr < m.start || addr >= m.end {
			continue
		}
		t := s.table(pid, m)
		if t == nil {
			return fmt.Sprintf("%#x (%s)", addr, filepath.Base(m.path))
		}
		if v, ok := t.vaddr(addr - m.start + m.offset); ok {
			if name, off, ok := t.lookup(v); ok {
				return fmt.Sprintf("%s+%#x", name, off)
			}
		}
		return fmt.Sprintf("%#x (%s)", addr, filepath.Base(m.path))
	}
	return fmt.Sprintf("%#x", addr)
}
