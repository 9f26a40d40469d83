//go:build ignore

// opensnoop: report every file open through do_sys_openat2.
//
// The same kernel function is traced twice: once with an fentry program
// (BTF arguments, a BPF trampoline) and once with a kprobe program (pt_regs).
// safebpf keeps the one that is available and safe on the running kernel and
// drops the other before the verifier sees it.

#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define TASK_COMM_LEN 16
#define NAME_LEN 256

struct event {
	__u32 pid;
	__s32 dfd;
	__u8 comm[TASK_COMM_LEN];
	__u8 filename[NAME_LEN];
};


// Makes struct event part of the object's BTF so bpf2go emits a Go type.
const struct event *unused_event __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

static __always_inline int emit(int dfd, const char *filename)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->dfd = dfd;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	if (bpf_probe_read_user_str(&e->filename, sizeof(e->filename), filename) < 0)
		e->filename[0] = 0;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

// long do_sys_openat2(int dfd, const char __user *filename, struct open_how *how)
SEC("fentry/do_sys_openat2")
int BPF_PROG(opensnoop_fentry, int dfd, const char *filename)
{
	return emit(dfd, filename);
}

SEC("kprobe/do_sys_openat2")
int BPF_KPROBE(opensnoop_kprobe, int dfd, const char *filename)
{
	return emit(dfd, filename);
}
