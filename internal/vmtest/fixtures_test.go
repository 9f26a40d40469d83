package vmtest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/safebpf/safebpf/probe"
)

// TestKernelFixtures checks the fixtures captured in the guests
// (testdata/kernels/debian-*.json, `safebpf probe --json`) against what is
// known about Debian's kernels (/work/shared/KERNELS.md): they parse, name
// the right kernel line, trust Debian's /proc/version, and record the
// mechanisms measured in those guests.
func TestKernelFixtures(t *testing.T) {
	root, err := ModuleRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		major, minor int
		kprobeMulti  bool // kprobe_multi links: 6.12 only
		fprobe       bool // CONFIG_FPROBE: 6.12 only
	}{
		{"debian-5.10", 5, 10, false, false},
		{"debian-6.1", 6, 1, false, false},
		{"debian-6.12", 6, 12, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := os.ReadFile(FixturePath(root, tt.name))
			if err != nil {
				t.Fatalf("%v (capture it: SAFEBPF_VM_MATRIX=1 SAFEBPF_VM_UPDATE_FIXTURES=1 go test -run TestKernelMatrix ./internal/vmtest)", err)
			}
			k, err := DecodeFixture(b)
			if err != nil {
				t.Fatalf("%s: %v", filepath.Base(FixturePath(root, tt.name)), err)
			}
			if v := k.Version; v.Major != tt.major || v.Minor != tt.minor || !v.PatchKnown {
				t.Errorf("version = %s, want %d.%d.N", v, tt.major, tt.minor)
			}
			if k.VersionSource != probe.SourceDebian || k.Distro.DebianPackage == "" || k.Distro.ID != "debian" {
				t.Errorf("version source %q, distro %+v: want Debian's /proc/version trusted", k.VersionSource, k.Distro)
			}
			if k.Arch != "amd64" || k.CPUs != 2 {
				t.Errorf("arch %q, %d CPUs: want amd64 with the guest's 2 vCPUs", k.Arch, k.CPUs)
			}
			if !k.Kallsyms.Readable || !k.Kallsyms.DataSymbols || !k.BTF {
				t.Errorf("kallsyms %+v, BTF %v: Debian kernels have CONFIG_KALLSYMS_ALL and BTF", k.Kallsyms, k.BTF)
			}
			if k.Config != nil {
				for flag, want := range map[string]bool{"CONFIG_KALLSYMS_ALL": true, "CONFIG_HARDENED_USERCOPY": true, "CONFIG_FPROBE": tt.fprobe} {
					if got := k.Config[flag] == "y"; got != want {
						t.Errorf("%s=%q, want set=%v", flag, k.Config[flag], want)
					}
				}
			} else {
				t.Error("no kernel config: the guest has /boot/config-RELEASE")
			}
			for _, m := range []probe.Mechanism{probe.Fentry, probe.Fexit, probe.Kprobe, probe.Kretprobe, probe.Tracepoint, probe.Uprobe} {
				if !k.Support(m).Yes() {
					t.Errorf("%s: %+v, want available (measured in these guests)", m, k.Support(m))
				}
			}
			if got := k.Support(probe.KprobeMulti); got.Yes() != tt.kprobeMulti || !got.Known() {
				t.Errorf("kprobe-multi: %+v, want available=%v", got, tt.kprobeMulti)
			}
		})
	}
}
