package probe

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
)

// dataSymbolMarker is a data symbol every kernel has (init/init_task.c):
// kallsyms lists it exactly when it lists data symbols
// (CONFIG_KALLSYMS_ALL). Section markers such as __start_rodata are listed
// with data types either way, so they prove nothing.
const dataSymbolMarker = "init_task"

// ksymNameLen is the largest symbol name the lookup program takes (with its
// NUL); KSYM_NAME_LEN is 512 since 6.1, 128 before, and every name the
// catalog asks for is far shorter.
const ksymNameLen = 128

// errLongSymbol is returned by symbolLookup.has for a name the lookup
// program cannot take.
var errLongSymbol = errors.New("symbol name too long for the lookup program")

// symbolLookup asks the running kernel whether it has a symbol, through the
// kernel's own kallsyms_lookup_name. The helper reports a symbol whose
// address is 0 as missing (it returns -ENOENT when the lookup yields 0):
// on x86-64 that is the per-CPU variable at offset 0 (fixed_percpu_data
// in the Debian 6.1 and 6.12 guests). No catalog evidence is a per-CPU variable; a fact about
// one must not be looked up here.
//
// It goes through a BPF_PROG_TYPE_SYSCALL program (5.14+)
// calling bpf_kallsyms_lookup_name (5.16+, 9ff0d2e0d7ac "bpf: Add
// bpf_kallsyms_lookup_name helper"), run with BPF_PROG_RUN. It answers
// what /proc/kallsyms would (the same table: vmlinux and module symbols,
// data symbols only with CONFIG_KALLSYMS_ALL) in microseconds per name,
// where reading /proc/kallsyms costs the kernel tens of milliseconds to
// format: the absence of one symbol means reading all of it.
type symbolLookup struct {
	prog *ebpf.Program
}

// newSymbolLookup loads the lookup program. It fails, with an error
// matching ebpf.ErrNotSupported where the kernel lacks the program type
// (5.10 rejects it with a bare EINVAL, which cilium/ebpf's feature probe
// turns into ErrNotSupported), with the verifier's "invalid func" where
// it lacks the helper (5.14, 5.15), and with a permission error where the
// caller may not see kernel addresses (bpf_dump_raw_ok).
func newSymbolLookup() (*symbolLookup, error) {
	if err := features.HaveProgramType(ebpf.Syscall); err != nil {
		return nil, fmt.Errorf("load kallsyms lookup program: %w", err)
	}
	insns := asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)}
	// The context is 8 bytes of result, then the name, NUL-padded. The
	// helper takes the name from the stack (it may not read the context
	// directly), so copy it there.
	for off := 0; off < ksymNameLen; off += 8 {
		insns = append(insns,
			asm.LoadMem(asm.R7, asm.R6, int16(8+off), asm.DWord),
			asm.StoreMem(asm.R10, int16(-ksymNameLen-8+off), asm.R7, asm.DWord))
	}
	insns = append(insns,
		asm.Mov.Imm(asm.R7, 0),
		asm.StoreMem(asm.R10, -8, asm.R7, asm.DWord),
		asm.Mov.Reg(asm.R1, asm.R10),
		asm.Add.Imm(asm.R1, -ksymNameLen-8),
		asm.Mov.Imm(asm.R2, ksymNameLen),
		asm.Mov.Imm(asm.R3, 0),
		asm.Mov.Reg(asm.R4, asm.R10),
		asm.Add.Imm(asm.R4, -8),
		asm.FnKallsymsLookupName.Call(),
		asm.LoadMem(asm.R7, asm.R10, -8, asm.DWord),
		asm.StoreMem(asm.R6, 0, asm.R7, asm.DWord),
		asm.Return(),
	)
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "safebpf_ksym",
		Type:         ebpf.Syscall,
		Flags:        bpfFSleepable, // "Syscall programs can only be sleepable"
		License:      "GPL",
		Instructions: insns,
	})
	if err != nil {
		return nil, fmt.Errorf("load kallsyms lookup program: %w", err)
	}
	return &symbolLookup{prog: prog}, nil
}

// bpfFSleepable is BPF_F_SLEEPABLE (include/uapi/linux/bpf.h).
const bpfFSleepable = 1 << 4

// has reports whether the kernel has the symbol name, and its address
// (0 where kernel addresses are hidden).
func (s *symbolLookup) has(name string) (bool, uint64, error) {
	if len(name) >= ksymNameLen {
		return false, 0, fmt.Errorf("%q: %w", name, errLongSymbol)
	}
	ctx := make([]byte, 8+ksymNameLen)
	copy(ctx[8:], name)
	out := make([]byte, len(ctx))
	ret, err := s.prog.Run(&ebpf.RunOptions{Context: ctx, ContextOut: out})
	if err != nil {
		return false, 0, fmt.Errorf("look up %s: %w", name, err)
	}
	switch int32(ret) {
	case 0:
		return true, binary.NativeEndian.Uint64(out[:8]), nil
	case -2: // -ENOENT
		return false, 0, nil
	}
	return false, 0, fmt.Errorf("look up %s: bpf_kallsyms_lookup_name returned %d", name, int32(ret))
}

func (s *symbolLookup) close() { s.prog.Close() }

// lookupKallsyms answers, for each of names, whether the running kernel's
// kallsyms has it, and whether kallsyms lists data symbols at all, without
// reading /proc/kallsyms (see symbolLookup).
func lookupKallsyms(names []string) (Kallsyms, error) {
	s, err := newSymbolLookup()
	if err != nil {
		return Kallsyms{}, err
	}
	defer s.close()
	k := Kallsyms{Readable: true, Symbols: make(map[string]bool, len(names))}
	if k.DataSymbols, _, err = s.has(dataSymbolMarker); err != nil {
		return Kallsyms{}, err
	}
	for _, n := range names {
		found, _, err := s.has(n)
		if err != nil {
			return Kallsyms{}, err
		}
		k.Symbols[n] = found
	}
	return k, nil
}
