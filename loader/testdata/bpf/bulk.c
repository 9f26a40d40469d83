//go:build ignore

/* Batch tests: one program attached to many functions or symbols counts
 * every hit by its BPF cookie and by its instruction pointer, so the test
 * can tell that each target fired once, with its own cookie. The _ip
 * programs count by instruction pointer only, for kernels without
 * bpf_get_attach_cookie (before 5.15). The sections name no target: the
 * tests attach them with the batch calls, or give their targets in
 * CollectionOptions.Batches. */
#include "common.h"

struct counter {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u64);
};

struct counter by_cookie SEC(".maps");
struct counter by_ip SEC(".maps");

static __always_inline void bump(void *map, __u64 key)
{
	__u64 one = 1, *v = bpf_map_lookup_elem(map, &key);

	if (v) {
		__sync_fetch_and_add(v, 1);
		return;
	}
	if (bpf_map_update_elem(map, &key, &one, BPF_NOEXIST) == 0)
		return;
	/* Another CPU inserted it first. */
	v = bpf_map_lookup_elem(map, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("uprobe")
int BPF_KPROBE(bulk_uprobe)
{
	bump(&by_cookie, bpf_get_attach_cookie(ctx));
	bump(&by_ip, PT_REGS_IP(ctx));
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(bulk_uprobe_ip)
{
	bump(&by_ip, PT_REGS_IP(ctx));
	return 0;
}

SEC("kprobe")
int BPF_KPROBE(bulk_kprobe)
{
	if (!mine())
		return 0;
	bump(&by_cookie, bpf_get_attach_cookie(ctx));
	bump(&by_ip, PT_REGS_IP(ctx));
	return 0;
}

SEC("kprobe")
int BPF_KPROBE(bulk_kprobe_ip)
{
	if (!mine())
		return 0;
	bump(&by_ip, PT_REGS_IP(ctx));
	return 0;
}
