package probe_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/safebpf/safebpf/internal/testutil/fixtures"
	"github.com/safebpf/safebpf/probe"
)

var debianPackage = regexp.MustCompile(`Debian (\d+\.\d+\.\d+)-`)

// TestGuestFixtures replays what real Debian kernels reported about
// themselves: the trusted version must follow from the recorded sources by
// the documented rules, and mechanism availability must match what the
// guests' integration tests rely on.
func TestGuestFixtures(t *testing.T) {
	for name, f := range fixtures.GuestFixtures(t, "..") {
		t.Run(name, func(t *testing.T) {
			k := f.Kernel
			v, src, _ := probe.ResolveVersion(probe.VersionSources{
				Release:          k.Release,
				ProcVersion:      k.ProcVersion,
				VersionSignature: k.VersionSignature,
				VDSO:             k.VDSOVersion,
			})
			if v == nil || k.Version == nil {
				t.Fatalf("version: resolved %v, recorded %v", v, k.Version)
			}
			if diff := cmp.Diff(*k.Version, *v); diff != "" || src != k.VersionSource {
				t.Errorf("recorded %s (%s), resolved %s (%s) (-recorded +resolved):\n%s", k.Version, k.VersionSource, v, src, diff)
			}
			// Debian's kernels carry the upstream version in /proc/version;
			// it must win over the release's meaningless ".0".
			// The last "Debian X.Y.Z-N" is the kernel package; earlier ones
			// name the compiler's and binutils' packages.
			all := debianPackage.FindAllStringSubmatch(k.ProcVersion, -1)
			if all == nil {
				t.Fatalf("not a Debian /proc/version line: %q", k.ProcVersion)
			}
			m := all[len(all)-1]
			if k.VersionSource != probe.SourceDebian || k.Version.String() != m[1] {
				t.Errorf("version %s from %s, want %s from %s", k.Version, k.VersionSource, m[1], probe.SourceDebian)
			}
			if !strings.HasPrefix(k.Release, fmtLine(k.Version)) {
				t.Errorf("release %q is not on line %s", k.Release, fmtLine(k.Version))
			}
			if !k.Kallsyms.Readable || !k.Kallsyms.DataSymbols {
				t.Errorf("Debian kernels have CONFIG_KALLSYMS_ALL: kallsyms %+v", k.Kallsyms)
			}
			// In every Debian guest these attach for real (KERNELS.md); the
			// QEMU TCG CPU has no PMU.
			for _, mech := range []probe.Mechanism{probe.Fentry, probe.Fexit, probe.Kprobe, probe.Kretprobe, probe.Uprobe, probe.Uretprobe, probe.Tracepoint, probe.PerfEventSoftware} {
				if s := f.Mechanisms[mech]; !s.Yes() {
					t.Errorf("%s: %+v, want available", mech, s)
				}
			}
			if s := f.Mechanisms[probe.PerfEventHardware]; !s.No() {
				t.Errorf("perf-event-hardware under TCG: %+v, want unavailable", s)
			}
			// The fixture round-trips through JSON unchanged.
			b, err := json.Marshal(&k)
			if err != nil {
				t.Fatal(err)
			}
			var back probe.Kernel
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(k, back); diff != "" {
				t.Errorf("JSON round trip (-want +got):\n%s", diff)
			}
		})
	}
}

func fmtLine(v *probe.Version) string {
	return strings.Join(strings.Split(v.String(), ".")[:2], ".") + "."
}
