package elfscan

import (
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

func ret() asm.Instructions {
	return asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}
}

func prog(insns ...asm.Instruction) asm.Instructions {
	return append(asm.Instructions(insns), ret()...)
}

func TestInstructions(t *testing.T) {
	// kind of finding: r reads user memory, s takes user stacks, c makes tail calls.
	const (
		none = ""
		r    = "r"
		s    = "s"
		rs   = "rs"
		c    = "c"
	)
	tests := []struct {
		name  string
		insns asm.Instructions
		want  string
	}{
		{"no helpers", ret(), none},
		{"map lookup only", prog(asm.FnMapLookupElem.Call()), none},
		{"kernel read only", prog(asm.FnProbeReadKernel.Call(), asm.FnProbeReadKernelStr.Call()), none},
		{"probe_read_user", prog(asm.FnProbeReadUser.Call()), r},
		{"probe_read_user_str", prog(asm.FnProbeReadUserStr.Call()), r},
		{"legacy probe_read", prog(asm.FnProbeRead.Call()), r},
		{"legacy probe_read_str", prog(asm.FnProbeReadStr.Call()), r},
		{"copy_from_user", prog(asm.FnCopyFromUser.Call()), r},
		{"copy_from_user_task", prog(asm.FnCopyFromUserTask.Call()), r},
		{"get_stack kernel flags", prog(asm.Mov.Imm(asm.R4, 0), asm.FnGetStack.Call()), none},
		{"get_stack user stack", prog(asm.Mov.Imm(asm.R4, 1<<8), asm.FnGetStack.Call()), s},
		{"get_stack user stack 32-bit mov", prog(asm.Mov.Imm32(asm.R4, 1<<8|1<<9), asm.FnGetStack.Call()), s},
		{"get_stack flags from a register", prog(asm.Mov.Reg(asm.R4, asm.R6), asm.FnGetStack.Call()), rs},
		{"get_stack flags never set", prog(asm.FnGetStack.Call()), rs},
		{"get_stack flags set before a call", prog(asm.Mov.Imm(asm.R4, 0), asm.FnKtimeGetNs.Call(), asm.FnGetStack.Call()), rs},
		{"get_stackid kernel", prog(asm.Mov.Imm(asm.R3, 0), asm.FnGetStackid.Call()), none},
		{"get_stackid user", prog(asm.Mov.Imm(asm.R3, 1<<8), asm.FnGetStackid.Call()), s},
		{"get_stackid flags in R4 do not count", prog(asm.Mov.Imm(asm.R3, 0), asm.Mov.Imm(asm.R4, 1<<8), asm.FnGetStackid.Call()), none},
		{"get_stack flags joined from a branch", asm.Instructions{
			asm.Mov.Imm(asm.R4, 0),
			asm.JEq.Imm(asm.R1, 0, "call"),
			asm.Mov.Imm(asm.R4, 1<<8),
			asm.FnGetStack.Call().WithSymbol("call"),
			asm.Mov.Imm(asm.R0, 0),
			asm.Return(),
		}, rs},
		{"get_stack flags joined by raw offset", asm.Instructions{
			asm.Mov.Imm(asm.R4, 1<<8),
			{OpCode: asm.OpCode(asm.JumpClass).SetJumpOp(asm.JEq).SetSource(asm.ImmSource), Dst: asm.R1, Offset: 1},
			asm.Mov.Imm(asm.R4, 0),
			asm.FnGetStack.Call(),
			asm.Mov.Imm(asm.R0, 0),
			asm.Return(),
		}, rs},
		{"get_task_stack user", prog(asm.Mov.Imm(asm.R4, 1<<8), asm.FnGetTaskStack.Call()), s},
		{"get_stack constant via ld_imm64", prog(asm.LoadImm(asm.R4, 0, asm.DWord), asm.FnGetStack.Call()), none},
		{"tail call", prog(asm.FnTailCall.Call()), c},
		{"user stack and probe read", prog(asm.Mov.Imm(asm.R3, 1<<8), asm.FnGetStackid.Call(), asm.FnProbeReadUser.Call()), rs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Instructions(tt.insns, nil)
			got := ""
			if res.ReadsUserMemory {
				got += r
			}
			if res.ReadsUserStacks {
				got += s
			}
			if res.TailCalls {
				got += c
			}
			if got != tt.want {
				t.Errorf("kinds = %q, want %q (reasons %q)", got, tt.want, res.Reasons)
			}
			if got != "" && len(res.Reasons) == 0 {
				t.Error("a finding without a reason")
			}
		})
	}
}

// TestSubprograms follows bpf-to-bpf calls into the same stream, into
// another program's stream, and treats unknown callees as reading.
func TestSubprograms(t *testing.T) {
	sub := asm.Instructions{
		asm.FnProbeReadUser.Call().WithSymbol("reader"),
		asm.Return(),
	}
	clean := asm.Instructions{
		asm.Mov.Imm(asm.R0, 0).WithSymbol("clean"),
		asm.Return(),
	}
	main := func(callee string) asm.Instructions {
		return asm.Instructions{
			asm.Call.Label(callee).WithSymbol("main"),
			asm.Mov.Imm(asm.R0, 0),
			asm.Return(),
		}
	}
	inStream := append(main("reader"), sub...)
	if res := Instructions(inStream, nil); !res.ReadsUserMemory {
		t.Errorf("subprogram in the same stream not scanned: %+v", res)
	}
	cleanStream := append(main("clean"), clean...)
	if res := Instructions(cleanStream, nil); res.ReadsUserMemory {
		t.Errorf("clean subprogram reported as reading: %+v", res)
	}
	others := map[string]*ebpf.ProgramSpec{
		"reader": {Name: "reader", Instructions: sub},
		"clean":  {Name: "clean", Instructions: clean},
	}
	if res := Program(&ebpf.ProgramSpec{Name: "main", Instructions: main("reader")}, others); !res.ReadsUserMemory {
		t.Errorf("callee in another spec not scanned: %+v", res)
	}
	if res := Program(&ebpf.ProgramSpec{Name: "main", Instructions: main("clean")}, others); res.ReadsUserMemory {
		t.Errorf("clean callee in another spec reported as reading: %+v", res)
	}
	if res := Program(&ebpf.ProgramSpec{Name: "main", Instructions: main("missing")}, others); !res.ReadsUserMemory {
		t.Errorf("unknown callee not treated as reading: %+v", res)
	}
	// A callback whose address is loaded (bpf_loop, bpf_for_each_map_elem)
	// is scanned like a callee, wherever it lives.
	loop := func(callback string) asm.Instructions {
		return asm.Instructions{
			asm.Mov.Imm(asm.R1, 4).WithSymbol("main"),
			asm.Instruction{OpCode: asm.LoadImmOp(asm.DWord), Dst: asm.R2, Src: asm.PseudoFunc, Constant: -1}.WithReference(callback),
			asm.Mov.Imm(asm.R3, 0),
			asm.Mov.Imm(asm.R4, 0),
			asm.FnLoop.Call(),
			asm.Return(),
		}
	}
	if res := Program(&ebpf.ProgramSpec{Name: "main", Instructions: loop("reader")}, others); !res.ReadsUserMemory {
		t.Errorf("callback in another spec not scanned: %+v", res)
	}
	if res := Program(&ebpf.ProgramSpec{Name: "main", Instructions: loop("clean")}, others); res.ReadsUserMemory {
		t.Errorf("clean callback in another spec reported as reading: %+v", res)
	}
	// Recursion terminates.
	rec := asm.Instructions{asm.Call.Label("main").WithSymbol("main"), asm.Return()}
	if res := Instructions(rec, nil); res.ReadsUserMemory {
		t.Errorf("self-recursive clean program reported as reading: %+v", res)
	}
	if res := Program(nil, nil); !res.ReadsUserMemory || !res.TailCalls {
		t.Error("nil spec must count as reading and tail-calling (unknown)")
	}
}
