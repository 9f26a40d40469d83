package hazards

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/safebpf/safebpf/probe"
)

//go:embed catalog.yaml
var catalogYAML []byte

// Catalog is an immutable, validated set of hazards. The zero value is empty.
type Catalog struct {
	// version is the catalog document's version ("2026.12.1").
	version string
	hazards []Hazard
	// rules parallels hazards: compiled constraints and policy state.
	rules []compiledRule
	// assertions are operators' statements about kernels, newest policy first.
	assertions []assertion
	// withPolicy is set on catalogs made by WithPolicy.
	withPolicy bool
}

var builtin = sync.OnceValue(func() *Catalog {
	c, err := ParseCatalog("catalog.yaml", catalogYAML)
	if err != nil {
		// The catalog is static data checked by TestBuiltinCatalog.
		panic(fmt.Sprintf("hazards: built-in catalog: %v", err))
	}
	return c
})

// Builtin returns the built-in catalog (catalog.yaml, embedded). It is
// parsed once, on first use.
func Builtin() *Catalog { return builtin() }

// ValidIDs returns the IDs of the built-in catalog, in catalog order, for
// error messages and flag help.
func ValidIDs() []ID { return Builtin().IDs() }

// catalogDocument is the shape of a catalog file: a policy document that
// holds only rules, plus the catalog's version.
type catalogDocument struct {
	APIVersion string   `yaml:"apiVersion" json:"apiVersion"`
	Version    string   `yaml:"version" json:"version"`
	Rules      []Hazard `yaml:"rules" json:"rules"`
}

// ParseCatalog parses a catalog document: `apiVersion: safebpf/v1`, a
// `version` (YYYY.MM.N, one per change set, see hazards/CHANGELOG.md) and
// a `rules:` list of hazards in the schema a policy file's rules use. name
// is used in error messages. Errors are *PolicyError.
func ParseCatalog(name string, data []byte) (*Catalog, error) {
	var doc catalogDocument
	lines, err := decodeDocument(name, data, &doc)
	if err != nil {
		return nil, err
	}
	ck := &checker{file: name, lines: lines}
	cp, err := validatePolicy(&Policy{APIVersion: doc.APIVersion, Rules: doc.Rules}, ck, &Catalog{})
	if err != nil {
		return nil, err
	}
	switch {
	case doc.Version == "":
		return nil, ck.errf("version", "missing catalog version (YYYY.MM.N, e.g. 2026.12.1)")
	case !versionRE.MatchString(doc.Version):
		return nil, ck.errf("version", "catalog version %q must be YYYY.MM.N, e.g. 2026.12.1", doc.Version)
	}
	return &Catalog{version: doc.Version, hazards: doc.Rules, rules: cp.rules}, nil
}

// Version returns the catalog's version ("2026.12.1"); a catalog with a
// policy applied keeps its base catalog's version.
func (c *Catalog) Version() string {
	if c == nil {
		return ""
	}
	return c.version
}

// MarshalJSON renders the whole catalog as a catalog document:
// {"apiVersion", "version", "rules": [every hazard, policy overrides
// applied and user rules appended]}. ParseCatalog and LoadCatalog read it
// back; `safebpf hazards --export` prints it.
func (c *Catalog) MarshalJSON() ([]byte, error) {
	doc := catalogDocument{APIVersion: "safebpf/v1", Version: c.Version(), Rules: c.Hazards()}
	if doc.Rules == nil {
		doc.Rules = []Hazard{}
	}
	return json.Marshal(doc)
}

// Hazards returns the entries in catalog order. The slice is a copy; the
// entries' own slices are shared and must not be modified.
func (c *Catalog) Hazards() []Hazard {
	if c == nil {
		return nil
	}
	return append([]Hazard(nil), c.hazards...)
}

// IDs returns the hazard IDs in catalog order.
func (c *Catalog) IDs() []ID {
	if c == nil {
		return nil
	}
	ids := make([]ID, len(c.hazards))
	for i := range c.hazards {
		ids[i] = c.hazards[i].ID
	}
	return ids
}

// Lookup returns the hazard with the given ID. The result must not be modified.
func (c *Catalog) Lookup(id ID) (*Hazard, bool) {
	if c == nil {
		return nil, false
	}
	for i := range c.hazards {
		if c.hazards[i].ID == id {
			return &c.hazards[i], true
		}
	}
	return nil, false
}

// Disabled reports whether a policy disabled the hazard id.
func (c *Catalog) Disabled(id ID) bool {
	if c == nil {
		return false
	}
	for i := range c.hazards {
		if c.hazards[i].ID == id {
			return c.rules[i].disabledBy != ""
		}
	}
	return false
}

// Evaluate returns one Finding per hazard that concerns a.Mechanism on k,
// in catalog order. A nil k is a kernel about which nothing is known. See
// the package documentation for the order in which rules are applied.
func (c *Catalog) Evaluate(k *probe.Kernel, a Attachment) []Finding {
	if c == nil {
		return nil
	}
	if k == nil {
		k = &probe.Kernel{}
	}
	var out []Finding
	for i := range c.hazards {
		h := &c.hazards[i]
		if !slices.Contains(h.Mechanisms, a.Mechanism) {
			continue
		}
		v, why := c.evaluate(i, k, a)
		out = append(out, Finding{
			ID:        h.ID,
			Verdict:   v,
			Reason:    string(h.ID) + ": " + why,
			Action:    h.Action,
			OnUnknown: h.EffectiveOnUnknown(),
			Mechanism: a.Mechanism,
			Hazard:    h,
		})
	}
	return out
}

// evaluate decides hazard i for k and a: policy disable; the attachment
// conditions (arch, program behaviour, execution context, seccomp, CPUs)
// that filter to not-affected; then kernel assertions, live evidence,
// config and preemption model, distro build ranges and upstream ranges. A
// condition that cannot be decided turns an affected verdict into unknown.
func (c *Catalog) evaluate(i int, k *probe.Kernel, a Attachment) (Verdict, string) {
	h, r := &c.hazards[i], &c.rules[i]
	if r.disabledBy != "" {
		return NotAffected, "disabled by policy " + r.disabledBy
	}

	var doubts []string
	if len(h.Arch) > 0 {
		switch {
		case k.Arch == "":
			doubts = append(doubts, "arch unknown")
		case !slices.Contains(h.Arch, k.Arch):
			return NotAffected, fmt.Sprintf("arch %s not in [%s]", k.Arch, strings.Join(h.Arch, " "))
		}
	}
	if h.Requires.ReadsUserMemory && !a.ReadsUserMemory {
		return NotAffected, "program does not read user memory (no bpf_probe_read_user*, bpf_probe_read*, bpf_copy_from_user*)"
	}
	if h.Requires.UserStacks && !a.ReadsUserStacks {
		return NotAffected, "program takes no user stacks (no BPF_F_USER_STACK)"
	}
	if h.Requires.TailCalls && !a.TailCalls {
		return NotAffected, "program makes no tail calls"
	}
	switch h.Requires.Context {
	case ContextNMI:
		if a.Mechanism != probe.PerfEventHardware {
			return NotAffected, fmt.Sprintf("%s does not run in NMI context", a.Mechanism)
		}
	case ContextInterrupt:
		switch {
		case a.Mechanism.InterruptContext() == probe.Never:
			return NotAffected, fmt.Sprintf("%s programs never run in interrupt context (process context)", a.Mechanism)
		case a.Mechanism.InterruptContext(a.AttachTo...) == probe.Never:
			return NotAffected, fmt.Sprintf("%s on %s runs only in process context (syscall entry points are never called from an interrupt)", a.Mechanism, targetList(a.AttachTo))
		case a.Mechanism.InterruptContext(a.AttachTo...) == probe.Maybe:
			doubt := fmt.Sprintf("%s programs run in interrupt context only when what they trace does", a.Mechanism)
			for _, t := range a.AttachTo {
				if a.Mechanism.InterruptContext(t) != probe.Never {
					doubt += fmt.Sprintf(" (%q is not a syscall entry point)", t)
					break
				}
			}
			doubts = append(doubts, doubt)
		}
	}
	if h.Requires.Seccomp && !a.Seccomp {
		return NotAffected, "traced process not under seccomp"
	}
	if n := h.Requires.MinCPUs; n > 0 {
		switch {
		case k.CPUs <= 0:
			doubts = append(doubts, fmt.Sprintf("CPU count unknown (min_cpus %d)", n))
		case k.CPUs < n:
			return NotAffected, fmt.Sprintf("%d CPUs < min_cpus %d", k.CPUs, n)
		}
	}
	v, why := c.kernelVerdict(i, k, &doubts)
	if v == Affected && len(doubts) > 0 {
		return Unknown, why + ", but " + strings.Join(doubts, ", ")
	}
	return v, why
}

// targetList names up to three targets and counts the rest.
func targetList(ts []string) string {
	if len(ts) <= 3 {
		return strings.Join(ts, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(ts[:3], ", "), len(ts)-3)
}

// kernelVerdict applies, in order: kernel assertions, live evidence,
// config and preemption model, distro build ranges, upstream ranges.
// Conditions that cannot be decided are added to doubts.
func (c *Catalog) kernelVerdict(i int, k *probe.Kernel, doubts *[]string) (Verdict, string) {
	h, r := &c.hazards[i], &c.rules[i]
	for _, as := range c.assertions {
		if k.Release == "" || !as.re.MatchString(k.Release) {
			continue
		}
		why := fmt.Sprintf("policy kernel assertion: release %s matches /%s/", k.Release, as.re)
		if as.reason != "" {
			why += " (" + as.reason + ")"
		}
		if slices.Contains(as.fixed, h.ID) {
			return NotAffected, why + ", fixed"
		}
		if slices.Contains(as.affected, h.ID) {
			return Affected, why + ", affected"
		}
	}

	v, why, notes := evidenceVerdict(h, k)
	if v != "" {
		return v, why
	}
	suffix := ""
	if len(notes) > 0 {
		suffix = "; " + strings.Join(notes, "; ")
	}

	for _, cc := range h.Config {
		val, known := k.ConfigValue(cc.Name)
		switch {
		case !known && cc.UnknownMeansSet:
			// Counted as set.
		case !known:
			*doubts = append(*doubts, "kernel config unknown ("+cc.Name+")")
		case val == "" || val == "n":
			return NotAffected, cc.Name + " not set (" + configSource(k) + ")" + suffix
		}
	}
	if h.Requires.Preemptible {
		switch p := k.Preemption; {
		case !p.Known():
			*doubts = append(*doubts, "preemption model unknown (no /proc/version build flags or config)")
		case !*p.Preemptible:
			return NotAffected, p.Witness + suffix
		}
	}

	var distroDoubt string
	for j, d := range h.Distros {
		if !distroMatches(k, d.Distro) {
			continue
		}
		cd := r.distros[j]
		var parts []string
		if cd.upstream != nil {
			if k.Version == nil {
				distroDoubt = d.Distro + " upstream version unknown"
				continue
			}
			t, _ := matchAny([]*constraint{cd.upstream}, *k.Version)
			if t == triUnknown {
				distroDoubt = fmt.Sprintf("%s %s sublevel unknown", d.Distro, k.Version)
			}
			if t != triYes {
				continue
			}
			parts = append(parts, fmt.Sprintf("upstream %s in %s", k.Version, cd.upstream.text))
		}
		if cd.build != nil {
			b, ok := distroBuild(k, d.Distro)
			if !ok {
				distroDoubt = d.Distro + " build number unknown"
				continue
			}
			if !cd.build.check(b, 0, 0) {
				continue
			}
			parts = append(parts, fmt.Sprintf("build %d %s", b, cd.build.text))
		}
		why := d.Distro + " " + strings.Join(parts, ", ")
		if d.Reason != "" {
			why += " (" + d.Reason + ")"
		}
		return d.Verdict, why + suffix
	}

	if len(r.affected) == 0 && len(r.unknown) == 0 {
		switch {
		case len(h.Distros) == 0 && len(h.Evidence) == 0:
			return Affected, "no version range: every kernel counts" + suffix
		case distroDoubt != "":
			return Unknown, distroDoubt + suffix
		}
		return NotAffected, "no distro range or evidence matched" + suffix
	}
	if k.Version == nil {
		return Unknown, "version unknown" + suffix
	}
	v, why = rangeVerdict(r, *k.Version)
	return v, why + suffix
}

// evidenceOrder is the order of trust of the kinds of evidence: what the
// running kernel does, then its machine code, its symbol table, its BTF.
var evidenceOrder = map[probe.FactKind]int{probe.FactSelfTest: 0, probe.FactCall: 1, probe.FactSymbol: 2, probe.FactBTF: 3}

// evidenceVerdict weighs h's evidence on k in the order of trust and
// returns the first conclusive verdict (empty when none), the witness, and
// notes on the evidence that could not be established.
func evidenceVerdict(h *Hazard, k *probe.Kernel) (Verdict, string, []string) {
	idx := make([]int, len(h.Evidence))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		return evidenceOrder[h.Evidence[idx[a]].Fact().Kind] < evidenceOrder[h.Evidence[idx[b]].Fact().Kind]
	})
	var notes []string
	for _, i := range idx {
		e := h.Evidence[i]
		f := e.Fact()
		if len(e.Arch) > 0 && !slices.Contains(e.Arch, k.Arch) {
			continue
		}
		o := k.Observe(f)
		witness := o.Witness
		if witness == "" {
			witness = f.String()
		}
		switch {
		case !o.Known() && lookedFor(k, f):
			// A fact nobody looked for is no news; one whose witness
			// failed (kcore unreadable, data symbols not listed) is.
			notes = append(notes, witness)
		case !o.Known():
		case *o.Holds && e.Present != "":
			return e.Present, witness, notes
		case !*o.Holds && e.Absent != "":
			return e.Absent, witness, notes
		}
	}
	return "", "", notes
}

// lookedFor reports whether anyone tried to establish f on k.
func lookedFor(k *probe.Kernel, f probe.Fact) bool {
	if f.Kind == probe.FactSymbol {
		_, ok := k.Kallsyms.Symbols[f.Name]
		return ok && k.Kallsyms.Readable
	}
	_, ok := k.Observations[f.Key()]
	return ok
}

// rangeVerdict applies the upstream ranges to v: a version in an unknown
// range is unknown, in an affected range affected, else not affected. A
// version with an unknown sublevel is judged over its whole X.Y line:
// conclusive when every sublevel agrees, else unknown.
func rangeVerdict(r *compiledRule, v probe.Version) (Verdict, string) {
	at := func(major, minor, patch int) (Verdict, *constraint) {
		for _, c := range r.unknown {
			if c.check(major, minor, patch) {
				return Unknown, c
			}
		}
		for _, c := range r.affected {
			if c.check(major, minor, patch) {
				return Affected, c
			}
		}
		return NotAffected, nil
	}
	explain := func(got Verdict, c *constraint) (Verdict, string) {
		switch got {
		case Affected:
			return Affected, fmt.Sprintf("upstream %s in %s", v, c.text)
		case Unknown:
			return Unknown, fmt.Sprintf("upstream %s in %s, where no source says whether it is affected", v, c.text)
		}
		all := append(append([]*constraint(nil), r.affected...), r.unknown...)
		return NotAffected, fmt.Sprintf("upstream %s outside %s", v, joinConstraints(all))
	}
	if v.PatchKnown {
		return explain(at(v.Major, v.Minor, v.Patch))
	}
	all := append(append([]*constraint(nil), r.affected...), r.unknown...)
	var first Verdict
	var firstC *constraint
	for n, p := range linePoints(all, v.Major, v.Minor) {
		got, c := at(v.Major, v.Minor, p)
		if n == 0 {
			first, firstC = got, c
		} else if got != first {
			return Unknown, fmt.Sprintf("%s sublevel unknown and the ranges split the %s line", v, v)
		}
	}
	return explain(first, firstC)
}

func configSource(k *probe.Kernel) string {
	if k.ConfigSource == "" {
		return "kernel config"
	}
	return "kernel config " + k.ConfigSource
}

func joinConstraints(cs []*constraint) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = c.raw
	}
	return RangeText(s...)
}

// distroMatches reports whether k is a build of the distribution d.
func distroMatches(k *probe.Kernel, d string) bool {
	if k.Distro.ID == d {
		return true
	}
	switch d {
	case "ubuntu":
		return strings.HasPrefix(k.VersionSignature, "Ubuntu ")
	case "amzn":
		return k.Distro.Amazon != ""
	case "rhel":
		return k.Distro.RHEL != ""
	case "debian":
		return k.Distro.DebianPackage != ""
	}
	return false
}

// distroBuild returns the distribution's build number for k: the Ubuntu ABI,
// the first number of the RHEL build, the Debian package revision, or the
// Amazon Linux build after the first dash.
func distroBuild(k *probe.Kernel, d string) (int, bool) {
	switch {
	case d == "ubuntu" || k.Distro.UbuntuABI > 0 && k.Distro.ID == d:
		return k.Distro.UbuntuABI, k.Distro.UbuntuABI > 0
	case k.Distro.RHEL != "" && (d == "rhel" || k.Distro.ID == d):
		return leadingInt(k.Distro.RHELBuild)
	case d == "debian":
		if _, rev, ok := strings.Cut(k.Distro.DebianPackage, "-"); ok {
			return leadingInt(rev)
		}
	case d == "amzn":
		if _, rest, ok := strings.Cut(k.Release, "-"); ok {
			return leadingInt(rest)
		}
	}
	return 0, false
}

func leadingInt(s string) (int, bool) {
	end := 0
	for end < len(s) && end < 9 && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	if end == 0 {
		return 0, false
	}
	n, err := strconv.Atoi(s[:end])
	return n, err == nil
}

// Facts returns every fact the catalog's evidence asks about (built-in
// hazards and policy rules alike), in catalog order without duplicates. A
// kernel description must record them (probe.Options.Facts,
// probe.Description.Facts) for the evidence to count: evidence nobody
// looked for is unknown.
func (c *Catalog) Facts() []probe.Fact {
	return c.FactsFor()
}

// FactsFor returns the facts the evidence of the hazards that concern any
// of mechs asks about, as Facts does; no mechanism means every hazard. A
// planner that evaluates a request only for some mechanisms needs only
// these recorded (probe.Options.Facts) before it evaluates.
func (c *Catalog) FactsFor(mechs ...probe.Mechanism) []probe.Fact {
	if c == nil {
		return nil
	}
	var out []probe.Fact
	seen := map[string]int{}
	for i := range c.hazards {
		if len(mechs) > 0 && !slices.ContainsFunc(mechs, func(m probe.Mechanism) bool { return slices.Contains(c.hazards[i].Mechanisms, m) }) {
			continue
		}
		for _, e := range c.hazards[i].Evidence {
			f := e.Fact()
			if j, ok := seen[f.Key()]; ok {
				out[j].Data = out[j].Data || f.Data
				continue
			}
			seen[f.Key()] = len(out)
			out = append(out, f)
		}
	}
	return out
}
