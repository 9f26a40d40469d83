//go:build ignore

// profiler: sample user stacks on a perf event.
//
// Asking for user stacks (BPF_F_USER_STACK) makes the kernel copy user
// memory in NMI or IRQ context: on 5.19 before 5.19.14 that can deadlock
// (nmi-user-stack-deadlock), and safebpf refuses it there. The program
// reads no other user memory, so 6.0 and later are fine.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define TASK_COMM_LEN 16
#define MAX_DEPTH 127

// Only this process (tgid) when non-zero; set before loading.
const volatile __u32 target_tgid = 0;

struct key {
	__u32 pid;
	__s32 user_stack_id;
	__u8 comm[TASK_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 16384);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, MAX_DEPTH * sizeof(__u64));
} stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct key);
	__type(value, __u64); // samples
} counts SEC(".maps");

SEC("perf_event")
int profile(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	if (tgid == 0) // idle
		return 0;
	if (target_tgid && tgid != target_tgid)
		return 0;

	struct key k = {};
	k.pid = tgid;
	k.user_stack_id = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
	bpf_get_current_comm(&k.comm, sizeof(k.comm));

	__u64 one = 1;
	__u64 *n = bpf_map_lookup_elem(&counts, &k);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&counts, &k, &one, BPF_NOEXIST);
	return 0;
}
