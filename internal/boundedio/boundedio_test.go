package boundedio

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// withDeadline fails t if f does not return within d: a read that blocks
// (a FIFO without a writer) must fail at once instead.
func withDeadline(t *testing.T, d time.Duration, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("still blocked after %s", d)
		return nil
	}
}

func TestReadFileRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// Unblock a reader that wrongly waits for a writer, so the test
	// binary does not leak a stuck goroutine.
	t.Cleanup(func() {
		if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
	})
	for _, tc := range []struct {
		path, kind string
	}{
		{fifo, "FIFO"},
		{"/dev/zero", "character device"},
		{"/dev/null", "character device"},
		{dir, "directory"},
	} {
		err := withDeadline(t, 2*time.Second, func() error {
			_, err := ReadFile(tc.path, 1<<20, "policy")
			return err
		})
		if !errors.Is(err, ErrNotRegular) {
			t.Errorf("ReadFile(%s) = %v; want ErrNotRegular", tc.path, err)
			continue
		}
		for _, want := range []string{"policy", tc.path, tc.kind} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("ReadFile(%s) error %q does not name %q", tc.path, err, want)
			}
		}
	}
}

func TestReadFileLimit(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, bytes.Repeat([]byte{'x'}, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := ReadFile(p, 4096, "policy")
	if err != nil || len(b) != 4096 {
		t.Fatalf("ReadFile at the limit = %d bytes, %v; want 4096, nil", len(b), err)
	}
	_, err = ReadFile(p, 4095, "policy")
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("ReadFile over the limit = %v; want ErrTooLarge", err)
	}
	for _, want := range []string{"policy", p, "4095 bytes", "4 KiB"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	// A sparse file claims a huge size but costs nothing on disk: it must
	// be refused from its size, before any read.
	sparse := filepath.Join(dir, "sparse")
	f, err := os.Create(sparse)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(8 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	start := time.Now()
	if _, err := ReadFile(sparse, 1<<20, "ELF object"); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "8 GiB") {
		t.Errorf("ReadFile(8 GiB sparse) = %v; want ErrTooLarge naming 8 GiB", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("refusing a sparse file took %s; it must not read it", d)
	}
}

func TestOpenLimit(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "fleet")
	if err := os.WriteFile(p, make([]byte, 100), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := OpenLimit(p, 100, "fleet file")
	if err != nil {
		t.Fatalf("OpenLimit at the limit: %v", err)
	}
	f.Close()
	if _, err := OpenLimit(p, 99, "fleet file"); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "99 B limit for a fleet file") {
		t.Errorf("OpenLimit over the limit = %v; want ErrTooLarge naming the file and the limit", err)
	}
	err = withDeadline(t, 2*time.Second, func() error {
		_, err := OpenLimit("/dev/zero", 1<<20, "fleet file")
		return err
	})
	if !errors.Is(err, ErrNotRegular) {
		t.Errorf("OpenLimit(/dev/zero) = %v; want ErrNotRegular", err)
	}
}

func TestReadFileProcUnknownSize(t *testing.T) {
	// /proc files report size 0; the limit must still hold while reading.
	fi, err := os.Stat("/proc/self/maps")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	if fi.Size() != 0 {
		t.Skipf("/proc/self/maps reports size %d; the test needs 0", fi.Size())
	}
	if _, err := ReadFile("/proc/self/maps", 16, "maps"); !errors.Is(err, ErrTooLarge) {
		t.Errorf("ReadFile(/proc/self/maps, 16) = %v; want ErrTooLarge", err)
	}
	if b, err := ReadFile("/proc/self/maps", 16<<20, "maps"); err != nil || len(b) == 0 {
		t.Errorf("ReadFile(/proc/self/maps) = %d bytes, %v", len(b), err)
	}
}

func TestLimitReader(t *testing.T) {
	for _, tc := range []struct {
		in      string
		limit   int64
		wantErr bool
	}{
		{"", 0, false},
		{"abc", 3, false},
		{"abcd", 3, true},
		{"abc", 100, false},
	} {
		b, err := io.ReadAll(LimitReader(strings.NewReader(tc.in), tc.limit, "config", "x"))
		if tc.wantErr {
			if !errors.Is(err, ErrTooLarge) {
				t.Errorf("LimitReader(%q, %d) err = %v; want ErrTooLarge", tc.in, tc.limit, err)
			}
			continue
		}
		if err != nil || string(b) != tc.in {
			t.Errorf("LimitReader(%q, %d) = %q, %v", tc.in, tc.limit, b, err)
		}
	}
	// An endless source stops at the limit.
	if _, err := io.Copy(io.Discard, LimitReader(zeros{}, 1<<20, "kallsyms", "/dev/zero")); !errors.Is(err, ErrTooLarge) {
		t.Errorf("endless source: %v; want ErrTooLarge", err)
	}
	if _, err := ReadAll(zeros{}, 1<<20, "kallsyms", "/dev/zero"); !errors.Is(err, ErrTooLarge) {
		t.Errorf("ReadAll of an endless source: %v; want ErrTooLarge", err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 1023: "1023 B", 1024: "1 KiB", 1536: "1.5 KiB (1536 bytes)",
		1 << 20: "1 MiB", 64 << 20: "64 MiB", 8 << 30: "8 GiB",
	} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q; want %q", n, got, want)
		}
	}
}
