package loader

import (
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/safebpf/safebpf/probe"
)

// What LoadAndAttach does with a section.
type sectionKind int

const (
	kAttach      sectionKind = iota // planned and attached with mech
	kLoadOnly                       // loaded, reported, never attached
	kUnsupported                    // fails the call naming the section (ErrNotSupported), skipped when optional
)

// sectionCase is safebpf's answer for one section pattern of cilium/ebpf's
// table (elf_sections.go, libbpf's section_defs).
type sectionCase struct {
	kind sectionKind
	mech probe.Mechanism
	// example is the section classified for this pattern ("" means the
	// pattern itself); target is its expected AttachTo-derived target.
	example string
	// does says what safebpf does, for docs/sections.md.
	does string
}

// sectionCases covers every pattern cilium/ebpf v0.22.0 parses.
// TestSectionsFromCilium fails when cilium/ebpf adds one.
var sectionCases = map[string]sectionCase{
	"kprobe+":            {kAttach, probe.Kprobe, "kprobe/do_unlinkat+0x10", "kprobe on FUNC[+OFFSET] (offset parsed as libbpf does); alternative of fentry/FUNC; resolved in kallsyms, else with the arch's syscall prefix, as link.Kprobe; many functions (CollectionOptions.Batches) are batched into a kprobe_multi link where the kernel has one."},
	"kretprobe+":         {kAttach, probe.Kretprobe, "kretprobe/vfs_read", "kretprobe on FUNC (no offset); alternative of fexit/FUNC, or with kprobe/FUNC a pair standing in for one fexit; maxactive capped through tracefs when a hazard says so."},
	"ksyscall+":          {kAttach, probe.Kprobe, "ksyscall/openat", "kprobe on the syscall's wrapper, resolved as libbpf does (__x64_sys_NAME with syscall wrappers, __se_sys_NAME without)."},
	"kretsyscall+":       {kAttach, probe.Kretprobe, "kretsyscall/openat", "kretprobe on the syscall's wrapper, resolved as for ksyscall."},
	"kprobe.multi+":      {kAttach, probe.KprobeMulti, "kprobe.multi/tcp_*", "kprobe_multi link; a glob is resolved as libbpf does (available_filter_functions_addrs, else kallsyms ∩ available_filter_functions) and counts as that many targets; offered as single kprobes where the kernel has no kprobe_multi, or refuses the link."},
	"kretprobe.multi+":   {kAttach, probe.KretprobeMulti, "kretprobe.multi/tcp_*", "kprobe_multi link at return; globs as kprobe.multi; offered as single kretprobes."},
	"kprobe.session+":    {kUnsupported, "", "kprobe.session/f", "refused, naming the section: a session runs at entry and return through one link, which safebpf does not plan yet (use kprobe.multi and kretprobe.multi)."},
	"uprobe+":            {kAttach, probe.Uprobe, "uprobe//bin/true:main+0x4", "uprobe on BINARY:SYMBOL[+OFFSET] (a binary without '/' is searched as libbpf searches it); paced where uprobe-mmap-lock-stall applies; many symbols (CollectionOptions.Batches) are batched into a uprobe_multi link where the kernel has one."},
	"uprobe.s+":          {kAttach, probe.Uprobe, "uprobe.s//bin/true:main", "sleepable uprobe, as uprobe."},
	"uretprobe+":         {kAttach, probe.Uretprobe, "uretprobe//bin/true:main", "uretprobe; refused where uretprobe-seccomp-kill applies unless CollectionOptions.Uprobes says the target runs without seccomp."},
	"uretprobe.s+":       {kAttach, probe.Uretprobe, "uretprobe.s//bin/true:main", "sleepable uretprobe, as uretprobe."},
	"uprobe.multi+":      {kAttach, probe.UprobeMulti, "uprobe.multi//bin/true:ma*", "uprobe_multi link; a glob is resolved over the binary's function symbols as libbpf does (.symtab, else .dynsym); offered as single uprobes where the kernel has no uprobe_multi, or refuses the link."},
	"uretprobe.multi+":   {kAttach, probe.UretprobeMulti, "uretprobe.multi//bin/true:main", "uprobe_multi link of RETURN probes (mechanism uretprobe-multi, judged by uretprobe-seccomp-kill); offered as single uretprobes."},
	"uprobe.session+":    {kUnsupported, "", "uprobe.session//bin/true:main", "refused, naming the section: sessions are not planned yet (use uprobe.multi and uretprobe.multi)."},
	"uprobe.multi.s+":    {kAttach, probe.UprobeMulti, "uprobe.multi.s//bin/true:main", "sleepable uprobe.multi, as uprobe.multi."},
	"uretprobe.multi.s+": {kAttach, probe.UretprobeMulti, "uretprobe.multi.s//bin/true:main", "sleepable uretprobe.multi, as uretprobe.multi."},
	"uprobe.session.s+":  {kUnsupported, "", "uprobe.session.s//bin/true:main", "refused, as uprobe.session."},
	"usdt+":              {kUnsupported, "", "usdt/libc:memory:malloc", "refused, naming the section: USDT needs libbpf's USDT support, which cilium/ebpf does not have."},
	"usdt.s+":            {kUnsupported, "", "usdt.s/libc:memory:malloc", "refused, as usdt."},
	"tracepoint+":        {kAttach, probe.Tracepoint, "tracepoint/sched/sched_switch", "tracefs tracepoint GROUP/NAME; alternative of tp_btf/NAME and raw_tp/NAME."},
	"tp+":                {kAttach, probe.Tracepoint, "tp/sched/sched_switch", "as tracepoint."},
	"raw_tracepoint+":    {kAttach, probe.RawTracepoint, "raw_tracepoint/sched_switch", "raw tracepoint NAME; alternative of tp_btf/NAME and tracepoint/GROUP/NAME (libbpf-tools hardirqs: one of them attaches, never two)."},
	"raw_tp+":            {kAttach, probe.RawTracepoint, "raw_tp/sched_switch", "as raw_tracepoint."},
	"raw_tracepoint.w+":  {kAttach, probe.RawTracepoint, "raw_tracepoint.w/bpf_test_finish", "writable raw tracepoint, as raw_tracepoint."},
	"raw_tp.w+":          {kAttach, probe.RawTracepoint, "raw_tp.w/bpf_test_finish", "as raw_tracepoint.w."},
	"tp_btf+":            {kAttach, probe.TpBTF, "tp_btf/sched_switch", "BTF tracepoint (mechanism tp-btf, not a trampoline); preferred alternative of raw_tp/NAME and tracepoint/GROUP/NAME."},
	"fentry+":            {kAttach, probe.Fentry, "fentry/do_unlinkat", "fentry; alternative of kprobe/FUNC (and of ksyscall on the wrapper). A target the kernel will not load gives way to the next alternative."},
	"fmod_ret+":          {kAttach, probe.FmodRet, "fmod_ret/security_task_alloc", "fmod_ret (mechanism fmod-ret); no alternative."},
	"fexit+":             {kAttach, probe.Fexit, "fexit/vfs_read", "fexit; alternative of kretprobe/FUNC, or of a kprobe+kretprobe pair on FUNC."},
	"fentry.s+":          {kAttach, probe.Fentry, "fentry.s/__x64_sys_getpgid", "sleepable fentry, as fentry."},
	"fmod_ret.s+":        {kAttach, probe.FmodRet, "fmod_ret.s/security_task_alloc", "sleepable fmod_ret, as fmod_ret."},
	"fexit.s+":           {kAttach, probe.Fexit, "fexit.s/vfs_read", "sleepable fexit, as fexit."},
	"fsession+":          {kUnsupported, "", "fsession/vfs_read", "refused, naming the section: an fsession runs at entry and return through one trampoline, which safebpf does not plan yet."},
	"fsession.s+":        {kUnsupported, "", "fsession.s/vfs_read", "refused, as fsession."},
	"freplace+":          {kLoadOnly, "", "freplace/f", "loaded, not attached: replaces a function of another BPF program (link.AttachFreplace)."},
	"lsm+":               {kAttach, probe.LSM, "lsm/file_open", "BPF LSM program on the hook (mechanism lsm); refused where BPF LSM is not active."},
	"lsm.s+":             {kAttach, probe.LSM, "lsm.s/file_open", "sleepable lsm, as lsm."},
	"lsm_cgroup+":        {kLoadOnly, "", "lsm_cgroup/file_open", "loaded, not attached: attaches to a cgroup (link.AttachCgroup)."},
	"iter+":              {kAttach, probe.Iter, "iter/task", "iterator link (mechanism iter); the Link's embedded *link.Iter (or Loader.AttachIter's *Iter) opens it."},
	"iter.s+":            {kAttach, probe.Iter, "iter.s/task", "sleepable iterator, as iter."},
	"perf_event":         {kAttach, probe.PerfEventSoftware, "", "perf event from CollectionOptions.PerfEvents (an error naming the program without one): CPU cycles may move to cpu-clock where hardware events are unavailable; any other event is kept."},
}

// Every other pattern is a program safebpf loads and never attaches.
const loadOnlyDoes = "loaded, not attached (not a tracing program): reported in the plan."

// ciliumSection is one entry of cilium/ebpf's elfSectionDefs.
type ciliumSection struct {
	pattern    string
	progType   string // sys name, "BPF_PROG_TYPE_KPROBE"
	attachType string // sys name, or "0"
	sleepable  bool
}

// ciliumSections parses elfSectionDefs out of cilium/ebpf's source in the
// module cache, at the version this module builds with.
func ciliumSections(tb testing.TB) []ciliumSection {
	tb.Helper()
	dir := ciliumDir(tb)
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, filepath.Join(dir, "elf_sections.go"), nil, 0)
	if err != nil {
		tb.Fatalf("parse cilium/ebpf's section table: %v", err)
	}
	var out []ciliumSection
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || len(vs.Names) != 1 || vs.Names[0].Name != "elfSectionDefs" {
			return true
		}
		lit := vs.Values[0].(*ast.CompositeLit)
		for _, e := range lit.Elts {
			el := e.(*ast.CompositeLit).Elts
			pat, err := strconv.Unquote(el[0].(*ast.BasicLit).Value)
			if err != nil {
				tb.Fatal(err)
			}
			cs := ciliumSection{pattern: pat, progType: exprName(el[1]), attachType: exprName(el[2])}
			ast.Inspect(el[3], func(n ast.Node) bool {
				if id, ok := n.(*ast.Ident); ok && id.Name == "_SEC_SLEEPABLE" {
					cs.sleepable = true
				}
				return true
			})
			out = append(out, cs)
		}
		return false
	})
	if len(out) < 50 {
		tb.Fatalf("found %d sections in cilium/ebpf's table, want its whole table", len(out))
	}
	return out
}

func exprName(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.SelectorExpr:
		return x.Sel.Name
	case *ast.BasicLit:
		return x.Value
	case *ast.Ident:
		return x.Name
	}
	return fmt.Sprintf("%T", e)
}

// ciliumDir finds cilium/ebpf's source in the module cache.
func ciliumDir(tb testing.TB) string {
	tb.Helper()
	// The version this module requires, from its go.mod.
	version := ""
	mod, err := os.ReadFile(filepath.Join("..", "go.mod"))
	if err != nil {
		tb.Skipf("needs the module's source tree: %v", err)
	}
	for _, line := range strings.Split(string(mod), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "github.com/cilium/ebpf" {
			version = f[1]
		}
	}
	if version == "" {
		tb.Fatal("go.mod does not require github.com/cilium/ebpf")
	}
	cache := os.Getenv("GOMODCACHE")
	if cache == "" {
		gopath := os.Getenv("GOPATH")
		if gopath == "" {
			home, _ := os.UserHomeDir()
			gopath = filepath.Join(home, "go")
		}
		cache = filepath.Join(gopath, "pkg", "mod")
	}
	dir := filepath.Join(cache, "github.com", "cilium", "ebpf@"+version)
	if _, err := os.Stat(filepath.Join(dir, "elf_sections.go")); err != nil {
		tb.Skipf("needs cilium/ebpf %s's source in the module cache: %v", version, err)
	}
	return dir
}

// sysName normalises a sys constant or a stringer name for matching:
// "BPF_PROG_TYPE_RAW_TRACEPOINT" and "RawTracepoint" both become
// "rawtracepoint".
func sysName(s string) string {
	for _, p := range []string{"BPF_PROG_TYPE_", "BPF_"} {
		s = strings.TrimPrefix(s, p)
	}
	return strings.ToLower(strings.ReplaceAll(s, "_", ""))
}

// ciliumSpec builds the ProgramSpec cilium/ebpf's ELF reader makes for
// section under table entry cs.
func ciliumSpec(tb testing.TB, cs ciliumSection, section string) *ebpf.ProgramSpec {
	tb.Helper()
	ps := &ebpf.ProgramSpec{Name: "p", SectionName: section, License: "GPL", Instructions: asmReturn0("p")}
	want := sysName(cs.progType)
	if want == "ext" {
		want = "extension"
	}
	for t := ebpf.ProgramType(0); t < 64; t++ {
		if sysName(t.String()) == want {
			ps.Type = t
		}
	}
	if ps.Type == ebpf.UnspecifiedProgram {
		tb.Fatalf("section %s: no ebpf.ProgramType for %s", cs.pattern, cs.progType)
	}
	if cs.attachType != "0" {
		want := sysName(cs.attachType)
		found := false
		for a := ebpf.AttachType(0); a < 128; a++ {
			if sysName(a.String()) == want {
				ps.AttachType, found = a, true
			}
		}
		if want == "cgroupinetingress" {
			ps.AttachType, found = ebpf.AttachCGroupInetIngress, true
		}
		if !found {
			// An attach type cilium/ebpf has no constant for yet
			// (uprobe and fentry sessions): a value no known type has.
			ps.AttachType = ebpf.AttachType(0xfff0)
		}
	}
	if cs.sleepable {
		ps.Flags = bpfFSleepable
	}
	_, extra, _ := strings.Cut(section, "/")
	if ps.Type != ebpf.StructOps {
		ps.AttachTo = extra
	}
	return ps
}

// TestSectionsFromCilium derives the section list from cilium/ebpf's own
// table and checks that safebpf handles each as sectionCases says: every
// tracing section attaches with its mechanism or fails naming it, never
// a silent success; the others are loaded and reported.
func TestSectionsFromCilium(t *testing.T) {
	for _, cs := range ciliumSections(t) {
		sc, ok := sectionCases[cs.pattern]
		if !ok {
			sc = sectionCase{kind: kLoadOnly, does: loadOnlyDoes}
		}
		section := sc.example
		if section == "" {
			section = strings.TrimRight(cs.pattern, "+")
		}
		ps := ciliumSpec(t, cs, section)
		c, err := classify(ps)
		switch sc.kind {
		case kAttach:
			if err != nil || c.use != useAttach {
				t.Errorf("%s (%s): %v, use %d; want it attached", cs.pattern, section, err, c.use)
				continue
			}
			mech := c.ap.mech
			if c.ap.needsTarget == "perf event" {
				mech = probe.PerfEventSoftware // the options decide
			}
			if mech != sc.mech {
				t.Errorf("%s (%s): mechanism %s, want %s", cs.pattern, section, mech, sc.mech)
			}
			if (ps.Flags&bpfFSleepable != 0) != cs.sleepable {
				t.Errorf("%s: sleepable flag lost", cs.pattern)
			}
			// The bare form of a "+" pattern has no target: loud, never
			// a silent success.
			if strings.HasSuffix(cs.pattern, "+") {
				bare := ciliumSpec(t, cs, strings.TrimSuffix(cs.pattern, "+"))
				bc, berr := classify(bare)
				if berr == nil && bc.ap.needsTarget == "" && bc.ap.target == "" {
					t.Errorf("%s: the bare section classifies as attachable with no target", cs.pattern)
				}
			}
		case kUnsupported:
			var se *sectionError
			if !errors.As(err, &se) || !errors.Is(err, ErrNotSupported) || !strings.Contains(err.Error(), section) {
				t.Errorf("%s (%s): %v; want an error naming the section, matching ErrNotSupported", cs.pattern, section, err)
			}
		case kLoadOnly:
			if err != nil || c.use != useLoadOnly || c.why == "" {
				t.Errorf("%s (%s): %v, use %d, why %q; want it loaded and reported, not attached", cs.pattern, section, err, c.use, c.why)
			}
		}
	}
	// sectionCases has no stale entries.
	known := map[string]bool{}
	for _, cs := range ciliumSections(t) {
		known[cs.pattern] = true
	}
	for p := range sectionCases {
		if !known[p] {
			t.Errorf("sectionCases has %q, which cilium/ebpf does not parse", p)
		}
	}
}

// sectionsDoc renders docs/sections.md from cilium/ebpf's table and
// sectionCases.
func sectionsDoc(tb testing.TB) []byte {
	var b bytes.Buffer
	b.WriteString(`# Sections: what safebpf does with each

Every section prefix cilium/ebpf parses (its ` + "`elfSectionDefs`" + `, which mirrors
libbpf's ` + "`section_defs`" + `), in cilium/ebpf's order, and what
` + "`loader.LoadAndAttach`" + ` does with a program in it. safebpf classifies a
program from what cilium/ebpf parsed — ` + "`ProgramSpec.Type`" + `, ` + "`AttachType`" + `,
` + "`Flags`" + ` and ` + "`AttachTo`" + ` — and reads the section prefix only where cilium/ebpf
gives several sections the same type and attach type (kprobe/ and
kretprobe/, kprobe/ and uprobe/). ` + "`AttachTo`" + ` is the target: a caller may retarget a
placeholder program before loading. A "+" pattern takes an optional
"/TARGET"; a section starting with "?" (libbpf: not loaded by default) is
optional. A tracing section without a target (a bare "kprobe") fails the
call naming it unless the program is listed in
` + "`CollectionOptions.Manual`" + ` (the caller attaches it) or, for uprobes,
` + "`CollectionOptions.Uprobes`" + ` gives the binary and symbol. Tracing programs
that cannot be attached as written fail the call, naming the section,
unless they are optional (then skipped with their Decision).

This file is generated by ` + "`SAFEBPF_UPDATE_DOCS=1 go test ./loader -run TestSectionsDoc`" + `
from cilium/ebpf's source; ` + "`TestSectionsFromCilium`" + ` fails when cilium/ebpf adds a
section safebpf does not handle.

| section | program type | safebpf |
|---|---|---|
`)
	for _, cs := range ciliumSections(tb) {
		sc, ok := sectionCases[cs.pattern]
		does := loadOnlyDoes
		if ok {
			does = sc.does
			if sc.kind == kAttach {
				does = "**" + string(sc.mech) + "**: " + does
				if cs.pattern == "perf_event" {
					does = "**perf-event-hardware / perf-event-software**: " + sc.does
				}
			}
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", cs.pattern, strings.TrimPrefix(cs.progType, "BPF_PROG_TYPE_"), does)
	}
	return b.Bytes()
}

// TestSectionsDoc keeps docs/sections.md in step with cilium/ebpf's table
// and sectionCases.
func TestSectionsDoc(t *testing.T) {
	want := sectionsDoc(t)
	path := filepath.Join("..", "docs", "sections.md")
	if os.Getenv("SAFEBPF_UPDATE_DOCS") == "1" {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("needs the source tree: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("docs/sections.md is stale: run SAFEBPF_UPDATE_DOCS=1 go test ./loader -run TestSectionsDoc")
	}
}
