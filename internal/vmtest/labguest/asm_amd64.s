#include "textflag.h"

// func forkExit() (pid int64, errno int64)
//
// fork(2) (clone with SIGCHLD, no CLONE_VM: a real copy of the address
// space, as the scenario-3 victim needs) whose child calls exit_group(0)
// at once, without running any Go code.
TEXT ·forkExit(SB),NOSPLIT,$0-16
	MOVQ $56, AX   // SYS_clone
	MOVQ $17, DI   // flags: SIGCHLD
	XORQ SI, SI    // newsp: keep the stack (copy-on-write)
	XORQ DX, DX    // parent_tid
	XORQ R10, R10  // child_tid
	XORQ R8, R8    // tls
	SYSCALL
	CMPQ AX, $0
	JNE parent
	MOVQ $231, AX  // SYS_exit_group
	XORQ DI, DI
	SYSCALL
parent:
	CMPQ AX, $0xfffffffffffff001
	JLS ok
	NEGQ AX
	MOVQ $-1, pid+0(FP)
	MOVQ AX, errno+8(FP)
	RET
ok:
	MOVQ AX, pid+0(FP)
	MOVQ $0, errno+8(FP)
	RET

// func uretTarget(x int64) int64
//
// The function scenario 4 puts a uretprobe on: a leaf without a Go frame,
// so the return address the uretprobe replaces is never seen by the Go
// stack machinery.
TEXT ·uretTarget(SB),NOSPLIT,$0-16
	MOVQ x+0(FP), AX
	INCQ AX
	MOVQ AX, ret+8(FP)
	RET
