//go:build linux && (386 || amd64)

package main

import (
	"debug/elf"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseMaps(t *testing.T) {
	in := `00400000-00452000 r-xp 00000000 08:02 173521      /usr/bin/dbus-daemon
00651000-00652000 r--p 00051000 08:02 173521      /usr/bin/dbus-daemon
7f2f9e2a0000-7f2f9e2b0000 r-xp 00002000 08:02 1234 /usr/lib/my lib.so
7ffc0b7e1000-7ffc0b802000 rw-p 00000000 00:00 0          [stack]
7ffc0b9fd000-7ffc0b9ff000 r-xp 00000000 00:00 0          [vdso]
`
	want := []mapping{
		{start: 0x400000, end: 0x452000, offset: 0, path: "/usr/bin/dbus-daemon"},
		{start: 0x7f2f9e2a0000, end: 0x7f2f9e2b0000, offset: 0x2000, path: "/usr/lib/my lib.so"},
	}
	if diff := cmp.Diff(want, parseMaps(in), cmp.AllowUnexported(mapping{})); diff != "" {
		t.Errorf("parseMaps mismatch (-want +got):\n%s", diff)
	}
}

//go:noinline
func symbolizeTarget() uintptr {
	pc, _, _, _ := runtime.Caller(0)
	return pc
}

// TestSymbolizeSelf resolves an address inside this test binary through
// /proc/self/maps and the binary's ELF symbols, as the profiler does for
// sampled stacks.
func TestSymbolizeSelf(t *testing.T) {
	pc := symbolizeTarget()
	s := newSymbolizer("/proc")
	got := s.symbolize(uint32(os.Getpid()), uint64(pc))
	fn := runtime.FuncForPC(pc).Name()
	if !strings.HasPrefix(got, fn+"+0x") {
		t.Errorf("symbolize(%#x) = %q, want prefix %q", pc, got, fn+"+0x")
	}
	// An address mapped nowhere stays numeric.
	if got := s.symbolize(uint32(os.Getpid()), 0x10); got != "0x10" {
		t.Errorf("symbolize(0x10) = %q, want 0x10", got)
	}
	// A function pointer of another function names that function.
	pc2 := reflect.ValueOf(parseMaps).Pointer()
	if got, want := s.symbolize(uint32(os.Getpid()), uint64(pc2)), runtime.FuncForPC(pc2).Name()+"+0x0"; got != want {
		t.Errorf("symbolize(parseMaps) = %q, want %q", got, want)
	}
}

func TestSymbolTableLookup(t *testing.T) {
	tab := &symbolTable{
		syms: []elf.Symbol{
			{Name: "a", Value: 0x1000, Size: 0x10},
			{Name: "b", Value: 0x1020, Size: 0},
			{Name: "c", Value: 0x2000, Size: 0x100},
		},
		loads: []elf.ProgHeader{{Type: elf.PT_LOAD, Off: 0, Vaddr: 0x400000, Filesz: 0x3000}},
	}
	tests := []struct {
		v    uint64
		want string
	}{
		{0x0fff, "none"},
		{0x1000, "a+0x0"},
		{0x100f, "a+0xf"},
		{0x1010, "none"}, // past a's size, before b
		{0x1fff, "b+0xfdf"},
		{0x20ff, "c+0xff"},
		{0x2100, "none"},
	}
	for _, tt := range tests {
		got := "none"
		if name, off, ok := tab.lookup(tt.v); ok {
			got = fmt.Sprintf("%s+%#x", name, off)
		}
		if got != tt.want {
			t.Errorf("lookup(%#x) = %s, want %s", tt.v, got, tt.want)
		}
	}
	if v, ok := tab.vaddr(0x1234); !ok || v != 0x401234 {
		t.Errorf("vaddr(0x1234) = %#x, %v; want 0x401234, true", v, ok)
	}
	if _, ok := tab.vaddr(0x3000); ok {
		t.Error("vaddr(0x3000) found a segment past the file's load segment")
	}
}
