package probe

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrUnknownArch is matched by the error of [ParseArch] for a name it does
// not know.
var ErrUnknownArch = errors.New("unknown arch")

// archAliases maps every accepted spelling — GOARCH names, uname -m
// machine names, Debian and RPM architecture names — to its GOARCH name,
// the form [Kernel.Arch] and the hazard catalog use.
var archAliases = map[string]string{
	"amd64": "amd64", "x86_64": "amd64", "x86-64": "amd64", "x64": "amd64",
	"386": "386", "i386": "386", "i486": "386", "i586": "386", "i686": "386",
	"arm64": "arm64", "aarch64": "arm64",
	"arm": "arm", "armhf": "arm", "armel": "arm", "armv5l": "arm", "armv5tel": "arm", "armv5tejl": "arm",
	"armv6l": "arm", "armv7l": "arm", "armv7": "arm", "armv8l": "arm",
	"loong64": "loong64", "loongarch64": "loong64",
	"mips": "mips", "mipsle": "mipsle", "mipsel": "mipsle",
	"mips64": "mips64", "mips64le": "mips64le", "mips64el": "mips64le",
	"ppc64": "ppc64", "powerpc64": "ppc64", "ppc64le": "ppc64le", "powerpc64le": "ppc64le", "ppc64el": "ppc64le",
	"riscv64": "riscv64",
	"s390x":   "s390x",
}

// Arches returns the GOARCH names of the architectures that run Linux and
// BPF, sorted: the values [ParseArch] returns.
func Arches() []string {
	var out []string
	for _, a := range archAliases {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	return out
}

// ParseArch returns the GOARCH name ("amd64", "arm64", …) of an
// architecture written the way people write it: GOARCH names, uname -m
// names (x86_64, aarch64, i686, armv7l, ppc64le, loongarch64, …) and Debian
// or RPM names (x86-64, armhf, mips64el), in any case, surrounding space
// ignored. Any other name — including the ambiguous "x86" — is an error
// matching [ErrUnknownArch] that lists the accepted names: an arch that is
// silently not recognised would make every arch-specific hazard not apply.
func ParseArch(s string) (string, error) {
	if a, ok := archAliases[strings.ToLower(strings.TrimSpace(s))]; ok {
		return a, nil
	}
	names := make([]string, 0, len(archAliases))
	for n := range archAliases {
		names = append(names, n)
	}
	slices.Sort(names)
	hint := ""
	if strings.EqualFold(strings.TrimSpace(s), "x86") {
		hint = " (x86 is ambiguous: x86_64 or i686?)"
	}
	return "", fmt.Errorf("parse arch %q%s: %w; want one of %s", s, hint, ErrUnknownArch, strings.Join(names, ", "))
}
