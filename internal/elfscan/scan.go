// Package elfscan analyses BPF programs without loading them: whether they
// may read user memory, and how. The loader feeds the answer to the planner
// (hazards that depend on program behaviour: nmi-user-read-deadlock for
// reads through copy_from_user_nofault, nmi-user-stack-deadlock for user
// stacks, fentry-tail-call-break for tail calls).
//
// The analysis is conservative: a stack helper whose flags cannot be read
// from the instructions counts as both reading user memory and taking user
// stacks; anything else that cannot be established (an unresolved
// bpf-to-bpf call, an indirect call, no program at all) counts as reading
// user memory and making tail calls.
package elfscan

import (
	"fmt"
	"strconv"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
)

// bpfFUserStack is BPF_F_USER_STACK (include/uapi/linux/bpf.h): the stack
// helpers walk the user stack, reading user memory.
const bpfFUserStack = 1 << 8

// Result is what the scan found about one program.
type Result struct {
	// ReadsUserMemory is true when the program (or a subprogram it calls)
	// reads user memory through bpf_probe_read_user*, the legacy
	// bpf_probe_read* or bpf_copy_from_user* (helpers or kfuncs), or when
	// that could not be ruled out.
	ReadsUserMemory bool
	// ReadsUserStacks is true when the program walks user stacks
	// (bpf_get_stack, bpf_get_stackid or bpf_get_task_stack with
	// BPF_F_USER_STACK), or when a stack helper's flags are not constant.
	ReadsUserStacks bool
	// TailCalls is true when the program calls bpf_tail_call, or when that
	// could not be ruled out.
	TailCalls bool
	// Reasons names each finding in instruction order, e.g.
	// "bpf_probe_read_user at insn 12", "bpf_get_stackid with
	// BPF_F_USER_STACK at insn 7", "bpf_tail_call at insn 20" or
	// "bpf_get_stack flags not constant at insn 30".
	// The text is not a stable interface.
	Reasons []string
}

// linuxTag is the platform tag cilium/ebpf ORs into Linux helper constants.
var linuxTag = uint32(asm.FnProbeRead) &^ 0xffff

func normalize(c int64) asm.BuiltinFunc {
	n := uint32(c)
	if n>>28 == 0 {
		n |= linuxTag
	}
	return asm.BuiltinFunc(n)
}

// userReaders are helpers that always read user memory (or may: the legacy
// bpf_probe_read reads either address space).
var userReaders = map[asm.BuiltinFunc]string{
	asm.FnProbeReadUser:    "bpf_probe_read_user",
	asm.FnProbeReadUserStr: "bpf_probe_read_user_str",
	asm.FnProbeRead:        "bpf_probe_read",
	asm.FnProbeReadStr:     "bpf_probe_read_str",
	asm.FnCopyFromUser:     "bpf_copy_from_user",
	asm.FnCopyFromUserTask: "bpf_copy_from_user_task",
}

// stackHelpers read user memory when their flags argument has
// BPF_F_USER_STACK; the value is the register holding the flags.
var stackHelpers = map[asm.BuiltinFunc]struct {
	name string
	reg  asm.Register
}{
	asm.FnGetStack:     {"bpf_get_stack", asm.R4},
	asm.FnGetStackid:   {"bpf_get_stackid", asm.R3},
	asm.FnGetTaskStack: {"bpf_get_task_stack", asm.R4},
}

// userKfuncs are kfuncs that read user memory, by name.
var userKfuncs = map[string]bool{
	"bpf_copy_from_user_str":             true,
	"bpf_copy_from_user_task_str":        true,
	"bpf_copy_from_user_dynptr":          true,
	"bpf_copy_from_user_str_dynptr":      true,
	"bpf_copy_from_user_task_dynptr":     true,
	"bpf_copy_from_user_task_str_dynptr": true,
	"bpf_probe_read_user_dynptr":         true,
	"bpf_probe_read_user_str_dynptr":     true,
}

// Program scans spec's instructions, including the bpf-to-bpf subprograms
// they call. Subprograms missing from spec's instruction stream are looked up
// by name in others (typically the other programs of the same
// CollectionSpec); a callee that cannot be found counts as reading user
// memory.
func Program(spec *ebpf.ProgramSpec, others map[string]*ebpf.ProgramSpec) Result {
	if spec == nil {
		return Result{ReadsUserMemory: true, TailCalls: true, Reasons: []string{"no program spec: unknown behaviour"}}
	}
	lookup := func(name string) (asm.Instructions, bool) {
		for _, o := range others {
			if o == nil {
				continue
			}
			if o.Name == name || o.Instructions.Name() == name {
				return o.Instructions, true
			}
			// The callee may sit inside another program's stream.
			if off, ok := symbolIndex(o.Instructions)[name]; ok {
				return o.Instructions[off:], true
			}
		}
		return nil, false
	}
	return Instructions(spec.Instructions, lookup)
}

// Instructions scans insns. lookup resolves a called function that is not
// part of insns; it may be nil.
func Instructions(insns asm.Instructions, lookup func(name string) (asm.Instructions, bool)) Result {
	var res Result
	seen := map[string]bool{}
	var scan func(insns asm.Instructions, where string)
	scan = func(insns asm.Instructions, where string) {
		// Built only when a finding needs them: most instructions are
		// neither calls nor jumps, and a program of thousands of
		// instructions must not cost thousands of formatted strings and
		// map entries that are never printed or read.
		var local map[string]int
		var targets map[int]bool
		for i := range insns {
			ins := &insns[i]
			if ins.OpCode.JumpOp() != asm.Call && !ins.IsLoadOfFunctionPointer() {
				continue // every case below is a call, or a callback's address
			}
			at := func() string { return "insn " + strconv.Itoa(i) + where }
			switch {
			case ins.IsBuiltinCall():
				fn := normalize(ins.Constant)
				if name, ok := userReaders[fn]; ok {
					res.reads(name + " at " + at())
					continue
				}
				if fn == asm.FnTailCall {
					res.tailCall("bpf_tail_call at " + at())
					continue
				}
				if h, ok := stackHelpers[fn]; ok {
					if targets == nil {
						targets = jumpTargets(insns)
					}
					flags, known := constantIn(insns, i, h.reg, targets)
					switch {
					case !known:
						why := fmt.Sprintf("%s flags not constant at %s", h.name, at())
						res.reads(why)
						res.userStacks(why)
					case flags&bpfFUserStack != 0:
						res.userStacks(fmt.Sprintf("%s with BPF_F_USER_STACK at %s", h.name, at()))
					}
				}
			case ins.IsKfuncCall():
				name := ins.Reference()
				if name == "" {
					if f := btf.FuncMetadata(ins); f != nil {
						name = f.Name
					}
				}
				if userKfuncs[name] {
					res.reads(fmt.Sprintf("kfunc %s at %s", name, at()))
				}
			case ins.IsFunctionReference():
				ref := ins.Reference()
				if ref == "" {
					// Resolved by offset within this stream: the callee's
					// instructions are part of insns and scanned anyway.
					if ins.Constant == -1 {
						res.unknown("unresolved bpf-to-bpf call at " + at())
					}
					continue
				}
				if local == nil {
					local = symbolIndex(insns)
				}
				if _, ok := local[ref]; ok || seen[ref] {
					continue
				}
				seen[ref] = true
				var callee asm.Instructions
				found := false
				if lookup != nil {
					callee, found = lookup(ref)
				}
				if !found {
					res.unknown(fmt.Sprintf("call to unknown function %s at %s", ref, at()))
					continue
				}
				scan(callee, " of "+ref)
			case ins.OpCode.JumpOp() == asm.Call && ins.Src != asm.R0 && !ins.IsFunctionCall() && !ins.IsKfuncCall():
				res.unknown("indirect call at " + at())
			}
		}
	}
	scan(insns, "")
	return res
}

func (r *Result) reads(reason string) {
	r.ReadsUserMemory = true
	r.Reasons = append(r.Reasons, reason)
}

func (r *Result) userStacks(reason string) {
	r.ReadsUserStacks = true
	if len(r.Reasons) == 0 || r.Reasons[len(r.Reasons)-1] != reason {
		r.Reasons = append(r.Reasons, reason)
	}
}

func (r *Result) tailCall(reason string) {
	r.TailCalls = true
	r.Reasons = append(r.Reasons, reason)
}

// unknown records behaviour the scan cannot see: it may read user memory
// and make tail calls.
func (r *Result) unknown(reason string) {
	r.ReadsUserMemory = true
	r.TailCalls = true
	r.Reasons = append(r.Reasons, reason)
}

func symbolIndex(insns asm.Instructions) map[string]int {
	m := map[string]int{}
	for i, ins := range insns {
		if s := ins.Symbol(); s != "" {
			m[s] = i
		}
	}
	return m
}

// jumpTargets returns the indexes of instructions that some jump lands on,
// whether the jump names a label (Reference) or carries a raw offset.
func jumpTargets(insns asm.Instructions) map[int]bool {
	raw := make([]int, len(insns)) // raw slot of each instruction
	byRaw := map[int]int{}
	slot := 0
	for i, ins := range insns {
		raw[i] = slot
		byRaw[slot] = i
		slot += int(ins.Size() / asm.InstructionSize)
	}
	sym := symbolIndex(insns)
	t := map[int]bool{}
	for i, ins := range insns {
		op := ins.OpCode.JumpOp()
		if ins.OpCode.Class().IsJump() && op != asm.Call && op != asm.Exit {
			if ref := ins.Reference(); ref != "" {
				if j, ok := sym[ref]; ok {
					t[j] = true
				}
				continue
			}
			off := int(ins.Offset)
			if ins.OpCode.Class() == asm.Jump32Class && op == asm.Ja {
				off = int(ins.Constant)
			}
			if j, ok := byRaw[raw[i]+1+off]; ok {
				t[j] = true
			}
		}
	}
	return t
}

// constantIn finds the value of reg just before insns[at], looking back
// within the basic block. known is false when the value is not a constant or
// flows in from elsewhere.
func constantIn(insns asm.Instructions, at int, reg asm.Register, targets map[int]bool) (value int64, known bool) {
	if targets[at] || insns[at].Symbol() != "" {
		return 0, false // control may reach the call from elsewhere
	}
	for i := at - 1; i >= 0; i-- {
		ins := insns[i]
		if ins.OpCode.Class().IsJump() {
			// A call clobbers R1-R5; any other jump ends the block.
			return 0, false
		}
		if ins.OpCode.Class() == asm.StXClass && ins.OpCode.Mode() == asm.AtomicMode && ins.Src == reg {
			return 0, false // an atomic fetch may write the source register
		}
		if ins.Dst == reg && writesDst(ins) {
			if ins.OpCode.IsDWordLoad() && ins.Src == asm.R0 {
				return ins.Constant, true
			}
			if ins.OpCode.Class().IsALU() && ins.OpCode.ALUOp() == asm.Mov && ins.OpCode.Source() == asm.ImmSource {
				if ins.OpCode.Class() == asm.ALUClass {
					return int64(uint32(ins.Constant)), true
				}
				return ins.Constant, true
			}
			return 0, false
		}
		if targets[i] || ins.Symbol() != "" {
			// Control may arrive here from elsewhere with another value.
			return 0, false
		}
	}
	return 0, false
}

func writesDst(ins asm.Instruction) bool {
	c := ins.OpCode.Class()
	switch {
	case c.IsALU():
		return true
	case c == asm.LdClass || c == asm.LdXClass:
		return true
	}
	return false
}
