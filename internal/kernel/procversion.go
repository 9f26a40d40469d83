package kernel

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Upstream is an upstream kernel version X.Y.Z read from a distribution's
// own record of it (Ubuntu's version_signature, Debian's /proc/version).
type Upstream struct {
	Major, Minor, Patch int
}

// String returns "X.Y.Z".
func (u Upstream) String() string { return fmt.Sprintf("%d.%d.%d", u.Major, u.Minor, u.Patch) }

// ProcVersion is a parsed /proc/version line, e.g.
//
//	Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)
type ProcVersion struct {
	// Raw is the line, trimmed of surrounding white space.
	Raw string
	// Release is the word after "Linux version".
	Release string
	// Builder is the first parenthesised group ("debian-kernel@lists.debian.org").
	Builder string
	// Compiler is the second parenthesised group, when present.
	Compiler string
	// Build is everything from "#" on ("#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)").
	Build string
	// DebianPackage is the Debian package version named in Build
	// ("6.1.76-1"), and DebianUpstream its upstream part, when present.
	DebianPackage  string
	DebianUpstream *Upstream
	// Ubuntu is set when Build names an Ubuntu build ("#101-Ubuntu SMP …").
	Ubuntu bool
	// Flags are the build flags scripts/mkcompile_h writes between the
	// build number and the timestamp, in order: "SMP", then one of
	// "PREEMPT", "PREEMPT_RT", "PREEMPT_DYNAMIC" (5.18+, a0a7e453b502
	// "sched/preempt: Tell about PREEMPT_DYNAMIC on kernel headers"; 5.12 to
	// 5.17 print "PREEMPT" for dynamic builds) or "PREEMPT_LAZY". Empty
	// when the build part has none: a kernel built without preemption.
	Flags []string
	// FlagsKnown is set when Build starts with the "#N" build number that
	// the flags follow, so that an empty Flags means "no flags" rather
	// than "no build part".
	FlagsKnown bool
}

// buildFlags are the words scripts/mkcompile_h puts after the build number
// ("RT" is how out-of-tree PREEMPT_RT patches of the 2.6 to 4.x era wrote
// it: "SMP PREEMPT RT").
var buildFlags = map[string]bool{
	"SMP": true, "PREEMPT": true, "PREEMPT_RT": true, "PREEMPT_DYNAMIC": true, "PREEMPT_LAZY": true, "RT": true,
}

// Preemptible reports whether the build flags name a preemptible kernel
// (CONFIG_PREEMPTION: PREEMPT, PREEMPT_RT, PREEMPT_DYNAMIC, PREEMPT_LAZY),
// and known is false when the line carries no build flags section at all.
// The flag word that decided is returned for messages ("PREEMPT_DYNAMIC";
// "" for a non-preemptible build).
func (pv ProcVersion) Preemptible() (preemptible bool, flag string, known bool) {
	if !pv.FlagsKnown {
		return false, "", false
	}
	for _, f := range pv.Flags {
		if f != "SMP" {
			return true, f, true
		}
	}
	return false, "", true
}

// "Debian 6.1.76-1", "Debian 6.12.12-1~bpo12+1", "Debian 5.10.209-2"
var debianBuildRE = regexp.MustCompile(`\bDebian ([0-9]{1,7})\.([0-9]{1,7})\.([0-9]{1,7})((?:[-~+][0-9A-Za-z.+~]*)?)`)

// ParseProcVersion parses the contents of /proc/version. It needs the
// "Linux version RELEASE" prefix; everything after it is optional.
func ParseProcVersion(s string) (ProcVersion, error) {
	raw := strings.TrimSpace(s)
	const prefix = "Linux version "
	if !strings.HasPrefix(raw, prefix) {
		return ProcVersion{}, fmt.Errorf("parse /proc/version %q: missing %q: %w", truncate(raw), prefix, ErrUnparseable)
	}
	rest := raw[len(prefix):]
	rel, rest, _ := strings.Cut(rest, " ")
	if rel == "" {
		return ProcVersion{}, fmt.Errorf("parse /proc/version %q: missing release: %w", truncate(raw), ErrUnparseable)
	}
	pv := ProcVersion{Raw: raw, Release: rel}
	var groups []string
	for {
		rest = strings.TrimLeft(rest, " ")
		if !strings.HasPrefix(rest, "(") {
			break
		}
		g, after, ok := balanced(rest)
		if !ok {
			break
		}
		groups = append(groups, g)
		rest = after
	}
	if len(groups) > 0 {
		pv.Builder = groups[0]
	}
	if len(groups) > 1 {
		pv.Compiler = groups[1]
	}
	if i := strings.Index(rest, "#"); i >= 0 {
		pv.Build = strings.TrimSpace(rest[i:])
	}
	if m := debianBuildRE.FindStringSubmatch(pv.Build); m != nil && !leadingZero(m[1], m[2], m[3]) {
		maj, _ := strconv.Atoi(m[1])
		min, _ := strconv.Atoi(m[2])
		pat, _ := strconv.Atoi(m[3])
		if maj >= 1 {
			pv.DebianPackage = m[1] + "." + m[2] + "." + m[3] + m[4]
			pv.DebianUpstream = &Upstream{maj, min, pat}
		}
	}
	pv.Ubuntu = strings.Contains(pv.Build, "-Ubuntu")
	if words := strings.Fields(pv.Build); len(words) > 0 && len(words[0]) > 1 && words[0][0] == '#' && words[0][1] >= '0' && words[0][1] <= '9' {
		pv.FlagsKnown = true
		for _, w := range words[1:] {
			if !buildFlags[w] {
				break
			}
			pv.Flags = append(pv.Flags, w)
		}
	}
	return pv, nil
}

// leadingZero reports a version component written with a leading zero
// ("010"), which no real Debian version has.
func leadingZero(parts ...string) bool {
	for _, p := range parts {
		if len(p) > 1 && p[0] == '0' {
			return true
		}
	}
	return false
}

// balanced returns the contents of the parenthesised group that s starts
// with, and what follows it.
func balanced(s string) (group, rest string, ok bool) {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return s[1:i], s[i+1:], true
			}
		}
	}
	return "", s, false
}

// VersionSignature is a parsed Ubuntu /proc/version_signature, e.g.
// "Ubuntu 5.4.0-150.167-generic 5.4.233".
type VersionSignature struct {
	// Raw is the input, trimmed of surrounding white space.
	Raw string
	// Distro is the first word ("Ubuntu").
	Distro string
	// Package is the distribution's kernel version ("5.4.0-150.167"), and
	// Flavour the kernel flavour ("generic").
	Package, Flavour string
	// Upstream is the upstream version the package is based on.
	Upstream Upstream
	// UpstreamRaw is the last word as written ("5.4.233").
	UpstreamRaw string
}

var signatureRE = regexp.MustCompile(`^(\S+) (\S+?)(?:-([a-z][a-z0-9-]*))? ([0-9]{1,7})\.([0-9]{1,7})(?:\.([0-9]{1,7}))?(\S*)$`)

// ParseVersionSignature parses Ubuntu's /proc/version_signature.
func ParseVersionSignature(s string) (VersionSignature, error) {
	raw := strings.TrimSpace(s)
	m := signatureRE.FindStringSubmatch(raw)
	if m == nil {
		return VersionSignature{}, fmt.Errorf("parse version_signature %q: want \"Distro PACKAGE-FLAVOUR X.Y.Z\": %w", truncate(raw), ErrUnparseable)
	}
	maj, _ := strconv.Atoi(m[4])
	min, _ := strconv.Atoi(m[5])
	pat, _ := strconv.Atoi(m[6]) // "" → 0: "5.4" upstream means 5.4.0
	if maj < 1 {
		return VersionSignature{}, fmt.Errorf("parse version_signature %q: major version 0: %w", truncate(raw), ErrUnparseable)
	}
	return VersionSignature{
		Raw: raw, Distro: m[1], Package: m[2], Flavour: m[3],
		Upstream:    Upstream{maj, min, pat},
		UpstreamRaw: raw[strings.LastIndexByte(raw, ' ')+1:],
	}, nil
}

func truncate(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}
