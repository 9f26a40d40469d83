//go:build ignore

/* vfs_read traced two ways: a kprobe and a kretprobe together, or one
 * fexit that sees the arguments and the return value. They are
 * alternatives: attaching both would count every read twice. */
#include "common.h"

struct file;

SEC("kprobe/vfs_read")
int BPF_KPROBE(read_entry, struct file *file, char *buf, unsigned long count)
{
	if (!mine())
		return 0;
	add(CALLS, 1);
	add(ARGSUM, count);
	return 0;
}

SEC("kretprobe/vfs_read")
int BPF_KRETPROBE(read_return, long ret)
{
	if (!mine())
		return 0;
	add(RETSUM, ret);
	add(RETS, 1);
	return 0;
}

SEC("fexit/vfs_read")
int BPF_PROG(read_exit, struct file *file, char *buf, unsigned long count, long long *pos, long ret)
{
	if (!mine())
		return 0;
	add(CALLS, 1);
	add(ARGSUM, count);
	add(RETSUM, ret);
	add(RETS, 1);
	return 0;
}
