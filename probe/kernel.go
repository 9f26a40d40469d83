package probe

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Version is an upstream kernel version. Patch is meaningful only when
// PatchKnown is set: "5.4.0-1103-aws" tells the line (5.4) but not the
// upstream sublevel.
type Version struct {
	Major, Minor, Patch int
	PatchKnown          bool
}

// String returns "X.Y.Z", or "X.Y" when the sublevel is unknown.
func (v Version) String() string {
	if !v.PatchKnown {
		return fmt.Sprintf("%d.%d", v.Major, v.Minor)
	}
	return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
}

// MarshalText writes String.
func (v Version) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// UnmarshalText reads "X.Y" or "X.Y.Z".
func (v *Version) UnmarshalText(b []byte) error {
	parts := strings.Split(string(b), ".")
	if len(parts) < 2 || len(parts) > 3 {
		return fmt.Errorf("kernel version %q: want X.Y or X.Y.Z", b)
	}
	var n [3]int
	for i, p := range parts {
		x, err := strconv.Atoi(p)
		if err != nil || x < 0 {
			return fmt.Errorf("kernel version %q: %q is not a number", b, p)
		}
		n[i] = x
	}
	*v = Version{Major: n[0], Minor: n[1], Patch: n[2], PatchKnown: len(parts) == 3}
	return nil
}

// Less orders versions; an unknown sublevel sorts as 0.
func (v Version) Less(o Version) bool {
	if v.Major != o.Major {
		return v.Major < o.Major
	}
	if v.Minor != o.Minor {
		return v.Minor < o.Minor
	}
	return v.Patch < o.Patch
}

// VersionSource names where the trusted upstream version came from.
type VersionSource string

// The version sources, in the order of trust described in doc.go.
const (
	SourceVersionSignature VersionSource = "version_signature" // Ubuntu /proc/version_signature
	SourceDebian           VersionSource = "proc_version"      // "Debian X.Y.Z-N" in /proc/version
	SourceRelease          VersionSource = "release"           // uname -r carrying a full X.Y.Z
	SourceVDSO             VersionSource = "vdso"              // LINUX_VERSION_CODE from the vDSO (sublevel clamps at 255)
	SourceReleasePartial   VersionSource = "release_partial"   // uname -r gives X.Y only (e.g. 5.4.0-1103-aws)
	SourceOverride         VersionSource = "override"          // set by the caller or an operator
	SourceNone             VersionSource = "none"              // nothing usable
)

// Distro is the distribution identity that matters for backports.
type Distro struct {
	// ID and VersionID come from os-release ("ubuntu", "22.04").
	ID        string `json:"id,omitempty"`
	VersionID string `json:"version_id,omitempty"`
	// UbuntuABI is the ABI number of an Ubuntu kernel ("6.8.0-86-generic" → 86), 0 when not Ubuntu-shaped.
	UbuntuABI int `json:"ubuntu_abi,omitempty"`
	// RHEL is the Enterprise Linux tag ("el7", "el8", "el9"), and RHELBuild the
	// build number after the base version ("4.18.0-477.10.1.el8_8" → "477.10.1").
	RHEL      string `json:"rhel,omitempty"`
	RHELBuild string `json:"rhel_build,omitempty"`
	// Amazon is "amzn2" or "amzn2023" for Amazon Linux kernels.
	Amazon string `json:"amazon,omitempty"`
	// DebianPackage is the Debian package version from /proc/version ("6.1.76-1").
	DebianPackage string `json:"debian_package,omitempty"`
}

// Support is a three-valued answer about a mechanism: Available is true,
// false, or nil when the probe could not decide. Reason says why.
type Support struct {
	Available *bool  `json:"available"`
	Reason    string `json:"reason"`
}

// Known reports whether the answer is conclusive.
func (s Support) Known() bool { return s.Available != nil }

// Yes reports a conclusive "available".
func (s Support) Yes() bool { return s.Available != nil && *s.Available }

// No reports a conclusive "not available".
func (s Support) No() bool { return s.Available != nil && !*s.Available }

// Supported returns a conclusive "available" with its reason.
func Supported(reason string) Support { t := true; return Support{&t, reason} }

// Unsupported returns a conclusive "not available" with its reason.
func Unsupported(reason string) Support { f := false; return Support{&f, reason} }

// Undecided returns an inconclusive answer with the reason the probe could not tell.
func Undecided(reason string) Support { return Support{nil, reason} }

// Kallsyms records what /proc/kallsyms said about the symbols looked for.
type Kallsyms struct {
	// Readable is set when kallsyms could be read with real addresses or at
	// least names. A detection that looked for no symbol leaves Kallsyms
	// zero.
	Readable bool `json:"readable"`
	// DataSymbols is set when kallsyms lists data symbols (CONFIG_KALLSYMS_ALL),
	// so the absence of a data symbol is meaningful.
	DataSymbols bool `json:"data_symbols"`
	// Symbols maps each symbol looked for (the symbol facts of
	// Options.Facts or Description.Facts) to whether it is present.
	Symbols map[string]bool `json:"symbols,omitempty"`
}

// Kernel is everything safebpf knows about one kernel. It is plain data: it
// round-trips through JSON, and fixtures in testdata/ are Kernels captured on
// real machines with `safebpf probe --json`.
type Kernel struct {
	Release          string `json:"release"`
	ProcVersion      string `json:"proc_version,omitempty"`
	VersionSignature string `json:"version_signature,omitempty"`
	// VDSOVersion is LINUX_VERSION_CODE from the vDSO, "X.Y.Z" (sublevel clamped at 255).
	VDSOVersion string `json:"vdso_version,omitempty"`

	// Version is the upstream version safebpf trusts; nil when unknown.
	Version       *Version      `json:"version"`
	VersionSource VersionSource `json:"version_source"`
	// VersionNote explains the choice, e.g. "sublevel unknown: 5.4.0-1103-aws has no version_signature".
	VersionNote string `json:"version_note,omitempty"`

	Distro Distro `json:"distro"`
	// Arch is the GOARCH name ("amd64", "arm64").
	Arch string `json:"arch"`
	// CPUs is the number of possible CPUs (0 when unknown).
	CPUs int `json:"cpus"`
	// Preemption is the preemption model the kernel was built with, from
	// /proc/version, else the config.
	Preemption Preemption `json:"preemption"`

	// Config holds kernel config flags (CONFIG_X → "y", "m", or a value);
	// nil means the config could not be read. ConfigSource names the file.
	Config       map[string]string `json:"config,omitempty"`
	ConfigSource string            `json:"config_source,omitempty"`

	Kallsyms Kallsyms `json:"kallsyms"`
	BTF      bool     `json:"btf"`
	Tracefs  string   `json:"tracefs,omitempty"`
	Debugfs  string   `json:"debugfs,omitempty"`

	// Mechanisms says, per mechanism, whether it is available.
	Mechanisms map[Mechanism]Support `json:"mechanisms"`

	// Observations holds what was established about facts other than
	// kallsyms symbols (machine code, BTF, self-tests), by Fact.Key. Read
	// them with Observe.
	Observations map[string]Observation `json:"observations,omitempty"`

	// Notes lists what Detect could not read or decide ("read kernel
	// config: …"), in the order met. Empty when everything was read.
	Notes []string `json:"notes,omitempty"`
}

// Support returns what is known about m; missing entries are undecided.
func (k *Kernel) Support(m Mechanism) Support {
	if k == nil || k.Mechanisms == nil {
		return Undecided("not probed")
	}
	s, ok := k.Mechanisms[m]
	if !ok {
		return Undecided("not probed")
	}
	return s
}

// ConfigValue returns the value of a config flag and whether the config is known at all.
func (k *Kernel) ConfigValue(name string) (value string, known bool) {
	if k == nil || k.Config == nil {
		return "", false
	}
	return k.Config[name], true
}

// Symbol returns the kallsyms verdict on sym: present, and whether the answer is meaningful.
func (k *Kernel) Symbol(sym string) (present, known bool) {
	if k == nil || !k.Kallsyms.Readable {
		return false, false
	}
	p, ok := k.Kallsyms.Symbols[sym]
	return p, ok
}

// copyOf returns a pointer to a copy of *p, nil for nil.
func copyOf[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// cloneWith copies m, each value passed through f; nil stays nil.
func cloneWith[K comparable, V any](m map[K]V, f func(V) V) map[K]V {
	if m == nil {
		return nil
	}
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = f(v)
	}
	return out
}

// withAll adds src's entries to dst, making dst when it is nil and src
// has any, and returns it.
func withAll[K comparable, V any](dst, src map[K]V) map[K]V {
	if dst == nil && len(src) > 0 {
		dst = make(map[K]V, len(src))
	}
	maps.Copy(dst, src)
	return dst
}

// Clone returns a deep copy. It copies field by field (a JSON round trip
// costs milliseconds for a kernel config's ~2,000 flags);
// TestCloneIsDeep holds it against the JSON form.
func (k *Kernel) Clone() *Kernel {
	if k == nil {
		return nil
	}
	c := *k
	c.Version = copyOf(k.Version)
	c.Preemption.Preemptible = copyOf(k.Preemption.Preemptible)
	c.Config = maps.Clone(k.Config)
	c.Kallsyms.Symbols = maps.Clone(k.Kallsyms.Symbols)
	c.Mechanisms = cloneWith(k.Mechanisms, func(s Support) Support {
		s.Available = copyOf(s.Available)
		return s
	})
	c.Observations = cloneWith(k.Observations, func(o Observation) Observation {
		o.Holds = copyOf(o.Holds)
		return o
	})
	c.Notes = slices.Clone(k.Notes)
	return &c
}

// Merge returns a copy of k with what o adds, o being a later detection of
// the same kernel that asked for more (Options.Mechanisms, Options.Facts):
// o's mechanisms, symbols and observations are added, replacing k's for
// the same mechanism, symbol or fact; kallsyms counts as readable, and as
// listing data symbols, when either says so; o's notes that k lacks are
// appended. The identity (release, version, config, ...) stays k's. A nil
// o returns a copy of k.
func (k *Kernel) Merge(o *Kernel) *Kernel {
	c := k.Clone()
	if c == nil || o == nil {
		return c
	}
	c.Mechanisms = withAll(c.Mechanisms, o.Mechanisms)
	c.Kallsyms.Readable = c.Kallsyms.Readable || o.Kallsyms.Readable
	c.Kallsyms.DataSymbols = c.Kallsyms.DataSymbols || o.Kallsyms.DataSymbols
	c.Kallsyms.Symbols = withAll(c.Kallsyms.Symbols, o.Kallsyms.Symbols)
	c.Observations = withAll(c.Observations, o.Observations)
	for _, n := range o.Notes {
		if !slices.Contains(c.Notes, n) {
			c.Notes = append(c.Notes, n)
		}
	}
	return c
}
