//go:build linux

package trust

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/safebpf/safebpf/internal/boundedio"
	"github.com/safebpf/safebpf/internal/testutil"
)

const nobody = 65534

// trustedDir returns a fresh directory whose every ancestor is owned by
// root and not writable by others (t.TempDir lives below /tmp, which is
// world-writable and so untrusted by design).
func trustedDir(t *testing.T) string {
	t.Helper()
	testutil.RequirePrivileged(t)
	for _, parent := range []string{"/run", "/var/lib", "/var/cache"} {
		dir, err := os.MkdirTemp(parent, "safebpf-trust-test-")
		if err != nil {
			continue
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := (Process{Privileged: true}).Check(dir+"/.", "test directory"); errors.Is(err, ErrUntrusted) {
			t.Logf("%s is not trusted (%v); trying another parent", dir, err)
			continue
		}
		return dir
	}
	t.Skip("no trusted directory to test in (tried /run, /var/lib, /var/cache)")
	return ""
}

func write(t *testing.T, path string, mode os.FileMode, uid int) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("apiVersion: safebpf/v1\nforce: [all]\n"), 0o600); err != nil {
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

func mkdir(t *testing.T, path string, mode os.FileMode, uid int) string {
	t.Helper()
	if err := os.MkdirAll(path, 0o755); err != nil {
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

func symlink(t *testing.T, target, path string, uid int) string {
	t.Helper()
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(path, uid, -1); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestReadFileOwnership reproduces the audit's accepted-as-root cases
// (issue 12, finding 1) on real files and checks each refusal names the
// offending component.
func TestReadFileOwnership(t *testing.T) {
	base := trustedDir(t)
	root := Process{EUID: 0, Privileged: true}
	good := write(t, filepath.Join(base, "good", "policy.yaml"), 0o644, 0)

	mkdir(t, filepath.Join(base, "open"), 0o777, 0)
	mkdir(t, filepath.Join(base, "sticky"), os.ModeSticky|0o777, 0)
	mkdir(t, filepath.Join(base, "nobodydir"), 0o755, nobody)
	mkdir(t, filepath.Join(base, "gp"), 0o777, 0)
	mkdir(t, filepath.Join(base, "gp", "p"), 0o755, 0)
	mkdir(t, filepath.Join(base, "links"), 0o755, 0)

	for _, tc := range []struct {
		name      string
		path      string
		component string // "" means accepted
		problem   string
	}{
		{"root file", good, "", ""},
		{"nobody file", write(t, filepath.Join(base, "good", "nobody.yaml"), 0o644, nobody), filepath.Join(base, "good", "nobody.yaml"), "owned by uid 65534"},
		{"0666 file", write(t, filepath.Join(base, "good", "open.yaml"), 0o666, 0), filepath.Join(base, "good", "open.yaml"), "writable by group and others"},
		{"0664 file", write(t, filepath.Join(base, "good", "group.yaml"), 0o664, 0), filepath.Join(base, "good", "group.yaml"), "writable by group"},
		{"file in 0777 dir", write(t, filepath.Join(base, "open", "policy.yaml"), 0o644, 0), filepath.Join(base, "open"), "writable by group and others"},
		{"file in sticky 1777 dir", write(t, filepath.Join(base, "sticky", "policy.yaml"), 0o644, 0), filepath.Join(base, "sticky"), "sticky bit"},
		{"file in nobody's dir", write(t, filepath.Join(base, "nobodydir", "policy.yaml"), 0o644, 0), filepath.Join(base, "nobodydir"), "owned by uid 65534"},
		{"0777 grandparent", write(t, filepath.Join(base, "gp", "p", "policy.yaml"), 0o644, 0), filepath.Join(base, "gp"), "writable by group and others"},
		{"nobody's symlink", symlink(t, good, filepath.Join(base, "links", "nobody.yaml"), nobody), filepath.Join(base, "links", "nobody.yaml"), "owned by uid 65534"},
		{"root symlink", symlink(t, good, filepath.Join(base, "links", "root.yaml"), 0), "", ""},
		{"relative symlink through ..", symlink(t, "../good/policy.yaml", filepath.Join(base, "links", "rel.yaml"), 0), "", ""},
		{"root symlink into 0777 dir", symlink(t, filepath.Join(base, "open", "policy.yaml"), filepath.Join(base, "links", "toopen.yaml"), 0), filepath.Join(base, "open"), "writable"},
		{"symlink to nobody's symlink", symlink(t, filepath.Join(base, "links", "nobody.yaml"), filepath.Join(base, "links", "chain.yaml"), 0), filepath.Join(base, "links", "nobody.yaml"), "owned by uid 65534"},
		{"dot-dot path", base + "/gp/../good/policy.yaml", filepath.Join(base, "gp"), "writable"},
	} {
		b, err := root.ReadFile(tc.path, 1<<20, "policy")
		if tc.component == "" {
			if err != nil || !strings.Contains(string(b), "force: [all]") {
				t.Errorf("%s: ReadFile(%s) = %q, %v; want the file", tc.name, tc.path, b, err)
			}
			if err := root.Check(tc.path, "policy"); err != nil {
				t.Errorf("%s: Check(%s) = %v; want nil", tc.name, tc.path, err)
			}
			continue
		}
		var ue *UntrustedError
		if !errors.As(err, &ue) || !errors.Is(err, ErrUntrusted) {
			t.Errorf("%s: ReadFile(%s) = %q, %v; want an UntrustedError", tc.name, tc.path, b, err)
			continue
		}
		if ue.Component != tc.component || !strings.Contains(ue.Problem, tc.problem) {
			t.Errorf("%s: refused %s for %q; want %s for %q", tc.name, ue.Component, ue.Problem, tc.component, tc.problem)
		}
		msg := err.Error()
		for _, want := range []string{"policy", tc.path, tc.component, "fix: "} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: message %q does not name %q", tc.name, msg, want)
			}
		}
		if err := root.Check(tc.path, "policy"); !errors.Is(err, ErrUntrusted) {
			t.Errorf("%s: Check(%s) = %v; want ErrUntrusted", tc.name, tc.path, err)
		}
		// An unprivileged process is not protected by these checks and
		// reads the file.
		if _, err := (Process{EUID: 1000}).ReadFile(tc.path, 1<<20, "policy"); err != nil {
			t.Errorf("%s: unprivileged ReadFile = %v; want the file", tc.name, err)
		}
	}
}

func TestReadFileOwnedByEUID(t *testing.T) {
	base := trustedDir(t)
	capUser := Process{EUID: 4242, Privileged: true}
	mine := write(t, filepath.Join(base, "home", "policy.yaml"), 0o600, 4242)
	if _, err := capUser.ReadFile(mine, 1<<20, "policy"); err != nil {
		t.Errorf("file owned by the process's uid: %v", err)
	}
	mkdir(t, filepath.Join(base, "home"), 0o755, 4242)
	if _, err := capUser.ReadFile(mine, 1<<20, "policy"); err != nil {
		t.Errorf("directory owned by the process's uid: %v", err)
	}
	theirs := write(t, filepath.Join(base, "home", "theirs.yaml"), 0o644, 4243)
	if _, err := capUser.ReadFile(theirs, 1<<20, "policy"); !errors.Is(err, ErrUntrusted) {
		t.Errorf("file of another user = %v; want ErrUntrusted", err)
	}
	// Root does not trust uid 4242's directory.
	if _, err := (Process{Privileged: true}).ReadFile(mine, 1<<20, "policy"); !errors.Is(err, ErrUntrusted) {
		t.Errorf("root reading below uid 4242's directory = %v; want ErrUntrusted", err)
	}
}

func TestReadFileNotRegular(t *testing.T) {
	base := trustedDir(t)
	root := Process{Privileged: true}
	fifo := filepath.Join(base, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
	})
	loop := symlink(t, "loop", filepath.Join(base, "loop"), 0)
	big := write(t, filepath.Join(base, "big"), 0o644, 0)
	for _, tc := range []struct {
		path string
		want error
	}{
		{fifo, boundedio.ErrNotRegular},
		{base, boundedio.ErrNotRegular},
		{"/", boundedio.ErrNotRegular},
		{"/dev/zero", boundedio.ErrNotRegular},
		{filepath.Join(base, "missing"), os.ErrNotExist},
		{filepath.Join(big, "sub"), syscall.ENOTDIR},
		{loop, syscall.ELOOP},
	} {
		done := make(chan error, 1)
		go func() {
			_, err := root.ReadFile(tc.path, 1<<20, "policy")
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, tc.want) {
				t.Errorf("ReadFile(%s) = %v; want %v", tc.path, err, tc.want)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("ReadFile(%s) still blocked after 2s", tc.path)
		}
	}
	if _, err := root.ReadFile(big, 8, "policy"); !errors.Is(err, boundedio.ErrTooLarge) {
		t.Errorf("ReadFile over the limit = %v; want ErrTooLarge", err)
	}
}

// childEnv makes TestChildProcess report what trust decides in a child.
const childEnv = "SAFEBPF_TRUST_CHILD_PATH"

// TestChildProcess is the child of TestCapabilityPrivileged; it does
// nothing unless run by it.
func TestChildProcess(t *testing.T) {
	path := os.Getenv(childEnv)
	if path == "" {
		t.Skip("helper process for TestCapabilityPrivileged")
	}
	p := Current()
	_, err := ReadFile(path, 1<<20, "policy")
	fmt.Printf("RESULT euid=%d privileged=%v err=%v\n", p.EUID, p.Privileged, err)
}

// TestCapabilityPrivileged runs a real non-root child holding one
// capability in its effective set (ambient capabilities) and checks it
// refuses a world-writable policy that the same child without the
// capability reads.
func TestCapabilityPrivileged(t *testing.T) {
	base := trustedDir(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The go test binary lives in a root-only directory: copy it where
	// uid 65534 can run it.
	bin := filepath.Join(base, "trust.test")
	copyFile(t, exe, bin, 0o755)
	open := write(t, filepath.Join(base, "open.yaml"), 0o666, 0)

	run := func(caps []uintptr) string {
		cmd := exec.Command(bin, "-test.run=^TestChildProcess$", "-test.v")
		cmd.Env = append(os.Environ(), childEnv+"="+open)
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Credential:  &syscall.Credential{Uid: nobody, Gid: nobody},
			AmbientCaps: caps,
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child with caps %v: %v\n%s", caps, err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, "RESULT ") {
				return line
			}
		}
		t.Fatalf("child with caps %v printed no result:\n%s", caps, out)
		return ""
	}
	if got := run(nil); !strings.Contains(got, "euid=65534 privileged=false err=<nil>") {
		t.Errorf("child without capabilities: %s; want an unprivileged read", got)
	}
	for name, c := range map[string]uintptr{"CAP_BPF": capBPF, "CAP_PERFMON": capPerfmon, "CAP_SYS_ADMIN": capSysAdmin} {
		got := run([]uintptr{c})
		if !strings.Contains(got, "euid=65534 privileged=true") || !strings.Contains(got, "writable by group and others") {
			t.Errorf("child with %s: %s; want a privileged refusal of the 0666 policy", name, got)
		}
	}
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
