// Package hazards is safebpf's catalog of known kernel hazards for eBPF
// tracing, and the operator's policy file that edits it.
//
// # Catalog
//
// The built-in catalog ([Builtin]) is data: catalog.yaml, embedded and parsed
// once on first use. Each [Hazard] has a stable kebab-case [ID], a title and
// summary, references (upstream commits as 12+ hex digits with their subject,
// links; facts not confirmed from a primary source say UNVERIFIED), a
// [Severity], the mechanisms it concerns, the evidence, conditions and
// ranges that decide whether a kernel is affected, the releases that fix
// it, plus the [Action] it calls for (downgrade, avoid, refuse, cap, pace,
// warn), its parameters and what an unknown verdict does ([OnUnknown]). A
// policy file's `rules:` use the same schema, so built-in and user hazards
// are one mechanism.
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
// Each finding's Reason is one line that names the rule and the witness,
// e.g. "fentry-zap-pid-ns-deadlock: tasks_rcu_exit_srcu present in
// kallsyms", "fentry-zap-pid-ns-deadlock: /proc/version says SMP without
// PREEMPT: built without CONFIG_PREEMPTION, so no Tasks RCU" or
// "nmi-user-read-deadlock: upstream 6.1.25 in >= 6.1, < 6.1.36". Its text
// is not a stable interface.
//
// # Evaluation order
//
// For each hazard concerning the mechanism:
//
//  1. A hazard disabled by policy is not-affected ("disabled by policy").
//  2. Attachment conditions filter: an arch not listed, a program that does
//     not read user memory, take user stacks or make tail calls when the
//     hazard requires it, a program that never runs in the required
//     execution context (uprobes never run in interrupt context, nor do
//     programs whose every target is a syscall entry point:
//     probe.Mechanism.InterruptContext), a target not under seccomp, or
//     fewer CPUs than min_cpus give not-affected. A condition that cannot
//     be decided (arch or CPU count unknown, a program on kernel functions
//     or events other than syscall entry points, or with unknown targets,
//     which runs in interrupt context when what it traces does) turns an
//     affected verdict from the steps below into unknown.
//  3. Policy kernel assertions (a regular expression over uname -r) say
//     fixed or affected, and beat everything below.
//  4. Live evidence, in the order of trust selftest > call > symbol > btf
//     (catalog order within a kind): the first fact that is established
//     and has a verdict for its outcome decides. Facts come from the
//     probe.Kernel (Kernel.Observe): a fact nobody looked for, a witness
//     that could not read (/proc/kcore locked down), or a data symbol's
//     absence without CONFIG_KALLSYMS_ALL decides nothing. Evidence with an
//     arch list counts only on those arches.
//  5. Config and preemption model: a required config flag known to be
//     unset, or a kernel built without CONFIG_PREEMPTION when the hazard
//     requires preemptible, gives not-affected, naming the witness; an
//     unknown config (unless unknown_means_set) or preemption model is a
//     doubt as in step 2.
//  6. Distribution ranges (os-release ID plus an upstream and/or a build
//     constraint: Ubuntu ABI, RHEL build, Debian revision, Amazon Linux
//     build) give the verdict they state, for backports the upstream
//     version cannot show.
//  7. Upstream ranges: a version matching an unknown range is unknown, one
//     matching an affected range affected, else not-affected. An unknown
//     version is unknown. A version with an unknown sublevel ("5.4" from
//     5.4.0-1103-aws) is evaluated over the whole X.Y line: if every
//     sublevel agrees the verdict is conclusive, else unknown ("6.1
//     sublevel unknown"). A hazard with no upstream ranges and no distro or
//     evidence rules affects every kernel; one with only distro or evidence
//     rules is not-affected when none matched.
//
// [Catalog.Facts] lists every fact the catalog's evidence asks about
// (built-in hazards and policy rules); pass them to probe.Detect
// (Options.Facts) so that the evidence can count.
//
// # Unknown verdicts
//
// What an unknown verdict does is the hazard's on_unknown
// ([Hazard.EffectiveOnUnknown], carried by each [Finding]):
//
//   - refuse: unknown is treated as affected. The hazard's action applies:
//     downgrade, avoid and refuse block the mechanism, so the planner moves
//     to a safe alternative when one exists and refuses otherwise (unless
//     forced); cap and pace apply their settings; warn warns.
//   - warn: the mechanism stays usable; the plan gets a warning step that
//     names the hazard and why its verdict is unknown.
//   - allow: the mechanism stays usable without a step; the finding, with
//     its unknown verdict and reason, is still recorded in the decision.
//
// The default follows the hazard's severity: refuse for lockup, crash and
// performance (for the latter only cap and pace settings follow), warn for
// functional. A policy overrides it per hazard (hazards.<id>.on_unknown).
//
// # Catalog versions and files
//
// The catalog carries a version (YYYY.MM.N, [Catalog.Version]); every
// change is recorded in hazards/CHANGELOG.md with its source. The whole
// catalog renders as JSON ([Catalog.MarshalJSON], `safebpf hazards
// --json`) in the document shape [ParseCatalog] reads, so an operator can
// load a newer catalog without rebuilding the agent: [LoadCatalog] reads a
// file as strictly as the built-in catalog, from a policy's catalog key or
// from the SAFEBPF_CATALOG environment variable ([CatalogFor]); as root,
// both files must not be writable by group or others.
//
// # Policy file
//
// [ParsePolicy] and [LoadPolicy] read a policy file: YAML (JSON is YAML
// too) with apiVersion "safebpf/v1" and the keys catalog (a catalog file
// to use instead of the built-in one), mode, force, hazards (overrides
// keyed by hazard ID: disable, action, params, min_cpus, on_unknown),
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
// The package does no I/O except the reads of LoadPolicy, LoadCatalog and
// CatalogFor (the files they are given or SAFEBPF_CATALOG names).
package hazards
