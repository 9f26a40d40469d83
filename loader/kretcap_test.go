package loader

import (
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/probe"
)

// TestKretprobeCapBestEffort: a kretprobe with a BPF cookie cannot take a
// maxactive (that needs a tracefs event, which has no cookie). Where only
// hazards ask for the cap (kretprobe-pool-exhaustion: missed returns), the
// kretprobe attaches with the kernel's default pool, as cilium/ebpf's
// link.Kretprobe would, the Decision says the cap was not applied, and the
// program runs at every return. A cap the caller asked for fails as
// cilium/ebpf fails.
func TestKretprobeCapBestEffort(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the syscall wrapper is named for amd64")
	}
	l := newHostLoader(t, nil)
	k := l.Kernel()
	if !k.Support(probe.Kretprobe).Yes() {
		t.Skipf("kernel %s lacks kprobes (%s)", k.Release, k.Support(probe.Kretprobe).Reason)
	}
	if !haveCookies(t) {
		t.Skipf("kernel %s has no bpf_get_attach_cookie for kprobes (5.15+)", k.Release)
	}
	coll, err := ebpf.NewCollection(spec(counterProg("kret", "kretprobe/__x64_sys_getpid", ebpf.Kprobe, 0, os.Getpid())))
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	prog, counts := coll.Programs["kret"], coll.Maps["counts"]

	t.Run("hazard-cap", func(t *testing.T) {
		lk, err := l.Kretprobe("__x64_sys_getpid", prog, &link.KprobeOptions{Cookie: 7})
		if err != nil {
			t.Fatalf("kretprobe with a cookie on %s: %v", k.Release, err)
		}
		defer lk.Close()
		d := lk.Decision()
		t.Logf("%s: %s", k.Release, d)
		if d.Chosen != probe.Kretprobe || d.Settings.MaxActive != 0 {
			t.Errorf("chosen %s with maxactive %d, want kretprobe with the default pool", d.Chosen, d.Settings.MaxActive)
		}
		capped := false
		for _, s := range d.Steps {
			capped = capped || s.Action == fallback.Cap
		}
		if capped && !strings.Contains(d.String(), "not applied") {
			t.Errorf("a hazard capped the pool but the decision does not say the cap was not applied:\n%s", d)
		}
		before := readCount(t, counts, 0)
		const calls = 200
		for range calls {
			unix.Getpid()
		}
		if got := readCount(t, counts, 0) - before; got < calls {
			t.Errorf("%d getpid calls, %d returns seen", calls, got)
		}
	})

	t.Run("requested-cap", func(t *testing.T) {
		lk, err := l.Kretprobe("__x64_sys_getpid", prog, &link.KprobeOptions{Cookie: 7, RetprobeMaxActive: 64})
		if err == nil {
			lk.Close()
			t.Fatalf("kretprobe with a cookie and maxactive 64 attached (%s), want an error as cilium/ebpf gives", lk.Decision())
		}
		var ae *AttachError
		if !errors.As(err, &ae) {
			t.Errorf("error %v is not an *AttachError", err)
		}
	})
}
