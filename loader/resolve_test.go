package loader

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/safebpf/safebpf/probe"
)

func TestParseKallsyms(t *testing.T) {
	in := `ffffffff81000000 T _stext
ffffffff81001000 t do_one_initcall
ffffffff81002000 W weak_fn
ffffffff81003000 T __x64_sys_getpgid
ffffffff81004000 T __x64_sys_getpgid
ffffffff82000000 D __tracepoint_sched_switch
ffffffff82001000 d some_data
ffffffffc0000000 t ext4_fill_super	[ext4]
ffffffff81005000 A absolute
bad line
`
	got, err := parseKallsyms(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uintptr{
		"_stext": 0xffffffff81000000, "do_one_initcall": 0xffffffff81001000, "weak_fn": 0xffffffff81002000,
		"__x64_sys_getpgid":         0xffffffff81003000, // the first of duplicates
		"__tracepoint_sched_switch": 0xffffffff82000000,
		"ext4_fill_super":           0xffffffffc0000000,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseKallsyms (-want +got):\n%s", diff)
	}
	if _, err := parseKallsyms(strings.NewReader("")); err == nil {
		t.Error("an empty kallsyms parsed without error")
	}
}

func TestOfflineResolver(t *testing.T) {
	for _, tt := range []struct{ arch, want string }{
		{"amd64", "__x64_sys_openat"},
		{"arm64", "__arm64_sys_openat"},
		{"sparc64", "__se_sys_openat"},
	} {
		ap := attachPoint{mech: probe.Kprobe, syscall: "openat", symbol: "openat"}
		if err := (offlineResolver{arch: tt.arch}).resolve(&ap); err != nil || ap.symbol != tt.want {
			t.Errorf("%s: %q, %v; want %q", tt.arch, ap.symbol, err, tt.want)
		}
	}
}

// TestUserSymbols resolves against testdata/target, a real ELF file.
func TestUserSymbols(t *testing.T) {
	self := hitTarget(t).Path
	r := newHostResolver(func() (string, error) { return "", errors.New("no tracefs") })
	ap := attachPoint{mech: probe.UprobeMulti, path: self, symbol: "main.hit*", glob: true}
	if err := r.resolve(&ap); err != nil || !cmp.Equal(ap.symbols, []string{"main.hit", "main.hitAlt"}) {
		t.Errorf("glob: %v, %v", ap.symbols, err)
	}
	ap = attachPoint{mech: probe.Uprobe, path: self, symbol: "no.such.symbol"}
	if err := r.resolve(&ap); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing symbol: %v, want os.ErrNotExist", err)
	}
	ap = attachPoint{mech: probe.UprobeMulti, path: self, symbol: "no.such.*", glob: true}
	if err := r.resolve(&ap); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("glob matching nothing: %v, want os.ErrNotExist", err)
	}
	ap = attachPoint{mech: probe.Uprobe, path: "/no/such/binary", symbol: "main"}
	if err := r.resolve(&ap); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing binary: %v, want os.ErrNotExist", err)
	}
	if p, err := resolveBinary("sh"); err != nil || !strings.HasSuffix(p, "/sh") {
		t.Errorf("resolveBinary(sh) = %q, %v: want it found in PATH", p, err)
	}
}
