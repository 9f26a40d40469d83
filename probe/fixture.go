package probe

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/safebpf/safebpf/internal/boundedio"
	"github.com/safebpf/safebpf/internal/kernel"
)

// ErrInvalidKernel is matched by every error of [ReadKernelJSON] about the
// content of a kernel description.
var ErrInvalidKernel = errors.New("invalid kernel description")

// Bounds on a kernel description read by [ReadKernelJSON].
const (
	// MaxKernelJSONSize bounds the input: the fixtures captured in the
	// kernel-matrix guests, with full kernel configs, are about 120 KiB.
	MaxKernelJSONSize = 4 << 20
	// MaxCPUs bounds Kernel.CPUs (0 means unknown) wherever a kernel is
	// described: CONFIG_NR_CPUS tops out at 8192 on x86 and 4096 on
	// arm64.
	MaxCPUs = kernel.MaxCPUs
)

// Bounds on the parts of a kernel description. The counts are two orders
// of magnitude above what real kernels produce (a distribution config has
// about 3000 set options).
const (
	maxEntries = 100_000 // config options, kallsyms symbols, observations
	maxNotes   = 1000
	maxName    = 512  // a config option, symbol or key
	maxText    = 4096 // any other string
	maxRelease = 64   // __NEW_UTS_LEN
)

var configNameRE = regexp.MustCompile(`^CONFIG_[A-Za-z0-9_]+$`)

// ReadKernelJSON reads a kernel description written by `safebpf probe
// --json`: either the whole report (an object whose "kernel" member is the
// kernel) or the kernel object alone. It reads at most [MaxKernelJSONSize]
// bytes (more fails with an error matching [boundedio.ErrTooLarge]) and
// decodes strictly: unknown fields, trailing data and values no kernel has
// are errors matching [ErrInvalidKernel] that name the field — a missing or
// unparseable release, CPUs outside 0..[MaxCPUs], an arch [ParseArch]
// rejects, an unknown mechanism or version source, a version beyond
// 255.255.99999, names that are not config options or symbols, and control
// characters anywhere (they would reach the operator's terminal). An arch
// written as uname -m writes it (x86_64) is returned in its GOARCH form,
// and a missing version source as [SourceNone].
//
// Read a file with boundedio.Open first, so that a FIFO or a device fails
// at once.
func ReadKernelJSON(r io.Reader) (*Kernel, error) {
	b, err := boundedio.ReadAll(r, MaxKernelJSONSize, "kernel description", "")
	if err != nil {
		return nil, err
	}
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) == 0 {
		return nil, invalidKernel("empty input: want the JSON of 'safebpf probe --json'")
	}
	if trimmed[0] != '{' {
		return nil, invalidKernel("want a JSON object (the output of 'safebpf probe --json'), got %s", jsonKind(trimmed[0]))
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &top); err != nil {
		return nil, invalidKernel("%s", strings.TrimPrefix(err.Error(), "json: "))
	}
	raw, where := trimmed, ""
	if kr, ok := top["kernel"]; ok {
		if _, bare := top["release"]; !bare {
			raw, where = kr, `"kernel" member: `
		}
	}
	var k Kernel
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&k); err != nil {
		return nil, invalidKernel("%s%s", where, strings.TrimPrefix(err.Error(), "json: "))
	}
	if err := validateKernel(&k); err != nil {
		return nil, err
	}
	return &k, nil
}

func invalidKernel(format string, args ...any) error {
	return fmt.Errorf("read kernel description: %s: %w", fmt.Sprintf(format, args...), ErrInvalidKernel)
}

func jsonKind(c byte) string {
	switch c {
	case '[':
		return "an array"
	case '"':
		return "a string"
	}
	return "a bare value"
}

// validateKernel checks what JSON decoding cannot, and writes the arch in
// its GOARCH form.
func validateKernel(k *Kernel) error {
	if k.Release == "" {
		return invalidKernel(`no "release": not a kernel described by 'safebpf probe --json'`)
	}
	if err := checkName("release", k.Release, maxRelease); err != nil {
		return err
	}
	if _, err := ParseRelease(k.Release); err != nil {
		return invalidKernel("release %q: want X.Y[.Z][suffix] as uname -r prints it", k.Release)
	}
	for _, f := range []struct{ name, v string }{
		{"proc_version", k.ProcVersion}, {"version_signature", k.VersionSignature},
		{"vdso_version", k.VDSOVersion}, {"version_note", k.VersionNote},
		{"config_source", k.ConfigSource}, {"tracefs", k.Tracefs}, {"debugfs", k.Debugfs},
		{"distro.id", k.Distro.ID}, {"distro.version_id", k.Distro.VersionID},
		{"distro.rhel", k.Distro.RHEL}, {"distro.rhel_build", k.Distro.RHELBuild},
		{"distro.amazon", k.Distro.Amazon}, {"distro.debian_package", k.Distro.DebianPackage},
	} {
		if err := checkText(f.name, f.v, maxText); err != nil {
			return err
		}
	}
	if v := k.Version; v != nil && (v.Major < 1 || v.Major > 255 || v.Minor > 255 || v.Patch > 99999) {
		return invalidKernel("version %s: want 1..255.0..255.0..99999", v)
	}
	switch k.VersionSource {
	case "":
		k.VersionSource = SourceNone
	case SourceVersionSignature, SourceDebian, SourceRelease, SourceVDSO, SourceReleasePartial, SourceOverride, SourceNone:
	default:
		return invalidKernel("version_source %q: want one of %s, %s, %s, %s, %s, %s, %s", k.VersionSource,
			SourceVersionSignature, SourceDebian, SourceRelease, SourceVDSO, SourceReleasePartial, SourceOverride, SourceNone)
	}
	if k.Distro.UbuntuABI < 0 || k.Distro.UbuntuABI > 1_000_000 {
		return invalidKernel("distro.ubuntu_abi %d: want 0..1000000", k.Distro.UbuntuABI)
	}
	if k.Arch != "" {
		a, err := ParseArch(k.Arch)
		if err != nil {
			return invalidKernel("arch: %v", err)
		}
		k.Arch = a
	}
	if k.CPUs < 0 || k.CPUs > MaxCPUs {
		return invalidKernel("cpus %d: want 0 (unknown) to %d", k.CPUs, MaxCPUs)
	}
	if len(k.Config) > maxEntries {
		return invalidKernel("config: %d options, more than %d", len(k.Config), maxEntries)
	}
	for name, v := range k.Config {
		if len(name) > maxName || !configNameRE.MatchString(name) {
			return invalidKernel("config option %q: want CONFIG_NAME", name)
		}
		if err := checkText("config."+name, v, maxText); err != nil {
			return err
		}
	}
	if len(k.Kallsyms.Symbols) > maxEntries {
		return invalidKernel("kallsyms: %d symbols, more than %d", len(k.Kallsyms.Symbols), maxEntries)
	}
	for sym := range k.Kallsyms.Symbols {
		if err := checkName("kallsyms symbol", sym, maxName); err != nil {
			return err
		}
	}
	for m, s := range k.Mechanisms {
		if err := checkText("mechanisms."+string(m)+".reason", s.Reason, maxText); err != nil {
			return err
		}
	}
	if len(k.Observations) > maxEntries {
		return invalidKernel("observations: %d, more than %d", len(k.Observations), maxEntries)
	}
	for key, o := range k.Observations {
		if err := checkName("observation", key, maxName); err != nil {
			return err
		}
		if err := checkText("observations."+key+".witness", o.Witness, maxText); err != nil {
			return err
		}
	}
	if len(k.Notes) > maxNotes {
		return invalidKernel("notes: %d, more than %d", len(k.Notes), maxNotes)
	}
	for i, n := range k.Notes {
		if err := checkText(fmt.Sprintf("notes[%d]", i), n, maxText); err != nil {
			return err
		}
	}
	return nil
}

// checkText refuses control characters (C0 except tab, DEL, C1: escape
// sequences that would reach a terminal) and strings longer than max.
func checkText(field, s string, max int) error {
	if len(s) > max {
		return invalidKernel("%s: %d bytes, more than %d", field, len(s), max)
	}
	for _, r := range s {
		if (r < 0x20 && r != '\t') || (r >= 0x7f && r < 0xa0) {
			return invalidKernel("%s %q: control character %U", field, s, r)
		}
	}
	return nil
}

// checkName is checkText for identifiers: no space or tab either.
func checkName(field, s string, max int) error {
	if err := checkText(field, s, max); err != nil {
		return err
	}
	if s == "" || strings.ContainsAny(s, " \t") {
		return invalidKernel("%s %q: want a name without spaces", field, s)
	}
	return nil
}
