package loader

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/safebpf/safebpf/internal/boundedio"
)

// inflateBSS returns obj with its .bss section claiming size bytes: a few
// hundred bytes of ELF that ask for gigabytes of zeroes.
func inflateBSS(tb testing.TB, obj []byte, size uint64) []byte {
	return inflate(tb, obj, ".bss", size)
}

// inflate returns obj with section name claiming size bytes.
func inflate(tb testing.TB, obj []byte, name string, size uint64) []byte {
	tb.Helper()
	f, err := elf.NewFile(bytes.NewReader(obj))
	if err != nil {
		tb.Fatal(err)
	}
	var shoff uint64
	var shentsize uint16
	r := bytes.NewReader(obj)
	var hdr elf.Header64
	if err := binary.Read(r, f.ByteOrder, &hdr); err != nil {
		tb.Fatal(err)
	}
	shoff, shentsize = hdr.Shoff, hdr.Shentsize
	for i, s := range f.Sections {
		if s.Name == name {
			out := bytes.Clone(obj)
			off := shoff + uint64(i)*uint64(shentsize) + 32 // Elf64_Shdr.sh_size
			f.ByteOrder.PutUint64(out[off:], size)
			return out
		}
	}
	tb.Fatalf("no %s section", name)
	return nil
}

// TestParseObjectBounds holds ELF parsing to issue 12's finding 5: a
// crafted object must not make the planner allocate what its headers
// claim, and a file larger than MaxObjectSize is refused before reading.
func TestParseObjectBounds(t *testing.T) {
	obj, err := os.ReadFile("../examples/readline/readline_x86_bpfel.o")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseObject(obj); err != nil {
		t.Fatalf("ParseObject(readline example) = %v", err)
	}
	bomb := inflateBSS(t, obj, 0xF000_0000) // 3.75 GiB of .bss
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err = ParseObject(bomb)
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Errorf("parsing a %d-byte object claiming a 3.75 GiB .bss allocated %d MiB", len(bomb), grew>>20)
	}
	if !errors.Is(err, boundedio.ErrTooLarge) || !strings.Contains(err.Error(), ".bss") {
		t.Errorf("ParseObject(.bss bomb) = %v; want ErrTooLarge naming .bss", err)
	}

	// A section with contents claiming more than the file holds.
	var progSec string
	if f, err := elf.NewFile(bytes.NewReader(obj)); err == nil {
		for _, s := range f.Sections {
			if s.Type == elf.SHT_PROGBITS && s.Flags&elf.SHF_EXECINSTR != 0 && s.Size > 0 {
				progSec = s.Name
			}
		}
	}
	if _, err := ParseObject(inflate(t, obj, progSec, 1<<40)); err == nil || !strings.Contains(err.Error(), "past the end") {
		t.Errorf("ParseObject(%s claiming 1 TiB) = %v; want an error: past the end", progSec, err)
	}

	dir := t.TempDir()
	sparse := dir + "/sparse.o"
	fh, err := os.Create(sparse)
	if err != nil {
		t.Fatal(err)
	}
	fh.Write(obj)
	if err := fh.Truncate(MaxObjectSize + 1); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	if _, err := ReadObject(sparse); !errors.Is(err, boundedio.ErrTooLarge) {
		t.Errorf("ReadObject(sparse file over the limit) = %v; want ErrTooLarge", err)
	}
	if _, err := ReadObject("/dev/zero"); !errors.Is(err, boundedio.ErrNotRegular) {
		t.Errorf("ReadObject(/dev/zero) = %v; want ErrNotRegular", err)
	}
	if spec, err := ReadObject("../examples/readline/readline_x86_bpfel.o"); err != nil || len(spec.Programs) == 0 {
		t.Errorf("ReadObject(readline example) = %v, %v", spec, err)
	}
}
