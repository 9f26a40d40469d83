//go:build linux

package probe

import (
	"context"
	"io"
	"os"
	"testing"

	"github.com/cilium/ebpf/btf"

	"github.com/safebpf/safebpf/internal/kcode"
	"github.com/safebpf/safebpf/internal/kcode/kcodetest"
	"github.com/safebpf/safebpf/internal/kernel"
	"github.com/safebpf/safebpf/internal/selftest"
	"github.com/safebpf/safebpf/internal/testutil"
)

// BenchmarkWitness measures what each witness costs on the running host,
// next to the plain operation it builds on (cilium/ebpf's kernel BTF load,
// a raw read of /proc/kallsyms, a bare uretprobe run of the helper). Each
// iteration uses a new Host, so nothing is shared between iterations.
func BenchmarkWitness(b *testing.B) {
	ctx := context.Background()
	b.Run("btf/cilium-LoadKernelSpec", func(b *testing.B) {
		for b.Loop() {
			if _, err := btf.LoadKernelSpec(); err != nil {
				b.Skip(err)
			}
		}
	})
	b.Run("btf/witness", func(b *testing.B) {
		for b.Loop() {
			if o := observeBTF(&kernel.Host{}, factTailCallBTF); !o.Known() {
				b.Skip(o.Witness)
			}
		}
	})
	b.Run("kallsyms/raw-read", func(b *testing.B) {
		for b.Loop() {
			f, err := os.Open("/proc/kallsyms")
			if err != nil {
				b.Skip(err)
			}
			_, _ = io.Copy(io.Discard, f)
			f.Close()
		}
	})
	b.Run("kallsyms/ReadSymbols", func(b *testing.B) {
		for b.Loop() {
			f, err := os.Open("/proc/kallsyms")
			if err != nil {
				b.Skip(err)
			}
			if _, err := kcode.ReadSymbols(f); err != nil {
				b.Skip(err)
			}
			f.Close()
		}
	})
	// kcore and decoding without the kernel: three call facts on the
	// synthetic kernel (its kallsyms is a few lines).
	root := syntheticKernelRoot(kcodetest.Kernel{NofaultFix: true, VmallocLookup: true})
	b.Run("call/synthetic-3-facts", func(b *testing.B) {
		k := &Kernel{Arch: "amd64", ProcVersion: gccProcVersion}
		for b.Loop() {
			h := &kernel.Host{FS: root}
			for _, f := range []Fact{factNofaultFix, factVmallocCheck, factNMICheck} {
				if o := observeWitness(ctx, h, k, f); !o.Known() {
					b.Fatal(o.Witness)
				}
			}
		}
	})
	b.Run("selftest/uncached", func(b *testing.B) {
		testutil.RequirePrivileged(b)
		for b.Loop() {
			if _, err := selftest.RunUretprobeSeccomp(ctx, nil); err != nil {
				b.Skip(err)
			}
		}
	})
	b.Run("selftest/helper-without-probe", func(b *testing.B) {
		for b.Loop() {
			if _, err := selftest.RunUretprobeSeccomp(ctx, &selftest.UretprobeOptions{NoProbe: true}); err != nil {
				b.Skip(err)
			}
		}
	})
}
