//go:build ignore

/* klockstat-style: several probes, one on a symbol that is not there. */
#include "common.h"

SEC("uprobe/target:main.hit")
int BPF_KPROBE(hit_entry)
{
	add(CALLS, 1);
	return 0;
}

SEC("uprobe/target:main.hitAlt")
int BPF_KPROBE(hit_alt_entry)
{
	add(EXTRA, 1);
	return 0;
}

SEC("uprobe/target:main.safebpf_no_such_symbol")
int BPF_KPROBE(missing_entry)
{
	add(RETS, 1);
	return 0;
}

SEC("kprobe/__x64_sys_getpid")
int BPF_KPROBE(getpid_entry)
{
	if (mine())
		add(ARGSUM, 1);
	return 0;
}

SEC("kprobe/safebpf_no_such_function")
int BPF_KPROBE(missing_function)
{
	add(RETSUM, 1);
	return 0;
}
