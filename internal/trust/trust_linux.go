//go:build linux

package trust

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/safebpf/safebpf/internal/boundedio"
)

// Current returns the calling process: its effective uid, and whether it
// is privileged (uid 0, or CAP_SYS_ADMIN, CAP_PERFMON or CAP_BPF in its
// effective capability set, read with capget(2)). When the capabilities
// cannot be read the process counts as privileged: checking a file that
// did not need it costs less than trusting one that did.
func Current() Process {
	p := Process{EUID: uint32(os.Geteuid())}
	if p.EUID == 0 {
		p.Privileged = true
		return p
	}
	caps, err := effectiveCaps()
	p.Privileged = err != nil || caps&privilegedCaps != 0
	return p
}

func effectiveCaps() (uint64, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return 0, fmt.Errorf("capget: %w", err)
	}
	return uint64(data[1].Effective)<<32 | uint64(data[0].Effective), nil
}

// ReadFile reads the regular file at path, at most limit bytes, after
// checking that the file, the symbolic links followed and every directory
// above it are trusted (see the package documentation). what names the
// file's kind in messages ("policy", "catalog"). An untrusted path yields
// an [*UntrustedError] (errors.Is(err, ErrUntrusted)); anything but a
// regular file yields an error matching [boundedio.ErrNotRegular], a file
// over limit one matching [boundedio.ErrTooLarge]. For an unprivileged p
// only the boundedio checks apply.
func (p Process) ReadFile(path string, limit int64, what string) ([]byte, error) {
	if !p.Privileged {
		return boundedio.ReadFile(path, limit, what)
	}
	f, err := p.open(path, what, true)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return boundedio.ReadOpened(f, limit, what)
}

// Check is ReadFile without the read: it walks path and checks it, and
// reports whether it names a regular file.
func (p Process) Check(path, what string) error {
	if !p.Privileged {
		f, err := boundedio.Open(path, what)
		if err != nil {
			return err
		}
		return f.Close()
	}
	_, err := p.open(path, what, false)
	return err
}

// maxSymlinks bounds the symbolic links followed, like the kernel's
// MAXSYMLINKS (40).
const maxSymlinks = 40

// open walks path from / and, when read is set, opens the file it names.
func (p Process) open(given, what string, read bool) (*os.File, error) {
	if given == "" {
		return nil, fmt.Errorf("open %s: empty path", what)
	}
	path := given
	if !filepath.IsAbs(path) {
		wd, err := os.Getwd()
		if err != nil {
			return nil, fmt.Errorf("open %s %s: %w", what, given, err)
		}
		path = filepath.Join(wd, path)
	}
	w := &walk{p: p, what: what, given: given, dir: -1}
	defer w.closeDir()
	if err := w.root(); err != nil {
		return nil, err
	}
	queue := splitPath(path)
	links := 0
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		last := len(queue) == 0
		if name == ".." {
			if err := w.enter("..", filepath.Dir(w.at)); err != nil {
				return nil, err
			}
			if last {
				return nil, w.notRegular(w.at, fs.ModeDir)
			}
			continue
		}
		full := filepath.Join(w.at, name)
		fd, err := unix.Openat(w.dir, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("open %s %s: %w", what, given, &fs.PathError{Op: "open", Path: full, Err: err})
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("open %s %s: %w", what, given, &fs.PathError{Op: "stat", Path: full, Err: err})
		}
		obj := object{path: full, uid: st.Uid, mode: fileMode(st.Mode)}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			obj.kind = "symbolic link"
			target, err := readlink(fd)
			unix.Close(fd)
			if err != nil {
				return nil, fmt.Errorf("open %s %s: %w", what, given, &fs.PathError{Op: "readlink", Path: full, Err: err})
			}
			if err := p.check(what, given, obj); err != nil {
				return nil, err
			}
			if links++; links > maxSymlinks {
				return nil, fmt.Errorf("open %s %s: %w", what, given, &fs.PathError{Op: "open", Path: full, Err: unix.ELOOP})
			}
			if filepath.IsAbs(target) {
				if err := w.root(); err != nil {
					return nil, err
				}
			}
			queue = append(splitPath(target), queue...)
			if len(queue) == 0 { // a link to "/"
				return nil, w.notRegular("/", fs.ModeDir)
			}
		case unix.S_IFDIR:
			obj.kind = "directory"
			if last {
				unix.Close(fd)
				return nil, w.notRegular(full, fs.ModeDir)
			}
			if err := p.check(what, given, obj); err != nil {
				unix.Close(fd)
				return nil, err
			}
			w.closeDir()
			w.dir, w.at = fd, full
		case unix.S_IFREG:
			obj.kind = "file"
			if !last {
				unix.Close(fd)
				return nil, fmt.Errorf("open %s %s: %w", what, given, &fs.PathError{Op: "open", Path: full, Err: unix.ENOTDIR})
			}
			err := p.check(what, given, obj)
			if err != nil || !read {
				unix.Close(fd)
				return nil, err
			}
			f, err := w.openChecked(name, full, &st)
			unix.Close(fd)
			return f, err
		default:
			unix.Close(fd)
			if !last {
				return nil, fmt.Errorf("open %s %s: %w", what, given, &fs.PathError{Op: "open", Path: full, Err: unix.ENOTDIR})
			}
			return nil, w.notRegular(full, fileMode(st.Mode))
		}
	}
	return nil, w.notRegular(w.at, fs.ModeDir) // path was "/"
}

// walk is the directory a path walk is in.
type walk struct {
	p     Process
	what  string
	given string
	dir   int    // O_PATH descriptor of the current directory, -1 when none
	at    string // its absolute path, for messages
}

func (w *walk) closeDir() {
	if w.dir >= 0 {
		unix.Close(w.dir)
	}
	w.dir = -1
}

// root moves the walk to / and checks it.
func (w *walk) root() error {
	w.closeDir()
	fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s %s: %w", w.what, w.given, &fs.PathError{Op: "open", Path: "/", Err: err})
	}
	w.dir, w.at = fd, "/"
	return w.checkDir()
}

// enter moves the walk to name (a directory, "..") relative to the current
// one and checks it.
func (w *walk) enter(name, full string) error {
	fd, err := unix.Openat(w.dir, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s %s: %w", w.what, w.given, &fs.PathError{Op: "open", Path: full, Err: err})
	}
	w.closeDir()
	w.dir, w.at = fd, full
	return w.checkDir()
}

func (w *walk) checkDir() error {
	var st unix.Stat_t
	if err := unix.Fstat(w.dir, &st); err != nil {
		return fmt.Errorf("open %s %s: %w", w.what, w.given, &fs.PathError{Op: "stat", Path: w.at, Err: err})
	}
	return w.p.check(w.what, w.given, object{path: w.at, kind: "directory", uid: st.Uid, mode: fileMode(st.Mode)})
}

func (w *walk) notRegular(path string, m fs.FileMode) error {
	return fmt.Errorf("read %s %s: %s is a %s: %w; give the path of a regular file",
		w.what, w.given, path, boundedio.TypeName(m), boundedio.ErrNotRegular)
}

// openChecked opens name in the current directory for reading and makes
// sure it is the inode that was checked.
func (w *walk) openChecked(name, full string, checked *unix.Stat_t) (*os.File, error) {
	fd, err := unix.Openat(w.dir, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s %s: %w", w.what, w.given, &fs.PathError{Op: "open", Path: full, Err: err})
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("open %s %s: %w", w.what, w.given, &fs.PathError{Op: "stat", Path: full, Err: err})
	}
	if st.Dev != checked.Dev || st.Ino != checked.Ino || st.Uid != checked.Uid || st.Mode != checked.Mode {
		unix.Close(fd)
		return nil, fmt.Errorf("open %s %s: %s changed while it was being checked; try again: %w",
			w.what, w.given, full, ErrUntrusted)
	}
	return os.NewFile(uintptr(fd), full), nil
}

func readlink(fd int) (string, error) {
	for size := 256; size <= 1<<16; size *= 4 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(fd, "", buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
	return "", unix.ENAMETOOLONG
}

// splitPath splits p into components, dropping empty ones and ".".
func splitPath(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

// fileMode converts a stat mode to fs.FileMode bits: permissions, sticky
// bit and file type.
func fileMode(m uint32) fs.FileMode {
	fm := fs.FileMode(m & 0o777)
	if m&unix.S_ISVTX != 0 {
		fm |= fs.ModeSticky
	}
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		fm |= fs.ModeDir
	case unix.S_IFLNK:
		fm |= fs.ModeSymlink
	case unix.S_IFIFO:
		fm |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		fm |= fs.ModeSocket
	case unix.S_IFCHR:
		fm |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		fm |= fs.ModeDevice
	}
	return fm
}
