package loader

import (
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/probe"
)

// These tests load the objects of testdata/bpf (one per pattern an agent
// ported from cilium/ebpf or libbpf uses) on the running kernel — this
// host, and the Debian 5.10, 6.1 and 6.12 guests of the kernel matrix —
// and check both the Decision and the events: return probes see return
// values, each event is counted once. Where the kernel lacks what a
// pattern needs, they check the refusal instead: it names the program and
// matches the sentinel cilium/ebpf's own call would.

// hitTarget returns the testdata/target binary (main.hit and main.hitAlt).
func hitTarget(tb testing.TB) target {
	tb.Helper()
	tg := buildTarget(tb)
	if tg.selfExec {
		tb.Skip("needs the testdata/target binary (go tool or SAFEBPF_VM_PREBUILT); the test binary has no main.hit")
	}
	return tg
}

// sumHits is Σ hit(i) = Σ (2i+1) for i < n: what main.hit returns.
func sumHits(n int) uint64 { return uint64(n * n) }

// sumArgs is Σ i for i < n: main.hit's arguments.
func sumArgs(n int) uint64 { return uint64(n * (n - 1) / 2) }

// wantRefusal checks that err is a refusal (ErrRefused) that also matches
// ErrNotSupported, because the kernel lacks every mechanism involved.
func wantRefusal(t *testing.T, err error, what string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error on a kernel without the mechanisms it needs", what)
	}
	if !errors.Is(err, ErrRefused) || !errors.Is(err, ErrNotSupported) {
		t.Fatalf("%s: %v: want ErrRefused and ErrNotSupported", what, err)
	}
	t.Logf("%s refused as expected: %v", what, err)
}

// linked returns the names of the programs with a Link, sorted.
func linked(c *Collection) []string {
	var out []string
	for n := range c.Links {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// TestUretprobeMultiIsAReturnProbe: a uretprobe.multi program attaches at
// return (uretprobe-multi, or a uretprobe per symbol where the kernel has
// no uprobe_multi) and sees main.hit's return values, not its argument.
// Its AttachTo is set at run time.
func TestUretprobeMultiIsAReturnProbe(t *testing.T) {
	l := newHostLoader(t, nil)
	tg := hitTarget(t)
	spec := object(t, "retmulti")
	retarget(spec, tg.Path)
	c, err := l.LoadAndAttach(spec, &CollectionOptions{Uprobes: map[string]UprobeTarget{"hit_return": {NoSeccomp: true}}})
	k := l.Kernel()
	if !k.Support(probe.UretprobeMulti).Yes() && !k.Support(probe.Uretprobe).Yes() {
		wantRefusal(t, err, "uretprobe.multi")
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	d, _ := c.Decision("hit_return")
	t.Logf("kernel %s: %s", k.Release, Explain(d))
	if d.Requested != probe.UretprobeMulti || !d.Chosen.Return() {
		t.Fatalf("decision %s: want uretprobe-multi requested and a return probe chosen", Explain(d))
	}
	if k.Support(probe.UretprobeMulti).Yes() && d.Chosen != probe.UretprobeMulti {
		t.Errorf("kernel has uprobe_multi: chose %s, want uretprobe-multi", d.Chosen)
	}
	if d.Target != tg.Path+":main.hit" {
		t.Errorf("target %q, want the retargeted %q", d.Target, tg.Path+":main.hit")
	}
	const n = 9
	runTarget(t, tg, n)
	got := counts(t, c.Maps["counts"])
	if got[slotRets] != n || got[slotRetSum] != sumHits(n) {
		t.Errorf("%s: %d return events summing %d, want %d summing %d (return values; the argument sum would be %d)",
			d.Chosen, got[slotRets], got[slotRetSum], n, sumHits(n), sumArgs(n))
	}
}

// TestGlobs: uprobe.multi/BIN:main.hit* resolves, as libbpf does, to the
// binary's function symbols main.hit and main.hitAlt; kprobe.multi
// globs resolve over available_filter_functions.
func TestGlobs(t *testing.T) {
	t.Run("uprobe.multi", func(t *testing.T) {
		l := newHostLoader(t, nil)
		tg := hitTarget(t)
		spec := object(t, "glob")
		retarget(spec, tg.Path)
		c, err := l.LoadAndAttach(spec, nil)
		k := l.Kernel()
		if !k.Support(probe.UprobeMulti).Yes() && !k.Support(probe.Uprobe).Yes() {
			wantRefusal(t, err, "uprobe.multi glob")
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		d, _ := c.Decision("hits_entry")
		t.Logf("kernel %s: %s", k.Release, Explain(d))
		var plan ProgramPlan
		for _, p := range c.Plans {
			if p.Program == "hits_entry" {
				plan = p
			}
		}
		if plan.Targets != 2 {
			t.Errorf("glob main.hit* matched %d symbols, want 2 (main.hit, main.hitAlt)", plan.Targets)
		}
		if d.Chosen != probe.UprobeMulti && d.Chosen != probe.Uprobe {
			t.Errorf("chose %s, want an entry uprobe", d.Chosen)
		}
		const n = 6
		runTarget(t, tg, n)
		got := counts(t, c.Maps["counts"])
		if got[slotCalls] != 2*n || got[slotArgSum] != 2*sumArgs(n) {
			t.Errorf("%d calls with arguments summing %d, want %d summing %d", got[slotCalls], got[slotArgSum], 2*n, 2*sumArgs(n))
		}
	})
	t.Run("kprobe.multi", func(t *testing.T) {
		l := newHostLoader(t, nil)
		spec := object(t, "kglob")
		lockThread(t, spec)
		c, err := l.LoadAndAttach(spec, nil)
		k := l.Kernel()
		if !k.Support(probe.KprobeMulti).Yes() && !k.Support(probe.Kprobe).Yes() {
			wantRefusal(t, err, "kprobe.multi glob")
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		d, _ := c.Decision("get_id")
		t.Logf("kernel %s: %s", k.Release, Explain(d))
		if k.Support(probe.KprobeMulti).Yes() && d.Chosen != probe.KprobeMulti {
			t.Errorf("kernel has kprobe_multi: chose %s", d.Chosen)
		}
		for _, p := range c.Plans {
			if p.Program == "get_id" && p.Targets < 2 {
				t.Errorf("__x64_sys_get*id matched %d functions, want getpgid, getsid and more", p.Targets)
			}
		}
		const pgids, sids = 5, 3
		for range pgids {
			unix.Getpgid(0)
		}
		for range sids {
			unix.Getsid(0)
		}
		if got := readCount(t, c.Maps["counts"], slotCalls); got != pgids+sids {
			t.Errorf("%d calls counted, want %d (getpgid and getsid, each once)", got, pgids+sids)
		}
	})
}

// TestTracepointFamily: tp_btf/sys_enter, raw_tp/sys_enter and
// tracepoint/raw_syscalls/sys_enter are alternatives: exactly one
// attaches and every getpid is counted once.
func TestTracepointFamily(t *testing.T) {
	l := newHostLoader(t, nil)
	mountTracefs(t)
	spec := object(t, "tp")
	lockThread(t, spec)
	c, err := l.LoadAndAttach(spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	k := l.Kernel()
	if got := linked(c); len(got) != 1 {
		t.Fatalf("attached %v, want exactly one of sys_enter_btf, sys_enter_raw, sys_enter_tp", got)
	}
	d := c.Decisions[0]
	t.Logf("kernel %s: %s", k.Release, Explain(d))
	if k.Support(probe.TpBTF).Yes() && d.Chosen != probe.TpBTF {
		t.Errorf("kernel has tp_btf: chose %s", d.Chosen)
	}
	if len(c.Programs) != 1 {
		t.Errorf("loaded %d programs, want only the chosen one", len(c.Programs))
	}
	const n = 17
	for range n {
		unix.Getpid()
	}
	if got := readCount(t, c.Maps["counts"], slotCalls); got != n {
		t.Errorf("counted %d getpid calls, want %d (each once)", got, n)
	}
}

// TestIterator: an iter/task program attaches (LoadAndAttach and
// AttachIter), runs when read, and lists this process among others.
func TestIterator(t *testing.T) {
	l := newHostLoader(t, nil)
	k := l.Kernel()
	spec := object(t, "iter")
	c, err := l.LoadAndAttach(spec, nil)
	if !k.Support(probe.Iter).Yes() {
		wantRefusal(t, err, "iter/task")
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	d, _ := c.Decision("dump_task")
	if d.Chosen != probe.Iter {
		t.Fatalf("decision %s, want iter", Explain(d))
	}
	it, ok := c.Links["dump_task"].Link.(*link.Iter)
	if !ok {
		t.Fatalf("link is %T, want *link.Iter", c.Links["dump_task"].Link)
	}
	checkTasks(t, it.Open)

	// The per-attachment call on the same program.
	it2, err := l.AttachIter(link.IterOptions{Program: c.Programs["dump_task"]})
	if err != nil {
		t.Fatal(err)
	}
	defer it2.Close()
	if it2.Decision().Chosen != probe.Iter {
		t.Errorf("AttachIter decision %s", Explain(it2.Decision()))
	}
	checkTasks(t, it2.Open)
}

func checkTasks(t *testing.T, open func() (io.ReadCloser, error)) {
	t.Helper()
	r, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 || len(b)%8 != 0 {
		t.Fatalf("iterator wrote %d bytes, want (tgid, pid) records", len(b))
	}
	tgids := map[uint32]bool{}
	for i := 0; i+8 <= len(b); i += 8 {
		tgids[binary.NativeEndian.Uint32(b[i:])] = true
	}
	if !tgids[uint32(os.Getpid())] || len(tgids) < 3 {
		t.Errorf("iterator listed %d tasks of %d processes, not this one (%d)", len(b)/8, len(tgids), os.Getpid())
	}
}

// TestLSM: an lsm/file_open program attaches where the kernel has BPF LSM
// active and counts this thread's opens; elsewhere it is refused before
// anything loads, matching ErrNotSupported.
func TestLSM(t *testing.T) {
	l := newHostLoader(t, nil)
	spec := object(t, "lsm")
	lockThread(t, spec)
	before := kernelFDs(t)
	c, err := l.LoadAndAttach(spec, nil)
	if k := l.Kernel(); !k.Support(probe.LSM).Yes() {
		t.Logf("kernel %s: lsm %s", k.Release, k.Support(probe.LSM).Reason)
		wantRefusal(t, err, "lsm/file_open")
		if diff := cmp.Diff(before, kernelFDs(t)); diff != "" {
			t.Errorf("a refused LoadAndAttach left kernel objects (-before +after):\n%s", diff)
		}
		return
	}
	// LSM programs run on BPF trampolines: where the catalog finds a
	// trampoline hazard that does not depend on the program
	// (fentry-zap-pid-ns-deadlock on Debian's 6.1.192), nothing can replace
	// lsm and the load is refused.
	applying := map[hazards.ID]bool{}
	for _, f := range hazards.Builtin().Evaluate(l.Kernel(), hazards.Attachment{Mechanism: probe.LSM, ReadsUserMemory: true, ReadsUserStacks: true, TailCalls: true}) {
		applying[f.ID] = f.Verdict != hazards.NotAffected
	}
	if applying["fentry-zap-pid-ns-deadlock"] {
		var re *fallback.RefusedError
		if !errors.As(err, &re) || len(re.Blockers) == 0 {
			t.Fatalf("lsm on %s, where fentry-zap-pid-ns-deadlock applies: %v, want a refusal for a hazard", l.Kernel().Release, err)
		}
		for _, b := range re.Blockers {
			if b.Mechanism != probe.LSM || !applying[b.Hazard] {
				t.Errorf("blocker %s on %s: not a hazard the catalog finds for lsm here", b.Hazard, b.Mechanism)
			}
		}
		if diff := cmp.Diff(before, kernelFDs(t)); diff != "" {
			t.Errorf("a refused LoadAndAttach left kernel objects (-before +after):\n%s", diff)
		}
		t.Logf("lsm refused as the catalog says: %v", err)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 4
	for range n {
		fd, err := unix.Open("/proc/self/stat", unix.O_RDONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		unix.Close(fd)
	}
	if got := readCount(t, c.Maps["counts"], slotCalls); got != n {
		t.Errorf("counted %d opens, want %d", got, n)
	}
}

// readN reads a 13-byte file n times through vfs_read, asking for 64
// bytes: at entry vfs_read sees count 64, at return it returns 13.
func readN(t *testing.T, n int) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "thirteen")
	if err := os.WriteFile(p, []byte("thirteen byte"), 0o600); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(p, unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 64)
	for range n {
		if got, err := unix.Pread(fd, buf, 0); err != nil || got != 13 {
			t.Fatalf("pread: %d, %v", got, err)
		}
	}
}

// TestPairVersusFexit: kprobe/vfs_read + kretprobe/vfs_read against
// fexit/vfs_read. One side attaches: the fexit, or the pair where fexit
// is missing or hazardous. Every read is counted once, with its argument
// at entry and its return value at return.
func TestPairVersusFexit(t *testing.T) {
	l := newHostLoader(t, nil)
	spec := object(t, "pair")
	lockThread(t, spec)
	c, err := l.LoadAndAttach(spec, nil)
	k := l.Kernel()
	if !k.Support(probe.Fexit).Yes() && !k.Support(probe.Kprobe).Yes() {
		wantRefusal(t, err, "kprobe+kretprobe or fexit")
		var ae *AttachError
		if !errors.As(err, &ae) || ae.Program != "read_exit" {
			t.Errorf("refusal %v: want it attributed to read_exit, the preferred alternative", err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := linked(c)
	switch {
	case slices.Equal(got, []string{"read_exit"}):
		d, _ := c.Decision("read_exit")
		t.Logf("kernel %s: %s", k.Release, Explain(d))
		if d.Chosen != probe.Fexit {
			t.Errorf("read_exit decision %s", Explain(d))
		}
	case slices.Equal(got, []string{"read_entry", "read_return"}):
		d, _ := c.Decision("read_return")
		t.Logf("kernel %s: %s", k.Release, Explain(d))
		if d.Requested != probe.Fexit || d.Chosen != probe.Kretprobe || len(d.Steps) == 0 || (d.Steps[0].Hazard == "" && d.Steps[0].Missing == "") {
			t.Errorf("the pair attached without saying why fexit was not used: %s", Explain(d))
		}
		if k.Support(probe.Fexit).Yes() && d.Steps[0].Hazard == "" {
			t.Errorf("fexit is available but was left without a hazard: %s", Explain(d))
		}
	default:
		t.Fatalf("attached %v, want [read_exit] or [read_entry read_return]", got)
	}
	// The pair attaches one after the other: reads this thread made in
	// between (cilium/ebpf reading sysfs) count at entry only. Count
	// from here.
	before := counts(t, c.Maps["counts"])
	const n = 11
	readN(t, n)
	after := counts(t, c.Maps["counts"])
	var delta [8]uint64
	for i := range delta {
		delta[i] = after[i] - before[i]
	}
	want := [8]uint64{slotCalls: n, slotRetSum: 13 * n, slotRets: n, slotArgSum: 64 * n}
	if diff := cmp.Diff(want, delta); diff != "" {
		t.Errorf("counts (-want +got), slots calls/retsum/rets/argsum:\n%s", diff)
	}
}

// TestFexitWithoutAttachType: cilium/ebpf's fentry example calls
// link.AttachTracing without AttachType. An fexit program loaded by
// cilium/ebpf itself and attached that way must attach as fexit (seeing
// return values) or be refused loudly; never planned as fentry.
func TestFexitWithoutAttachType(t *testing.T) {
	l := newHostLoader(t, nil)
	k := l.Kernel()
	if !k.Support(probe.Fexit).Yes() {
		t.Skipf("kernel lacks fexit (%s): the program cannot load", k.Support(probe.Fexit).Reason)
	}
	full := object(t, "pair")
	lockThread(t, full)
	spec := full.Copy()
	delete(spec.Programs, "read_entry")
	delete(spec.Programs, "read_return")
	coll, err := ebpf.NewCollection(spec) // cilium/ebpf loads it, safebpf never saw the spec
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	prog := coll.Programs["read_exit"]

	lk, err := l.AttachTracing(link.TracingOptions{Program: prog})
	if err != nil {
		// Refused: only where attaching as fentry, fexit or fmod_ret is
		// not allowed as is here.
		if !errors.Is(err, ErrRefused) && !errors.Is(err, errInvalidInput) {
			t.Fatalf("unexpected error: %v", err)
		}
		if !strings.Contains(err.Error(), "AttachType") {
			t.Errorf("refusal does not say to set AttachType: %v", err)
		}
		t.Logf("kernel %s: refused loudly: %v", k.Release, err)
	} else {
		d := lk.Decision()
		t.Logf("kernel %s: %s", k.Release, Explain(d))
		if d.Chosen != probe.Fexit {
			t.Errorf("attached as %s, want fexit", d.Chosen)
		}
		const n = 5
		readN(t, n)
		lk.Close()
		got := counts(t, coll.Maps["counts"])
		if got[slotRets] != n || got[slotRetSum] != 13*n {
			t.Errorf("%d returns summing %d, want %d summing %d", got[slotRets], got[slotRetSum], n, 13*n)
		}
	}

	// With the spec, the attach type is known, and the kretprobe variant
	// lets the request move where fexit is hazardous. A fresh program:
	// before 5.11 a tracing program detached once cannot attach again
	// without naming its target.
	coll2, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{MapReplacements: map[string]*ebpf.Map{"counts": coll.Maps["counts"]}})
	if err != nil {
		t.Fatal(err)
	}
	defer coll2.Close()
	prog = coll2.Programs["read_exit"]
	kspec := full.Copy()
	delete(kspec.Programs, "read_entry")
	delete(kspec.Programs, "read_exit")
	var variants map[probe.Mechanism]*ebpf.Program
	if k.Support(probe.Kretprobe).Yes() {
		kcoll, err := ebpf.NewCollectionWithOptions(kspec, ebpf.CollectionOptions{MapReplacements: map[string]*ebpf.Map{"counts": coll.Maps["counts"]}})
		if err != nil {
			t.Fatal(err)
		}
		defer kcoll.Close()
		variants = map[probe.Mechanism]*ebpf.Program{probe.Kretprobe: kcoll.Programs["read_return"]}
	}
	before := counts(t, coll.Maps["counts"])
	lk, err = l.AttachTracing(link.TracingOptions{Program: prog}, &Extra{Spec: full.Programs["read_exit"], Variants: variants})
	if err != nil {
		wantRefusal(t, err, "fexit with its spec")
		return
	}
	defer lk.Close()
	d := lk.Decision()
	t.Logf("kernel %s, with the spec: %s", k.Release, Explain(d))
	if d.Requested != probe.Fexit || !d.Chosen.Return() {
		t.Errorf("decision %s: want fexit requested and a return probe chosen", Explain(d))
	}
	const n = 4
	readN(t, n)
	got := counts(t, coll.Maps["counts"])
	if got[slotRets]-before[slotRets] != n || got[slotRetSum]-before[slotRetSum] != 13*n {
		t.Errorf("%s: %d returns summing %d, want %d summing %d", d.Chosen,
			got[slotRets]-before[slotRets], got[slotRetSum]-before[slotRetSum], n, 13*n)
	}
}

// TestSyscallProbes: fentry.s/__x64_sys_getpgid against
// ksyscall/getpgid (libbpf's syscall wrapper resolution), and
// kretsyscall/getpgid, which must see the process group.
func TestSyscallProbes(t *testing.T) {
	l := newHostLoader(t, nil)
	spec := object(t, "syscall")
	lockThread(t, spec)
	c, err := l.LoadAndAttach(spec, nil)
	k := l.Kernel()
	if !k.Support(probe.Kprobe).Yes() && !k.Support(probe.Fentry).Yes() {
		wantRefusal(t, err, "fentry.s/ksyscall")
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := linked(c)
	if len(got) != 2 || !slices.Contains(got, "getpgid_return") {
		t.Fatalf("attached %v, want getpgid_return and one of getpgid_fentry, getpgid_ksyscall", got)
	}
	for _, p := range got {
		d, _ := c.Decision(p)
		t.Logf("kernel %s: %s: %s", k.Release, p, Explain(d))
		if d.Target != "__x64_sys_getpgid" && d.Target != "getpgid" {
			t.Errorf("%s: target %q", p, d.Target)
		}
	}
	pgid, err := unix.Getpgid(0)
	if err != nil {
		t.Fatal(err)
	}
	before := counts(t, c.Maps["counts"])
	const n = 7
	for range n {
		unix.Getpgid(0)
	}
	after := counts(t, c.Maps["counts"])
	if calls := after[slotCalls] - before[slotCalls]; calls != n {
		t.Errorf("counted %d calls at entry, want %d (once each)", calls, n)
	}
	if rets, sum := after[slotRets]-before[slotRets], after[slotRetSum]-before[slotRetSum]; rets != n || sum != uint64(n*pgid) {
		t.Errorf("%d returns summing %d, want %d summing %d (the process group)", rets, sum, n, n*pgid)
	}
}

// TestOptionalMissingSymbol: klockstat-style, one probe targets a symbol
// that does not exist. Optional, it is skipped with its own Decision and
// the others attach; not optional, the call fails naming it, matching
// os.ErrNotExist, and leaves nothing behind.
func TestOptionalMissingSymbol(t *testing.T) {
	l := newHostLoader(t, nil)
	tg := hitTarget(t)
	k := l.Kernel()
	spec := object(t, "optional")
	retarget(spec, tg.Path)
	lockThread(t, spec)
	optional := []string{"missing_entry", "missing_function"}
	kprobes := k.Support(probe.Kprobe).Yes()
	if !kprobes {
		// This kernel has no kprobes: the kprobe programs are refused
		// (another reason to skip an optional program).
		optional = append(optional, "getpid_entry")
	}

	before := kernelFDs(t)
	_, err := l.LoadAndAttach(spec, &CollectionOptions{Optional: optional[1:]})
	if err == nil || !errors.Is(err, os.ErrNotExist) || !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), `"missing_entry"`) {
		t.Fatalf("a missing symbol, not optional: got %v, want an error naming missing_entry matching os.ErrNotExist and ErrRefused", err)
	}
	if strings.Contains(err.Error(), `"hit_entry"`) || strings.Contains(err.Error(), `"hit_alt_entry"`) {
		t.Errorf("the refusal is reported on healthy programs: %v", err)
	}
	if diff := cmp.Diff(before, kernelFDs(t)); diff != "" {
		t.Errorf("the failed call left kernel objects (-before +after):\n%s", diff)
	}

	c, err := l.LoadAndAttach(spec, &CollectionOptions{Optional: optional})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want := []string{"hit_alt_entry", "hit_entry"}
	if kprobes {
		want = []string{"getpid_entry", "hit_alt_entry", "hit_entry"}
	}
	if diff := cmp.Diff(want, linked(c)); diff != "" {
		t.Errorf("attached (-want +got):\n%s", diff)
	}
	for _, p := range c.Plans {
		skipped := slices.Contains(optional, p.Program)
		if skipped != (p.Refusal != "") {
			t.Errorf("%s: refusal %q; skipped %v", p.Program, p.Refusal, skipped)
		}
		if skipped && (p.Decision == nil || p.Decision.Action != fallback.Refuse) {
			t.Errorf("%s: skipped without a refused Decision: %+v", p.Program, p.Decision)
		}
	}
	const n = 5
	runTarget(t, tg, n)
	for range 3 {
		unix.Getpid()
	}
	got := counts(t, c.Maps["counts"])
	if got[slotCalls] != n || got[slotExtra] != n || got[slotRets] != 0 || got[slotRetSum] != 0 {
		t.Errorf("counts %v: want main.hit and main.hitAlt %d each, nothing for the missing symbols", got, n)
	}
	if kprobes && got[slotArgSum] != 3 {
		t.Errorf("getpid kprobe counted %d, want 3", got[slotArgSum])
	}
}

// TestRetargetPlaceholder: libbpf-tools funclatency retargets its fentry
// and fexit placeholders (AttachTo); their kprobe alternatives in the
// same explicit groups follow, so a fallback to kprobes attaches to the
// real function, not to "dummy_kprobe".
func TestRetargetPlaceholder(t *testing.T) {
	l := newHostLoader(t, nil)
	spec := object(t, "retarget")
	lockThread(t, spec)
	const fn = "__x64_sys_getpgid"
	spec.Programs["dummy_fentry"].AttachTo = fn
	spec.Programs["dummy_fexit"].AttachTo = fn
	opts := &CollectionOptions{Groups: []Group{
		Alternatives("dummy_fentry", "dummy_kprobe"),
		Alternatives("dummy_fexit", "dummy_kretprobe"),
	}}
	c, err := l.LoadAndAttach(spec, opts)
	k := l.Kernel()
	if !k.Support(probe.Kprobe).Yes() && !k.Support(probe.Fentry).Yes() {
		wantRefusal(t, err, "retargeted placeholders")
		if strings.Contains(err.Error(), "dummy_kprobe\"") || strings.Contains(err.Error(), "on dummy_") {
			t.Errorf("the refusal still names a placeholder target: %v", err)
		}
		var joined interface{ Unwrap() []error }
		if !errors.As(err, &joined) {
			t.Fatalf("error %T: want one refusal per group", err)
		}
		for _, e := range joined.Unwrap() {
			var ae *AttachError
			if !errors.As(e, &ae) || ae.Decision.Target != fn {
				t.Errorf("refusal %v: want its decision on %s", e, fn)
			}
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := linked(c); len(got) != 2 {
		t.Fatalf("attached %v, want one entry and one return program", got)
	}
	for n, lk := range c.Links {
		d := lk.Decision()
		t.Logf("kernel %s: %s: %s", k.Release, n, Explain(d))
		if d.Target != fn {
			t.Errorf("%s attached to %q, want %s", n, d.Target, fn)
		}
	}
	pgid, err := unix.Getpgid(0)
	if err != nil {
		t.Fatal(err)
	}
	before := counts(t, c.Maps["counts"])
	const n = 6
	for range n {
		unix.Getpgid(0)
	}
	after := counts(t, c.Maps["counts"])
	if calls, rets, sum := after[slotCalls]-before[slotCalls], after[slotRets]-before[slotRets], after[slotRetSum]-before[slotRetSum]; calls != n || rets != n || sum != uint64(n*pgid) {
		t.Errorf("%d calls, %d returns summing %d; want %d, %d summing %d", calls, rets, sum, n, n, n*pgid)
	}
}

// TestLoadFailureFallsBack: when the kernel will not load the chosen
// alternative, the next one of its group is loaded instead, and its
// Decision says why. The failure is injected at the first load (on a real
// kernel: a sleepable fentry on a function that may not sleep).
func TestLoadFailureFallsBack(t *testing.T) {
	l := newHostLoader(t, nil)
	tg := hitTarget(t)
	if !l.Kernel().Support(probe.UprobeMulti).Yes() || !l.Kernel().Support(probe.Uprobe).Yes() {
		t.Skip("needs uprobe_multi and uprobes")
	}
	spec := object(t, "glob")
	retarget(spec, tg.Path)
	loads := 0
	l.hook = func(step string) error {
		if step == "load" {
			loads++
			if loads == 1 {
				return errors.New("program hits_entry: load program: invalid argument: injected")
			}
		}
		return nil
	}
	defer func() { l.hook = nil }()
	c, err := l.LoadAndAttach(spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	d, _ := c.Decision("hits_entry")
	t.Log(Explain(d))
	if loads != 2 || d.Requested != probe.UprobeMulti || d.Chosen != probe.Uprobe || !strings.Contains(d.Steps[0].Reason, "did not load") {
		t.Fatalf("loads %d, decision %s: want the single-uprobe variant after the injected load failure", loads, Explain(d))
	}
	const n = 3
	runTarget(t, tg, n)
	if got := readCount(t, c.Maps["counts"], slotCalls); got != 2*n {
		t.Errorf("counted %d calls, want %d", got, 2*n)
	}
}

// TestAuditModeAgentRuns: in audit mode the maps and programs are loaded,
// so an agent written like the README's (ringbuf.NewReader on a map of
// the collection, bpf2go objects filled by Assign) runs; nothing is
// attached.
func TestAuditModeAgentRuns(t *testing.T) {
	l := newHostLoader(t, &Options{Mode: hazards.Audit})
	spec := object(t, "tp")
	spec.Maps["events"] = &ebpf.MapSpec{Name: "events", Type: ebpf.RingBuf, MaxEntries: 4096}
	c, err := l.LoadAndAttach(spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rd, err := ringbuf.NewReader(c.Maps["events"])
	if err != nil {
		t.Fatalf("ringbuf.NewReader on the audit-mode collection: %v", err)
	}
	rd.Close()
	if len(c.Links) != 0 {
		t.Errorf("audit mode attached %v", linked(c))
	}
	for range 5 {
		unix.Getpid()
	}
	if got := readCount(t, c.Maps["counts"], slotCalls); got != 0 {
		t.Errorf("audit mode counted %d events", got)
	}
}

// TestAssign fills bpf2go-style objects from a Collection: chosen
// programs and maps are set, an unchosen alternative is nil (as libbpf
// leaves a program it did not load), a name the spec lacks is an error,
// and ownership moves to the objects as with ebpf.Collection.Assign.
func TestAssign(t *testing.T) {
	l := newHostLoader(t, nil)
	mountTracefs(t)
	spec := object(t, "tp")
	lockThread(t, spec)
	c, err := l.LoadAndAttach(spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	type programs struct {
		Btf *ebpf.Program `ebpf:"sys_enter_btf"`
		Raw *ebpf.Program `ebpf:"sys_enter_raw"`
		Tp  *ebpf.Program `ebpf:"sys_enter_tp"`
	}
	var objs struct {
		programs
		Counts   *ebpf.Map      `ebpf:"counts"`
		TargetID *ebpf.Variable `ebpf:"target_tid"`
	}
	if err := c.Assign(&objs); err != nil {
		t.Fatal(err)
	}
	// The objects own what was assigned (a program left open here would
	// be closed by the garbage collector during a later test).
	for _, p := range []*ebpf.Program{objs.Btf, objs.Raw, objs.Tp} {
		defer p.Close()
	}
	chosen := linked(c)[0]
	set := map[string]bool{"sys_enter_btf": objs.Btf != nil, "sys_enter_raw": objs.Raw != nil, "sys_enter_tp": objs.Tp != nil}
	for name, ok := range set {
		if ok != (name == chosen) {
			t.Errorf("%s assigned %v; chosen is %s", name, ok, chosen)
		}
	}
	if objs.Counts == nil || objs.TargetID == nil {
		t.Fatal("map or variable not assigned")
	}
	if _, ok := c.Maps["counts"]; ok {
		t.Error("the assigned map is still owned by the Collection")
	}
	defer objs.Counts.Close()
	unix.Getpid()
	if got := readCount(t, objs.Counts, slotCalls); got != 1 {
		t.Errorf("through the assigned map: %d events, want 1", got)
	}
	var bad struct {
		X *ebpf.Program `ebpf:"no_such_program"`
	}
	if err := c.Assign(&bad); err == nil || !strings.Contains(err.Error(), "no_such_program") {
		t.Errorf("assigning a missing program: %v", err)
	}
}

// TestOptionalAttachFailure: an optional program whose attach fails is
// skipped, its plan saying why, while the others stay attached.
func TestOptionalAttachFailure(t *testing.T) {
	l := newHostLoader(t, nil)
	tg := hitTarget(t)
	spec := object(t, "optional")
	retarget(spec, tg.Path)
	for _, n := range []string{"missing_entry", "missing_function", "getpid_entry"} {
		delete(spec.Programs, n)
	}
	injected := errors.New("injected attach failure")
	l.hook = func(step string) error {
		if step == "attach:hit_alt_entry" {
			return injected
		}
		return nil
	}
	defer func() { l.hook = nil }()
	c, err := l.LoadAndAttach(spec, &CollectionOptions{Optional: []string{"hit_alt_entry"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if diff := cmp.Diff([]string{"hit_entry"}, linked(c)); diff != "" {
		t.Errorf("attached (-want +got):\n%s", diff)
	}
	for _, p := range c.Plans {
		if p.Program == "hit_alt_entry" && !strings.Contains(p.Error, "injected") {
			t.Errorf("skipped program's plan: %+v", p)
		}
	}
	runTarget(t, tg, 4)
	if got := counts(t, c.Maps["counts"]); got[slotCalls] != 4 || got[slotExtra] != 0 {
		t.Errorf("counts %v: want main.hit 4 times, main.hitAlt not traced", got)
	}
}
