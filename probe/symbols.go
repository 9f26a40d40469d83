package probe

import (
	"bytes"
	"fmt"

	"github.com/cilium/ebpf/btf"

	"github.com/safebpf/safebpf/internal/kcode"
	"github.com/safebpf/safebpf/internal/kernel"
)

// kernelSymbols answers Detect's symbol facts (names) and whether kallsyms
// lists data symbols, reading /proc/kallsyms at most once: formatting it
// costs the kernel tens of milliseconds (~57 ms for 122,000 lines on this
// project's machine), whoever asks.
//
//   - When the machine-code witness will need the symbol table (call facts
//     asked, /proc/kcore readable), kallsyms is read once and both the
//     answers and the table come from that read (the table is handed to
//     the witness's cache).
//   - Otherwise, on the running kernel, the names are looked up through
//     the kernel's own kallsyms_lookup_name (symbolLookup, 5.16+): nothing
//     is read.
//   - Otherwise kallsyms is scanned, stopping once every name and a data
//     symbol have appeared.
//
// live is false when h replays another machine's files (Options.Root).
// The notes say what could not be done.
func kernelSymbols(h *kernel.Host, names []string, facts []Fact, live bool) (Kallsyms, []string) {
	k, notes := readKernelSymbols(h, names, facts, live)
	if len(k.Symbols) == 0 {
		k.Symbols = nil // nothing asked: no map, as a cached detection has
	}
	return k, notes
}

func readKernelSymbols(h *kernel.Host, names []string, facts []Fact, live bool) (Kallsyms, []string) {
	var notes []string
	if needsSymbolTable(h, facts) {
		buf, err := h.ReadKallsyms()
		if err == nil {
			scan, err := kernel.ScanKallsyms(bytes.NewReader(buf), names)
			if err == nil {
				witnessCached(h, func() **witnessValue[*kcode.Symbols] { return &witnessCache.syms }, func() (*kcode.Symbols, error) {
					return kcode.ReadSymbols(bytes.NewReader(buf))
				})
				return kallsymsFromScan(scan), nil
			}
		}
		notes = append(notes, fmt.Sprintf("read kallsyms for the machine-code witness: %v", err))
	}
	if live && kernel.Privileged() {
		k, err := lookupKallsyms(names)
		if err == nil {
			return k, notes
		}
		// 5.10 has neither the helper nor the program type: say nothing
		// and scan.
	}
	scan, err := h.Kallsyms(names)
	if err != nil {
		return Kallsyms{}, append(notes, err.Error())
	}
	return kallsymsFromScan(scan), notes
}

// needsSymbolTable reports whether the machine-code witness will read the
// kernel's symbol table: a call fact is asked for and /proc/kcore can be
// opened.
func needsSymbolTable(h *kernel.Host, facts []Fact) bool {
	call := false
	for _, f := range facts {
		call = call || f.Kind == FactCall
	}
	if !call {
		return false
	}
	_, closeCore, why := openKcore(h)
	if why != "" {
		return false
	}
	closeCore()
	return true
}

// shareBTF makes the BTF witness of h use cache's parse of the running
// kernel's BTF (the trial loads' parse) instead of parsing it again. It
// waits for the parse.
func shareBTF(h *kernel.Host, cache *btf.Cache) {
	witnessCached(h, func() **witnessValue[btfSpec] { return &witnessCache.btf }, func() (btfSpec, error) {
		spec, err := cache.Kernel()
		if err != nil {
			return loadBTF(h)
		}
		return btfSpec{spec, "/sys/kernel/btf/vmlinux"}, nil
	})
}
