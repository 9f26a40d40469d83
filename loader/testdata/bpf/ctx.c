//go:build ignore

/* Execution-context witness (TestSyscallEntryProcessContext): the same
 * program body on a getpid syscall entry point (the __x64_sys_getpid
 * wrapper's kprobe, the syscalls/sys_enter_getpid tracepoint) and on a
 * control the timer interrupt reaches on whatever task it interrupts
 * (update_process_times' kprobe, the timer/hrtimer_expire_entry
 * tracepoint). The test attaches one pair at a time. Each
 * hit is counted as the test's thread or another task, and reads the
 * test's variable at user_addr with bpf_probe_read_user (the user-memory
 * read nmi-user-read-deadlock is about). On the entry point every hit of
 * the test's thread must be one of its getpid calls; on the control the
 * test's thread is hit by interrupts it never asked for. */
#include "common.h"

/* The address of the test's variable and the value it holds. */
const volatile __u64 user_addr = 0;
const volatile __u64 user_magic = 0;

/* counts[] slots: base + MINE, base + OTHER, base + READ. */
#define MINE 0  /* hits on the test's thread */
#define OTHER 1 /* hits on any other task */
#define READ 2  /* hits on the test's thread that read user_magic back */
#define GETPID 0
#define TICK 4

static __always_inline int witness(__u32 base)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u64 v = 0;

	if (!target_tid)
		return 0;
	if (tid != target_tid) {
		add(base + OTHER, 1);
		return 0;
	}
	add(base + MINE, 1);
	if (bpf_probe_read_user(&v, sizeof(v), (const void *)user_addr) == 0 && v == user_magic)
		add(base + READ, 1);
	return 0;
}

SEC("kprobe/__x64_sys_getpid")
int BPF_KPROBE(getpid_entry)
{
	return witness(GETPID);
}

SEC("kprobe/update_process_times")
int BPF_KPROBE(timer_tick)
{
	return witness(TICK);
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int tp_getpid_entry(void *ctx)
{
	return witness(GETPID);
}

SEC("tracepoint/timer/hrtimer_expire_entry")
int tp_timer_tick(void *ctx)
{
	return witness(TICK);
}
