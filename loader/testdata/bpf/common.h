/* Shared by the loader's test objects: written like bcc's libbpf-tools
 * and cilium/ebpf's examples, without vmlinux.h (uapi headers and libbpf's
 * bpf_helpers.h/bpf_tracing.h from libbpf-dev). x86-64 only (syscall
 * numbers, __x64_sys_ wrappers, pt_regs). */
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

/* Only this thread counts when non-zero; set before loading. */
const volatile __u32 target_tid = 0;

/* counts[SLOT]: what the test reads back. */
#define CALLS 0   /* calls seen at entry (or by an fexit) */
#define RETSUM 1  /* sum of return values */
#define RETS 2    /* return events */
#define ARGSUM 3  /* sum of an argument read at entry */
#define EXTRA 4

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

static __always_inline int mine(void)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	return !target_tid || tid == target_tid;
}

static __always_inline void add(__u32 slot, __u64 v)
{
	__u64 *p = bpf_map_lookup_elem(&counts, &slot);
	if (p)
		__sync_fetch_and_add(p, v);
}
