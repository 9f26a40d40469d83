package loader

import (
	"bytes"
	"debug/elf"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/safebpf/safebpf/internal/boundedio"
)

// MaxObjectSize bounds an ELF object read by [ReadObject] or
// [ParseObject]: its size, and the zero-filled memory its SHT_NOBITS
// sections (.bss) claim, which cilium/ebpf allocates whole. BPF objects
// are kilobytes to a few MiB.
const MaxObjectSize = 256 << 20

// ReadObject reads the BPF ELF object at path into a CollectionSpec, as
// ebpf.LoadCollectionSpec does, but refuses anything that is not a regular
// file (at once, without blocking: a FIFO, /dev/zero) and any object larger
// than [MaxObjectSize], with an error matching boundedio.ErrNotRegular or
// boundedio.ErrTooLarge; see [ParseObject] for the checks on its content.
func ReadObject(path string) (*ebpf.CollectionSpec, error) {
	b, err := boundedio.ReadFile(path, MaxObjectSize, "ELF object")
	if err != nil {
		return nil, err
	}
	spec, err := parseObject(b, MaxObjectSize)
	if err != nil {
		return nil, fmt.Errorf("read ELF object %s: %w", path, err)
	}
	return spec, nil
}

// ParseObject parses a BPF ELF object held in memory, as
// ebpf.LoadCollectionSpecFromReader does, after checking what cilium/ebpf
// would otherwise allocate on the headers' word: the object must be at
// most [MaxObjectSize] bytes, every section that has contents must lie
// inside it, and its SHT_NOBITS sections must claim at most MaxObjectSize
// bytes together. A 4 KiB object claiming a 3.75 GiB .bss made planning
// allocate 3.75 GiB before.
func ParseObject(b []byte) (*ebpf.CollectionSpec, error) {
	return parseObject(b, MaxObjectSize)
}

func parseObject(b []byte, limit int64) (spec *ebpf.CollectionSpec, err error) {
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("ELF object of %s is larger than the %s limit: %w",
			boundedio.FormatSize(int64(len(b))), boundedio.FormatSize(limit), boundedio.ErrTooLarge)
	}
	defer func() {
		// debug/elf and the ELF reader must never take the process down
		// on hostile input.
		if r := recover(); r != nil {
			spec, err = nil, fmt.Errorf("parse ELF object: %v", r)
		}
	}()
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("parse ELF object: %w", err)
	}
	var zeroes uint64
	for _, s := range f.Sections {
		switch s.Type {
		case elf.SHT_NULL:
		case elf.SHT_NOBITS:
			if s.Size > uint64(limit)-zeroes {
				return nil, fmt.Errorf("parse ELF object: section %s claims %s of zeroes, more than the %s limit for an ELF object: %w",
					s.Name, boundedio.FormatSize(int64(min(s.Size, 1<<62))), boundedio.FormatSize(limit), boundedio.ErrTooLarge)
			}
			zeroes += s.Size
		default:
			if s.Offset > uint64(len(b)) || s.Size > uint64(len(b))-s.Offset {
				return nil, fmt.Errorf("parse ELF object: section %s (offset %d, size %d) extends past the end of the %d-byte object",
					s.Name, s.Offset, s.Size, len(b))
			}
		}
	}
	return ebpf.LoadCollectionSpecFromReader(bytes.NewReader(b))
}
