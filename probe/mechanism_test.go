package probe

import "testing"

// TestInterruptContextTargets: the context of programs on kernel functions
// and events depends on what they attach to. The names are real: from the
// kallsyms and tracefs of Debian's 5.10.262, 6.1.192 and 6.12.117 (the
// kernel-matrix guests; loader's TestSyscallEntryProcessContext checks the
// function names there), and from arch/*/include/asm/syscall_wrapper.h of
// 6.1.192 for other arches.
func TestInterruptContextTargets(t *testing.T) {
	for _, tt := range []struct {
		m       Mechanism
		targets []string
		want    Occurrence
	}{
		// Syscall wrappers and bodies: process context only.
		{Kprobe, []string{"__x64_sys_getpid"}, Never},
		{Kretprobe, []string{"__x64_sys_openat"}, Never},
		{Kprobe, []string{"__ia32_sys_getpid"}, Never},
		{Kprobe, []string{"__ia32_compat_sys_openat"}, Never},
		{Kprobe, []string{"__x64_compat_sys_preadv2"}, Never},
		{Kprobe, []string{"__x32_compat_sys_preadv2"}, Never},
		{Kprobe, []string{"__arm64_sys_openat"}, Never},
		{Kprobe, []string{"__arm64_compat_sys_openat"}, Never},
		{Kprobe, []string{"__s390x_sys_openat"}, Never},
		{Kprobe, []string{"__se_sys_openat"}, Never},
		{Kprobe, []string{"__do_sys_getpid"}, Never},
		{Kprobe, []string{"__do_compat_sys_ipc"}, Never},
		{Kprobe, []string{"__do_sys_clone3.isra.0"}, Never},
		{Fentry, []string{"__x64_sys_getpgid"}, Never},
		{Fexit, []string{"__x64_sys_getpgid"}, Never},
		{FmodRet, []string{"__x64_sys_getpgid"}, Never},
		{KprobeMulti, []string{"__x64_sys_getpid", "__x64_sys_openat", "__ia32_sys_openat"}, Never},
		{KretprobeMulti, []string{"__x64_sys_*"}, Never},
		// Kernel functions that are not syscall entry points.
		{Kprobe, []string{"update_process_times"}, Maybe}, // the timer interrupt
		{Kprobe, []string{"do_sys_openat2"}, Maybe},       // also io_uring's workers
		{Kprobe, []string{"__sys_bpf"}, Maybe},            // also bpf_sys_bpf from BPF programs
		{Kprobe, []string{"ksys_read"}, Maybe},            // offered to other kernel code (syscalls.h): callers' context unbounded
		{Kprobe, []string{"x64_sys_call"}, Maybe},         // the dispatcher: not in the list, so not proven
		{Kprobe, []string{"sys_fillrect"}, Maybe},         // fbdev, not a syscall
		{Kprobe, []string{"sys_getpid"}, Maybe},           // plain sys_: ambiguous with the above
		{Kprobe, []string{"__x64_sys_"}, Maybe},
		{Kprobe, []string{"__x64_sys_getpid+0x4"}, Maybe},
		{Kprobe, []string{"__x64_sys*"}, Maybe}, // a glob that may match more than wrappers
		{Kprobe, []string{""}, Maybe},
		{Kprobe, nil, Maybe},
		{Fentry, nil, Maybe},
		{KprobeMulti, []string{"__x64_sys_getpid", "do_sys_openat2"}, Maybe},
		{KprobeMulti, []string{"__x64_sys_getpid", ""}, Maybe},
		// Tracepoints.
		{Tracepoint, []string{"syscalls/sys_enter_openat"}, Never},
		{Tracepoint, []string{"syscalls/sys_exit_getpid"}, Never},
		{Tracepoint, []string{"raw_syscalls/sys_enter"}, Never},
		{Tracepoint, []string{"raw_syscalls/sys_exit"}, Never},
		{Tracepoint, []string{"syscalls/sys_enter_"}, Maybe},
		{Tracepoint, []string{"sched/sched_switch"}, Maybe},
		{Tracepoint, []string{"irq/irq_handler_entry"}, Maybe},
		{Tracepoint, []string{"sys_enter_openat"}, Maybe}, // no group
		{Tracepoint, []string{"raw_syscalls/sys_enter_openat"}, Maybe},
		{RawTracepoint, []string{"sys_enter"}, Never},
		{RawTracepoint, []string{"sys_exit"}, Never},
		{TpBTF, []string{"sys_enter"}, Never},
		{RawTracepoint, []string{"sched_switch"}, Maybe},
		{RawTracepoint, []string{"raw_syscalls/sys_enter"}, Maybe},
		{TpBTF, []string{"softirq_entry"}, Maybe},
		// The target does not change the other mechanisms.
		{Tracepoint, []string{"__x64_sys_getpid"}, Maybe},
		{LSM, []string{"__x64_sys_getpid"}, Maybe},
		{Kprobe, []string{"sys_enter"}, Maybe},
		{PerfEventHardware, []string{"__x64_sys_getpid"}, Always},
		{PerfEventSoftware, []string{"syscalls/sys_enter_openat"}, Always},
		{Uprobe, []string{"/usr/bin/bash:readline"}, Never},
		{Iter, []string{"task"}, Never},
	} {
		if got := tt.m.InterruptContext(tt.targets...); got != tt.want {
			t.Errorf("%s.InterruptContext(%q) = %s, want %s", tt.m, tt.targets, got, tt.want)
		}
	}
}

// TestMultiForms: every multi link has one single form and back, and the
// single forms are exactly the probes with a multi link.
func TestMultiForms(t *testing.T) {
	for _, m := range allMechanisms {
		if s := m.Single(); s != "" {
			if s.Multi() != m {
				t.Errorf("%s.Single() = %s, whose Multi() is %q", m, s, s.Multi())
			}
		}
		if mm := m.Multi(); mm != "" && mm.Single() != m {
			t.Errorf("%s.Multi() = %s, whose Single() is %q", m, mm, mm.Single())
		}
	}
	for _, m := range []Mechanism{KprobeMulti, KretprobeMulti, UprobeMulti, UretprobeMulti} {
		if m.Single() == "" {
			t.Errorf("%s has no single form", m)
		}
	}
}
