//go:build ignore

/* getpgid(2) traced at entry by a sleepable fentry or, as its alternative,
 * a ksyscall probe (libbpf's BPF_KSYSCALL; the wrapper is resolved as
 * libbpf resolves it), and at return by a kretsyscall probe that must see
 * the process group. getpgid has an argument, so __x64_sys_getpgid is a
 * real function with BTF (the wrappers of argument-less syscalls are
 * aliases). */
#include "common.h"

SEC("fentry.s/__x64_sys_getpgid")
int BPF_PROG(getpgid_fentry)
{
	if (mine())
		add(CALLS, 1);
	return 0;
}

/* BPF_KSYSCALL reads arguments with CO-RE through the kernel's pt_regs
 * (vmlinux.h names); without them it declares a pt_regs pointer it does
 * not use. */
#pragma clang diagnostic ignored "-Wunused-variable"

SEC("ksyscall/getpgid")
int BPF_KSYSCALL(getpgid_ksyscall)
{
	if (mine())
		add(CALLS, 1);
	return 0;
}

SEC("kretsyscall/getpgid")
int BPF_KRETPROBE(getpgid_return, long ret)
{
	if (!mine())
		return 0;
	add(RETSUM, ret);
	add(RETS, 1);
	return 0;
}
