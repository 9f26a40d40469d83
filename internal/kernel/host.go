package kernel

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/safebpf/safebpf/internal/boundedio"
)

// Host reads kernel facts from a machine. The zero value reads the real
// system; tests set FS to an fstest.MapFS or os.DirFS of a fixture tree.
type Host struct {
	// FS is the file system rooted at "/". Nil means os.DirFS("/").
	FS fs.FS
	// Uname returns the release (uname -r) and version (uname -v). Nil
	// means the uname system call.
	Uname func() (release, version string, err error)
}

func (h *Host) fsys() fs.FS {
	if h == nil || h.FS == nil {
		return os.DirFS("/")
	}
	return h.FS
}

// UnameStrings returns the release and version strings.
func (h *Host) UnameStrings() (release, version string, err error) {
	if h != nil && h.Uname != nil {
		release, version, err = h.Uname()
	} else {
		release, version, err = uname()
	}
	if err != nil {
		return "", "", fmt.Errorf("uname: %w", err)
	}
	return release, version, nil
}

// Bounds on host files (docs/security.md lists every bound). /proc files
// report size 0, so the bounds apply while reading.
const (
	// MaxFileSize bounds [Host.ReadFile]: /proc/version, os-release, CPU
	// lists, LSM lists are a few hundred bytes.
	MaxFileSize = 1 << 20
	// MaxConfigSize bounds a kernel config, compressed and after
	// decompression (a distribution config is about 300 KiB).
	MaxConfigSize = 16 << 20
	// MaxKallsymsSize bounds /proc/kallsyms (a distribution kernel with
	// its modules loaded lists 10-20 MiB).
	MaxKallsymsSize = 256 << 20
	// MaxMountsSize bounds /proc/self/mounts (nodes with thousands of
	// container mounts list a few MiB).
	MaxMountsSize = 64 << 20
	// MaxBTFSize bounds /sys/kernel/btf/vmlinux (5-6 MiB on distribution
	// kernels).
	MaxBTFSize = 64 << 20
)

// maxKallsyms is MaxKallsymsSize; tests lower it.
var maxKallsyms int64 = MaxKallsymsSize

// ReadFile reads name (a path relative to the root, without a leading
// slash, as fs.FS requires): a regular file of at most [MaxFileSize] bytes.
// Anything else fails without blocking, with an error matching
// boundedio.ErrNotRegular or boundedio.ErrTooLarge.
func (h *Host) ReadFile(name string) ([]byte, error) {
	return h.readFile(name, MaxFileSize, "host file")
}

func (h *Host) readFile(name string, limit int64, what string) ([]byte, error) {
	f, err := h.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return boundedio.ReadAll(f, limit, what, "/"+strings.TrimPrefix(name, "/"))
}

// Open opens name relative to the root, only if it is a regular file (on
// the real root with O_NONBLOCK, so a FIFO or device fails at once; on
// another fs.FS, after a stat when it can stat, else by checking the opened
// file). Read it through a bound.
func (h *Host) Open(name string) (fs.File, error) {
	name = strings.TrimPrefix(name, "/")
	if h == nil || h.FS == nil {
		return boundedio.Open("/"+name, "host file")
	}
	if sfs, ok := h.FS.(fs.StatFS); ok {
		// Stat first: opening a FIFO through os.DirFS would block.
		fi, err := sfs.Stat(name)
		if err != nil {
			return nil, err
		}
		if err := boundedio.CheckRegular(fi, "/"+name, "host file"); err != nil {
			return nil, err
		}
		return h.FS.Open(name)
	}
	f, err := h.FS.Open(name)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil {
		err = boundedio.CheckRegular(fi, "/"+name, "host file")
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Exists reports whether name exists (and can be stat'ed).
func (h *Host) Exists(name string) bool {
	_, err := fs.Stat(h.fsys(), strings.TrimPrefix(name, "/"))
	return err == nil
}

// readLine returns the trimmed contents of a small file.
func (h *Host) readLine(name string) (string, error) {
	b, err := h.ReadFile(name)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// ProcVersion returns the contents of /proc/version.
func (h *Host) ProcVersion() (string, error) { return h.readLine("proc/version") }

// VersionSignature returns Ubuntu's /proc/version_signature; on other
// distributions the error wraps fs.ErrNotExist.
func (h *Host) VersionSignature() (string, error) { return h.readLine("proc/version_signature") }

// OSRelease reads /etc/os-release, falling back to /usr/lib/os-release,
// and returns the parsed fields and the raw text.
func (h *Host) OSRelease() (OSRelease, string, error) {
	var firstErr error
	for _, name := range []string{"etc/os-release", "usr/lib/os-release"} {
		b, err := h.ReadFile(name)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		o, err := ParseOSRelease(bytes.NewReader(b))
		return o, string(b), err
	}
	return OSRelease{}, "", fmt.Errorf("read os-release: %w", firstErr)
}

// PossibleCPUs counts /sys/devices/system/cpu/possible.
func (h *Host) PossibleCPUs() (int, error) {
	s, err := h.readLine("sys/devices/system/cpu/possible")
	if err != nil {
		return 0, fmt.Errorf("read possible cpus: %w", err)
	}
	return ParseCPUList(s)
}

// OnlineCPUs reads /sys/devices/system/cpu/online (a host file, at most
// [MaxFileSize] bytes) into ascending CPU numbers.
func (h *Host) OnlineCPUs() ([]int, error) {
	s, err := h.readLine("sys/devices/system/cpu/online")
	if err != nil {
		return nil, fmt.Errorf("read online cpus: %w", err)
	}
	return ParseCPUs(s)
}

// Config reads the kernel config from /proc/config.gz, then
// /boot/config-RELEASE; either may be gzip-compressed or plain. source
// names the file read.
func (h *Host) Config(release string) (cfg map[string]string, source string, err error) {
	var errs []error
	for _, name := range []string{"proc/config.gz", "boot/config-" + release} {
		b, err := h.readFile(name, MaxConfigSize, "kernel config")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		r, err := ConfigReader(b, "/"+name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cfg, err := ParseConfig(r)
		if err != nil {
			errs = append(errs, fmt.Errorf("parse /%s: %w", name, err))
			continue
		}
		return cfg, "/" + name, nil
	}
	return nil, "", fmt.Errorf("read kernel config: %w", errors.Join(errs...))
}

// ConfigReader returns a reader of the text of a kernel config read from
// the file name (for messages): b itself, or, when b is gzip-compressed
// (/proc/config.gz), its decompressed text, which fails with an error
// matching boundedio.ErrTooLarge past [MaxConfigSize] bytes (a gzip bomb).
func ConfigReader(b []byte, name string) (io.Reader, error) {
	if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		return bytes.NewReader(b), nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	return boundedio.LimitReader(zr, MaxConfigSize, "decompressed kernel config", name), nil
}

// Kallsyms scans /proc/kallsyms for the wanted symbols.
func (h *Host) Kallsyms(want []string) (KallsymsScan, error) {
	f, err := h.OpenKallsyms()
	if err != nil {
		return KallsymsScan{}, err
	}
	defer f.Close()
	return ScanKallsyms(f, want)
}

// OpenKallsyms opens /proc/kallsyms (a regular file) for reading through
// its bound: reading past [MaxKallsymsSize] bytes fails with an error
// matching boundedio.ErrTooLarge. The caller closes it.
func (h *Host) OpenKallsyms() (io.ReadCloser, error) {
	f, err := h.Open("proc/kallsyms")
	if err != nil {
		return nil, fmt.Errorf("open /proc/kallsyms: %w", err)
	}
	return struct {
		io.Reader
		io.Closer
	}{boundedio.LimitReader(f, maxKallsyms, "kallsyms", "/proc/kallsyms"), f}, nil
}

// ReadBTF reads the kernel's BTF, /sys/kernel/btf/vmlinux: a regular
// file of at most [MaxBTFSize] bytes.
func (h *Host) ReadBTF() ([]byte, error) {
	return h.readFile("sys/kernel/btf/vmlinux", MaxBTFSize, "kernel BTF")
}

// ReadKallsyms reads all of /proc/kallsyms (bounded by MaxKallsymsSize),
// for callers that parse it more than one way.
func (h *Host) ReadKallsyms() ([]byte, error) {
	f, err := h.Open("proc/kallsyms")
	if err != nil {
		return nil, fmt.Errorf("open kallsyms: %w", err)
	}
	defer f.Close()
	return boundedio.ReadAll(f, maxKallsyms, "kallsyms", "/proc/kallsyms")
}

// BTF reports whether the kernel exposes its BTF at /sys/kernel/btf/vmlinux.
func (h *Host) BTF() bool { return h.Exists("sys/kernel/btf/vmlinux") }

// Mounts reads /proc/self/mounts, falling back to /proc/mounts.
func (h *Host) Mounts() ([]Mount, error) {
	var firstErr error
	for _, name := range []string{"proc/self/mounts", "proc/mounts"} {
		b, err := h.readFile(name, MaxMountsSize, "mount table")
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		return ParseMounts(bytes.NewReader(b))
	}
	return nil, fmt.Errorf("read mounts: %w", firstErr)
}
