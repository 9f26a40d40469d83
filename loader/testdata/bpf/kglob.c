//go:build ignore

/* Every __x64_sys_get*id syscall wrapper (getpgid, getsid, getuid, ...),
 * resolved from available_filter_functions as libbpf does. */
#include "common.h"

SEC("kprobe.multi/__x64_sys_get*id")
int BPF_KPROBE(get_id)
{
	if (mine())
		add(CALLS, 1);
	return 0;
}
