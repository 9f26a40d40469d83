// Package probe tells what the running kernel is and which attach
// mechanisms it offers. It is the only package in safebpf that looks at the
// host (through internal/kernel); everything downstream (hazards,
// fallback, loader) works on the plain [Kernel] value it returns, which
// round-trips through JSON so real machines can be replayed from fixtures.
//
// # Entry points
//
//   - [Detect] reads the running host (or, with [Options].Root, a copy of
//     another machine's files), probes the mechanisms asked for (every
//     [Mechanism] by default) and establishes the facts asked for. On the
//     real host (below a host root or not) what it learns is cached for the
//     life of the process, per mechanism and per fact, so an agent can
//     detect the identity at start-up and ask for more when a request needs
//     it ([Kernel.Merge] adds the answers); only a successful
//     identification and only conclusive observations are cached.
//   - [Describe] builds a Kernel from strings alone (release, /proc/version,
//     version_signature, os-release, config, kallsyms), for `safebpf check`
//     and tests. It never touches the host; mechanisms are decided by
//     [OfflineSupport].
//   - [Mechanism.InterruptContext] says whether a mechanism's programs run
//     in interrupt context: always, maybe or never, given what they attach
//     to (programs on syscall entry points never do).
//   - [ParseRelease] and [ResolveVersion] are the pure parsers behind both.
//
// # Three-valued answers
//
// Every mechanism gets a [Support]: Available is true (the probe proved it
// works), false (the probe proved it does not: a missing PMU, EPERM on a
// trampoline load, ENOENT from perf_event_open), or nil (the probe could
// not decide: not privileged, an unexpected error, an unknown kernel
// version offline). Reason always says which. Never collapse nil into
// false or true: callers downstream treat undecided as "not known to be
// safe" and say so. This mirrors cilium/ebpf's features package, where
// nil means supported, ebpf.ErrNotSupported means not supported and any
// other error means inconclusive.
//
// The host probes are cheap and never modify kernel text: they load
// trivial programs (cilium/ebpf features, a two-instruction fentry/fexit
// program against bpf_fentry_test1), check for the kprobe and uprobe PMUs
// (/sys/bus/event_source/devices/{kprobe,uprobe}) or their tracefs event
// files, and open and immediately close a perf event on CPU 0 (hardware
// CPU cycles, software cpu-clock). Nothing is attached. Without root (or
// CAP_BPF+CAP_PERFMON) every mechanism is undecided.
//
// # Which kernel version is trusted
//
// `uname -r` is not the upstream version on many distributions. A Kernel
// records every source (Release, ProcVersion, VersionSignature,
// VDSOVersion), the version it trusts, the source it came from
// ([VersionSource]) and a note. The order of trust is:
//
//  1. Ubuntu's /proc/version_signature ("Ubuntu 5.4.0-150.167-generic
//     5.4.233" → 5.4.233): [SourceVersionSignature].
//  2. Debian's package version in /proc/version ("… Debian 6.1.76-1
//     (2024-02-01)" → 6.1.76): [SourceDebian].
//  3. A release carrying a real sublevel: Amazon Linux
//     ("5.10.205-195.807.amzn2"), Fedora, COS ("6.1.58+"), WSL
//     ("5.15.90.1-microsoft-standard-WSL2"), Android, Arch, Flatcar, rc
//     kernels ("6.10.0-rc3" → 6.10.0), vanilla builds: [SourceRelease].
//  4. The vDSO's LINUX_VERSION_CODE, only when the release does not carry
//     the sublevel and the vDSO agrees with its X.Y; the vDSO sublevel
//     clamps at 255 (4.14.336 reads 4.14.255), so a clamped value is not
//     used: [SourceVDSO]. With no parseable release at all the vDSO is used
//     as is.
//  5. Otherwise the release's X.Y with an unknown sublevel
//     ([Version].PatchKnown false): Ubuntu "5.4.0-1103-aws" and Debian
//     "6.1.0-13-amd64" without better sources, SUSE "6.4.0-150600.23.25-default",
//     and always RHEL and its rebuilds ("4.18.0-477.10.1.el8_8.x86_64" is
//     the 4.18 line with backports; its sublevel says nothing):
//     [SourceReleasePartial].
//
// Nothing is trusted (Version nil, [SourceNone]) when no source parses.
// Distribution build identity that backports depend on is kept separately
// in [Distro]: Ubuntu ABI, RHEL tag and build, Amazon Linux generation,
// Debian package version. The text of VersionNote and of Support reasons
// is for people; do not depend on it being stable.
//
// # Facts and evidence
//
// Hazard verdicts rest on facts about the running kernel ([Fact]): a
// symbol in /proc/kallsyms, a call in a function's machine code, a member
// in the kernel's BTF, the outcome of a live self-test. Detect establishes
// exactly the facts in [Options].Facts (the hazard catalog's, from
// (*hazards.Catalog).Facts): symbols from one scan of /proc/kallsyms, which
// also records whether kallsyms lists data symbols (CONFIG_KALLSYMS_ALL;
// the absence of a data symbol means something only then), and every other
// kind from its live witness. [Kernel.Observe] answers each fact as holds,
// does not hold, or unknown with the reason; a fact nobody looked for is
// unknown, never "does not hold". Describe answers symbol facts from a
// kallsyms excerpt and records the others as unobserved.
//
// # Preemption model
//
// [Kernel].Preemption says whether the kernel was built with
// CONFIG_PREEMPTION, read from the flags scripts/mkcompile_h writes into
// /proc/version ("SMP PREEMPT", "SMP PREEMPT_DYNAMIC", "SMP PREEMPT_RT";
// plain "SMP" is a non-preemptible build), else from the config. Without
// CONFIG_PREEMPTION there is no Tasks RCU.
package probe
