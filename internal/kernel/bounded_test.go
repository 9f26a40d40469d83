package kernel

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/safebpf/safebpf/internal/boundedio"
)

// TestHostBoundedReads holds host reads to issue 12's finding 5: only
// regular files, and every read bounded, so a hostile or broken host root
// (a FIFO, a gzip bomb, an endless kallsyms) cannot hang or exhaust the
// agent.
func TestHostBoundedReads(t *testing.T) {
	fifo := &fstest.MapFile{Mode: fs.ModeNamedPipe, Data: []byte("Linux version 6.1.0\n")}
	h := &Host{FS: fstest.MapFS{
		"proc/version":                    fifo,
		"etc/os-release":                  {Mode: fs.ModeDevice | fs.ModeCharDevice, Data: []byte("ID=debian\n")},
		"sys/devices/system/cpu/possible": {Mode: fs.ModeDir},
	}}
	if v, err := h.ProcVersion(); !errors.Is(err, boundedio.ErrNotRegular) || !strings.Contains(err.Error(), "FIFO") {
		t.Errorf("ProcVersion from a FIFO = %q, %v; want a refusal naming the FIFO", v, err)
	}
	if o, _, err := h.OSRelease(); err == nil || !strings.Contains(err.Error(), "character device") {
		t.Errorf("OSRelease from a device = %+v, %v; want a refusal naming the device", o, err)
	}
	if n, err := h.PossibleCPUs(); err == nil {
		t.Errorf("PossibleCPUs from a directory = %d, nil; want an error", n)
	}

	// A gzip bomb: a small /proc/config.gz that inflates past the limit.
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	line := []byte("CONFIG_X=y\n")
	for n := 0; n <= MaxConfigSize; n += len(line) {
		zw.Write(line)
	}
	zw.Close()
	h = &Host{FS: fstest.MapFS{"proc/config.gz": {Data: bomb.Bytes()}}}
	if cfg, _, err := h.Config("6.1.0"); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("Config from a %d-byte gzip bomb = %d options, %v; want the limit named", bomb.Len(), len(cfg), err)
	}

	// An oversized kallsyms stops at the limit instead of being read to
	// its end.
	saved := maxKallsyms
	maxKallsyms = 1 << 20
	t.Cleanup(func() { maxKallsyms = saved })
	big := bytes.Repeat([]byte("ffffffff81000000 T some_symbol\n"), (2<<20)/32)
	h = &Host{FS: fstest.MapFS{"proc/kallsyms": {Data: big}}}
	if _, err := h.Kallsyms([]string{"x"}); err == nil || !strings.Contains(err.Error(), "1 MiB") {
		t.Errorf("Kallsyms over the limit = %v; want an error naming the 1 MiB limit", err)
	}
}

// TestHostRootFIFO: a FIFO in a mounted host root fails at once instead
// of blocking the agent.
func TestHostRootFIFO(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "etc", "os-release")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // release a reader that wrongly blocks
		if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
	})
	root, err := HostRootFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := (&Host{FS: root}).OSRelease()
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, boundedio.ErrNotRegular) {
			t.Errorf("OSRelease from a FIFO in the host root = %v; want ErrNotRegular", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("OSRelease blocked on a FIFO in the host root")
	}
}
