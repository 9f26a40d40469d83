//go:build linux && amd64

package main

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// counters is an array map of 8 u64 counters the lab's programs add to.
func counters() (*ebpf.Map, error) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "lab_counts", Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 8})
	if err != nil {
		return nil, fmt.Errorf("create counter map: %w", err)
	}
	return m, nil
}

// count reads counter key of m (0 when unreadable).
func count(m *ebpf.Map, key uint32) uint64 {
	var v uint64
	if err := m.Lookup(key, &v); err != nil {
		return 0
	}
	return v
}

// counterSpec is a program of type typ that adds 1 to counter key of m,
// only for process tgid when tgid is not 0. Program types and attach types
// differ per mechanism; the instructions do not read the context, so one
// body serves fentry, fexit, kprobe, kretprobe and uprobe alike.
func counterSpec(name string, typ ebpf.ProgramType, at ebpf.AttachType, attachTo string, m *ebpf.Map, key int32, tgid int) *ebpf.ProgramSpec {
	insns := asm.Instructions{asm.Mov.Imm(asm.R6, 0)}
	if tgid != 0 {
		insns = append(insns,
			asm.FnGetCurrentPidTgid.Call(),
			asm.RSh.Imm(asm.R0, 32),
			asm.JNE.Imm(asm.R0, int32(tgid), "out"),
		)
	}
	insns = append(insns,
		asm.StoreImm(asm.R10, -4, int64(key), asm.Word),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, -4),
		asm.LoadMapPtr(asm.R1, m.FD()),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("out"),
		asm.Return(),
	)
	return &ebpf.ProgramSpec{
		Name:         name,
		Type:         typ,
		AttachType:   at,
		AttachTo:     attachTo,
		License:      "GPL",
		Instructions: insns,
	}
}

// counterProg loads counterSpec.
func counterProg(name string, typ ebpf.ProgramType, at ebpf.AttachType, attachTo string, m *ebpf.Map, key int32, tgid int) (*ebpf.Program, error) {
	p, err := ebpf.NewProgram(counterSpec(name, typ, at, attachTo, m, key, tgid))
	if err != nil {
		return nil, fmt.Errorf("load %s program %s: %w", typ, name, err)
	}
	return p, nil
}
