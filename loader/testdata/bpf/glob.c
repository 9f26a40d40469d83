//go:build ignore

/* Globs resolved as libbpf resolves them: a uprobe.multi pattern over the
 * binary's function symbols, a kprobe.multi pattern over
 * available_filter_functions. */
#include "common.h"

/* main.hit and main.hitAlt: RAX holds the argument at entry. */
SEC("uprobe.multi/target:main.hit*")
int BPF_KPROBE(hits_entry)
{
	add(CALLS, 1);
	add(ARGSUM, PT_REGS_RC(ctx));
	return 0;
}
