package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/safebpf/safebpf/probe"
)

// inputKind is a kind of file the command reads, with its size limit.
type inputKind struct {
	what  string // for messages: "kallsyms", "kernel config", ...
	limit int64  // bytes
	hint  string // what is wanted, for the not-a-regular-file error
}

// The limits are generous for real files: /proc/kallsyms is 5–30 MiB on
// big machines, a distribution's kernel config about 300 KiB, a captured
// kernel about 100 KiB, BPF objects rarely above a few MiB.
var (
	inOSRelease = inputKind{"os-release", 64 << 10, "an os-release file such as /etc/os-release"}
	inKallsyms  = inputKind{"kallsyms", 128 << 20, "/proc/kallsyms or a copy of it"}
	inConfig    = inputKind{"kernel config", 16 << 20, "/proc/config.gz or /boot/config-RELEASE"}
	inFixture   = inputKind{"kernel fixture", 16 << 20, "the output of 'safebpf probe --json'"}
	inFleet     = inputKind{"fleet file", 256 << 20, "JSON lines of kernels"}
	inObject    = inputKind{"BPF object", 256 << 20, "an ELF object such as prog.bpf.o"}
	inLog       = inputKind{"decision log", 1 << 30, "an agent's slog JSON log"}
)

// openInput opens path for reading as a regular file of kind k, without
// blocking on a FIFO or reading a device: it opens with O_NONBLOCK and
// refuses anything but a regular file, naming it and what is wanted, and
// a file larger than k's limit.
func openInput(path string, k inputKind) (*os.File, error) {
	f, err := openRegular(path, k)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err == nil && fi.Size() > k.limit {
		f.Close()
		return nil, fmt.Errorf("read %s %s: %d bytes, more than the %s limit for a %s", k.what, path, fi.Size(), size(k.limit), k.what)
	}
	return f, nil
}

// openRegular is openInput without the size check.
func openRegular(path string, k inputKind) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", k.what, &fs.PathError{Op: "open", Path: path, Err: err})
	}
	f := os.NewFile(uintptr(fd), path)
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read %s %s: %w", k.what, path, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("read %s %s: not a regular file (%s): want %s", k.what, path, fileType(fi.Mode()), k.hint)
	}
	return f, nil
}

// readInput reads a whole regular file of kind k, at most k.limit bytes
// (files in /proc report size 0, so the limit is enforced while reading).
func readInput(path string, k inputKind) ([]byte, error) {
	f, err := openInput(path, k)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readLimited(f, path, k)
}

func readLimited(r io.Reader, path string, k inputKind) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, k.limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", k.what, path, err)
	}
	if int64(len(b)) > k.limit {
		return nil, fmt.Errorf("read %s %s: more than the %s limit for a %s", k.what, path, size(k.limit), k.what)
	}
	return b, nil
}

// readText reads a text file of kind k, gunzipping it when it is
// gzip-compressed (/proc/config.gz); the limit holds for the text.
func readText(path string, k inputKind) (string, error) {
	b, err := readInput(path, k)
	if err != nil {
		return "", err
	}
	if len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return "", fmt.Errorf("read %s %s: %w", k.what, path, err)
		}
		defer zr.Close()
		if b, err = readLimited(zr, path, k); err != nil {
			return "", err
		}
	}
	return string(b), nil
}

func fileType(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return m.Type().String()
}

func size(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// maxCPUs bounds CPU counts in flags and fixtures (the kernel's NR_CPUS
// tops out at 8192 on x86 and 4096 on arm64; 65536 leaves room).
const maxCPUs = 1 << 16

// readKernelFixture reads a kernel captured with 'safebpf probe --json'
// (the whole report or its "kernel" object) and checks it (checkKernel).
func readKernelFixture(path string) (*probe.Kernel, error) {
	b, err := readInput(path, inFixture)
	if err != nil {
		return nil, err
	}
	k, err := decodeKernel(b)
	if err != nil {
		return nil, fmt.Errorf("read kernel fixture %s: %w", path, err)
	}
	return k, nil
}

// decodeKernel decodes a probe report or a bare kernel and checks it.
func decodeKernel(b []byte) (*probe.Kernel, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if raw, ok := top["kernel"]; ok {
		b = raw
	}
	var k probe.Kernel
	if err := json.Unmarshal(b, &k); err != nil {
		return nil, err
	}
	if err := checkKernel(&k); err != nil {
		return nil, err
	}
	return &k, nil
}

// checkKernel rejects kernels no machine describes: no or an unparseable
// release, a CPU count out of range, an unknown arch. The arch is
// normalised (x86_64 → amd64).
func checkKernel(k *probe.Kernel) error {
	if strings.TrimSpace(k.Release) == "" {
		return errors.New(`no "release": not a kernel captured with 'safebpf probe --json'`)
	}
	if _, err := probe.ParseRelease(k.Release); err != nil {
		return err
	}
	if k.CPUs < 0 || k.CPUs > maxCPUs {
		return fmt.Errorf(`"cpus" %d: want 0 (unknown) to %d`, k.CPUs, maxCPUs)
	}
	if k.Arch != "" {
		a, err := parseArch(k.Arch)
		if err != nil {
			return fmt.Errorf(`"arch": %w`, err)
		}
		k.Arch = a
	}
	if k.VersionSource == "" {
		k.VersionSource = probe.SourceNone
	}
	return nil
}

// arches maps the names people write for an architecture to its GOARCH
// name, which the catalog's arch conditions use.
var arches = map[string]string{
	"amd64": "amd64", "x86_64": "amd64", "x86-64": "amd64", "x64": "amd64",
	"arm64": "arm64", "aarch64": "arm64",
	"386": "386", "i386": "386", "i486": "386", "i586": "386", "i686": "386",
	"arm": "arm", "armhf": "arm", "armel": "arm", "armv6l": "arm", "armv7l": "arm",
	"riscv64": "riscv64",
	"ppc64le": "ppc64le", "ppc64el": "ppc64le", "ppc64": "ppc64",
	"s390x":   "s390x",
	"loong64": "loong64", "loongarch64": "loong64",
	"mips64le": "mips64le", "mips64el": "mips64le", "mipsle": "mipsle", "mipsel": "mipsle",
}

// parseArch returns the GOARCH name of an architecture as uname -m, Debian
// or Go spell it, and rejects the rest: an unknown name must not silently
// drop every arch-conditioned hazard.
func parseArch(s string) (string, error) {
	if a, ok := arches[strings.ToLower(strings.TrimSpace(s))]; ok {
		return a, nil
	}
	return "", fmt.Errorf("unknown architecture %q: want amd64 (x86_64), arm64 (aarch64), 386 (i686), arm, riscv64, ppc64le, ppc64, s390x, loong64, mips64le or mipsle", s)
}
