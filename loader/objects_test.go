package loader

import (
	"bytes"
	"embed"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// The test objects are compiled from testdata/bpf/*.c (BPF C in the style
// of bcc's libbpf-tools and cilium/ebpf's examples, without vmlinux.h) and
// committed, because the kernel-matrix guests have no clang;
// TestBPFObjectsUpToDate recompiles them.
//
//go:generate sh testdata/bpf/gen.sh
//go:embed testdata/bpf/*.o
var bpfObjects embed.FS

// Slots of the "counts" map every test object writes (common.h).
const (
	slotCalls  = 0 // calls seen at entry (or by an fexit)
	slotRetSum = 1 // sum of return values
	slotRets   = 2 // return events
	slotArgSum = 3 // sum of an argument read at entry
	slotExtra  = 4
)

// object parses the committed object testdata/bpf/NAME.o.
func object(tb testing.TB, name string) *ebpf.CollectionSpec {
	tb.Helper()
	b, err := bpfObjects.ReadFile("testdata/bpf/" + name + ".o")
	if err != nil {
		tb.Fatal(err)
	}
	spec, err := ebpf.LoadCollectionSpecFromReader(bytes.NewReader(b))
	if err != nil {
		tb.Fatalf("parse %s.o: %v", name, err)
	}
	return spec
}

// lockThread pins the test goroutine to its thread for the rest of the
// test and restricts the object's programs to it (target_tid), so that
// every event counted is one the test caused.
func lockThread(tb testing.TB, spec *ebpf.CollectionSpec) int {
	tb.Helper()
	runtime.LockOSThread()
	tb.Cleanup(runtime.UnlockOSThread)
	tid := unix.Gettid()
	v, ok := spec.Variables["target_tid"]
	if !ok {
		tb.Fatal("object has no target_tid")
	}
	if err := v.Set(uint32(tid)); err != nil {
		tb.Fatal(err)
	}
	return tid
}

// counts reads the first eight slots of the "counts" map.
func counts(tb testing.TB, m *ebpf.Map) [8]uint64 {
	tb.Helper()
	var out [8]uint64
	for i := range out {
		out[i] = readCount(tb, m, uint32(i))
	}
	return out
}

// retarget replaces the placeholder binary "target" in the uprobe
// programs' AttachTo with path, as an agent that learns the path at run
// time does.
func retarget(spec *ebpf.CollectionSpec, path string) {
	for _, ps := range spec.Programs {
		if rest, ok := strings.CutPrefix(ps.AttachTo, "target:"); ok {
			ps.AttachTo = path + ":" + rest
		}
	}
}

// TestBPFObjectsUpToDate recompiles testdata/bpf/*.c with the command in
// gen.sh and compares with the committed objects.
func TestBPFObjectsUpToDate(t *testing.T) {
	for _, tool := range []string{"clang", "llvm-strip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s to compile the test objects (Debian: clang, llvm, libbpf-dev)", tool)
		}
	}
	if _, err := os.Stat("/usr/include/bpf/bpf_helpers.h"); err != nil {
		t.Skip("needs libbpf-dev's headers (/usr/include/bpf)")
	}
	srcs, err := filepath.Glob("testdata/bpf/*.c")
	if err != nil || len(srcs) == 0 {
		t.Fatalf("no sources: %v", err)
	}
	dir := t.TempDir()
	for _, f := range append(srcs, "testdata/bpf/common.h", "testdata/bpf/gen.sh") {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("sh", filepath.Join(dir, "gen.sh")).CombinedOutput(); err != nil {
		t.Fatalf("gen.sh: %v\n%s", err, out)
	}
	for _, c := range srcs {
		name := strings.TrimSuffix(filepath.Base(c), ".c") + ".o"
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		want, err := bpfObjects.ReadFile("testdata/bpf/" + name)
		if err != nil {
			t.Errorf("%s is not committed: %v", name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("testdata/bpf/%s is stale: run go generate ./loader", name)
		}
	}
}
