package hazards

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/safebpf/safebpf/internal/tracefs"
	"github.com/safebpf/safebpf/probe"
)

// Valid reports whether v is one of the three verdicts.
func (v Verdict) Valid() bool {
	switch v {
	case Affected, NotAffected, Unknown:
		return true
	}
	return false
}

// Valid reports whether a is one of the known actions.
func (a Action) Valid() bool {
	switch a {
	case ActionDowngrade, ActionAvoid, ActionRefuse, ActionCap, ActionPace, ActionWarn:
		return true
	}
	return false
}

// Valid reports whether s is one of the severities.
func (s Severity) Valid() bool {
	switch s {
	case SeverityLockup, SeverityCrash, SeverityFunctional, SeverityPerformance:
		return true
	}
	return false
}

// Valid reports whether o is one of the on_unknown choices.
func (o OnUnknown) Valid() bool {
	switch o {
	case OnUnknownRefuse, OnUnknownWarn, OnUnknownAllow:
		return true
	}
	return false
}

// Valid reports whether m is one of the modes. The empty mode (the default,
// enforce) is not valid here; callers treat it separately.
func (m Mode) Valid() bool {
	switch m {
	case Enforce, Warn, Audit:
		return true
	}
	return false
}

// MaxActiveLimit is the largest kretprobe maxactive the kernel accepts
// (KRETPROBE_MAXACTIVE_MAX in kernel/trace/trace_kprobe.c since 4.12,
// 696ced4fb1d7 "tracing/kprobes: expose maxactive for kretprobe in
// kprobe_events"). It bounds params.maxactive and
// params.maxactive_ceiling, an unset ceiling means it, and the planner
// never sets more. It is defined once, where maxactive is written to the
// kernel (internal/tracefs); docs/policy.schema.json states it too, and a
// test holds the schema to it.
const MaxActiveLimit = tracefs.MaxActiveLimit

// maxRanges bounds a hazard's affected and distros lists.
const maxRanges = 64

// The execution contexts Requires.Context knows.
const (
	// ContextNMI: the program runs in NMI context, which only
	// perf-event-hardware programs do (on x86).
	ContextNMI = "nmi"
	// ContextInterrupt: the program runs in hard-IRQ or NMI context
	// (probe.Mechanism.InterruptContext of the mechanism and the targets):
	// always for perf events, maybe for programs on kernel functions and
	// events, never for uprobes and programs on syscall entry points.
	ContextInterrupt = "interrupt"
)

var (
	idRE       = regexp.MustCompile(`^[a-z0-9]+(?:-[a-z0-9]+)*$`)
	commitRE   = regexp.MustCompile(`^[0-9a-f]{12,40}$`)
	configRE   = regexp.MustCompile(`^CONFIG_[A-Z0-9_]+$`)
	symbolRE   = regexp.MustCompile(`^[A-Za-z_.$][A-Za-z0-9_.$]*$`)
	btfPathRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+$`)
	versionRE  = regexp.MustCompile(`^[0-9]{4}\.[0-9]{1,2}\.[0-9]{1,4}$`)
	distroIDRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
)

var validActions = []Action{ActionDowngrade, ActionAvoid, ActionRefuse, ActionCap, ActionPace, ActionWarn}

var (
	validSeverities = []Severity{SeverityLockup, SeverityCrash, SeverityFunctional, SeverityPerformance}
	validOnUnknown  = []OnUnknown{OnUnknownRefuse, OnUnknownWarn, OnUnknownAllow}
)

// checker builds located errors during validation.
type checker struct {
	file  string
	lines map[string]int
}

func (c *checker) errf(path string, format string, args ...any) *PolicyError {
	return &PolicyError{File: c.file, Line: lineOf(c.lines, path), Key: path, Msg: fmt.Sprintf(format, args...)}
}

func (c *checker) wrap(path string, err error) *PolicyError {
	return &PolicyError{File: c.file, Line: lineOf(c.lines, path), Key: path, Msg: err.Error(), Err: err}
}

// compiledRule is a validated hazard with its constraints compiled.
type compiledRule struct {
	affected []*constraint
	unknown  []*constraint
	distros  []compiledDistro
	// disabledBy names the policy that disabled the hazard; empty when enabled.
	disabledBy string
}

type compiledDistro struct {
	upstream, build *constraint
}

func actionList() string {
	s := make([]string, len(validActions))
	for i, a := range validActions {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}

// compileHazard validates h (found at path) and compiles its constraints.
func compileHazard(h *Hazard, path string, ck *checker) (compiledRule, error) {
	var r compiledRule
	p := func(k string) string { return joinKey(path, k) }
	switch {
	case h.ID == "":
		return r, ck.errf(p("id"), "missing hazard ID")
	case h.ID == ForceAll:
		return r, ck.errf(p("id"), "%q is reserved (it forces every hazard)", h.ID)
	case !idRE.MatchString(string(h.ID)) || len(h.ID) > 64:
		return r, ck.errf(p("id"), "hazard ID %q must be kebab-case (lower-case letters, digits, single dashes), at most 64 characters", h.ID)
	}
	if strings.TrimSpace(h.Title) == "" {
		return r, ck.errf(p("title"), "missing title")
	}
	for i, ref := range h.References {
		rp := fmt.Sprintf("%s[%d]", p("references"), i)
		if ref.Commit == "" && ref.Link == "" {
			return r, ck.errf(rp, "reference needs a commit or a link")
		}
		if ref.Commit != "" && !commitRE.MatchString(ref.Commit) {
			return r, ck.errf(rp+".commit", "commit %q must be 12 to 40 lower-case hex digits", ref.Commit)
		}
		if ref.Link != "" && !strings.HasPrefix(ref.Link, "https://") && !strings.HasPrefix(ref.Link, "http://") {
			return r, ck.errf(rp+".link", "link %q must be an http(s) URL", ref.Link)
		}
	}
	if len(h.Mechanisms) == 0 {
		return r, ck.errf(p("mechanisms"), "list at least one mechanism")
	}
	for i, m := range h.Mechanisms {
		mp := fmt.Sprintf("%s[%d]", p("mechanisms"), i)
		if _, err := probe.ParseMechanism(string(m)); err != nil {
			return r, ck.wrap(mp, err)
		}
		if slices.Contains(h.Mechanisms[:i], m) {
			return r, ck.errf(mp, "duplicate mechanism %q", m)
		}
	}
	for i, a := range h.Arch {
		if !slices.Contains(probe.Arches(), a) {
			return r, ck.errf(fmt.Sprintf("%s[%d]", p("arch"), i), "unknown arch %q (known: %s)", a, strings.Join(probe.Arches(), ", "))
		}
	}
	if len(h.Affected) > maxRanges {
		return r, ck.errf(p("affected"), "%d version ranges, more than %d", len(h.Affected), maxRanges)
	}
	if len(h.Unknown) > maxRanges {
		return r, ck.errf(p("unknown"), "%d version ranges, more than %d", len(h.Unknown), maxRanges)
	}
	if len(h.Distros) > maxRanges {
		return r, ck.errf(p("distros"), "%d distro ranges, more than %d", len(h.Distros), maxRanges)
	}
	for i, s := range h.Affected {
		c, err := parseConstraint(s)
		if err != nil {
			return r, ck.wrap(fmt.Sprintf("%s[%d]", p("affected"), i), err)
		}
		r.affected = append(r.affected, c)
	}
	for i, s := range h.Unknown {
		c, err := parseConstraint(s)
		if err != nil {
			return r, ck.wrap(fmt.Sprintf("%s[%d]", p("unknown"), i), err)
		}
		r.unknown = append(r.unknown, c)
	}
	if len(h.FixedIn) > maxRanges {
		return r, ck.errf(p("fixed_in"), "%d releases, more than %d", len(h.FixedIn), maxRanges)
	}
	for i, v := range h.FixedIn {
		var pv probe.Version
		if err := pv.UnmarshalText([]byte(v)); err != nil {
			return r, ck.errf(fmt.Sprintf("%s[%d]", p("fixed_in"), i), "release %q must be X.Y or X.Y.Z", v)
		}
	}
	if h.Severity != "" && !h.Severity.Valid() {
		return r, ck.errf(p("severity"), "unknown severity %q (known: %s)", h.Severity, joinStrings(validSeverities))
	}
	if h.OnUnknown != "" && !h.OnUnknown.Valid() {
		return r, ck.errf(p("on_unknown"), "unknown on_unknown %q (known: %s)", h.OnUnknown, joinStrings(validOnUnknown))
	}
	for i, d := range h.Distros {
		dp := fmt.Sprintf("%s[%d]", p("distros"), i)
		if !distroIDRE.MatchString(d.Distro) {
			return r, ck.errf(dp+".distro", "distro %q must be an os-release ID such as ubuntu, debian, rhel, amzn", d.Distro)
		}
		if d.Upstream == "" && d.Build == "" {
			return r, ck.errf(dp, "distro range needs upstream, build or both")
		}
		var cd compiledDistro
		var err error
		if d.Upstream != "" {
			if cd.upstream, err = parseConstraint(d.Upstream); err != nil {
				return r, ck.wrap(dp+".upstream", err)
			}
		}
		if d.Build != "" {
			if cd.build, err = parseConstraint(d.Build); err != nil {
				return r, ck.wrap(dp+".build", err)
			}
		}
		if !d.Verdict.Valid() {
			return r, ck.errf(dp+".verdict", "verdict %q must be affected, not-affected or unknown", d.Verdict)
		}
		r.distros = append(r.distros, cd)
	}
	for i, c := range h.Config {
		if !configRE.MatchString(c.Name) {
			return r, ck.errf(fmt.Sprintf("%s[%d].name", p("config"), i), "config flag %q must look like CONFIG_NAME", c.Name)
		}
	}
	for i, e := range h.Evidence {
		if err := checkEvidence(e, fmt.Sprintf("%s[%d]", p("evidence"), i), ck); err != nil {
			return r, err
		}
	}
	if c := h.Requires.Context; c != "" && c != ContextNMI && c != ContextInterrupt {
		return r, ck.errf(p("requires.context"), "unknown context %q (known: %s, %s)", c, ContextInterrupt, ContextNMI)
	}
	if n := h.Requires.MinCPUs; n < 0 || n > MaxMinCPUs {
		return r, ck.errf(p("requires.min_cpus"), "min_cpus %d out of range: at least 0, at most %d", n, MaxMinCPUs)
	}
	if h.Action == "" {
		return r, ck.errf(p("action"), "missing action (one of %s)", actionList())
	}
	if !h.Action.Valid() {
		return r, ck.errf(p("action"), "unknown action %q (known: %s)", h.Action, actionList())
	}
	if err := checkParams(h.Params, p("params"), ck); err != nil {
		return r, err
	}
	return r, nil
}

// checkEvidence validates one evidence entry found at path.
func checkEvidence(e Evidence, path string, ck *checker) error {
	kinds := 0
	for _, v := range []string{e.SelfTest, e.Call, e.Symbol, e.BTF} {
		if v != "" {
			kinds++
		}
	}
	if kinds != 1 {
		return ck.errf(path, "evidence needs exactly one of selftest, call, symbol, btf (got %d)", kinds)
	}
	switch {
	case e.SelfTest != "":
		if !idRE.MatchString(e.SelfTest) {
			return ck.errf(path+".selftest", "self-test %q must be kebab-case, e.g. uretprobe-seccomp-kill", e.SelfTest)
		}
	case e.Call != "":
		fn, callee, ok := strings.Cut(e.Call, "->")
		fn, callee = strings.TrimSpace(fn), strings.TrimSpace(callee)
		if !ok || !symbolRE.MatchString(fn) || !symbolRE.MatchString(callee) {
			return ck.errf(path+".call", "call %q must be \"function -> callee\" with kallsyms symbol names", e.Call)
		}
	case e.Symbol != "":
		if !symbolRE.MatchString(e.Symbol) {
			return ck.errf(path+".symbol", "symbol %q is not a kallsyms symbol name", e.Symbol)
		}
	case e.BTF != "":
		if !btfPathRE.MatchString(e.BTF) {
			return ck.errf(path+".btf", "btf %q must be a member path such as bpf_map.owner.attach_func_proto", e.BTF)
		}
	}
	if e.Data && e.Symbol == "" {
		return ck.errf(path+".data", "data applies to symbol evidence only")
	}
	for i, a := range e.Arch {
		if !slices.Contains(probe.Arches(), a) {
			return ck.errf(fmt.Sprintf("%s.arch[%d]", path, i), "unknown arch %q (known: %s)", a, strings.Join(probe.Arches(), ", "))
		}
	}
	if e.Present == "" && e.Absent == "" {
		return ck.errf(path, "evidence needs a verdict for present, absent or both")
	}
	if e.Present != "" && !e.Present.Valid() {
		return ck.errf(path+".present", "verdict %q must be affected, not-affected or unknown", e.Present)
	}
	if e.Absent != "" && !e.Absent.Valid() {
		return ck.errf(path+".absent", "verdict %q must be affected, not-affected or unknown", e.Absent)
	}
	return nil
}

func joinStrings[T ~string](vs []T) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}

func checkParams(pr Params, path string, ck *checker) error {
	if pr.MaxActive < 0 || pr.MaxActive > MaxActiveLimit {
		return ck.errf(joinKey(path, "maxactive"), "maxactive %d out of range 0..%d", pr.MaxActive, MaxActiveLimit)
	}
	if pr.MaxActiveCeiling < 0 || pr.MaxActiveCeiling > MaxActiveLimit {
		return ck.errf(joinKey(path, "maxactive_ceiling"), "maxactive_ceiling %d out of range 0..%d (the kernel's limit)", pr.MaxActiveCeiling, MaxActiveLimit)
	}
	if pr.MaxActive > 0 && pr.MaxActiveCeiling > 0 && pr.MaxActive > pr.MaxActiveCeiling {
		return ck.errf(joinKey(path, "maxactive"), "maxactive %d above maxactive_ceiling %d", pr.MaxActive, pr.MaxActiveCeiling)
	}
	return checkPacing(pr.PaceInterval, pr.PaceConcurrency, pr.PaceBatch, path, ck)
}

// compiledPolicy is a validated policy ready to apply to a catalog.
type compiledPolicy struct {
	rules      []compiledRule
	assertions []assertion
}

type assertion struct {
	re       *regexp.Regexp
	fixed    []ID
	affected []ID
	reason   string
}

// validatePolicy checks p against base (the catalog it will be applied to).
func validatePolicy(p *Policy, ck *checker, base *Catalog) (*compiledPolicy, error) {
	const want = "safebpf/v1"
	switch p.APIVersion {
	case want:
	case "":
		return nil, ck.errf("apiVersion", "missing apiVersion: want %q", want)
	default:
		return nil, ck.errf("apiVersion", "unsupported apiVersion %q: want %q", p.APIVersion, want)
	}
	if p.Mode != "" && !p.Mode.Valid() {
		return nil, ck.errf("mode", "unknown mode %q (known: enforce, warn, audit)", p.Mode)
	}
	cp := &compiledPolicy{}
	ruleLine := map[ID]string{}
	for i := range p.Rules {
		path := fmt.Sprintf("rules[%d]", i)
		r, err := compileHazard(&p.Rules[i], path, ck)
		if err != nil {
			return nil, err
		}
		id := p.Rules[i].ID
		if _, ok := base.Lookup(id); ok {
			return nil, ck.errf(path+".id", "rule ID %q collides with a built-in hazard (override it under hazards: instead)", id)
		}
		if prev, dup := ruleLine[id]; dup {
			return nil, ck.errf(path+".id", "duplicate rule ID %q (first at %s)", id, prev)
		}
		ruleLine[id] = path
		cp.rules = append(cp.rules, r)
	}
	known := base.IDs()
	for i := range p.Rules {
		known = append(known, p.Rules[i].ID)
	}
	isKnown := func(id ID) error {
		if slices.Contains(known, id) {
			return nil
		}
		return &UnknownIDError{ID: id, Known: known}
	}
	if _, err := checkForce(p.Force, known, FromPolicyFile); err != nil {
		fe := err.(*ForceError)
		path := fmt.Sprintf("force[%d]", fe.Index)
		if fe.Err == nil {
			return nil, ck.errf(path, "%s", fe)
		}
		return nil, ck.wrap(path, fe.Err)
	}
	// Map entries are checked in file order (by line) for stable errors.
	keys := make([]ID, 0, len(p.Hazards))
	for id := range p.Hazards {
		keys = append(keys, id)
	}
	sort.Slice(keys, func(i, j int) bool {
		li, lj := lineOf(ck.lines, "hazards."+string(keys[i])), lineOf(ck.lines, "hazards."+string(keys[j]))
		if li != lj {
			return li < lj
		}
		return keys[i] < keys[j]
	})
	for _, id := range keys {
		path := "hazards." + string(id)
		if err := isKnown(id); err != nil {
			return nil, ck.wrap(path, err)
		}
		o := p.Hazards[id]
		if o.Action != "" && !o.Action.Valid() {
			return nil, ck.errf(path+".action", "unknown action %q (known: %s)", o.Action, actionList())
		}
		if o.MinCPUs < 0 || o.MinCPUs > MaxMinCPUs {
			return nil, ck.errf(path+".min_cpus", "min_cpus %d out of range: at least 0, at most %d", o.MinCPUs, MaxMinCPUs)
		}
		if o.OnUnknown != "" && !o.OnUnknown.Valid() {
			return nil, ck.errf(path+".on_unknown", "unknown on_unknown %q (known: %s)", o.OnUnknown, joinStrings(validOnUnknown))
		}
		if err := checkParams(o.Params, path+".params", ck); err != nil {
			return nil, err
		}
	}
	for i, ka := range p.Kernels {
		path := fmt.Sprintf("kernels[%d]", i)
		if ka.Release == "" {
			return nil, ck.errf(path+".release", "missing release pattern")
		}
		re, err := regexp.Compile(ka.Release)
		if err != nil {
			return nil, ck.errf(path+".release", "bad regular expression: %s", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		}
		if len(ka.Fixed) == 0 && len(ka.Affected) == 0 {
			return nil, ck.errf(path, "kernel assertion lists no fixed or affected hazards")
		}
		for j, id := range ka.Fixed {
			if err := isKnown(id); err != nil {
				return nil, ck.wrap(fmt.Sprintf("%s.fixed[%d]", path, j), err)
			}
		}
		for j, id := range ka.Affected {
			if err := isKnown(id); err != nil {
				return nil, ck.wrap(fmt.Sprintf("%s.affected[%d]", path, j), err)
			}
			if slices.Contains(ka.Fixed, id) {
				return nil, ck.errf(fmt.Sprintf("%s.affected[%d]", path, j), "hazard %q is listed as both fixed and affected", id)
			}
		}
		cp.assertions = append(cp.assertions, assertion{re: re, fixed: ka.Fixed, affected: ka.Affected, reason: ka.Reason})
	}
	if err := checkPacing(p.Uprobes.Interval, p.Uprobes.Concurrency, p.Uprobes.Batch, "uprobes", ck); err != nil {
		return nil, err
	}
	return cp, nil
}
