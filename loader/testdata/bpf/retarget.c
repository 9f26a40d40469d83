//go:build ignore

/* libbpf-tools funclatency's placeholder pattern: the programs name dummy
 * functions; user space retargets them (AttachTo) before loading. */
#include "common.h"

SEC("fentry/dummy_fentry")
int BPF_PROG(dummy_fentry)
{
	if (mine())
		add(CALLS, 1);
	return 0;
}

SEC("kprobe/dummy_kprobe")
int BPF_KPROBE(dummy_kprobe)
{
	if (mine())
		add(CALLS, 1);
	return 0;
}

/* The target is __x64_sys_getpgid(const struct pt_regs *): one argument,
 * then the return value. */
SEC("fexit/dummy_fexit")
int BPF_PROG(dummy_fexit, void *regs, long ret)
{
	if (!mine())
		return 0;
	add(RETSUM, ret);
	add(RETS, 1);
	return 0;
}

SEC("kretprobe/dummy_kretprobe")
int BPF_KRETPROBE(dummy_kretprobe, long ret)
{
	if (!mine())
		return 0;
	add(RETSUM, ret);
	add(RETS, 1);
	return 0;
}
