package boundedio

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// Sentinel errors, matched with errors.Is.
var (
	// ErrNotRegular means the path names a FIFO, a device, a directory, a
	// socket or anything else that is not a regular file.
	ErrNotRegular = errors.New("not a regular file")
	// ErrTooLarge means the input exceeds the limit for its kind.
	ErrTooLarge = errors.New("input too large")
)

// ReadFile reads the regular file at path, refusing it when it is larger
// than limit bytes. what names the kind of input for messages ("policy",
// "kallsyms"). Opening never blocks (O_NONBLOCK), so a FIFO fails at once
// with [ErrNotRegular]. A limit <= 0 is a programming error and reads
// nothing.
func ReadFile(path string, limit int64, what string) ([]byte, error) {
	f, err := Open(path, what)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadOpened(f, limit, what)
}

// Open opens path for reading without blocking and returns it only when it
// is a regular file. what names the kind of input for messages. The caller
// closes the file.
func Open(path string, what string) (*os.File, error) {
	f, err := openNonblock(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", what, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat %s %s: %w", what, path, err)
	}
	if err := CheckRegular(fi, path, what); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// OpenLimit opens path as [Open] does and refuses a file larger than limit
// bytes, before reading anything, with an error matching [ErrTooLarge]:
// for callers that stream the file. They read it through [LimitReader] as
// well, since a file may grow and /proc files report size 0. The caller
// closes the file.
func OpenLimit(path string, limit int64, what string) (*os.File, error) {
	f, err := Open(path, what)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat %s %s: %w", what, path, err)
	}
	if fi.Size() > limit {
		f.Close()
		return nil, tooLarge(what, path, limit, fmt.Sprintf("it has %s", FormatSize(fi.Size())))
	}
	return f, nil
}

// ReadOpened reads an already opened file: it checks that f is a regular
// file no larger than limit, then reads at most limit bytes, failing with
// [ErrTooLarge] if there is more (a file that grew, or a /proc file whose
// size is reported as 0).
func ReadOpened(f *os.File, limit int64, what string) ([]byte, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s %s: %w", what, f.Name(), err)
	}
	if err := CheckRegular(fi, f.Name(), what); err != nil {
		return nil, err
	}
	if fi.Size() > limit {
		return nil, tooLarge(what, f.Name(), limit, fmt.Sprintf("it has %s", FormatSize(fi.Size())))
	}
	return ReadAll(f, limit, what, f.Name())
}

// CheckRegular returns nil when fi describes a regular file, and otherwise
// an error wrapping [ErrNotRegular] that names the file's type.
func CheckRegular(fi fs.FileInfo, path, what string) error {
	if fi.Mode().IsRegular() {
		return nil
	}
	return fmt.Errorf("read %s %s: it is a %s: %w; give the path of a regular file", what, path, TypeName(fi.Mode()), ErrNotRegular)
}

// TypeName names the file type in m ("FIFO", "character device", …).
func TypeName(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "regular file"
	case m.IsDir():
		return "directory"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	}
	return "special file"
}

// ReadAll reads r to its end, failing with [ErrTooLarge] when it holds more
// than limit bytes. what and name (a path, or "" when unknown) are for
// messages.
func ReadAll(r io.Reader, limit int64, what, name string) ([]byte, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("read %s: limit %d: %w", label(what, name), limit, ErrTooLarge)
	}
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", label(what, name), err)
	}
	if int64(len(b)) > limit {
		return nil, tooLarge(what, name, limit, "it has more")
	}
	return b, nil
}

// LimitReader returns a reader of r that fails with an error wrapping
// [ErrTooLarge] (naming what, name and limit) once more than limit bytes
// have been read, instead of silently stopping as io.LimitReader does. Use
// it for streaming parsers and decompressors.
func LimitReader(r io.Reader, limit int64, what, name string) io.Reader {
	return &limitReader{r: r, left: limit, limit: limit, what: what, name: name}
}

type limitReader struct {
	r           io.Reader
	left, limit int64
	what, name  string
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// One more byte tells a source that ends exactly at the limit
		// from one that goes on.
		var one [1]byte
		n, err := l.r.Read(one[:])
		if n > 0 {
			return 0, tooLarge(l.what, l.name, l.limit, "it has more")
		}
		return 0, err
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

func tooLarge(what, name string, limit int64, detail string) error {
	return fmt.Errorf("read %s: larger than the %s limit for a %s (%s): %w",
		label(what, name), FormatSize(limit), what, detail, ErrTooLarge)
}

// label is "what name", or what alone when the name is unknown (a reader).
func label(what, name string) string {
	if name == "" {
		return what
	}
	return what + " " + name
}

// FormatSize prints n bytes in binary units: "512 B", "64 KiB", and
// "1.5 MiB (1572865 bytes)" when n is not a whole number of units.
func FormatSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	u := " " + string("KMGTPE"[exp]) + "iB"
	if n%div == 0 {
		return fmt.Sprintf("%d%s", n/div, u)
	}
	return fmt.Sprintf("%.1f%s (%d bytes)", float64(n)/float64(div), u, n)
}
