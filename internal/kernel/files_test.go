package kernel

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

func TestParseOSRelease(t *testing.T) {
	tests := []struct {
		name, in string
		want     OSRelease
	}{
		{"ubuntu", "PRETTY_NAME=\"Ubuntu 22.04.4 LTS\"\nNAME=\"Ubuntu\"\nVERSION_ID=\"22.04\"\nID=ubuntu\nID_LIKE=debian\n",
			OSRelease{ID: "ubuntu", VersionID: "22.04", Name: "Ubuntu", PrettyName: "Ubuntu 22.04.4 LTS", IDLike: []string{"debian"}}},
		{"rocky single and double quotes", "NAME='Rocky Linux'\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.3\"\n",
			OSRelease{ID: "rocky", VersionID: "9.3", Name: "Rocky Linux", IDLike: []string{"rhel", "centos", "fedora"}}},
		{"comments, blanks, escapes", "# comment\n\nID=arch\nPRETTY_NAME=\"Arch \\\"rolling\\\"\"\nBROKEN LINE\n",
			OSRelease{ID: "arch", PrettyName: `Arch "rolling"`}},
		{"empty", "", OSRelease{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseOSRelease(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseCPUList(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		wantErr bool
	}{
		{"0", 1, false},
		{"0-3\n", 4, false},
		{"0-3,8", 5, false},
		{"0-95", 96, false},
		{"0-1,4-5,7", 5, false},
		{"", 0, true},
		{"3-1", 0, true},
		{"a-b", 0, true},
		{"0-", 0, true},
		{"-1", 0, true},
		{"0-99999999", 0, true},
		{"0-65535", 65536, false},
		{"0-65535,65536", 0, true},
		{"1,0", 0, true},
		{"0-2,2", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseCPUList(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseCPUList(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !errors.Is(err, ErrUnparseable) {
			t.Errorf("ParseCPUList(%q) error %v does not wrap ErrUnparseable", tt.in, err)
		}
	}
}

func TestParseCPUs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int
	}{
		{"0", []int{0}},
		{"0-1\n", []int{0, 1}},
		{"0-3,5,7-8", []int{0, 1, 2, 3, 5, 7, 8}},
		{"2,4", []int{2, 4}},
	} {
		got, err := ParseCPUs(tc.in)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("ParseCPUs(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "a", "3-1", "0-", "-1", "1,0", "0-2,2", "0-4294967295"} {
		if got, err := ParseCPUs(bad); !errors.Is(err, ErrUnparseable) {
			t.Errorf("ParseCPUs(%q) = %v, %v; want ErrUnparseable", bad, got, err)
		}
	}
}

const testConfig = `#
# Linux/x86 6.1.76 Kernel Configuration
#
CONFIG_CC_VERSION_TEXT="gcc-12 (Debian 12.2.0-14) 12.2.0"
CONFIG_KPROBES=y
CONFIG_BPF_LSM=m
CONFIG_NR_CPUS=8192
# CONFIG_FPROBE is not set
CONFIG_DEBUG_INFO_BTF=n
CONFIG_LOCALVERSION=""
`

func TestParseConfig(t *testing.T) {
	got, err := ParseConfig(strings.NewReader(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"CONFIG_CC_VERSION_TEXT": "gcc-12 (Debian 12.2.0-14) 12.2.0",
		"CONFIG_KPROBES":         "y",
		"CONFIG_BPF_LSM":         "m",
		"CONFIG_NR_CPUS":         "8192",
		"CONFIG_LOCALVERSION":    "",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

func TestScanKallsyms(t *testing.T) {
	const ks = `ffffffff81000000 T _stext
ffffffff8110a2c0 T copy_from_user_nofault
ffffffff83a1c2e0 d tasks_rcu_exit_srcu
0000000000000000 t nf_tables_init	[nf_tables]
garbage line
ffffffff81000001 T no_newline_at_end`
	tests := []struct {
		name string
		in   string
		want KallsymsScan
	}{
		{"with data symbols", ks, KallsymsScan{Lines: 5, DataSymbols: true, Found: map[string]bool{
			"tasks_rcu_exit_srcu": true, "copy_from_user_nofault": true, "nf_tables_init": true,
			"no_newline_at_end": true, "__x64_sys_uretprobe": false,
		}}},
		{"text only", "0000000000000000 T _stext\n0000000000000000 t uprobe_mmap\n", KallsymsScan{Lines: 2, Found: map[string]bool{
			"tasks_rcu_exit_srcu": false, "copy_from_user_nofault": false, "nf_tables_init": false,
			"no_newline_at_end": false, "__x64_sys_uretprobe": false,
		}}},
		{"overlong line is skipped", strings.Repeat("x", 200000) + "\nffffffff81000000 D tasks_rcu_exit_srcu\n", KallsymsScan{Lines: 1, DataSymbols: true, Found: map[string]bool{
			"tasks_rcu_exit_srcu": true, "copy_from_user_nofault": false, "nf_tables_init": false,
			"no_newline_at_end": false, "__x64_sys_uretprobe": false,
		}}},
		// This host's kernel (6.18, no CONFIG_KALLSYMS_ALL) lists section
		// markers with data types, and no data symbol.
		{"section markers are not data symbols", "ffffffff82000000 D __start_rodata\nffffffff82a5a0e0 R __stop___param\nffffffff83000000 B __init_begin\nffffffff84000000 D _edata\nffffffff81000000 T _stext\n", KallsymsScan{Lines: 5, Found: map[string]bool{
			"tasks_rcu_exit_srcu": false, "copy_from_user_nofault": false, "nf_tables_init": false,
			"no_newline_at_end": false, "__x64_sys_uretprobe": false,
		}}},
		// Once every wanted symbol and a data symbol have been seen, the
		// rest is not read.
		{"stops when it has everything", ks + "\nffffffff83000000 D init_task\nffffffff83000010 T __x64_sys_uretprobe\nffffffff83000020 T after_the_end\n", KallsymsScan{Lines: 7, DataSymbols: true, Found: map[string]bool{
			"tasks_rcu_exit_srcu": true, "copy_from_user_nofault": true, "nf_tables_init": true,
			"no_newline_at_end": true, "__x64_sys_uretprobe": true,
		}}},
	}
	want := []string{"tasks_rcu_exit_srcu", "copy_from_user_nofault", "nf_tables_init", "no_newline_at_end", "__x64_sys_uretprobe"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ScanKallsyms(strings.NewReader(tt.in), want)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseMounts(t *testing.T) {
	const in = `sysfs /sys sysfs rw,nosuid 0 0
tracefs /sys/kernel/tracing tracefs rw 0 0
debugfs /sys/kernel/debug debugfs rw 0 0
tracefs /sys/kernel/debug/tracing tracefs rw 0 0
/dev/vda15 /boot/efi\040partition vfat rw 0 0
short line
`
	ms, err := ParseMounts(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 5 {
		t.Fatalf("ParseMounts read %d mounts, want 5: %+v", len(ms), ms)
	}
	if got := ms[4].Dir; got != "/boot/efi partition" {
		t.Errorf("escaped mount point = %q, want %q", got, "/boot/efi partition")
	}
	if got := FirstMount(ms, "tracefs"); got != "/sys/kernel/tracing" {
		t.Errorf("FirstMount(tracefs) = %q", got)
	}
	if got := FirstMount(ms, "debugfs"); got != "/sys/kernel/debug" {
		t.Errorf("FirstMount(debugfs) = %q", got)
	}
	if got := FirstMount(ms, "bpf"); got != "" {
		t.Errorf("FirstMount(bpf) = %q, want empty", got)
	}
}

func gz(tb testing.TB, s string) []byte {
	tb.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write([]byte(s)); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

func TestHostConfig(t *testing.T) {
	const rel = "6.1.0-18-amd64"
	tests := []struct {
		name       string
		fsys       fstest.MapFS
		wantSource string
		wantErr    bool
	}{
		{"proc config.gz", fstest.MapFS{"proc/config.gz": {Data: gz(t, testConfig)}}, "/proc/config.gz", false},
		{"boot config plain", fstest.MapFS{"boot/config-" + rel: {Data: []byte(testConfig)}}, "/boot/config-" + rel, false},
		{"boot config gzipped", fstest.MapFS{"boot/config-" + rel: {Data: gz(t, testConfig)}}, "/boot/config-" + rel, false},
		{"corrupt proc, good boot", fstest.MapFS{
			"proc/config.gz":     {Data: []byte{0x1f, 0x8b, 0, 1, 2}},
			"boot/config-" + rel: {Data: []byte(testConfig)},
		}, "/boot/config-" + rel, false},
		{"none", fstest.MapFS{}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &Host{FS: tt.fsys}
			cfg, src, err := h.Config(rel)
			if tt.wantErr {
				if err == nil || !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("Config = %v, %q, %v; want an ErrNotExist error", cfg, src, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if src != tt.wantSource || cfg["CONFIG_KPROBES"] != "y" {
				t.Errorf("Config = source %q, CONFIG_KPROBES=%q; want %q, y", src, cfg["CONFIG_KPROBES"], tt.wantSource)
			}
		})
	}
}

func TestHostFiles(t *testing.T) {
	h := &Host{
		FS: fstest.MapFS{
			"proc/version":                    {Data: []byte("Linux version 6.8.0-86-generic (buildd@x) (gcc) #87-Ubuntu SMP\n")},
			"usr/lib/os-release":              {Data: []byte("ID=ubuntu\nVERSION_ID=\"24.04\"\n")},
			"sys/devices/system/cpu/possible": {Data: []byte("0-7\n")},
			"sys/kernel/btf/vmlinux":          {Data: []byte{}},
			"proc/mounts":                     {Data: []byte("tracefs /sys/kernel/tracing tracefs rw 0 0\n")},
			"proc/kallsyms":                   {Data: []byte("0 T a\n0 D b\n")},
		},
		Uname: func() (string, string, error) { return "6.8.0-86-generic", "#87-Ubuntu SMP", nil },
	}
	rel, ver, err := h.UnameStrings()
	if err != nil || rel != "6.8.0-86-generic" || ver != "#87-Ubuntu SMP" {
		t.Errorf("UnameStrings = %q, %q, %v", rel, ver, err)
	}
	if pv, err := h.ProcVersion(); err != nil || !strings.HasSuffix(pv, "SMP") {
		t.Errorf("ProcVersion = %q, %v", pv, err)
	}
	if _, err := h.VersionSignature(); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("VersionSignature error = %v, want ErrNotExist", err)
	}
	if o, _, err := h.OSRelease(); err != nil || o.ID != "ubuntu" || o.VersionID != "24.04" {
		t.Errorf("OSRelease = %+v, %v (want the /usr/lib fallback)", o, err)
	}
	if n, err := h.PossibleCPUs(); err != nil || n != 8 {
		t.Errorf("PossibleCPUs = %d, %v", n, err)
	}
	if !h.BTF() {
		t.Error("BTF = false, want true")
	}
	if ms, err := h.Mounts(); err != nil || FirstMount(ms, "tracefs") != "/sys/kernel/tracing" {
		t.Errorf("Mounts = %+v, %v (want the /proc/mounts fallback)", ms, err)
	}
	if s, err := h.Kallsyms([]string{"a", "c"}); err != nil || !s.Found["a"] || s.Found["c"] || !s.DataSymbols {
		t.Errorf("Kallsyms = %+v, %v", s, err)
	}
	empty := &Host{FS: fstest.MapFS{}}
	if _, err := empty.PossibleCPUs(); err == nil {
		t.Error("PossibleCPUs on an empty FS succeeded")
	}
	if _, _, err := empty.OSRelease(); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OSRelease on an empty FS = %v, want ErrNotExist", err)
	}
	if _, err := empty.Mounts(); err == nil {
		t.Error("Mounts on an empty FS succeeded")
	}
}

func TestHostRealUname(t *testing.T) {
	rel, _, err := (&Host{}).UnameStrings()
	if err != nil {
		t.Fatalf("uname on this host: %v", err)
	}
	if _, err := ParseRelease(rel); err != nil {
		t.Errorf("this host's release %q does not parse: %v", rel, err)
	}
}
