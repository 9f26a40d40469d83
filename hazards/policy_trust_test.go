package hazards

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/safebpf/safebpf/internal/testutil"
	"github.com/safebpf/safebpf/internal/trust"
)

const forceAllPolicy = "apiVersion: safebpf/v1\nforce: [all]\n"

// TestLoadPolicyTrust reproduces the policy files issue 12 (finding 1)
// found accepted as root with force: [all], and checks each is refused
// with a message naming the offending path and the fix.
func TestLoadPolicyTrust(t *testing.T) {
	testutil.RequirePrivileged(t)
	base := testutil.TrustedTempDir(t)
	const nobody = 65534
	mk := func(path string, mode os.FileMode, uid int, dir bool) string {
		t.Helper()
		var err error
		if dir {
			err = os.MkdirAll(path, 0o755)
		} else {
			err = os.WriteFile(path, []byte(forceAllPolicy), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(path, uid, -1); err != nil {
			t.Fatal(err)
		}
		return path
	}
	good := mk(filepath.Join(base, "policy.yaml"), 0o644, 0, false)
	mk(filepath.Join(base, "open"), 0o777, 0, true)
	mk(filepath.Join(base, "nobodydir"), 0o755, nobody, true)
	mk(filepath.Join(base, "gp"), 0o777, 0, true)
	mk(filepath.Join(base, "gp", "p"), 0o755, 0, true)
	link := filepath.Join(base, "link.yaml")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(link, nobody, -1); err != nil {
		t.Fatal(err)
	}

	if p, err := LoadPolicy(good); err != nil || !p.Forces("anything") {
		t.Fatalf("LoadPolicy(root-owned 0644 in a trusted directory) = %+v, %v", p, err)
	}
	for _, tc := range []struct {
		name, path, culprit string
	}{
		{"file owned by nobody", mk(filepath.Join(base, "nobody.yaml"), 0o644, nobody, false), filepath.Join(base, "nobody.yaml")},
		{"file in a 0777 directory", mk(filepath.Join(base, "open", "policy.yaml"), 0o644, 0, false), filepath.Join(base, "open")},
		{"file in a directory owned by nobody", mk(filepath.Join(base, "nobodydir", "policy.yaml"), 0o644, 0, false), filepath.Join(base, "nobodydir")},
		{"symlink owned by nobody", link, link},
		{"0777 grandparent", mk(filepath.Join(base, "gp", "p", "policy.yaml"), 0o644, 0, false), filepath.Join(base, "gp")},
		{"0666 file", mk(filepath.Join(base, "world.yaml"), 0o666, 0, false), filepath.Join(base, "world.yaml")},
	} {
		p, err := LoadPolicy(tc.path)
		if err == nil {
			t.Errorf("%s: LoadPolicy(%s) accepted it (force %v)", tc.name, tc.path, p.Force)
			continue
		}
		if !errors.Is(err, ErrUntrustedFile) {
			t.Errorf("%s: %v does not match ErrUntrustedFile", tc.name, err)
		}
		for _, want := range []string{tc.culprit, "fix: "} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q does not name %q", tc.name, err, want)
			}
		}
	}
}

// TestLoadPolicyFIFO checks that a FIFO as policy path fails at once
// instead of blocking the agent forever (issue 12, finding 5).
func TestLoadPolicyFIFO(t *testing.T) {
	dir := testutil.TrustedTempDir(t)
	fifo := filepath.Join(dir, "policy.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // release a reader that wrongly blocks
		if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
	})
	done := make(chan error, 1)
	go func() {
		_, err := LoadPolicy(fifo)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "FIFO") || !strings.Contains(err.Error(), fifo) {
			t.Errorf("LoadPolicy(FIFO) = %v; want an error naming the FIFO", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("LoadPolicy(FIFO) still blocked after 2s")
	}
	if _, err := LoadPolicy("/dev/zero"); err == nil || !strings.Contains(err.Error(), "character device") {
		t.Errorf("LoadPolicy(/dev/zero) = %v; want a refusal naming a character device", err)
	}
}

// TestReadTrustedCatalog: a catalog file goes through the same checks as
// a policy, and the refusal says which kind of file it was.
func TestReadTrustedCatalog(t *testing.T) {
	testutil.RequirePrivileged(t)
	base := testutil.TrustedTempDir(t)
	path := filepath.Join(base, "catalog.yaml")
	if err := os.WriteFile(path, []byte("hazards: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, 65534, -1); err != nil {
		t.Fatal(err)
	}
	_, err := readTrusted(trust.Current(), path, "catalog")
	if !errors.Is(err, ErrUntrustedFile) || !strings.Contains(err.Error(), "refusing catalog "+path) {
		t.Errorf("readTrusted(nobody's catalog) = %v; want a refusal of the catalog", err)
	}
	if err := os.Chown(path, 0, -1); err != nil {
		t.Fatal(err)
	}
	if b, err := readTrusted(trust.Current(), path, "catalog"); err != nil || string(b) != "hazards: []\n" {
		t.Errorf("readTrusted(root's catalog) = %q, %v", b, err)
	}
}
