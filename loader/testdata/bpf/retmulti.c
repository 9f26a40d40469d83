//go:build ignore

/* A uretprobe.multi program: a RETURN probe. On the target's main.hit(i),
 * which returns 2i+1 in RAX (Go's register ABI), it must see the return
 * value, never the argument. The test retargets "target" to the binary
 * (AttachTo), as an agent that only knows the path at run time does. */
#include "common.h"

SEC("uretprobe.multi/target:main.hit")
int BPF_KRETPROBE(hit_return)
{
	add(RETSUM, PT_REGS_RC(ctx));
	add(RETS, 1);
	return 0;
}
