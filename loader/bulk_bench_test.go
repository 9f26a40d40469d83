package loader

import (
	"bufio"
	"debug/elf"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/safebpf/safebpf/internal/testutil"
	"github.com/safebpf/safebpf/probe"
)

// The bulk benchmarks attach one program to many targets and close it, in
// interleaved rounds, four ways: cilium/ebpf one link per target
// ("cilium-single"), cilium/ebpf's own multi link ("cilium-multi"), the
// batch call on a program loaded as a single probe ("safebpf-batch":
// KprobeBatch, UprobeBatch; the Loader loads the multi form itself, once),
// and the drop-in multi call ("safebpf-multi": KprobeMulti, UprobeMulti).
// Sub-benchmark one-by-one compares cilium-single with safebpf-batch
// (cilium-single/safebpf-batch: how much faster batching is); a round
// takes seconds to minutes, so it needs few. Sub-benchmark multi compares
// the three multi-link sides (safebpf-batch/cilium-multi,
// safebpf-multi/cilium-multi: what safebpf adds to the kernel's multi
// link); its rounds are short, so run many: closing a multi link waits
// for an RCU grace period, whose length varies from round to round far
// more than either side's own work.

// bulkTargets is how many targets the bulk benchmarks attach: n, or 20
// with -short (scripts/test runs them that way, to check that they work).
func bulkTargets(n int) int {
	if testing.Short() {
		return 20
	}
	return n
}

// bulkProgs loads, through l (so that it knows their specs), a counting
// kprobe-type program in section single and the same in section multi
// with the multi attach type at.
func bulkProgs(b *testing.B, l *Loader, single, multi string, at ebpf.AttachType) (*ebpf.Program, *ebpf.Program) {
	b.Helper()
	s := counterProg("one", single, ebpf.Kprobe, 0, 0)
	m := counterProg("many", multi, ebpf.Kprobe, 1, 0)
	m.AttachType = at
	c, err := l.LoadAndAttach(spec(s, m), &CollectionOptions{Manual: []string{"one", "many"}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c.Programs["one"], c.Programs["many"]
}

// libcFunctions copies the C library to a temporary file (so that no
// running process maps it: the benchmark must not slow the machine's
// processes) and returns it with n of its function symbols, spread over
// the alphabet, one per address.
func libcFunctions(b *testing.B, n int) (string, []string) {
	b.Helper()
	path, _ := testutil.LibcSymbol(b, "malloc")
	f, err := elf.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	syms, err := f.DynamicSymbols()
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	seen := map[uint64]bool{}
	var names []string
	for _, s := range syms {
		if elf.ST_TYPE(s.Info) != elf.STT_FUNC || s.Section == elf.SHN_UNDEF || s.Size == 0 || seen[s.Value] ||
			strings.ContainsAny(s.Name, "@.") {
			continue
		}
		seen[s.Value] = true
		names = append(names, s.Name)
	}
	slices.Sort(names)
	if len(names) < n {
		b.Fatalf("%s has %d function symbols, want %d", path, len(names), n)
	}
	picked := make([]string, n)
	for i := range picked {
		picked[i] = names[i*len(names)/n]
	}
	copyPath := filepath.Join(b.TempDir(), "libc.so.6")
	src, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(copyPath)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		b.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		b.Fatal(err)
	}
	return copyPath, picked
}

func closeAll(lks []link.Link) {
	for _, lk := range lks {
		lk.Close()
	}
}

// bulkSides runs the sub-benchmarks described above.
func bulkSides(b *testing.B, single, multi, batch, dropin side) {
	b.Run("one-by-one", func(b *testing.B) {
		rs := interleave(b, single, batch)
		reportSide(b, "cilium-single", rs[0])
		reportSide(b, "safebpf-batch", rs[1])
		reportRatio(b, "cilium-single/safebpf-batch", rs[0], rs[1])
	})
	b.Run("multi", func(b *testing.B) {
		rs := interleave(b, multi, batch, dropin)
		reportSide(b, "cilium-multi", rs[0])
		reportSide(b, "safebpf-batch", rs[1])
		reportSide(b, "safebpf-multi", rs[2])
		reportRatio(b, "safebpf-batch/cilium-multi", rs[1], rs[0])
		reportRatio(b, "safebpf-multi/cilium-multi", rs[2], rs[0])
	})
}

// BenchmarkBulkUprobes: 200 function symbols of (a copy of) the C
// library, attach and close. Needs uprobe_multi (6.6+) for the multi
// sides.
func BenchmarkBulkUprobes(b *testing.B) {
	l := newHostLoader(b, nil)
	if !l.Kernel().Support(probe.UprobeMulti).Yes() {
		b.Skipf("kernel lacks uprobe_multi: %s", l.Kernel().Support(probe.UprobeMulti).Reason)
	}
	path, syms := libcFunctions(b, bulkTargets(200))
	one, many := bulkProgs(b, l, "uprobe", "uprobe.multi", ebpf.AttachTraceUprobeMulti)
	cex, err := link.OpenExecutable(path)
	if err != nil {
		b.Fatal(err)
	}
	ex, err := l.OpenExecutable(path)
	if err != nil {
		b.Fatal(err)
	}
	bulkSides(b,
		func(b *testing.B) time.Duration {
			var lks []link.Link
			for _, s := range syms {
				lk, err := cex.Uprobe(s, one, nil)
				if err != nil {
					b.Fatalf("uprobe %s: %v", s, err)
				}
				lks = append(lks, lk)
			}
			closeAll(lks)
			return 0
		},
		func(b *testing.B) time.Duration {
			lk, err := cex.UprobeMulti(syms, many, nil)
			if err != nil {
				b.Fatal(err)
			}
			lk.Close()
			return 0
		},
		func(b *testing.B) time.Duration {
			lk, err := ex.UprobeBatch(syms, one, nil)
			if err != nil {
				b.Fatal(err)
			}
			if !lk.Decision().Settings.Multi {
				b.Fatalf("not batched: %s", Explain(lk.Decision()))
			}
			lk.Close()
			return 0
		},
		func(b *testing.B) time.Duration {
			lk, err := ex.UprobeMulti(syms, many, nil)
			if err != nil {
				b.Fatal(err)
			}
			lk.Close()
			return 0
		},
	)
}

// traceableFunctions returns n kernel functions kprobes and kprobe_multi
// can both attach to, from available_filter_functions: defined once in
// kallsyms, not on the kprobe blacklist, without '.' (compiler clones),
// preferring subsystems idle in a test machine (ACPI, PCI, DMI, EFI, …)
// so that attaching them does not slow the machine down.
func traceableFunctions(b *testing.B, l *Loader, n int) []string {
	b.Helper()
	fs, err := l.tracefsFS()
	if err != nil {
		b.Skipf("no tracefs: %v", err)
	}
	avail, err := os.Open(filepath.Join(fs.Path(), "available_filter_functions"))
	if err != nil {
		b.Skipf("read available_filter_functions: %v", err)
	}
	defer avail.Close()
	black := map[string]bool{}
	if bl, err := os.ReadFile("/sys/kernel/debug/kprobes/blacklist"); err == nil {
		for _, line := range strings.Split(string(bl), "\n") {
			if f := strings.Fields(line); len(f) == 2 {
				black[f[1]] = true
			}
		}
	}
	count := map[string]int{}
	kall, err := os.Open("/proc/kallsyms")
	if err != nil {
		b.Fatal(err)
	}
	sc := bufio.NewScanner(kall)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 3 {
			count[f[2]]++
		}
	}
	kall.Close()
	prefixes := []string{"acpi_", "pci_", "dmi_", "efi_", "pnp_", "rtc_", "serial8250_", "uart_", "vt_", "con_", "fb_", "drm_", "input_", "hid_", "usb_", "edac_", "mce_", "crypto_", "x509_"}
	byPrefix := map[string][]string{}
	sc = bufio.NewScanner(avail)
	for sc.Scan() {
		name := strings.Fields(sc.Text())
		if len(name) == 0 || len(name) > 1 || strings.Contains(name[0], ".") || black[name[0]] || count[name[0]] != 1 {
			continue // modules' functions ("f [mod]") too
		}
		for _, p := range prefixes {
			if strings.HasPrefix(name[0], p) {
				byPrefix[p] = append(byPrefix[p], name[0])
				break
			}
		}
	}
	var out []string
	for _, p := range prefixes {
		out = append(out, byPrefix[p]...)
	}
	if len(out) < n {
		b.Skipf("only %d idle traceable functions, want %d", len(out), n)
	}
	slices.Sort(out)
	picked := make([]string, n)
	for i := range picked {
		picked[i] = out[i*len(out)/n]
	}
	return picked
}

// BenchmarkBulkKprobes: 500 kernel functions, attach and close. Needs
// kprobes and kprobe_multi (5.18+): run it in the 6.12 guest
// (SAFEBPF_VM_BENCH, see internal/vmtest).
func BenchmarkBulkKprobes(b *testing.B) {
	l := newHostLoader(b, nil)
	k := l.Kernel()
	if !k.Support(probe.Kprobe).Yes() || !k.Support(probe.KprobeMulti).Yes() {
		b.Skipf("needs kprobes (%s) and kprobe_multi (%s)", k.Support(probe.Kprobe).Reason, k.Support(probe.KprobeMulti).Reason)
	}
	mountTracefs(b)
	syms := traceableFunctions(b, l, bulkTargets(500))
	one, many := bulkProgs(b, l, "kprobe", "kprobe.multi", ebpf.AttachTraceKprobeMulti)
	bulkSides(b,
		func(b *testing.B) time.Duration {
			var lks []link.Link
			for _, s := range syms {
				lk, err := link.Kprobe(s, one, nil)
				if err != nil {
					closeAll(lks)
					b.Fatalf("kprobe %s: %v", s, err)
				}
				lks = append(lks, lk)
			}
			closeAll(lks)
			return 0
		},
		func(b *testing.B) time.Duration {
			lk, err := link.KprobeMulti(many, link.KprobeMultiOptions{Symbols: syms})
			if err != nil {
				b.Fatal(err)
			}
			lk.Close()
			return 0
		},
		func(b *testing.B) time.Duration {
			lk, err := l.KprobeBatch(syms, one, nil)
			if err != nil {
				b.Fatal(err)
			}
			if !lk.Decision().Settings.Multi {
				b.Fatalf("not batched: %s", Explain(lk.Decision()))
			}
			lk.Close()
			return 0
		},
		func(b *testing.B) time.Duration {
			lk, err := l.KprobeMulti(many, link.KprobeMultiOptions{Symbols: syms})
			if err != nil {
				b.Fatal(err)
			}
			lk.Close()
			return 0
		},
	)
}
