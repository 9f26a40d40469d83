package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

// TrustedTempDir returns a fresh directory, removed when tb ends, whose
// ancestors are all owned by root and not writable by group or others, so
// that a privileged process trusts the policy and catalog files written
// there (t.TempDir lives below the world-writable /tmp, which a privileged
// process rightly refuses). It needs root; without root it returns
// tb.TempDir(), where nothing is checked anyway.
func TrustedTempDir(tb testing.TB) string {
	tb.Helper()
	if os.Geteuid() != 0 {
		return tb.TempDir()
	}
	for _, parent := range []string{"/run", "/var/lib", "/var/cache"} {
		if fi, err := os.Stat(parent); err != nil || fi.Mode().Perm()&0o022 != 0 {
			continue
		}
		dir, err := os.MkdirTemp(parent, "safebpf-test-")
		if err != nil {
			continue
		}
		tb.Cleanup(func() { os.RemoveAll(dir) })
		if err := os.Chmod(dir, 0o755); err != nil {
			tb.Fatal(err)
		}
		return dir
	}
	tb.Skip("no root-owned directory to write trusted files in (tried /run, /var/lib, /var/cache)")
	return ""
}

// WriteTrusted writes data to name in a [TrustedTempDir] with mode 0644 and
// returns its path.
func WriteTrusted(tb testing.TB, name string, data []byte) string {
	tb.Helper()
	p := filepath.Join(TrustedTempDir(tb), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}
