package probe

import (
	"fmt"
	"strings"

	"github.com/safebpf/safebpf/internal/kernel"
)

// Describe builds a Kernel from a described kernel, without touching the
// host (for `safebpf check` and tests). Mechanism availability is decided
// by version, arch and, when given, the config ("offline: by version …");
// no program is loaded. An unparseable release yields an error wrapping
// ErrUnparseableRelease; a malformed fact is an error too. The arch may be
// written as [ParseArch] reads it (x86_64, aarch64, ...) and is recorded
// in its GOARCH form; an arch ParseArch rejects (an error matching
// ErrUnknownArch) and CPUs outside 0 (unknown) to [MaxCPUs] (an error
// matching ErrInvalidKernel) are refused, as [ReadKernelJSON] refuses
// them.
func Describe(d Description) (*Kernel, error) {
	if strings.TrimSpace(d.Release) == "" {
		return nil, errNoRelease
	}
	if d.Arch != "" {
		a, err := ParseArch(d.Arch)
		if err != nil {
			return nil, fmt.Errorf("describe kernel: %w", err)
		}
		d.Arch = a
	}
	if d.CPUs < 0 || d.CPUs > MaxCPUs {
		return nil, fmt.Errorf("describe kernel: cpus %d: want 0 (unknown) to %d: %w", d.CPUs, MaxCPUs, ErrInvalidKernel)
	}
	facts, err := uniqueFacts(d.Facts)
	if err != nil {
		return nil, fmt.Errorf("describe kernel: %w", err)
	}
	if _, err := ParseRelease(d.Release); err != nil {
		return nil, fmt.Errorf("describe kernel: %w", err)
	}
	k := &Kernel{
		Release:          strings.TrimSpace(d.Release),
		ProcVersion:      strings.TrimSpace(d.ProcVersion),
		VersionSignature: strings.TrimSpace(d.VersionSignature),
		VDSOVersion:      strings.TrimSpace(d.VDSO),
		Arch:             d.Arch,
		CPUs:             d.CPUs,
	}
	if k.Arch == "" {
		k.Arch = "amd64"
	}
	var osr kernel.OSRelease
	if d.OSRelease != "" {
		var err error
		if osr, err = kernel.ParseOSRelease(strings.NewReader(d.OSRelease)); err != nil {
			return nil, fmt.Errorf("describe kernel: %w", err)
		}
	}
	identify(k, osr)
	if d.Config != "" {
		cfg, err := kernel.ParseConfig(strings.NewReader(d.Config))
		if err != nil {
			return nil, fmt.Errorf("describe kernel: %w", err)
		}
		k.Config, k.ConfigSource = cfg, "description"
	}
	k.Preemption = preemptionOf(k)
	if d.Kallsyms != "" {
		scan, err := kernel.ScanKallsyms(strings.NewReader(d.Kallsyms), symbolNames(facts))
		if err != nil {
			return nil, fmt.Errorf("describe kernel: %w", err)
		}
		k.Kallsyms = kallsymsFromScan(scan)
	}
	// Machine code, BTF and self-tests are read only from a live kernel:
	// the other kinds stay "not looked for".
	k.Mechanisms = OfflineSupport(k)
	return k, nil
}

func kallsymsFromScan(s kernel.KallsymsScan) Kallsyms {
	if s.Lines == 0 {
		return Kallsyms{}
	}
	k := Kallsyms{Readable: true, DataSymbols: s.DataSymbols}
	if len(s.Found) > 0 {
		k.Symbols = s.Found
	}
	return k
}

// identify fills Version, VersionSource, VersionNote and Distro from the
// Kernel's recorded sources and the os-release fields.
func identify(k *Kernel, osr kernel.OSRelease) {
	k.Version, k.VersionSource, k.VersionNote = ResolveVersion(VersionSources{
		Release: k.Release, ProcVersion: k.ProcVersion,
		VersionSignature: k.VersionSignature, VDSO: k.VDSOVersion,
	})
	k.Distro = Distro{ID: osr.ID, VersionID: osr.VersionID}
	var pv kernel.ProcVersion
	if k.ProcVersion != "" {
		pv, _ = kernel.ParseProcVersion(k.ProcVersion)
		k.Distro.DebianPackage = pv.DebianPackage
	}
	rel, err := kernel.ParseRelease(k.Release)
	if err != nil {
		return
	}
	if abi, _, ok := rel.ABIFlavour(); ok {
		debian := pv.DebianPackage != "" || osr.ID == "debian" || rel.DebianFlavour()
		ubuntu := k.VersionSignature != "" || pv.Ubuntu || osr.ID == "ubuntu"
		if ubuntu || !debian {
			k.Distro.UbuntuABI = abi
		}
	}
	if tag, build, ok := rel.RHEL(); ok {
		k.Distro.RHEL, k.Distro.RHELBuild = tag, build
	}
	k.Distro.Amazon = rel.Amazon()
}

// offlineMinimum is the first upstream version with a mechanism, per arch
// ("" = every arch). Mechanisms not listed are assumed on every kernel
// this module supports.
var offlineMinimum = map[Mechanism]map[string]Version{
	Fentry:         {"amd64": {5, 5, 0, true}, "arm64": {6, 0, 0, true}},
	Fexit:          {"amd64": {5, 5, 0, true}, "arm64": {6, 0, 0, true}},
	FmodRet:        {"amd64": {5, 7, 0, true}, "arm64": {6, 0, 0, true}},
	LSM:            {"amd64": {5, 7, 0, true}, "arm64": {6, 0, 0, true}},
	TpBTF:          {"": {5, 5, 0, true}},
	Iter:           {"": {5, 8, 0, true}},
	KprobeMulti:    {"": {5, 18, 0, true}},
	KretprobeMulti: {"": {5, 18, 0, true}},
	UprobeMulti:    {"": {6, 6, 0, true}},
	UretprobeMulti: {"": {6, 6, 0, true}},
	RawTracepoint:  {"": {4, 17, 0, true}},
}

// offlineConfig names a config option a mechanism cannot work without;
// when the config is known and the option is not set, the mechanism is
// unavailable.
var offlineConfig = map[Mechanism]string{
	Kprobe: "CONFIG_KPROBES", Kretprobe: "CONFIG_KPROBES",
	KprobeMulti: "CONFIG_FPROBE", KretprobeMulti: "CONFIG_FPROBE",
	Uprobe: "CONFIG_UPROBES", Uretprobe: "CONFIG_UPROBES", UprobeMulti: "CONFIG_UPROBES", UretprobeMulti: "CONFIG_UPROBES",
	Fentry: "CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS", Fexit: "CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS",
	FmodRet: "CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS", LSM: "CONFIG_BPF_LSM",
	TpBTF: "CONFIG_DEBUG_INFO_BTF", Iter: "CONFIG_DEBUG_INFO_BTF",
}

// OfflineSupport decides every mechanism from k's version, arch and config
// alone, as Describe does: a mechanism counts as available when the
// upstream version and arch support it and the config (when known) does not
// rule it out. An unknown version leaves version-gated mechanisms
// undecided. Reasons start with "offline:".
func OfflineSupport(k *Kernel) map[Mechanism]Support {
	out := make(map[Mechanism]Support, len(allMechanisms))
	for _, m := range allMechanisms {
		out[m] = offlineSupport(k, m)
	}
	return out
}

func offlineSupport(k *Kernel, m Mechanism) Support {
	if opt, ok := offlineConfig[m]; ok {
		// Fentry's option exists only on arches with direct calls; judge
		// it on amd64, where it is authoritative.
		if v, known := k.ConfigValue(opt); known && (v == "" || v == "n") && (opt != "CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS" || k.Arch == "amd64") {
			return Unsupported(fmt.Sprintf("offline: %s is not set", opt))
		}
	}
	mins, gated := offlineMinimum[m]
	if !gated {
		return Supported("offline: by version: available on every supported kernel")
	}
	min, ok := mins[""]
	if !ok {
		if min, ok = mins[k.Arch]; !ok {
			return Undecided(fmt.Sprintf("offline: %s support on %s is not known", m, k.Arch))
		}
	}
	if k.Version == nil {
		return Undecided(fmt.Sprintf("offline: by version: kernel version unknown, %s needs %s+", m, min))
	}
	// Every minimum is an X.Y.0, so an unknown sublevel does not matter.
	if k.Version.Less(min) {
		return Unsupported(fmt.Sprintf("offline: by version: %s needs %s+, kernel is %s", m, min, k.Version))
	}
	return Supported(fmt.Sprintf("offline: by version: %s needs %s+, kernel is %s", m, min, k.Version))
}
