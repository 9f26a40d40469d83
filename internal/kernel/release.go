package kernel

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// ErrUnparseable is wrapped by the parsers when their input carries no
// version they can read.
var ErrUnparseable = errors.New("unparseable")

// Release is a parsed `uname -r`: a numeric core and an opaque suffix.
type Release struct {
	// Raw is the input, trimmed of surrounding white space.
	Raw string
	// Major and Minor are always present in a successful parse (Major ≥ 1).
	Major, Minor int
	// Patch is the third numeric component; HasPatch says whether the
	// release had one. Patch is not necessarily the upstream sublevel: see
	// SublevelKnown.
	Patch    int
	HasPatch bool
	// Suffix is everything after the numeric core ("-91-generic",
	// ".1-microsoft-standard-WSL2", "+"). It is never compared numerically.
	Suffix string
}

// ParseRelease parses a kernel release string such as "6.8.0-86-generic",
// "4.18.0-477.10.1.el8_8.x86_64" or "6.1.58+". It needs at least "X.Y" with
// X ≥ 1; anything else is an error wrapping ErrUnparseable.
func ParseRelease(s string) (Release, error) {
	raw := strings.TrimSpace(s)
	bad := func(why string) (Release, error) {
		return Release{}, fmt.Errorf("parse kernel release %q: %s: %w", raw, why, ErrUnparseable)
	}
	major, rest, ok := readNumber(raw)
	if !ok || major < 1 {
		return bad("want X.Y[.Z]")
	}
	if !strings.HasPrefix(rest, ".") {
		return bad("want X.Y[.Z]")
	}
	minor, rest, ok := readNumber(rest[1:])
	if !ok {
		return bad("want X.Y[.Z]")
	}
	r := Release{Raw: raw, Major: major, Minor: minor, Suffix: rest}
	if strings.HasPrefix(rest, ".") {
		if patch, after, ok := readNumber(rest[1:]); ok {
			r.Patch, r.HasPatch, r.Suffix = patch, true, after
		}
	}
	return r, nil
}

// readNumber reads a leading decimal number of at most 7 digits.
func readNumber(s string) (n int, rest string, ok bool) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 || i > 7 {
		return 0, s, false
	}
	n, err := strconv.Atoi(s[:i])
	if err != nil {
		return 0, s, false
	}
	return n, s[i:], true
}

var (
	// "-86-generic", "-1103-aws", "-13-cloud-amd64"
	abiFlavourRE = regexp.MustCompile(`^-([0-9]{1,6})-([a-z][a-z0-9]*(?:-[a-z0-9]+)*)$`)
	// "-477.10.1.el8_8.x86_64", "-1160.el7.x86_64", "-200.131.27.el9uek.x86_64"
	rhelRE   = regexp.MustCompile(`^-([0-9][0-9.]*?)\.(el[0-9]+)`)
	amazonRE = regexp.MustCompile(`\.(amzn[0-9]+)(?:\.|$)`)
	fedoraRE = regexp.MustCompile(`\.fc[0-9]+(?:\.|$)`)
	rcRE     = regexp.MustCompile(`^-rc[0-9]+`)
	// SUSE SLE: "-150600.23.25-default"
	suseRE = regexp.MustCompile(`^-1[0-9]{5}\.[0-9.]+-[a-z0-9]+$`)
)

// debianFlavours are the flavour suffixes of Debian's kernel packages
// (linux-image-X.Y.0-NN-FLAVOUR); Ubuntu's flavours are words such as
// generic, aws, azure, gcp, lowlatency.
var debianFlavours = map[string]bool{
	"amd64": true, "arm64": true, "cloud-amd64": true, "cloud-arm64": true,
	"rt-amd64": true, "rt-arm64": true, "686": true, "686-pae": true,
	"armmp": true, "armmp-lpae": true, "marvell": true, "rpi": true,
	"powerpc64le": true, "s390x": true, "5kc-malta": true, "octeon": true,
	"loongson-3": true, "mips64r2el": true, "riscv64": true, "i386": true,
}

// ABIFlavour returns the ABI number and flavour of an Ubuntu- or
// Debian-shaped release, which is always X.Y.0 ("5.4.0-1103-aws" → 1103, "aws"; "6.1.0-13-amd64" →
// 13, "amd64"). ok is false for other shapes.
func (r Release) ABIFlavour() (abi int, flavour string, ok bool) {
	m := abiFlavourRE.FindStringSubmatch(r.Suffix)
	if m == nil || !r.HasPatch || r.Patch != 0 {
		return 0, "", false
	}
	abi, err := strconv.Atoi(m[1])
	if err != nil {
		return 0, "", false
	}
	return abi, m[2], true
}

// DebianFlavour reports whether the release has the "-NN-flavour" shape
// with a flavour only Debian uses ("amd64", "cloud-amd64", …).
func (r Release) DebianFlavour() bool {
	_, f, ok := r.ABIFlavour()
	return ok && debianFlavours[f]
}

// RHEL returns the Enterprise Linux tag ("el8") and the build after the base
// version ("477.10.1") of a RHEL, CentOS, Rocky, Alma or Oracle kernel.
func (r Release) RHEL() (tag, build string, ok bool) {
	m := rhelRE.FindStringSubmatch(r.Suffix)
	if m == nil {
		return "", "", false
	}
	return m[2], strings.TrimSuffix(m[1], "."), true
}

// Amazon returns "amzn2", "amzn2023" (or another amznN tag) for Amazon Linux
// kernels, and "" otherwise.
func (r Release) Amazon() string {
	m := amazonRE.FindStringSubmatch(r.Suffix)
	if m == nil {
		return ""
	}
	return m[1]
}

// RC reports a release candidate ("6.10.0-rc3").
func (r Release) RC() bool { return rcRE.MatchString(r.Suffix) }

// SublevelKnown reports whether Patch is the upstream sublevel. It is not
// for distributions that freeze "X.Y.0" and count their own builds in the
// suffix: Ubuntu ("5.15.0-91-generic"), Debian ("6.1.0-13-amd64"), SUSE SLE
// ("6.4.0-150600.23.25-default") and any release whose patch is 0 followed
// by a numeric build; nor for RHEL and its rebuilds at all
// ("4.18.0-477.10.1.el8_8"), whose sublevel never moves. Fedora, Amazon
// Linux, rc kernels, vanilla builds and suffixes that do not begin with a
// number ("6.6.8-arch1-1", "6.1.58+", "5.15.90.1-microsoft-standard-WSL2")
// carry the real sublevel.
func (r Release) SublevelKnown() bool {
	if !r.HasPatch {
		return false
	}
	if _, _, ok := r.RHEL(); ok {
		return false
	}
	if r.Patch != 0 {
		return true
	}
	if r.RC() || r.Amazon() != "" || fedoraRE.MatchString(r.Suffix) {
		return true
	}
	if _, _, ok := r.ABIFlavour(); ok {
		return false
	}
	if suseRE.MatchString(r.Suffix) {
		return false
	}
	return !(len(r.Suffix) > 1 && r.Suffix[0] == '-' && r.Suffix[1] >= '0' && r.Suffix[1] <= '9')
}
