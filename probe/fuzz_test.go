package probe

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/safebpf/safebpf/internal/kernel"
)

func seedIdentities(f *testing.F, field func(identity) string) {
	f.Helper()
	for _, id := range loadIdentities(f) {
		if s := field(id); s != "" {
			f.Add(s)
		}
	}
}

func FuzzParseRelease(f *testing.F) {
	seedIdentities(f, func(id identity) string { return id.Release })
	for _, s := range []string{"", "6", "6.", "0.1.2", "6.9", "6.9.arch1-1", "99999999.1", "6.1.58+", "\t5.4.0-150-generic\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRelease(s)
		if err != nil {
			if !errors.Is(err, ErrUnparseableRelease) {
				t.Fatalf("ParseRelease(%q) error %v does not wrap ErrUnparseableRelease", s, err)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("%q", s)) {
				t.Fatalf("ParseRelease(%q) error %q does not name the input", s, err)
			}
			return
		}
		if r.Major < 1 || r.Minor < 0 || r.Patch < 0 {
			t.Fatalf("ParseRelease(%q) = %+v: negative or zero major", s, r)
		}
		if r.Raw != strings.TrimSpace(s) {
			t.Fatalf("Raw = %q, want the trimmed input", r.Raw)
		}
		if r.SublevelKnown && !r.HasPatch {
			t.Fatalf("ParseRelease(%q): SublevelKnown without a patch", s)
		}
		if !r.HasPatch && r.Patch != 0 {
			t.Fatalf("ParseRelease(%q): Patch %d without HasPatch", s, r.Patch)
		}
		// The numeric core and the suffix rebuild the release.
		core := fmt.Sprintf("%d.%d", r.Major, r.Minor)
		if r.HasPatch {
			core += fmt.Sprintf(".%d", r.Patch)
		}
		if back, err := ParseRelease(core + r.Suffix); err != nil || back.Major != r.Major || back.Minor != r.Minor || back.Patch != r.Patch || back.Suffix != r.Suffix {
			t.Fatalf("ParseRelease(%q) = %+v; reparsing %q gave %+v, %v", s, r, core+r.Suffix, back, err)
		}
		var v Version
		if err := v.UnmarshalText([]byte(r.Version().String())); err != nil || v != r.Version() {
			t.Fatalf("Version %v does not round-trip through text: %+v, %v", r.Version(), v, err)
		}
	})
}

func FuzzParseProcVersion(f *testing.F) {
	seedIdentities(f, func(id identity) string { return id.ProcVersion })
	f.Add("Linux version 5.10.0 (builder (gcc #1 SMP")
	f.Add("Linux version x #1 Debian 0.0.0-1")
	f.Fuzz(func(t *testing.T, s string) {
		pv, err := kernel.ParseProcVersion(s)
		if err != nil {
			if !errors.Is(err, kernel.ErrUnparseable) {
				t.Fatalf("ParseProcVersion(%q) error %v does not wrap ErrUnparseable", s, err)
			}
			return
		}
		if pv.Release == "" || strings.ContainsAny(pv.Release, " ") {
			t.Fatalf("ParseProcVersion(%q): release %q", s, pv.Release)
		}
		if (pv.DebianUpstream == nil) != (pv.DebianPackage == "") {
			t.Fatalf("ParseProcVersion(%q): package %q but upstream %v", s, pv.DebianPackage, pv.DebianUpstream)
		}
		if u := pv.DebianUpstream; u != nil {
			if u.Major < 1 || !strings.HasPrefix(pv.DebianPackage, u.String()) {
				t.Fatalf("ParseProcVersion(%q): upstream %v, package %q", s, u, pv.DebianPackage)
			}
		}
		if pv.Build != "" && !strings.HasPrefix(pv.Build, "#") {
			t.Fatalf("ParseProcVersion(%q): build %q does not start with #", s, pv.Build)
		}
	})
}

func FuzzParseVersionSignature(f *testing.F) {
	seedIdentities(f, func(id identity) string { return id.VersionSignature })
	f.Add("Ubuntu 5.4.0-150.167-generic 5.4")
	f.Fuzz(func(t *testing.T, s string) {
		sig, err := kernel.ParseVersionSignature(s)
		if err != nil {
			if !errors.Is(err, kernel.ErrUnparseable) {
				t.Fatalf("ParseVersionSignature(%q) error %v does not wrap ErrUnparseable", s, err)
			}
			return
		}
		if sig.Upstream.Major < 1 || sig.Distro == "" || sig.Package == "" {
			t.Fatalf("ParseVersionSignature(%q) = %+v", s, sig)
		}
	})
}

func FuzzResolveVersion(f *testing.F) {
	for _, id := range loadIdentities(f) {
		f.Add(id.Release, id.ProcVersion, id.VersionSignature, id.VDSO)
	}
	f.Add("garbage", "", "", "")
	f.Add("garbage", "", "", "4.14.255")
	f.Fuzz(func(t *testing.T, rel, pv, sig, vdso string) {
		v, src, note := ResolveVersion(VersionSources{Release: rel, ProcVersion: pv, VersionSignature: sig, VDSO: vdso})
		if note == "" {
			t.Fatal("no note")
		}
		if (v == nil) != (src == SourceNone) {
			t.Fatalf("version %v with source %s", v, src)
		}
		if v == nil {
			return
		}
		if v.Major < 1 {
			t.Fatalf("version %v", v)
		}
		if !v.PatchKnown && src != SourceReleasePartial {
			t.Fatalf("unknown sublevel from %s", src)
		}
		switch src {
		case SourceVersionSignature, SourceDebian, SourceRelease, SourceVDSO, SourceReleasePartial:
		default:
			t.Fatalf("unexpected source %q", src)
		}
	})
}
