package probe

import (
	"context"
	"errors"
	"io/fs"
)

// FeatureProber decides whether a mechanism is available on the running
// kernel. Implementations return Undecided when the probe could not tell.
// The default prober loads and attaches trivial programs (see doc.go).
type FeatureProber interface {
	Probe(ctx context.Context, m Mechanism, k *Kernel) Support
}

// Options configures Detect. A nil *Options reads the real host and caches
// the result for the life of the process.
type Options struct {
	// Root is the filesystem /proc, /sys, /etc and /boot are read from.
	// Nil means the real root ("/").
	Root fs.FS
	// Uname returns the release (uname -r) and version (uname -v) strings.
	// Nil means the uname system call.
	Uname func() (release, version string, err error)
	// VDSOVersion returns LINUX_VERSION_CODE from the vDSO. Nil means read
	// this process's vDSO; a function returning an error means "no vDSO".
	VDSOVersion func() (uint32, error)
	// Arch is the GOARCH name. Empty means runtime.GOARCH.
	Arch string
	// Prober decides mechanism availability. Nil means the real probes
	// (which need root or CAP_BPF+CAP_PERFMON to say "available").
	Prober FeatureProber
}

// Description is a kernel described by hand, for offline evaluation
// (`safebpf check`). Every field is optional but Release.
type Description struct {
	Release          string
	ProcVersion      string
	VersionSignature string
	OSRelease        string // contents of an os-release file
	Arch             string // GOARCH name; empty means amd64
	CPUs             int
	Kallsyms         string // contents (or an excerpt) of /proc/kallsyms
	Config           string // contents of a kernel config file
}

// ErrUnparseableRelease is returned when a release string carries no X.Y version.
var ErrUnparseableRelease = errors.New("unparseable kernel release")
