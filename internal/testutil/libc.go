package testutil

import (
	"debug/elf"
	"path/filepath"
	"testing"
)

// LibcSymbol returns the path of the C library and the file offset of a
// dynamic function symbol in it, where a uprobe fires in every dynamically
// linked process. It skips tb when no C library is found.
func LibcSymbol(tb testing.TB, symbol string) (string, uint64) {
	tb.Helper()
	for _, path := range []string{
		"/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6",
		"/lib/aarch64-linux-gnu/libc.so.6", "/usr/lib/aarch64-linux-gnu/libc.so.6",
		"/lib64/libc.so.6", "/usr/lib64/libc.so.6", "/lib/libc.so.6",
	} {
		real, err := filepath.EvalSymlinks(path)
		if err != nil {
			continue
		}
		ef, err := elf.Open(real)
		if err != nil {
			continue
		}
		defer ef.Close()
		syms, err := ef.DynamicSymbols()
		if err != nil {
			tb.Fatal(err)
		}
		for _, s := range syms {
			if s.Name != symbol || elf.ST_TYPE(s.Info) != elf.STT_FUNC {
				continue
			}
			for _, p := range ef.Progs {
				if p.Type == elf.PT_LOAD && p.Flags&elf.PF_X != 0 && s.Value >= p.Vaddr && s.Value < p.Vaddr+p.Memsz {
					return real, s.Value - p.Vaddr + p.Off
				}
			}
		}
		tb.Fatalf("symbol %q not found in %s", symbol, real)
	}
	tb.Skip("needs a C library to place uprobes on: none found")
	return "", 0
}
