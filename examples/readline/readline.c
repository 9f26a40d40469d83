//go:build ignore

// readline: print the lines interactive shells read, from a uretprobe on
// readline(3) in a user binary (bash by default).

#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define TASK_COMM_LEN 16
#define LINE_LEN 240

struct event {
	__u32 pid;
	__u8 comm[TASK_COMM_LEN];
	__u8 line[LINE_LEN];
};


// Makes struct event part of the object's BTF so bpf2go emits a Go type.
const struct event *unused_event __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

// char *readline(const char *prompt)
SEC("uretprobe/readline")
int BPF_KRETPROBE(readline_ret, const char *line)
{
	if (!line)
		return 0;
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	if (bpf_probe_read_user_str(&e->line, sizeof(e->line), line) < 0)
		e->line[0] = 0;
	bpf_ringbuf_submit(e, 0);
	return 0;
}
