package kernel

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// HostRootFS returns the file system to read a host's facts from when this
// process runs in a container with the host's root file system mounted at
// dir (for example the host's "/" mounted read-only at /host), for
// Host.FS:
//
//   - /etc, /boot and every other file are read below dir, never from the
//     container's own root (whose /etc/os-release is the image's);
//   - kernel-wide files under /proc and /sys are read below dir and, when
//     dir lacks them (only /etc and /boot mounted, or a host root mounted
//     without its submounts), from this process's own /proc and /sys,
//     which show the same running kernel;
//   - this process's own files (/proc/self/..., /proc/thread-self/...),
//     such as its mount table, are always read from its own root, because
//     the paths in them are the ones this process can use.
//
// dir must be an absolute path to a directory.
func HostRootFS(dir string) (fs.FS, error) {
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("host root %q: want an absolute path such as /host", dir)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("host root: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("host root %s: not a directory", dir)
	}
	return hostRootFS{host: os.DirFS(dir), local: os.DirFS("/")}, nil
}

// hostRootFS serves names from host, falling back to local as HostRootFS
// describes.
type hostRootFS struct{ host, local fs.FS }

func (h hostRootFS) Open(name string) (fs.File, error) {
	if selfFile(name) {
		return h.local.Open(name)
	}
	f, err := h.host.Open(name)
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !kernelWide(name) {
		return f, err
	}
	return h.local.Open(name)
}

// selfFile reports whether name (relative to "/") describes the reading
// process itself.
func selfFile(name string) bool {
	return name == "proc/self" || strings.HasPrefix(name, "proc/self/") ||
		name == "proc/thread-self" || strings.HasPrefix(name, "proc/thread-self/")
}

// kernelWide reports whether name is under /proc or /sys, which describe
// the running kernel, the same from the host and from a container.
func kernelWide(name string) bool {
	return strings.HasPrefix(name, "proc/") || strings.HasPrefix(name, "sys/")
}

// Stat routes like Open. It lets Host.Open check that a file is regular
// before opening it: opening a FIFO in the host root would block.
func (h hostRootFS) Stat(name string) (fs.FileInfo, error) {
	if selfFile(name) {
		return fs.Stat(h.local, name)
	}
	fi, err := fs.Stat(h.host, name)
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !kernelWide(name) {
		return fi, err
	}
	return fs.Stat(h.local, name)
}
