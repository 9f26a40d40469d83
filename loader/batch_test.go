package loader

import (
	"bufio"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/probe"
)

// These tests attach one program to many targets through the batch calls
// and CollectionOptions.Batches, on the running kernel (uprobe_multi on
// this host, kprobe_multi in the 6.12 guest, single links in the 5.10
// guest), and check the Decision and the events: every target fires once,
// with its own cookie (testdata/bpf/bulk.c counts hits by cookie and by
// instruction pointer).

// bulkSymbols are the functions "target bulk" calls once each.
func bulkSymbols() []string {
	out := make([]string, 16)
	for i := range out {
		out[i] = fmt.Sprintf("main.bulk%02d", i)
	}
	return out
}

// haveCookies reports whether kprobe-type programs may call
// bpf_get_attach_cookie (5.15+).
func haveCookies(tb testing.TB) bool {
	tb.Helper()
	err := features.HaveProgramHelper(ebpf.Kprobe, asm.FnGetAttachCookie)
	if err != nil && !errors.Is(err, ebpf.ErrNotSupported) {
		tb.Fatalf("probe bpf_get_attach_cookie: %v", err)
	}
	return err == nil
}

// bulkObject loads testdata/bpf/bulk.o with only the named program (the
// cookie-reading ones do not load before 5.15), which the caller attaches
// itself.
func bulkObject(tb testing.TB, l *Loader, prog string, threadOnly bool) *Collection {
	tb.Helper()
	spec := object(tb, "bulk")
	for name := range spec.Programs {
		if name != prog {
			delete(spec.Programs, name)
		}
	}
	if threadOnly {
		lockThread(tb, spec)
	}
	c, err := l.LoadAndAttach(spec, &CollectionOptions{Manual: []string{prog}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// hits reads one of bulk.c's counters.
func hits(tb testing.TB, m *ebpf.Map) map[uint64]uint64 {
	tb.Helper()
	out := map[uint64]uint64{}
	var k, v uint64
	it := m.Iterate()
	for it.Next(&k, &v) {
		out[k] = v
	}
	if err := it.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// addrTable maps addresses to names: nearest returns the symbol an
// instruction pointer lies in (probes report the probed address or a few
// bytes past it: the int3, an endbr64).
type addrTable struct {
	addrs []uint64
	names []string
}

func (st *addrTable) add(name string, addr uint64) {
	st.addrs = append(st.addrs, addr)
	st.names = append(st.names, name)
}

func (st *addrTable) sort() {
	idx := make([]int, len(st.addrs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		switch {
		case st.addrs[a] < st.addrs[b]:
			return -1
		case st.addrs[a] > st.addrs[b]:
			return 1
		}
		return 0
	})
	a, n := make([]uint64, len(idx)), make([]string, len(idx))
	for i, j := range idx {
		a[i], n[i] = st.addrs[j], st.names[j]
	}
	st.addrs, st.names = a, n
}

func (st *addrTable) nearest(ip uint64) string {
	i, found := slices.BinarySearch(st.addrs, ip)
	if found {
		return st.names[i]
	}
	if i == 0 || ip-st.addrs[i-1] > 16 {
		return fmt.Sprintf("0x%x", ip)
	}
	return st.names[i-1]
}

func elfSymbolTable(tb testing.TB, path string) *addrTable {
	tb.Helper()
	f, err := elf.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		tb.Fatal(err)
	}
	st := &addrTable{}
	for _, s := range syms {
		if elf.ST_TYPE(s.Info) == elf.STT_FUNC && s.Value != 0 {
			st.add(s.Name, s.Value)
		}
	}
	st.sort()
	return st
}

func kallsymsTable(tb testing.TB) *addrTable {
	tb.Helper()
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	st := &addrTable{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 || !strings.ContainsAny(fields[1], "tTwW") {
			continue
		}
		addr, err := strconv.ParseUint(fields[0], 16, 64)
		if err != nil || addr == 0 {
			continue
		}
		st.add(fields[2], addr)
	}
	st.sort()
	return st
}

// checkHits checks that every name in want fired exactly once, by
// instruction pointer, and, when cookies is not nil, exactly once with
// its cookie; nothing else fired.
func checkHits(t *testing.T, c *Collection, st *addrTable, want []string, cookies []uint64) {
	t.Helper()
	byName := map[string]uint64{}
	for ip, n := range hits(t, c.Maps["by_ip"]) {
		byName[st.nearest(ip)] += n
	}
	wantNames := map[string]uint64{}
	for _, n := range want {
		wantNames[n] = 1
	}
	for n, got := range byName {
		if wantNames[n] != got {
			t.Errorf("%s fired %d times, want %d", n, got, wantNames[n])
		}
	}
	for n := range wantNames {
		if byName[n] == 0 {
			t.Errorf("%s never fired", n)
		}
	}
	if cookies == nil {
		return
	}
	byCookie := hits(t, c.Maps["by_cookie"])
	for i, ck := range cookies {
		if byCookie[ck] != 1 {
			t.Errorf("cookie %d (%s) seen %d times, want 1", ck, want[i], byCookie[ck])
		}
	}
	for ck, n := range byCookie {
		if !slices.Contains(cookies, ck) {
			t.Errorf("unexpected cookie %d seen %d times", ck, n)
		}
	}
}

func runBulkTarget(t *testing.T, tg target) {
	t.Helper()
	cmd := exec.Command(tg.Path, "bulk")
	cmd.Env = append(os.Environ(), "GOGC=off", "GODEBUG=asyncpreemptoff=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("run target bulk: %v: %s", err, out)
	}
}

// wantBatched checks the decision of a batch of n targets requested as
// single probes of mechanism single.
func wantBatched(t *testing.T, k *probe.Kernel, d fallback.Decision, single probe.Mechanism) {
	t.Helper()
	t.Logf("kernel %s: %s", k.Release, Explain(d))
	multi := single.Multi()
	if d.Requested != single {
		t.Errorf("requested %s, want %s", d.Requested, single)
	}
	if k.Support(multi).Yes() {
		if d.Chosen != multi || !d.Settings.Multi || d.Steps[0].To != multi || d.Steps[0].Action != fallback.Upgrade {
			t.Errorf("kernel has %s: got %s, want the batch upgraded to one %s link", multi, Explain(d), multi)
		}
		return
	}
	if d.Chosen != single || d.Settings.Multi {
		t.Errorf("kernel lacks %s (%s): got %s, want one %s per target", multi, k.Support(multi).Reason, Explain(d), single)
	}
	if !slices.ContainsFunc(d.Steps, func(s fallback.Step) bool { return s.Missing == multi && strings.Contains(s.Reason, "not batched") }) {
		t.Errorf("kernel lacks %s: the decision does not say why the targets were not batched: %+v", multi, d.Steps)
	}
}

// TestUprobeBatch: sixteen functions of the target through
// Executable.UprobeBatch, each with its cookie: one uprobe_multi link
// where the kernel has them, else sixteen uprobes.
func TestUprobeBatch(t *testing.T) {
	l := newHostLoader(t, nil)
	k := l.Kernel()
	if !k.Support(probe.Uprobe).Yes() {
		t.Skipf("kernel lacks uprobes: %s", k.Support(probe.Uprobe).Reason)
	}
	tg := hitTarget(t)
	prog, cookies := "bulk_uprobe", make([]uint64, 16)
	for i := range cookies {
		cookies[i] = uint64(1000 + i)
	}
	if !haveCookies(t) {
		prog, cookies = "bulk_uprobe_ip", nil
	}
	base := kernelFDs(t)
	c := bulkObject(t, l, prog, false)
	ex, err := l.OpenExecutable(tg.Path)
	if err != nil {
		t.Fatal(err)
	}
	before := attachFDs(t)
	lk, err := ex.UprobeBatch(bulkSymbols(), c.Programs[prog], &BatchOptions{Cookies: cookies})
	if err != nil {
		t.Fatal(err)
	}
	wantBatched(t, k, lk.Decision(), probe.Uprobe)
	runBulkTarget(t, tg)
	checkHits(t, c, elfSymbolTable(t, tg.Path), bulkSymbols(), cookies)
	if err := lk.Close(); err != nil {
		t.Fatal(err)
	}
	if after := attachFDs(t); !mapsEqual(before, after) {
		t.Errorf("kernel fds before %v, after close %v", before, after)
	}
	// A second batch reuses the multi form loaded for the first; closing
	// the collection closes it.
	lk, err = ex.UprobeBatch(bulkSymbols()[:2], c.Programs[prog], nil)
	if err != nil {
		t.Fatal(err)
	}
	lk.Close()
	c.Close()
	if after := kernelFDs(t); !mapsEqual(base, after) {
		t.Errorf("kernel fds before loading %v, after closing the collection %v", base, after)
	}
}

// attachFDs keeps the links and perf events of kernelFDs' answer: what a
// batch leaves attached. (The Loader keeps the program forms it loaded for
// batches until the collection is closed.)
func attachFDs(tb testing.TB) map[string]int {
	out := map[string]int{}
	for k, v := range kernelFDs(tb) {
		if k == "anon_inode:bpf-link" || k == "anon_inode:[perf_event]" {
			out[k] = v
		}
	}
	return out
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestUprobeBatchMissingSymbol: a batch naming a symbol the binary does
// not have. All or nothing, it fails naming the symbol, with nothing left
// attached; with optional targets the others attach (re-batched where the
// kernel refused the multi link), each once with its cookie, and the
// Decision and Link.Skipped name the one left out.
func TestUprobeBatchMissingSymbol(t *testing.T) {
	l := newHostLoader(t, nil)
	k := l.Kernel()
	if !k.Support(probe.Uprobe).Yes() {
		t.Skipf("kernel lacks uprobes: %s", k.Support(probe.Uprobe).Reason)
	}
	tg := hitTarget(t)
	prog := "bulk_uprobe"
	if !haveCookies(t) {
		prog = "bulk_uprobe_ip"
	}
	syms := append(bulkSymbols(), "main.no_such_function")
	var cookies []uint64
	if prog == "bulk_uprobe" {
		for i := range syms {
			cookies = append(cookies, uint64(3000+i))
		}
	}
	ex, err := l.OpenExecutable(tg.Path)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("all-or-nothing", func(t *testing.T) {
		c := bulkObject(t, l, prog, false)
		before := attachFDs(t)
		lk, err := ex.UprobeBatch(syms, c.Programs[prog], &BatchOptions{Cookies: cookies})
		if err == nil {
			lk.Close()
			t.Fatalf("batch with a missing symbol attached: %s", Explain(lk.Decision()))
		}
		t.Logf("kernel %s: %v", k.Release, err)
		if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "main.no_such_function") {
			t.Errorf("error %q: want os.ErrNotExist naming main.no_such_function", err)
		}
		var ae *AttachError
		if !errors.As(err, &ae) || ae.Decision.Requested != probe.Uprobe {
			t.Errorf("error %v: want an AttachError with the batch's decision", err)
		}
		if after := attachFDs(t); !mapsEqual(before, after) {
			t.Errorf("kernel fds before %v, after the failed batch %v", before, after)
		}
		runBulkTarget(t, tg)
		if n := len(hits(t, c.Maps["by_ip"])); n != 0 {
			t.Errorf("%d targets fired after the failed batch", n)
		}
	})

	t.Run("optional", func(t *testing.T) {
		c := bulkObject(t, l, prog, false)
		lk, err := ex.UprobeBatch(syms, c.Programs[prog], &BatchOptions{Cookies: cookies, Optional: true})
		if err != nil {
			t.Fatal(err)
		}
		defer lk.Close()
		d := lk.Decision()
		t.Logf("kernel %s: %s", k.Release, Explain(d))
		sk := lk.Skipped()
		if len(sk) != 1 || sk[0].Target != "main.no_such_function" || !errors.Is(sk[0].Err, os.ErrNotExist) {
			t.Errorf("skipped %v: want main.no_such_function, not found", sk)
		}
		if !slices.ContainsFunc(d.Steps, func(s fallback.Step) bool { return strings.Contains(s.Reason, "main.no_such_function") }) {
			t.Errorf("the decision does not say main.no_such_function was left out: %s", Explain(d))
		}
		if k.Support(probe.UprobeMulti).Yes() && (d.Chosen != probe.UprobeMulti || !slices.ContainsFunc(d.Steps, func(s fallback.Step) bool {
			return s.From == probe.UprobeMulti && s.Action == fallback.Warn && strings.Contains(s.Reason, "could not be created")
		})) {
			t.Errorf("kernel has uprobe_multi: got %s, want the refusal recorded and the rest re-batched", Explain(d))
		}
		runBulkTarget(t, tg)
		var wantCookies []uint64
		if cookies != nil {
			wantCookies = cookies[:16]
		}
		checkHits(t, c, elfSymbolTable(t, tg.Path), bulkSymbols(), wantCookies)
	})
}

// TestUprobeMultiRefusedFallsBack: when the uprobe_multi link cannot be
// created for a reason the targets do not explain (injected here: the
// first registration fails), the batch falls back to one uprobe per
// symbol, loaded from the program's spec, with a Decision saying why;
// every symbol still fires once with its cookie.
func TestUprobeMultiRefusedFallsBack(t *testing.T) {
	l := newHostLoader(t, nil)
	k := l.Kernel()
	if !k.Support(probe.UprobeMulti).Yes() || !k.Support(probe.Uprobe).Yes() || !haveCookies(t) {
		t.Skip("needs uprobe_multi, uprobes and cookies")
	}
	tg := hitTarget(t)
	c := bulkObject(t, l, "bulk_uprobe", false)
	ex, err := l.OpenExecutable(tg.Path)
	if err != nil {
		t.Fatal(err)
	}
	syms := bulkSymbols()[:4]
	cookies := []uint64{41, 42, 43, 44}
	calls := 0
	l.hook = func(step string) error {
		if strings.HasPrefix(step, "uprobe:") {
			calls++
			if calls == 1 {
				return fmt.Errorf("injected: %w", unix.EINVAL)
			}
		}
		return nil
	}
	defer func() { l.hook = nil }()
	lk, err := ex.UprobeBatch(syms, c.Programs["bulk_uprobe"], &BatchOptions{Cookies: cookies})
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	d := lk.Decision()
	t.Logf("%s", Explain(d))
	if d.Chosen != probe.Uprobe || d.Action != fallback.Downgrade || !slices.ContainsFunc(d.Steps, func(s fallback.Step) bool {
		return s.From == probe.UprobeMulti && s.To == probe.Uprobe && strings.Contains(s.Reason, "injected")
	}) {
		t.Errorf("got %s: want a downgrade to single uprobes saying the multi link was refused", Explain(d))
	}
	if calls != 1+len(syms) {
		t.Errorf("%d registrations, want one refused multi link and %d uprobes", calls, len(syms))
	}
	runBulkTarget(t, tg)
	checkHits(t, c, elfSymbolTable(t, tg.Path), syms, cookies)
}

// TestBatchesInCollection: CollectionOptions.Batches gives a uprobe
// program sixteen symbols with cookies; LoadAndAttach batches them (the
// program loaded for uprobe_multi where the kernel has it); an optional
// batch leaves out a symbol the binary lacks.
func TestBatchesInCollection(t *testing.T) {
	l := newHostLoader(t, nil)
	k := l.Kernel()
	if !k.Support(probe.Uprobe).Yes() {
		t.Skipf("kernel lacks uprobes: %s", k.Support(probe.Uprobe).Reason)
	}
	tg := hitTarget(t)
	prog := "bulk_uprobe"
	if !haveCookies(t) {
		prog = "bulk_uprobe_ip"
	}
	for _, optional := range []bool{false, true} {
		t.Run(fmt.Sprintf("optional=%v", optional), func(t *testing.T) {
			spec := object(t, "bulk")
			for name := range spec.Programs {
				if name != prog {
					delete(spec.Programs, name)
				}
			}
			syms := bulkSymbols()
			if optional {
				syms = append(syms, "main.no_such_function")
			}
			var cookies []uint64
			if prog == "bulk_uprobe" {
				for i := range syms {
					cookies = append(cookies, uint64(5000+i))
				}
			}
			c, err := l.LoadAndAttach(spec, &CollectionOptions{
				Uprobes: map[string]UprobeTarget{prog: {Binary: tg.Path}},
				Batches: map[string]Batch{prog: {Symbols: syms, Cookies: cookies, Optional: optional}},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			d, _ := c.Decision(prog)
			wantBatched(t, k, d, probe.Uprobe)
			if optional {
				sk := c.Links[prog].Skipped()
				if len(sk) != 1 || sk[0].Target != "main.no_such_function" || len(c.Decisions) != 1 ||
					!slices.ContainsFunc(c.Decisions[0].Steps, func(s fallback.Step) bool { return strings.Contains(s.Reason, "main.no_such_function") }) {
					t.Errorf("skipped %v, decisions %v: want main.no_such_function left out and said so", sk, c.Decisions)
				}
			}
			runBulkTarget(t, tg)
			if cookies != nil {
				cookies = cookies[:16]
			}
			checkHits(t, c, elfSymbolTable(t, tg.Path), bulkSymbols(), cookies)
		})
	}
	t.Run("missing", func(t *testing.T) {
		spec := object(t, "bulk")
		_, err := l.LoadAndAttach(spec, &CollectionOptions{
			Manual:  []string{"bulk_kprobe", "bulk_kprobe_ip", "bulk_uprobe_ip"},
			Uprobes: map[string]UprobeTarget{"bulk_uprobe": {Binary: tg.Path}},
			Batches: map[string]Batch{"bulk_uprobe": {Symbols: []string{"main.bulk00", "main.no_such_function"}}},
		})
		if !errors.Is(err, ErrRefused) || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "main.no_such_function") {
			t.Fatalf("got %v: want a refusal naming main.no_such_function, before anything is loaded", err)
		}
	})
}

// syscallTargets are syscalls nothing but the test calls on its locked
// thread, with their __x64_sys_ wrappers.
var syscallTargets = []struct {
	nr   uintptr
	name string
}{
	{unix.SYS_GETPPID, "getppid"}, {unix.SYS_GETUID, "getuid"}, {unix.SYS_GETEUID, "geteuid"},
	{unix.SYS_GETGID, "getgid"}, {unix.SYS_GETEGID, "getegid"}, {unix.SYS_GETPGRP, "getpgrp"},
	{unix.SYS_GETSID, "getsid"}, {unix.SYS_GETPGID, "getpgid"}, {unix.SYS_GETPRIORITY, "getpriority"},
	{unix.SYS_TIMES, "times"},
}

func syscallWrappers() []string {
	var out []string
	for _, s := range syscallTargets {
		out = append(out, syscallPrefix("amd64")+"sys_"+s.name)
	}
	return out
}

// callSyscalls makes each of syscallTargets once on this (locked) thread.
func callSyscalls() {
	var tms unix.Tms
	for _, s := range syscallTargets {
		switch s.nr {
		case unix.SYS_TIMES:
			unix.RawSyscall(s.nr, uintptr(unsafe.Pointer(&tms)), 0, 0)
		default:
			unix.RawSyscall(s.nr, 0, 0, 0)
		}
	}
}

// TestKprobeBatch: ten syscall wrappers through Loader.KprobeBatch, each
// with its cookie: one kprobe_multi link where the kernel has them (6.12),
// else ten kprobes (5.10, 6.1); where cookies are missing (5.10) a batch
// with cookies fails as cilium/ebpf's link.Kprobe does and one without
// them attaches. A batch naming a function the kernel lacks fails naming
// it, or leaves it out when optional.
func TestKprobeBatch(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the syscall wrappers are named for amd64")
	}
	l := newHostLoader(t, nil)
	k := l.Kernel()
	syms := syscallWrappers()
	cookies := make([]uint64, len(syms))
	for i := range cookies {
		cookies[i] = uint64(2000 + i)
	}
	if !k.Support(probe.Kprobe).Yes() && !k.Support(probe.KprobeMulti).Yes() {
		coll, err := ebpf.NewCollection(spec(counterProg("kp", "kprobe/x", ebpf.Kprobe, 0, 0)))
		if err != nil {
			t.Fatal(err)
		}
		defer coll.Close()
		_, err = l.KprobeBatch(syms, coll.Programs["kp"], nil)
		wantRefusal(t, err, "kprobe batch")
		return
	}
	prog := "bulk_kprobe"
	if !haveCookies(t) {
		t.Run("cookies-unsupported", func(t *testing.T) {
			// Only the cookie-free program loads here; cookies on single
			// kprobes need the BPF perf link (5.15).
			c := bulkObject(t, l, "bulk_kprobe_ip", true)
			before := attachFDs(t)
			_, err := l.KprobeBatch(syms, c.Programs["bulk_kprobe_ip"], &BatchOptions{Cookies: cookies})
			if !errors.Is(err, ErrNotSupported) {
				t.Errorf("batch with cookies on %s: %v, want ErrNotSupported", k.Release, err)
			}
			if after := attachFDs(t); !mapsEqual(before, after) {
				t.Errorf("kernel fds before %v, after the failed batch %v", before, after)
			}
		})
		prog, cookies = "bulk_kprobe_ip", nil
	}
	ks := kallsymsTable(t)

	t.Run("batch", func(t *testing.T) {
		c := bulkObject(t, l, prog, true)
		before := attachFDs(t)
		lk, err := l.KprobeBatch(syms, c.Programs[prog], &BatchOptions{Cookies: cookies})
		if err != nil {
			t.Fatal(err)
		}
		wantBatched(t, k, lk.Decision(), probe.Kprobe)
		callSyscalls()
		checkHits(t, c, ks, syms, cookies)
		if err := lk.Close(); err != nil {
			t.Fatal(err)
		}
		if after := attachFDs(t); !mapsEqual(before, after) {
			t.Errorf("kernel fds before %v, after close %v", before, after)
		}
	})

	missing := append(slices.Clone(syms), "safebpf_no_such_function")
	var missingCookies []uint64
	if cookies != nil {
		missingCookies = append(slices.Clone(cookies), 2999)
	}
	t.Run("missing", func(t *testing.T) {
		c := bulkObject(t, l, prog, true)
		before := attachFDs(t)
		lk, err := l.KprobeBatch(missing, c.Programs[prog], &BatchOptions{Cookies: missingCookies})
		if err == nil {
			lk.Close()
			t.Fatalf("batch with a missing function attached: %s", Explain(lk.Decision()))
		}
		t.Logf("kernel %s: %v", k.Release, err)
		if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "safebpf_no_such_function") {
			t.Errorf("error %q: want os.ErrNotExist naming safebpf_no_such_function", err)
		}
		if after := attachFDs(t); !mapsEqual(before, after) {
			t.Errorf("kernel fds before %v, after the failed batch %v", before, after)
		}
		callSyscalls()
		if n := len(hits(t, c.Maps["by_ip"])); n != 0 {
			t.Errorf("%d functions fired after the failed batch", n)
		}
	})

	t.Run("missing-optional", func(t *testing.T) {
		c := bulkObject(t, l, prog, true)
		lk, err := l.KprobeBatch(missing, c.Programs[prog], &BatchOptions{Cookies: missingCookies, Optional: true})
		if err != nil {
			t.Fatal(err)
		}
		defer lk.Close()
		d := lk.Decision()
		t.Logf("kernel %s: %s", k.Release, Explain(d))
		if sk := lk.Skipped(); len(sk) != 1 || sk[0].Target != "safebpf_no_such_function" {
			t.Errorf("skipped %v: want safebpf_no_such_function", sk)
		}
		if !slices.ContainsFunc(d.Steps, func(s fallback.Step) bool { return strings.Contains(s.Reason, "safebpf_no_such_function") }) {
			t.Errorf("the decision does not say safebpf_no_such_function was left out: %s", Explain(d))
		}
		callSyscalls()
		checkHits(t, c, ks, syms, cookies)
	})
}

// TestUprobeMultiPacedInBatches: where a pace hazard applies to
// uprobe-multi (here an operator's rule, so that it applies on any kernel
// with uprobe_multi), a batch's symbols are registered Pacing.Batch at a
// time, each batch one uprobe_multi link, the registrations Interval
// apart; every symbol still fires once with its cookie.
func TestUprobeMultiPacedInBatches(t *testing.T) {
	pol, err := hazards.ParsePolicy("pace.yaml", []byte(`apiVersion: safebpf/v1
rules:
  - id: test-multi-pace
    title: pace uprobe_multi links in batches of 5
    mechanisms: [uprobe-multi]
    affected: [">= 0"]
    action: pace
    params: {interval: 30ms, concurrency: 1, batch: 5}
`))
	if err != nil {
		t.Fatal(err)
	}
	l := newHostLoader(t, &Options{Policy: pol})
	k := l.Kernel()
	if !k.Support(probe.UprobeMulti).Yes() || !haveCookies(t) {
		t.Skip("needs uprobe_multi and cookies")
	}
	tg := hitTarget(t)
	c := bulkObject(t, l, "bulk_uprobe", false)
	ex, err := l.OpenExecutable(tg.Path)
	if err != nil {
		t.Fatal(err)
	}
	cookies := make([]uint64, 16)
	for i := range cookies {
		cookies[i] = uint64(7000 + i)
	}
	var regs []time.Time
	l.hook = func(step string) error {
		if strings.HasPrefix(step, "uprobe:") {
			regs = append(regs, time.Now())
		}
		return nil
	}
	defer func() { l.hook = nil }()
	lk, err := ex.UprobeBatch(bulkSymbols(), c.Programs["bulk_uprobe"], &BatchOptions{Cookies: cookies})
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	d := lk.Decision()
	t.Logf("%s", Explain(d))
	if d.Chosen != probe.UprobeMulti || d.Settings.Pacing == nil || d.Settings.Pacing.Batch != 5 {
		t.Fatalf("got %s: want uprobe-multi paced in batches of 5", Explain(d))
	}
	if len(regs) != 4 || 1+len(lk.extra) != 4 {
		t.Errorf("%d registrations, %d links: want 16 symbols in 4 uprobe_multi links of at most 5", len(regs), 1+len(lk.extra))
	}
	for i := 1; i < len(regs); i++ {
		if gap := regs[i].Sub(regs[i-1]); gap < 30*time.Millisecond {
			t.Errorf("registrations %d and %d %s apart, want at least 30ms", i-1, i, gap)
		}
	}
	runBulkTarget(t, tg)
	checkHits(t, c, elfSymbolTable(t, tg.Path), bulkSymbols(), cookies)
}

// TestBatchesInCollectionRefusedFallsBack: in LoadAndAttach, a batch's
// uprobe_multi link that cannot be created (injected: its registration
// fails) falls back to one uprobe per symbol, with the program's single
// form loaded against the collection's maps; the collection's Decision
// says so, and every symbol fires once with its cookie.
func TestBatchesInCollectionRefusedFallsBack(t *testing.T) {
	l := newHostLoader(t, nil)
	k := l.Kernel()
	if !k.Support(probe.UprobeMulti).Yes() || !k.Support(probe.Uprobe).Yes() || !haveCookies(t) {
		t.Skip("needs uprobe_multi, uprobes and cookies")
	}
	tg := hitTarget(t)
	spec := object(t, "bulk")
	for name := range spec.Programs {
		if name != "bulk_uprobe" {
			delete(spec.Programs, name)
		}
	}
	syms := bulkSymbols()[:5]
	cookies := []uint64{61, 62, 63, 64, 65}
	calls := 0
	l.hook = func(step string) error {
		if strings.HasPrefix(step, "uprobe:") {
			calls++
			if calls == 1 {
				return fmt.Errorf("injected: %w", unix.EINVAL)
			}
		}
		return nil
	}
	defer func() { l.hook = nil }()
	c, err := l.LoadAndAttach(spec, &CollectionOptions{
		Uprobes: map[string]UprobeTarget{"bulk_uprobe": {Binary: tg.Path}},
		Batches: map[string]Batch{"bulk_uprobe": {Symbols: syms, Cookies: cookies}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	d, _ := c.Decision("bulk_uprobe")
	t.Logf("%s", Explain(d))
	if d.Chosen != probe.Uprobe || d.Action != fallback.Downgrade || len(c.Decisions) != 1 || c.Decisions[0].Chosen != probe.Uprobe ||
		!slices.ContainsFunc(d.Steps, func(s fallback.Step) bool {
			return s.From == probe.UprobeMulti && s.To == probe.Uprobe && strings.Contains(s.Reason, "injected")
		}) {
		t.Errorf("got %s (decisions %v): want the collection's decision to say the multi link fell back to uprobes", Explain(d), c.Decisions)
	}
	if calls != 1+len(syms) {
		t.Errorf("%d registrations, want one refused multi link and %d uprobes", calls, len(syms))
	}
	runBulkTarget(t, tg)
	checkHits(t, &Collection{Maps: c.Maps}, elfSymbolTable(t, tg.Path), syms, cookies)
}
