package probe

import (
	"errors"
	"strings"
	"testing"
)

func TestParseArch(t *testing.T) {
	for in, want := range map[string]string{
		"x86_64": "amd64", "amd64": "amd64", "x86-64": "amd64", "X86_64": "amd64", " x86_64\n": "amd64",
		"i386": "386", "i686": "386", "386": "386",
		"aarch64": "arm64", "arm64": "arm64",
		"armv7l": "arm", "armv6l": "arm", "armhf": "arm", "arm": "arm",
		"ppc64le": "ppc64le", "powerpc64le": "ppc64le", "ppc64": "ppc64",
		"s390x": "s390x", "riscv64": "riscv64", "loongarch64": "loong64", "loong64": "loong64",
		"mips64el": "mips64le", "mipsel": "mipsle", "mips": "mips", "mips64": "mips64",
	} {
		got, err := ParseArch(in)
		if err != nil || got != want {
			t.Errorf("ParseArch(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x86", "sparc64", "amd", "aarch64_be", "arm64be", "ia64", "wasm", "x86_64;", "riscv32"} {
		got, err := ParseArch(in)
		if err == nil {
			t.Errorf("ParseArch(%q) = %q, nil; want an error", in, got)
			continue
		}
		if !errors.Is(err, ErrUnknownArch) || !strings.Contains(err.Error(), "x86_64") {
			t.Errorf("ParseArch(%q) error %q: want ErrUnknownArch listing the accepted names", in, err)
		}
	}
	// Every canonical name parses to itself.
	for _, a := range Arches() {
		if got, err := ParseArch(a); err != nil || got != a {
			t.Errorf("ParseArch(%q) = %q, %v; want itself", a, got, err)
		}
	}
}
