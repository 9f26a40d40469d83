package probe

import (
	"fmt"
	"strings"
)

// Mechanism is a way of attaching a BPF program to the kernel or to a
// process. Its string form is the wire format used in JSON, policy files and
// on the command line, so the constants below never change spelling.
type Mechanism string

// The mechanisms safebpf knows, named as in docs/architecture.md.
const (
	Fentry            Mechanism = "fentry"
	Fexit             Mechanism = "fexit"
	Kprobe            Mechanism = "kprobe"
	Kretprobe         Mechanism = "kretprobe"
	KprobeMulti       Mechanism = "kprobe-multi"
	KretprobeMulti    Mechanism = "kretprobe-multi"
	Tracepoint        Mechanism = "tracepoint"
	RawTracepoint     Mechanism = "raw-tracepoint"
	Uprobe            Mechanism = "uprobe"
	Uretprobe         Mechanism = "uretprobe"
	UprobeMulti       Mechanism = "uprobe-multi"
	PerfEventHardware Mechanism = "perf-event-hardware"
	PerfEventSoftware Mechanism = "perf-event-software"

	// UretprobeMulti is a uprobe_multi link of return probes
	// (BPF_TRACE_UPROBE_MULTI with BPF_F_UPROBE_MULTI_RETURN): the
	// "uretprobe.multi/" section. Needs kernel 6.6+.
	UretprobeMulti Mechanism = "uretprobe-multi"
	// TpBTF is a BTF-typed raw tracepoint ("tp_btf/" section,
	// BPF_PROG_TYPE_TRACING with BPF_TRACE_RAW_TP). It attaches like a raw
	// tracepoint (bpf_probe_register), not through a BPF trampoline.
	// Needs kernel 5.5+ and kernel BTF.
	TpBTF Mechanism = "tp-btf"
	// FmodRet is a BPF trampoline program that may change a function's
	// return value ("fmod_ret/" section, BPF_MODIFY_RETURN). Needs 5.7+.
	FmodRet Mechanism = "fmod-ret"
	// LSM is a BPF LSM program ("lsm/" section), attached to a bpf_lsm_*
	// hook through a BPF trampoline. Needs 5.7+, CONFIG_BPF_LSM and "bpf"
	// in the active LSM list.
	LSM Mechanism = "lsm"
	// Iter is a BPF iterator ("iter/" section): it runs when user space
	// reads it, never from a kernel hook. Needs 5.8+.
	Iter Mechanism = "iter"
)

var allMechanisms = []Mechanism{
	Fentry, Fexit, Kprobe, Kretprobe, KprobeMulti, KretprobeMulti,
	Tracepoint, RawTracepoint, Uprobe, Uretprobe, UprobeMulti,
	PerfEventHardware, PerfEventSoftware,
	UretprobeMulti, TpBTF, FmodRet, LSM, Iter,
}

// Mechanisms returns every known mechanism in a stable order.
func Mechanisms() []Mechanism {
	return append([]Mechanism(nil), allMechanisms...)
}

// ParseMechanism returns the mechanism spelled s, or an error listing the
// known names.
func ParseMechanism(s string) (Mechanism, error) {
	for _, m := range allMechanisms {
		if string(m) == s {
			return m, nil
		}
	}
	names := make([]string, len(allMechanisms))
	for i, m := range allMechanisms {
		names[i] = string(m)
	}
	return "", fmt.Errorf("unknown mechanism %q: want one of %s", s, strings.Join(names, ", "))
}

// Valid reports whether m is one of the known mechanisms.
func (m Mechanism) Valid() bool {
	_, err := ParseMechanism(string(m))
	return err == nil
}

// UnmarshalText accepts only known mechanism names.
func (m *Mechanism) UnmarshalText(b []byte) error {
	v, err := ParseMechanism(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// PatchesKernelText reports whether attaching m rewrites kernel text (INT3
// or ftrace patching): kprobes, trampolines, tracepoint static keys.
func (m Mechanism) PatchesKernelText() bool {
	switch m {
	case Kprobe, Kretprobe, KprobeMulti, KretprobeMulti, Fentry, Fexit, FmodRet, LSM,
		Tracepoint, RawTracepoint, TpBTF:
		return true
	}
	return false
}

// Multi returns the mechanism that attaches m's kind of program to many
// targets in one link (kprobe → kprobe-multi, 5.18; uprobe → uprobe-multi,
// 6.6), or "" when m has none.
func (m Mechanism) Multi() Mechanism { return multiForms[m] }

// Single returns the one-target mechanism of a multi link (kprobe-multi →
// kprobe), the form the same program loads as without its multi attach
// type, or "" when m is not a multi link.
func (m Mechanism) Single() Mechanism { return singleForms[m] }

var (
	multiForms = map[Mechanism]Mechanism{
		Kprobe: KprobeMulti, Kretprobe: KretprobeMulti,
		Uprobe: UprobeMulti, Uretprobe: UretprobeMulti,
	}
	singleForms = map[Mechanism]Mechanism{
		KprobeMulti: Kprobe, KretprobeMulti: Kretprobe,
		UprobeMulti: Uprobe, UretprobeMulti: Uretprobe,
	}
)

// Trampoline reports whether m attaches through a BPF trampoline (fentry,
// fexit, fmod_ret, LSM), whose detach waits for RCU tasks.
func (m Mechanism) Trampoline() bool {
	return m == Fentry || m == Fexit || m == FmodRet || m == LSM
}

// Return reports whether m runs at a function's return (kretprobe, fexit,
// uretprobe and their multi forms, fmod_ret): such a program sees the
// return value, and must never be replaced by an entry probe.
func (m Mechanism) Return() bool {
	switch m {
	case Kretprobe, KretprobeMulti, Fexit, FmodRet, Uretprobe, UretprobeMulti:
		return true
	}
	return false
}

// Occurrence is a three-valued "does it happen": always, maybe (it depends
// on what the program is attached to), never.
type Occurrence string

// The occurrences.
const (
	Always Occurrence = "always"
	Maybe  Occurrence = "maybe"
	Never  Occurrence = "never"
)

// InterruptContext says whether a program attached with m to targets
// runs in hard-IRQ or NMI context, where it can interrupt a CPU that holds
// a lock taken with interrupts enabled (vmap_area_lock: the user-memory
// deadlocks). A target is what the program attaches to, as the kernel names
// it: a function ("__x64_sys_getpid"), a tracepoint ("syscalls/
// sys_enter_openat"), a raw tracepoint or BTF tracepoint event
// ("sys_enter").
//
//   - Always: perf_event programs, whatever the event. A hardware event's
//     overflow handler is an NMI on x86; the software cpu-clock event's
//     runs from an hrtimer in hard-IRQ context.
//   - Never: uprobes and their multi forms (they fire in the traced task,
//     in process context) and iterators (they run in the reader's read());
//     and programs on kernel functions and events when every target is a
//     syscall entry point (below).
//   - Maybe: programs on kernel functions and events (kprobes and their
//     multi forms, fentry, fexit, fmod_ret, LSM hooks, tracepoints, raw and
//     BTF tracepoints) otherwise, including when no target is given: they
//     run in whatever context the traced code runs in, interrupts
//     included. A multi-target request is Never only if every target is.
//
// Syscall entry points run only in process context, in the task making
// the system call:
//
//   - For kprobe, kretprobe, kprobe-multi, kretprobe-multi, fentry, fexit
//     and fmod_ret: a syscall's wrapper or body, as SYSCALL_DEFINE names
//     them (include/linux/syscalls.h, arch/*/include/asm/syscall_wrapper.h):
//     __x64_sys_NAME, __ia32_sys_NAME, __ia32_compat_sys_NAME,
//     __x64_compat_sys_NAME (x32, as 6.1 names it) and
//     __x32_compat_sys_NAME (x32, as 5.x kernels named it),
//     __arm64_sys_NAME, __arm64_compat_sys_NAME,
//     __s390x_sys_NAME, __s390_sys_NAME, __s390_compat_sys_NAME,
//     __se_sys_NAME, __se_compat_sys_NAME, __do_sys_NAME and
//     __do_compat_sys_NAME (a ksyscall section resolves to one of them).
//     On x86-64 only do_syscall_64 (arch/x86/entry/common.c) calls them,
//     through x64_sys_call or sys_call_table, after
//     syscall_enter_from_user_mode has enabled interrupts; the 32-bit
//     entries do_int80_syscall_32 and do_fast_syscall_32 alike. Plain
//     sys_NAME is not one: fbdev's sys_fillrect and friends share the
//     prefix. Nor is ksys_NAME: include/linux/syscalls.h offers the ksys_
//     functions to other kernel code ("Kernel code should not call
//     syscalls ... directly. Instead, use ... the ksys_xyzyyz()
//     functions"), and no source bounds those callers' context, so a
//     program on one stays Maybe.
//   - For tracepoints: the syscalls group's sys_enter_NAME and
//     sys_exit_NAME, and raw_syscalls' sys_enter and sys_exit; for raw
//     and BTF tracepoints: sys_enter and sys_exit. trace_sys_enter fires
//     from syscall_trace_enter and trace_sys_exit from syscall_exit_work
//     (kernel/entry/common.c), the task's syscall entry and exit work with
//     interrupts enabled; the syscalls group's events are callbacks of
//     those two (kernel/trace/trace_syscalls.c).
//
// (Source read: Debian's linux-source-6.1 6.1.192-3; the names were
// checked in the kallsyms of the kernel-matrix guests.)
func (m Mechanism) InterruptContext(targets ...string) Occurrence {
	o, ok := interruptContexts[m]
	if !ok {
		return Maybe
	}
	if o != Maybe || len(targets) == 0 {
		return o
	}
	for _, t := range targets {
		if !syscallEntry(m, t) {
			return Maybe
		}
	}
	return Never
}

// syscallFunctionPrefixes are the names SYSCALL_DEFINE gives a syscall's
// wrappers and body, before the syscall's name.
var syscallFunctionPrefixes = []string{
	"__x64_sys_", "__ia32_sys_", "__ia32_compat_sys_", "__x64_compat_sys_", "__x32_compat_sys_",
	"__arm64_sys_", "__arm64_compat_sys_",
	"__s390x_sys_", "__s390_sys_", "__s390_compat_sys_",
	"__se_sys_", "__se_compat_sys_", "__do_sys_", "__do_compat_sys_",
}

// syscallEntry reports whether a program attached with m to target runs
// only from a syscall's entry or exit (see InterruptContext).
func syscallEntry(m Mechanism, target string) bool {
	switch m {
	case Kprobe, Kretprobe, KprobeMulti, KretprobeMulti, Fentry, Fexit, FmodRet:
		for _, p := range syscallFunctionPrefixes {
			if rest, ok := strings.CutPrefix(target, p); ok {
				return symbolRest(rest)
			}
		}
	case Tracepoint:
		group, name, _ := strings.Cut(target, "/")
		switch group {
		case "syscalls":
			rest, ok := strings.CutPrefix(name, "sys_enter_")
			if !ok {
				rest, ok = strings.CutPrefix(name, "sys_exit_")
			}
			return ok && symbolRest(rest)
		case "raw_syscalls":
			return name == "sys_enter" || name == "sys_exit"
		}
	case RawTracepoint, TpBTF:
		return target == "sys_enter" || target == "sys_exit"
	}
	return false
}

// symbolRest reports whether s can end a symbol name: at least one of
// [A-Za-z0-9_.] (compiler clones such as "__do_sys_foo.isra.0" keep their
// function's callers), or the glob characters * and ?, which a pattern
// that has the whole prefix can only expand to such names with.
func symbolRest(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '*' || c == '?') {
			return false
		}
	}
	return true
}

var interruptContexts = map[Mechanism]Occurrence{
	PerfEventHardware: Always, PerfEventSoftware: Always,
	Kprobe: Maybe, Kretprobe: Maybe, KprobeMulti: Maybe, KretprobeMulti: Maybe,
	Fentry: Maybe, Fexit: Maybe, FmodRet: Maybe, LSM: Maybe,
	Tracepoint: Maybe, RawTracepoint: Maybe, TpBTF: Maybe,
	Uprobe: Never, Uretprobe: Never, UprobeMulti: Never, UretprobeMulti: Never, Iter: Never,
}
