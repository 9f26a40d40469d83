package probe

import (
	"errors"
	"strings"
	"testing"
)

func TestDescribeErrors(t *testing.T) {
	for _, d := range []Description{{}, {Release: "   "}, {Release: "unknown"}, {Release: "linux-6.1"}} {
		k, err := Describe(d)
		if err == nil {
			t.Errorf("Describe(%+v) = %+v, want an error", d, k)
		}
		if d.Release != "" && strings.TrimSpace(d.Release) != "" && !errors.Is(err, ErrUnparseableRelease) {
			t.Errorf("Describe(%q) error %v does not wrap ErrUnparseableRelease", d.Release, err)
		}
	}
}

// TestDescribeArchAndCPUs: a described kernel is held to the bounds a
// kernel read from JSON is held to (ReadKernelJSON), so the CLI's flags,
// a fleet's described kernels and fixtures meet one set of checks.
func TestDescribeArchAndCPUs(t *testing.T) {
	for arch, want := range map[string]string{"": "amd64", "x86_64": "amd64", "aarch64": "arm64", " ARM64 ": "arm64", "i686": "386"} {
		k, err := Describe(Description{Release: "6.1.0", Arch: arch})
		if err != nil || k.Arch != want {
			t.Errorf("Describe(arch %q) = %v, %v; want arch %s", arch, k, err, want)
		}
	}
	for _, arch := range []string{"sparc", "x86"} {
		if k, err := Describe(Description{Release: "6.1.0", Arch: arch}); !errors.Is(err, ErrUnknownArch) {
			t.Errorf("Describe(arch %q) = %v, %v; want ErrUnknownArch", arch, k, err)
		}
	}
	for _, cpus := range []int{-1, MaxCPUs + 1} {
		k, err := Describe(Description{Release: "6.1.0", CPUs: cpus})
		if !errors.Is(err, ErrInvalidKernel) || !strings.Contains(err.Error(), "65536") {
			t.Errorf("Describe(cpus %d) = %v, %v; want ErrInvalidKernel naming the bound", cpus, k, err)
		}
	}
	if k, err := Describe(Description{Release: "6.1.0", CPUs: MaxCPUs}); err != nil || k.CPUs != MaxCPUs {
		t.Errorf("Describe(cpus %d) = %v, %v", MaxCPUs, k, err)
	}
}

func TestDescribeEvidence(t *testing.T) {
	k, err := Describe(Description{
		Release: "6.8.0-53-generic",
		Kallsyms: "ffffffff81000000 T _stext\n" +
			"ffffffff83a1c2e0 d tasks_rcu_exit_srcu\n" +
			"ffffffff8110a2c0 T copy_from_user_nofault\n",
		Config: "CONFIG_KPROBES=y\n# CONFIG_FPROBE is not set\nCONFIG_HARDENED_USERCOPY=y\n",
		Facts: []Fact{
			{Kind: FactSymbol, Name: "tasks_rcu_exit_srcu", Data: true},
			{Kind: FactSymbol, Name: "copy_from_user_nofault"},
			{Kind: FactSymbol, Name: "__x64_sys_uretprobe"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !k.Kallsyms.Readable || !k.Kallsyms.DataSymbols {
		t.Errorf("Kallsyms = %+v, want readable with data symbols", k.Kallsyms)
	}
	for sym, want := range map[string]bool{"tasks_rcu_exit_srcu": true, "copy_from_user_nofault": true, "__x64_sys_uretprobe": false} {
		if got, known := k.Symbol(sym); got != want || !known {
			t.Errorf("Symbol(%s) = %v, %v; want %v, true", sym, got, known, want)
		}
	}
	if v, known := k.ConfigValue("CONFIG_HARDENED_USERCOPY"); v != "y" || !known {
		t.Errorf("ConfigValue(CONFIG_HARDENED_USERCOPY) = %q, %v", v, known)
	}
	if v, known := k.ConfigValue("CONFIG_FPROBE"); v != "" || !known {
		t.Errorf("ConfigValue(CONFIG_FPROBE) = %q, %v; want unset but known", v, known)
	}
	if s := k.Support(KprobeMulti); !s.No() || !strings.Contains(s.Reason, "CONFIG_FPROBE") {
		t.Errorf("Support(kprobe-multi) = %+v, want unavailable for CONFIG_FPROBE", s)
	}

	bare, err := Describe(Description{Release: "6.8.0-53-generic"})
	if err != nil {
		t.Fatal(err)
	}
	if _, known := bare.Symbol("tasks_rcu_exit_srcu"); known {
		t.Error("Symbol known without kallsyms")
	}
	if _, known := bare.ConfigValue("CONFIG_KPROBES"); known {
		t.Error("ConfigValue known without config")
	}
}

func TestOfflineSupport(t *testing.T) {
	type row struct {
		release, arch, config string
		m                     Mechanism
		want                  string // yes, no, undecided
	}
	tests := []row{
		{"5.4.233", "amd64", "", Fentry, "no"},
		{"5.5.0", "amd64", "", Fentry, "yes"},
		{"5.4.0-150-generic", "amd64", "", Fexit, "no"},
		{"5.15.0-91-generic", "arm64", "", Fentry, "no"},
		{"6.0.1", "arm64", "", Fexit, "yes"},
		{"6.6.8", "riscv64", "", Fentry, "undecided"},
		{"5.17.15", "amd64", "", KprobeMulti, "no"},
		{"5.18.0", "amd64", "", KretprobeMulti, "yes"},
		{"6.5.13", "amd64", "", UprobeMulti, "no"},
		{"6.6.0", "arm64", "", UprobeMulti, "yes"},
		{"4.16.18", "amd64", "", RawTracepoint, "no"},
		{"4.17.0", "amd64", "", RawTracepoint, "yes"},
		{"4.14.336", "amd64", "", Kprobe, "yes"},
		{"4.14.336", "amd64", "", PerfEventHardware, "yes"},
		{"6.18.44", "amd64", "CONFIG_UPROBES=y\n", Kprobe, "no"},
		{"6.18.44", "amd64", "CONFIG_KPROBES=y\n", Uretprobe, "no"},
		{"6.18.44", "amd64", "CONFIG_KPROBES=y\nCONFIG_FPROBE=y\n", KprobeMulti, "yes"},
		{"6.18.44", "amd64", "CONFIG_KPROBES=y\n", Fentry, "no"},
		{"6.18.44", "arm64", "CONFIG_KPROBES=y\n", Fentry, "yes"},
		{"6.18.44", "amd64", "CONFIG_KPROBES=y\n", Tracepoint, "yes"},
	}
	for _, tt := range tests {
		t.Run(string(tt.m)+"/"+tt.release+"/"+tt.arch, func(t *testing.T) {
			k, err := Describe(Description{Release: tt.release, Arch: tt.arch, Config: tt.config})
			if err != nil {
				t.Fatal(err)
			}
			s := k.Support(tt.m)
			got := "undecided"
			if s.Yes() {
				got = "yes"
			} else if s.No() {
				got = "no"
			}
			if got != tt.want {
				t.Errorf("Support(%s) = %s (%s), want %s", tt.m, got, s.Reason, tt.want)
			}
			if !strings.HasPrefix(s.Reason, "offline:") {
				t.Errorf("reason %q does not start with offline:", s.Reason)
			}
		})
	}
	// No version at all: version-gated mechanisms are undecided.
	k := &Kernel{Release: "garbage", Arch: "amd64"}
	if s := OfflineSupport(k)[Fentry]; s.Known() {
		t.Errorf("fentry with unknown version = %+v, want undecided", s)
	}
	if s := OfflineSupport(k)[Uprobe]; !s.Yes() {
		t.Errorf("uprobe with unknown version = %+v, want available", s)
	}
}
