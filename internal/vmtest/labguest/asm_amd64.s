#include "textflag.h"

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
