//go:build ignore

// latency: a log2 histogram of vfs_read latency.
//
// Entry is timed by fentry or its kprobe alternative, return by fexit or its
// kretprobe alternative. safebpf picks per kernel; when it has to use a
// kretprobe it may cap maxactive so returns are not silently missed.

#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define MAX_SLOTS 64

// Only this process (tgid) when non-zero; set before loading.
const volatile __u32 target_tgid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64);   // pid_tgid
	__type(value, __u64); // start time, ns
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_SLOTS);
	__type(key, __u32);
	__type(value, __u64); // calls whose latency in ns has this log2
} hist SEC(".maps");

static __always_inline int enter(void)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (target_tgid && (__u32)(id >> 32) != target_tgid)
		return 0;
	__u64 ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&start, &id, &ts, BPF_ANY);
	return 0;
}

static __always_inline __u32 log2l(__u64 v)
{
	__u32 r = 0;
	// Bounded loop the verifier unrolls: at most 63 shifts.
	for (int i = 0; i < 63 && v > 1; i++) {
		v >>= 1;
		r++;
	}
	return r;
}

static __always_inline int leave(void)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 *ts = bpf_map_lookup_elem(&start, &id);
	if (!ts)
		return 0;
	__u64 delta = bpf_ktime_get_ns() - *ts;
	bpf_map_delete_elem(&start, &id);
	__u32 slot = log2l(delta);
	if (slot >= MAX_SLOTS)
		slot = MAX_SLOTS - 1;
	__u64 *count = bpf_map_lookup_elem(&hist, &slot);
	if (count)
		__sync_fetch_and_add(count, 1);
	return 0;
}

// ssize_t vfs_read(struct file *file, char __user *buf, size_t count, loff_t *pos)
SEC("fentry/vfs_read")
int BPF_PROG(latency_fentry)
{
	return enter();
}

SEC("kprobe/vfs_read")
int BPF_KPROBE(latency_kprobe)
{
	return enter();
}

SEC("fexit/vfs_read")
int BPF_PROG(latency_fexit)
{
	return leave();
}

SEC("kretprobe/vfs_read")
int BPF_KRETPROBE(latency_kretprobe)
{
	return leave();
}
