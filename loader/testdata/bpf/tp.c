//go:build ignore

/* One event, three ways (libbpf-tools hardirqs style): tp_btf, raw_tp and
 * the tracefs tracepoint of sys_enter. Only one may attach. */
#include "common.h"

#define NR_GETPID 39 /* x86-64 */

SEC("tp_btf/sys_enter")
int BPF_PROG(sys_enter_btf, struct pt_regs *regs, long id)
{
	if (id == NR_GETPID && mine())
		add(CALLS, 1);
	return 0;
}

SEC("raw_tp/sys_enter")
int BPF_PROG(sys_enter_raw, struct pt_regs *regs, long id)
{
	if (id == NR_GETPID && mine())
		add(CALLS, 1);
	return 0;
}

/* events/raw_syscalls/sys_enter/format: 8 bytes of common fields, then
 * long id. */
struct sys_enter_ctx {
	__u64 common;
	long id;
};

SEC("tracepoint/raw_syscalls/sys_enter")
int sys_enter_tp(struct sys_enter_ctx *ctx)
{
	if (ctx->id == NR_GETPID && mine())
		add(CALLS, 1);
	return 0;
}
