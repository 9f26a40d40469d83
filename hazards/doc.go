// Package hazards is safebpf's catalog of known kernel hazards for eBPF
// tracing, and the operator's policy file that edits it.
//
// # Catalog
//
// The built-in catalog ([Builtin]) is data: catalog.yaml, embedded and parsed
// once on first use. Each [Hazard] has a stable kebab-case [ID], a title and
// summary, references (upstream commits as 12+ hex digits with their subject,
// links; facts not confirmed from a primary source say UNVERIFIED), the
// mechanisms it concerns, and the conditions and ranges that decide whether
// a kernel is affected, plus the [Action] it calls for (downgrade, avoid,
// refuse, cap, pace, warn) and its parameters. A policy file's `rules:` use
// the same schema, so built-in and user hazards are one mechanism.
//
// Version ranges are hashicorp/go-version constraints ("~> 5.19.0",
// ">= 6.1, < 6.1.36") over the kernel's upstream X.Y.Z as [probe.Kernel]
// records it — never over a raw release string, which go-version misreads.
// Constraints are validated when the catalog or policy is parsed.
//
// # Verdicts
//
// [Catalog.Evaluate] returns one [Finding] per hazard that concerns the
// attachment's mechanism. Its verdict is three-valued:
//
//   - [Affected]: the hazard applies to this kernel and attachment.
//   - [NotAffected]: it does not, and the reason says why.
//   - [Unknown]: safebpf cannot tell (version unknown, a sublevel that the
//     ranges split, a CPU count or config it could not read). Callers must
//     not treat Unknown as safe; the fallback planner does not.
//
// Each finding's Reason is one line that names the rule and the evidence,
// e.g. "fentry-zap-pid-ns-deadlock: tasks_rcu_exit_srcu present in
// kallsyms" or "nmi-user-read-deadlock: upstream 6.1.36 outside ...". Its
// text is not a stable interface.
//
// # Evaluation order
//
// For each hazard concerning the mechanism:
//
//  1. A hazard disabled by policy is not-affected ("disabled by policy").
//  2. Conditions filter: an arch not listed, a program that does not read
//     user memory when the hazard requires it, a mechanism that does not
//     run in NMI context when the hazard requires it, a target not under
//     seccomp, fewer CPUs than min_cpus, or a required config flag known to
//     be unset all give not-affected. A condition that cannot be decided
//     (arch, CPU count or config unknown, unless unknown_means_set) turns
//     an affected verdict from the steps below into unknown.
//  3. Policy kernel assertions (a regular expression over uname -r) say
//     fixed or affected, and beat everything below.
//  4. Evidence symbols from kallsyms: presence or absence settles the
//     verdict when the entry says so. The absence of a data symbol counts
//     only when kallsyms lists data symbols (CONFIG_KALLSYMS_ALL).
//  5. Distribution ranges (os-release ID plus an upstream and/or a build
//     constraint: Ubuntu ABI, RHEL build, Debian revision, Amazon Linux
//     build) give the verdict they state, for backports the upstream
//     version cannot show.
//  6. Upstream ranges: a version matching any affected constraint is
//     affected, else not-affected. An unknown version is unknown. A version
//     with an unknown sublevel ("5.4" from 5.4.0-1103-aws) is evaluated over
//     the whole X.Y line: if every sublevel agrees the verdict is conclusive,
//     else unknown ("6.1 sublevel unknown"). A hazard with no upstream
//     ranges and no distro or evidence rules affects every kernel; one with
//     only distro or evidence rules is not-affected when none matched.
//
// # Policy file
//
// [ParsePolicy] and [LoadPolicy] read a policy file: YAML (JSON is YAML
// too) with apiVersion "safebpf/v1" and the keys mode, force, hazards
// (overrides keyed by hazard ID: disable, action, params, min_cpus),
// kernels (assertions), rules (user hazards) and uprobes (pacing). The
// parser is strict: unknown keys, duplicate keys, wrong types, unknown
// hazard IDs, bad version constraints or regular expressions, duplicate
// rule IDs and rule IDs that collide with built-in hazards are errors. Each
// is a [*PolicyError] (matching [ErrInvalidPolicy]) that prints as
//
//	policy.yaml:12: hazards.foo: unknown hazard ID "foo" (known: ...)
//
// "all" in force forces every hazard and is accepted only spelled exactly
// so. Whoever can edit the policy can force hazards, so while the process
// is privileged (uid 0, or CAP_SYS_ADMIN, CAP_PERFMON or CAP_BPF) LoadPolicy
// refuses a file that the file's owner, a symbolic link's owner or an
// ancestor directory lets anyone but root or the process's own user write
// ([ErrUntrustedFile]); it reads only regular files up to 1 MiB
// (docs/security.md). The JSON Schema of
// the file is docs/policy.schema.json; examples/policy/policy.yaml is a
// commented example. [Catalog.WithPolicy] applies a policy to a catalog;
// the planner reads Mode, Force and Uprobes from the [Policy] itself.
//
// The package does no I/O except LoadPolicy's read of the file it is given.
package hazards
