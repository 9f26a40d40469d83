//go:build ignore

/* A task iterator: every read writes (tgid, pid) of each task. The kernel
 * types are declared here with preserve_access_index, so the field offsets
 * are relocated against the running kernel's BTF (CO-RE). */
#include "common.h"

struct seq_file;

struct bpf_iter_meta {
	struct seq_file *seq;
	__u64 session_id;
	__u64 seq_num;
} __attribute__((preserve_access_index));

struct task_struct {
	int pid;
	int tgid;
} __attribute__((preserve_access_index));

struct bpf_iter__task {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
} __attribute__((preserve_access_index));

SEC("iter/task")
int dump_task(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;
	if (!task)
		return 0;
	__u32 v[2] = {task->tgid, task->pid};
	bpf_seq_write(ctx->meta->seq, v, sizeof(v));
	return 0;
}
