// Programs in the style of bcc's libbpf-tools (profile, offcputime,
// opensnoop) that read user memory in different ways, for
// TestClangObjects. Compiled by the test with clang -target bpf.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define MAX_STACK_DEPTH 127

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, MAX_STACK_DEPTH * sizeof(__u64));
	__uint(max_entries, 1024);
} stackmap SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} jmp_table SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} config SEC(".maps");

struct key_t {
	__u32 pid;
	__s32 user_stack_id;
	__s32 kern_stack_id;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct key_t);
	__type(value, __u64);
} counts SEC(".maps");

// profile: user and kernel stacks on a perf event, like libbpf-tools
// profile.bpf.c.
SEC("perf_event")
int do_perf_event(void *ctx)
{
	struct key_t key = {};
	__u64 one = 1;

	key.pid = bpf_get_current_pid_tgid() >> 32;
	key.user_stack_id = bpf_get_stackid(ctx, &stackmap, BPF_F_USER_STACK);
	key.kern_stack_id = bpf_get_stackid(ctx, &stackmap, 0);
	bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST);
	return 0;
}

// Kernel stacks only.
SEC("perf_event")
int kernel_stacks(void *ctx)
{
	struct key_t key = {};
	__u64 one = 1;

	key.kern_stack_id = bpf_get_stackid(ctx, &stackmap, 0);
	bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST);
	return 0;
}

// opensnoop: the file name from user memory.
SEC("tracepoint/syscalls/sys_enter_openat")
int tracepoint__syscalls__sys_enter_openat(struct { __u64 pad; long id; long dfd; const char *filename; } *ctx)
{
	char fname[64];

	bpf_probe_read_user_str(fname, sizeof(fname), ctx->filename);
	return fname[0] == '/';
}

// Stack flags taken from a map: not constant, so both kinds.
SEC("perf_event")
int configured_stacks(void *ctx)
{
	__u32 zero = 0;
	__u64 *flags = bpf_map_lookup_elem(&config, &zero);
	struct key_t key = {};
	__u64 one = 1;

	if (!flags)
		return 0;
	key.user_stack_id = bpf_get_stackid(ctx, &stackmap, *flags);
	bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST);
	return 0;
}

// A dispatcher that tail-calls.
SEC("kprobe/do_unlinkat")
int dispatch(void *ctx)
{
	bpf_tail_call(ctx, &jmp_table, 0);
	return 0;
}
