package probe

import (
	"errors"
	"fmt"

	"github.com/safebpf/safebpf/internal/kernel"
)

// Release is a parsed `uname -r`: a numeric core and an opaque suffix. Never
// hand Raw to a semver library ("5.15.0-91-generic" is not semver).
type Release struct {
	// Raw is the release string as given (trimmed).
	Raw string
	// Major, Minor and Patch are the numeric core; HasPatch says whether a
	// third component was present at all.
	Major, Minor, Patch int
	HasPatch            bool
	// Suffix is what follows the numeric core ("-91-generic", "+",
	// ".1-microsoft-standard-WSL2").
	Suffix string
	// SublevelKnown says whether Patch is the upstream sublevel. It is
	// false for distributions that freeze X.Y.0 and count builds in the
	// suffix (Ubuntu "5.4.0-1103-aws", Debian "6.1.0-13-amd64", SUSE
	// "6.4.0-150600.23.25-default") and for every RHEL-family release
	// ("4.18.0-477.10.1.el8_8.x86_64").
	SublevelKnown bool
}

// Version returns the release's numeric core as a Version; PatchKnown is
// SublevelKnown, and an unknown sublevel is stored as 0.
func (r Release) Version() Version {
	if !r.SublevelKnown {
		return Version{Major: r.Major, Minor: r.Minor}
	}
	return Version{Major: r.Major, Minor: r.Minor, Patch: r.Patch, PatchKnown: true}
}

// ParseRelease parses a kernel release string (uname -r). An input without
// a leading "X.Y" (X ≥ 1) yields an error wrapping ErrUnparseableRelease
// that names the input.
func ParseRelease(s string) (Release, error) {
	r, err := kernel.ParseRelease(s)
	if err != nil {
		return Release{}, &releaseError{input: s, err: err}
	}
	return fromKernelRelease(r), nil
}

func fromKernelRelease(r kernel.Release) Release {
	return Release{
		Raw: r.Raw, Major: r.Major, Minor: r.Minor, Patch: r.Patch, HasPatch: r.HasPatch,
		Suffix: r.Suffix, SublevelKnown: r.SublevelKnown(),
	}
}

// releaseError is ErrUnparseableRelease with the offending input.
type releaseError struct {
	input string
	err   error
}

func (e *releaseError) Error() string {
	return fmt.Sprintf("%v: %q", ErrUnparseableRelease, e.input)
}

func (e *releaseError) Is(target error) bool { return target == ErrUnparseableRelease }
func (e *releaseError) Unwrap() error        { return e.err }

// VersionSources are the places an upstream kernel version can be read
// from. Every field is optional.
type VersionSources struct {
	// Release is `uname -r`.
	Release string
	// ProcVersion is the /proc/version line.
	ProcVersion string
	// VersionSignature is Ubuntu's /proc/version_signature.
	VersionSignature string
	// VDSO is LINUX_VERSION_CODE from the vDSO as "X.Y.Z"; its sublevel
	// clamps at 255.
	VDSO string
}

// ResolveVersion picks the upstream version to trust from the sources, in
// the order documented in doc.go: Ubuntu's version_signature, Debian's
// "Debian X.Y.Z-N" in /proc/version, a release that carries a real
// sublevel, the vDSO (only when it agrees with the release's X.Y, or when
// there is no usable release), and finally the release's X.Y with an
// unknown sublevel. The note says why, and what was not known. version is
// nil (source SourceNone) when nothing is usable.
func ResolveVersion(s VersionSources) (version *Version, source VersionSource, note string) {
	rel, relErr := kernel.ParseRelease(s.Release)
	var vdso *Version
	if s.VDSO != "" {
		var v Version
		if err := v.UnmarshalText([]byte(s.VDSO)); err == nil && v.PatchKnown && v.Major > 0 {
			vdso = &v
		}
	}
	lineNote := func(maj, min int) string {
		if relErr == nil && (rel.Major != maj || rel.Minor != min) {
			return fmt.Sprintf("; release %s names line %d.%d", rel.Raw, rel.Major, rel.Minor)
		}
		return ""
	}

	if s.VersionSignature != "" {
		if sig, err := kernel.ParseVersionSignature(s.VersionSignature); err == nil {
			u := sig.Upstream
			return &Version{u.Major, u.Minor, u.Patch, true}, SourceVersionSignature,
				fmt.Sprintf("upstream %s from version_signature %q", u, sig.Raw) + lineNote(u.Major, u.Minor)
		}
	}
	if s.ProcVersion != "" {
		if pv, err := kernel.ParseProcVersion(s.ProcVersion); err == nil && pv.DebianUpstream != nil {
			u := *pv.DebianUpstream
			return &Version{u.Major, u.Minor, u.Patch, true}, SourceDebian,
				fmt.Sprintf("upstream %s from Debian package %s in /proc/version", u, pv.DebianPackage) + lineNote(u.Major, u.Minor)
		}
	}
	if relErr != nil {
		if vdso != nil {
			return vdso, SourceVDSO, fmt.Sprintf("release %q unparseable; version from the vDSO (sublevel clamps at 255)", s.Release)
		}
		return nil, SourceNone, fmt.Sprintf("no usable version: release %q unparseable and no vDSO version", s.Release)
	}
	if rel.SublevelKnown() {
		v := fromKernelRelease(rel).Version()
		return &v, SourceRelease, fmt.Sprintf("release %s carries the upstream sublevel", rel.Raw)
	}
	line := Version{Major: rel.Major, Minor: rel.Minor}
	_, _, rhel := rel.RHEL()
	switch {
	case rhel:
		return &line, SourceReleasePartial, fmt.Sprintf("sublevel unknown: %s is an Enterprise Linux build of the %d.%d line with backports", rel.Raw, rel.Major, rel.Minor)
	case vdso != nil && vdso.Major == rel.Major && vdso.Minor == rel.Minor && vdso.Patch < 255 && vdso.Patch > 0:
		return vdso, SourceVDSO, fmt.Sprintf("sublevel from the vDSO: %s does not carry it", rel.Raw)
	case vdso != nil && vdso.Major == rel.Major && vdso.Minor == rel.Minor && vdso.Patch >= 255:
		return &line, SourceReleasePartial, fmt.Sprintf("sublevel unknown: %s does not carry it and the vDSO's %s is clamped (real sublevel ≥ 255)", rel.Raw, vdso)
	}
	why := "no version_signature, Debian version or vDSO version"
	if vdso != nil {
		why = fmt.Sprintf("the vDSO's %s does not confirm it", vdso)
	}
	return &line, SourceReleasePartial, fmt.Sprintf("sublevel unknown: %s does not carry it and %s", rel.Raw, why)
}

// errNoRelease is returned by Describe when the description has no release.
var errNoRelease = errors.New("describe kernel: release is required")
