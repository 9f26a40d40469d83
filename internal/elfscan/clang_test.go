package elfscan

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"
)

// TestClangObjects compiles BPF C written like bcc's libbpf-tools
// (testdata/kinds.c) with clang and scans what clang emitted, so the scan
// is held against a real compiler's instruction selection, not against
// hand-built instructions.
func TestClangObjects(t *testing.T) {
	clang, err := exec.LookPath("clang")
	if err != nil {
		t.Skip("needs clang to compile testdata/kinds.c (Debian: apt-get install clang libbpf-dev)")
	}
	if _, err := os.Stat("/usr/include/bpf/bpf_helpers.h"); err != nil {
		t.Skip("needs libbpf headers (/usr/include/bpf/bpf_helpers.h; Debian: apt-get install libbpf-dev)")
	}
	obj := filepath.Join(t.TempDir(), "kinds.o")
	for _, opt := range []string{"-O2", "-O1"} {
		cmd := exec.Command(clang, "-target", "bpf", opt, "-g", "-D__TARGET_ARCH_x86", "-I/usr/include/x86_64-linux-gnu",
			"-c", "testdata/kinds.c", "-o", obj)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("clang %s: %v\n%s", opt, err, out)
		}
		spec, err := ebpf.LoadCollectionSpec(obj)
		if err != nil {
			t.Fatal(err)
		}
		for name, want := range map[string]Result{
			"do_perf_event":                          {ReadsUserStacks: true},
			"kernel_stacks":                          {},
			"tracepoint__syscalls__sys_enter_openat": {ReadsUserMemory: true},
			"configured_stacks":                      {ReadsUserMemory: true, ReadsUserStacks: true},
			"dispatch":                               {TailCalls: true},
		} {
			ps, ok := spec.Programs[name]
			if !ok {
				t.Fatalf("%s: no program %s", opt, name)
			}
			got := Program(ps, spec.Programs)
			if got.ReadsUserMemory != want.ReadsUserMemory || got.ReadsUserStacks != want.ReadsUserStacks || got.TailCalls != want.TailCalls {
				t.Errorf("%s %s: reads %v, stacks %v, tail calls %v; want %v, %v, %v (%q)", opt, name,
					got.ReadsUserMemory, got.ReadsUserStacks, got.TailCalls, want.ReadsUserMemory, want.ReadsUserStacks, want.TailCalls, got.Reasons)
			}
		}
	}
}
