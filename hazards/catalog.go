package hazards

import (
	_ "embed"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/safebpf/safebpf/probe"
)

//go:embed catalog.yaml
var catalogYAML []byte

// Catalog is an immutable, validated set of hazards. The zero value is empty.
type Catalog struct {
	hazards []Hazard
	// rules parallels hazards: compiled constraints and policy state.
	rules []compiledRule
	// assertions are operators' statements about kernels, newest policy first.
	assertions []assertion
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
// holds only rules.
type catalogDocument struct {
	APIVersion string   `yaml:"apiVersion"`
	Rules      []Hazard `yaml:"rules"`
}

// ParseCatalog parses a catalog document: `apiVersion: safebpf/v1` and a
// `rules:` list of hazards in the schema a policy file's rules use. name is
// used in error messages. Errors are *PolicyError.
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
	return &Catalog{hazards: doc.Rules, rules: cp.rules}, nil
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

// CheckIDs returns an *UnknownIDError for the first ID in ids that the
// catalog does not know. ForceAll ("all", exactly so spelled) is accepted
// when allowAll is set.
func (c *Catalog) CheckIDs(ids []ID, allowAll bool) error {
	known := c.IDs()
	for _, id := range ids {
		if allowAll && id == ForceAll {
			continue
		}
		if !slices.Contains(known, id) {
			return &UnknownIDError{ID: id, Known: known}
		}
	}
	return nil
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
			Mechanism: a.Mechanism,
			Hazard:    h,
		})
	}
	return out
}

// evaluate decides hazard i for k and a: policy disable, then conditions
// (arch, requires, config) that filter to not-affected, then kernel
// assertions, evidence symbols, distro build ranges and upstream ranges.
func (c *Catalog) evaluate(i int, k *probe.Kernel, a Attachment) (Verdict, string) {
	h, r := &c.hazards[i], &c.rules[i]
	if r.disabledBy != "" {
		return NotAffected, "disabled by policy " + r.disabledBy
	}

	// Conditions. A condition that cannot be decided leaves a doubt that
	// turns an "affected" verdict into "unknown".
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
		return NotAffected, "program does not read user memory"
	}
	if h.Requires.Context == ContextNMI && a.Mechanism != probe.PerfEventHardware {
		return NotAffected, fmt.Sprintf("%s does not run in NMI context", a.Mechanism)
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
	for _, cc := range h.Config {
		val, known := k.ConfigValue(cc.Name)
		switch {
		case !known && cc.UnknownMeansSet:
			// Counted as set.
		case !known:
			doubts = append(doubts, "kernel config unknown ("+cc.Name+")")
		case val == "" || val == "n":
			return NotAffected, cc.Name + " not set"
		}
	}
	v, why := c.kernelVerdict(i, k)
	if v == Affected && len(doubts) > 0 {
		return Unknown, why + ", but " + strings.Join(doubts, ", ")
	}
	return v, why
}

// kernelVerdict applies kernel assertions > evidence symbols > distro build
// ranges > upstream version ranges.
func (c *Catalog) kernelVerdict(i int, k *probe.Kernel) (Verdict, string) {
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

	var notes []string
	for _, e := range h.Evidence {
		present, known := k.Symbol(e.Symbol)
		switch {
		case !known:
			// Not looked for, or kallsyms unreadable: no conclusion.
		case present && e.Present != "":
			return e.Present, e.Symbol + " present in kallsyms"
		case !present && e.Absent != "" && e.Data && !k.Kallsyms.DataSymbols:
			notes = append(notes, e.Symbol+" absence inconclusive (kallsyms lists no data symbols)")
		case !present && e.Absent != "":
			return e.Absent, e.Symbol + " absent from kallsyms"
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
		return d.Verdict, why
	}

	suffix := ""
	if len(notes) > 0 {
		suffix = "; " + strings.Join(notes, "; ")
	}
	if len(r.affected) == 0 {
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
	t, m := matchAny(r.affected, *k.Version)
	switch t {
	case triYes:
		return Affected, fmt.Sprintf("upstream %s in %s", k.Version, m.text) + suffix
	case triNo:
		return NotAffected, fmt.Sprintf("upstream %s outside %s", k.Version, joinConstraints(r.affected)) + suffix
	}
	return Unknown, fmt.Sprintf("%s sublevel unknown and the ranges split the %s line", k.Version, k.Version) + suffix
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

// EvidenceSymbols returns the kallsyms symbols the catalog's evidence rules
// look at, in catalog order without duplicates. A kernel description must
// record these (probe.Kernel.Kallsyms.Symbols) for the evidence to count.
func (c *Catalog) EvidenceSymbols() []string {
	if c == nil {
		return nil
	}
	var out []string
	for i := range c.hazards {
		for _, e := range c.hazards[i].Evidence {
			if !slices.Contains(out, e.Symbol) {
				out = append(out, e.Symbol)
			}
		}
	}
	return out
}
