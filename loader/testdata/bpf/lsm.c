//go:build ignore

/* A BPF LSM program on file_open: counts this thread's opens, allows all. */
#include "common.h"

struct file;

SEC("lsm/file_open")
int BPF_PROG(count_open, struct file *file)
{
	if (mine())
		add(CALLS, 1);
	return 0;
}
