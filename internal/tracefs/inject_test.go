package tracefs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/safebpf/safebpf/internal/testutil"
)

// TestInjectionRefusedBeforeWriting checks that no symbol or path that
// could smuggle a second command (newline), split the command (space,
// tab, the kernel's isspace 0xa0), cut it short ('#' starts a comment) or
// carry control characters is ever written to an events file (issue 12,
// finding 7). The events files here are plain files, so any write would
// show.
func TestInjectionRefusedBeforeWriting(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{KprobeEventsFile, UprobeEventsFile} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	f := New(dir)
	for _, sym := range []string{
		"vfs_read\n-:othertool/victim",
		"vfs_read\np:othertool/injected vfs_write",
		"vfs_read -:x/y",
		"vfs_read\targ1=%di",
		"vfs_read#comment",
		"vfs\x00read",
		"vfs_read\x1b[31m",
		"vfs_read\xa0x",
		"vfs_read+4",
		"mod:sub:sym",
		":vfs_read",
		strings.Repeat("a", 513),
	} {
		if _, err := f.Kprobe(sym, &KprobeOptions{Return: true, MaxActive: 16}); !errors.Is(err, errInvalidInput) {
			t.Errorf("Kprobe(%.80q) = %.200v; want errInvalidInput", sym, err)
		}
	}
	for _, path := range []string{
		"/bin/true:0x10\n-:othertool/victim\np:othertool/injected /bin/true",
		"/bin/true\n-:othertool/victim",
		"/usr/bin/my prog",
		"/bin/true#x",
		"/bin/tr\x7fue",
		"/opt/caf\xc3\xa0/bin",
		"/" + strings.Repeat("a", 4096),
	} {
		if _, err := f.Uprobe(path, 0x10, nil); !errors.Is(err, errInvalidInput) {
			t.Errorf("Uprobe(%.80q) = %.200v; want errInvalidInput", path, err)
		}
	}
	for _, name := range []string{KprobeEventsFile, UprobeEventsFile} {
		if b, _ := os.ReadFile(filepath.Join(dir, name)); len(b) > 0 {
			t.Errorf("%s was written: %.300q", name, b)
		}
	}
	// Accepted shapes still reach the kernel file.
	for _, sym := range []string{"vfs_read", "tcp_v4_connect.cold", "foo.isra.0", "btrfs:btrfs_sync_file", "__x64_sys_execve"} {
		if err := checkSymbol(sym); err != nil {
			t.Errorf("checkSymbol(%q) = %v; want nil", sym, err)
		}
	}
	for _, path := range []string{"/usr/lib/x86_64-linux-gnu/libc.so.6", "/opt/a:b/bin", "/opt/café/bin"} {
		if err := checkPath(path); err != nil {
			t.Errorf("checkPath(%q) = %v; want nil", path, err)
		}
	}
}

// TestUprobeInjectionOnHost tries, on the real uprobe_events, to delete
// another tool's event and add one of its own through a crafted path.
func TestUprobeInjectionOnHost(t *testing.T) {
	f := mountTracefs(t)
	exe, off := testutil.LibcSymbol(t, "__libc_start_main")
	victim := fmt.Sprintf("p:othertool_%d/victim %s:0x%x", os.Getpid(), exe, off)
	if err := f.write(UprobeEventsFile, victim); err != nil {
		testutil.SkipIfNotSupported(t, "uprobe_events", err)
	}
	group := fmt.Sprintf("othertool_%d", os.Getpid())
	t.Cleanup(func() {
		_ = f.write(UprobeEventsFile, "-:"+group+"/victim")
		_ = f.write(UprobeEventsFile, "-:"+group+"/injected")
	})
	crafted := fmt.Sprintf("%s:0x%x\n-:%s/victim\np:%s/injected %s", exe, off, group, group, exe)
	ev, err := f.Uprobe(crafted, off, nil)
	if err == nil {
		t.Cleanup(func() { ev.Close() })
	}
	if !errors.Is(err, errInvalidInput) {
		t.Errorf("Uprobe(crafted path) = %v; want errInvalidInput", err)
	}
	if _, ok := hasProbe(t, f, UprobeEventsFile, group, "victim"); !ok {
		t.Errorf("another tool's event %s/victim was deleted through a crafted path", group)
	}
	if _, ok := hasProbe(t, f, UprobeEventsFile, group, "injected"); ok {
		t.Errorf("an event %s/injected was added through a crafted path", group)
	}
}

// TestKprobeInjectionOnHost does the same through a kretprobe symbol, the
// path Kretprobe takes when a maxactive cap applies (kernels with
// kprobe_events: the guests).
func TestKprobeInjectionOnHost(t *testing.T) {
	f := mountTracefs(t)
	if _, err := os.Stat(filepath.Join(f.Path(), KprobeEventsFile)); err != nil {
		t.Skipf("kernel lacks kprobe_events (CONFIG_KPROBE_EVENTS): %v", err)
	}
	group := fmt.Sprintf("othertool_%d", os.Getpid())
	if err := f.write(KprobeEventsFile, "p:"+group+"/victim vfs_write"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = f.write(KprobeEventsFile, "-:"+group+"/victim")
		_ = f.write(KprobeEventsFile, "-:"+group+"/injected")
	})
	for _, sym := range []string{
		"vfs_read\n-:" + group + "/victim",
		"vfs_read\np:" + group + "/injected vfs_write",
	} {
		ev, err := f.Kprobe(sym, &KprobeOptions{Return: true, MaxActive: 16})
		if err == nil {
			t.Cleanup(func() { ev.Close() })
		}
		if !errors.Is(err, errInvalidInput) {
			t.Errorf("Kprobe(%.80q) = %.200v; want errInvalidInput", sym, err)
		}
	}
	if _, ok := hasProbe(t, f, KprobeEventsFile, group, "victim"); !ok {
		t.Errorf("another tool's event %s/victim was deleted through a crafted symbol", group)
	}
	if _, ok := hasProbe(t, f, KprobeEventsFile, group, "injected"); ok {
		t.Errorf("an event %s/injected was added through a crafted symbol", group)
	}
}
