package probe

import (
	"context"
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"

	"github.com/cilium/ebpf/btf"

	"github.com/safebpf/safebpf/internal/kcode/kcodetest"
	"github.com/safebpf/safebpf/internal/kernel"
)

// The facts of issue 9 the witnesses answer.
var (
	factNofaultFix   = Fact{Kind: FactCall, Name: "copy_from_user_nofault->nmi_uaccess_okay"}
	factVmallocCheck = Fact{Kind: FactCall, Name: "__check_object_size->find_vmap_area"}
	factNMICheck     = Fact{Kind: FactCall, Name: "copy_from_user_nmi->__check_object_size"}
	factTailCallBTF  = Fact{Kind: FactBTF, Name: "bpf_map.owner.attach_func_proto"}
	factSeccomp      = Fact{Kind: FactSelfTest, Name: selfTestUretprobeSeccomp}
	witnessFacts     = []Fact{factNofaultFix, factVmallocCheck, factNMICheck, factTailCallBTF, factSeccomp}
)

const gccProcVersion = "Linux version 6.1.0-57-cloud-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)"

// syntheticKernelRoot is a replayed root holding a synthetic kernel's
// /proc/kallsyms and /proc/kcore (package kcodetest).
func syntheticKernelRoot(k kcodetest.Kernel) fstest.MapFS {
	b := k.Image().Build()
	return fstest.MapFS{
		"proc/kallsyms": {Data: []byte(b.Kallsyms(false))},
		"proc/kcore":    {Data: b.KernelCore(), Mode: 0o400},
		"proc/version":  {Data: []byte(gccProcVersion + "\n")},
	}
}

func observeIn(t *testing.T, root fs.FS, k *Kernel, f Fact) Observation {
	t.Helper()
	if k == nil {
		k = &Kernel{Arch: "amd64", ProcVersion: gccProcVersion}
	}
	o := observeWitness(context.Background(), &kernel.Host{FS: root}, k, f)
	t.Logf("%s: %s", f, describeWitness(o))
	return o
}

func describeWitness(o Observation) string {
	if !o.Known() {
		return "unobserved: " + o.Witness
	}
	if *o.Holds {
		return "holds: " + o.Witness
	}
	return "does not hold: " + o.Witness
}

func checkWitness(t *testing.T, o Observation, wantKnown, wantHolds bool, wantWitness string) {
	t.Helper()
	switch {
	case o.Known() != wantKnown:
		t.Errorf("known = %v (%s), want %v", o.Known(), o.Witness, wantKnown)
	case wantKnown && *o.Holds != wantHolds:
		t.Errorf("holds = %v (%s), want %v", *o.Holds, o.Witness, wantHolds)
	}
	if !strings.Contains(o.Witness, wantWitness) {
		t.Errorf("witness %q does not say %q", o.Witness, wantWitness)
	}
}

// TestCallWitnessSynthetic: the synthetic kcore/kallsyms pair of issue 9.
// With the unpatched pattern (5.19–6.0: vmalloc lookup in
// check_heap_object, no nmi_uaccess_okay call) the fix does not hold and
// the lookup does; with the patched one both hold.
func TestCallWitnessSynthetic(t *testing.T) {
	unpatched := syntheticKernelRoot(kcodetest.Kernel{VmallocLookup: true, NMIObjectCheck: true})
	patched := syntheticKernelRoot(kcodetest.Kernel{NofaultFix: true, VmallocLookup: true})
	tests := []struct {
		name    string
		root    fs.FS
		f       Fact
		holds   bool
		witness string
	}{
		{"unpatched: no fix", unpatched, factNofaultFix, false,
			"no call to nmi_uaccess_okay in copy_from_user_nofault (0x40 bytes) (kcore); direct calls seen: __check_object_size, __x86_return_thunk"},
		{"unpatched: vmalloc lookup", unpatched, factVmallocCheck, true,
			"call find_vmap_area at check_heap_object+0x12, in check_heap_object called at __check_object_size+0x11 (kcore)"},
		{"unpatched: perf path checks objects", unpatched, factNMICheck, true,
			"call __check_object_size at copy_from_user_nmi+0x1d (kcore)"},
		{"patched: fix", patched, factNofaultFix, true,
			"call nmi_uaccess_okay at copy_from_user_nofault+0x11 (kcore)"},
		{"patched: vmalloc lookup", patched, factVmallocCheck, true, "call find_vmap_area at check_heap_object+0x12"},
		{"patched: perf path fixed", patched, factNMICheck, false, "no call to __check_object_size in copy_from_user_nmi"},
		{"5.10-like: no lookup", syntheticKernelRoot(kcodetest.Kernel{}), factVmallocCheck, false, "no call to find_vmap_area in __check_object_size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkWitness(t, observeIn(t, tt.root, nil, tt.f), true, tt.holds, tt.witness)
		})
	}
}

// The entry point Detect calls, as agreed with the catalog's evaluator.
var _ func(context.Context, *kernel.Host, *Kernel, Fact) Observation = observeWitness

// TestCallWitnessFilesOnDisk reads the synthetic pair from real files
// (os.DirFS gives *os.File, read with ReadAt as /proc/kcore is).
func TestCallWitnessFilesOnDisk(t *testing.T) {
	dir := t.TempDir()
	for name, f := range syntheticKernelRoot(kcodetest.Kernel{VmallocLookup: true, NMIObjectCheck: true}) {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, f.Data, 0o400); err != nil {
			t.Fatal(err)
		}
	}
	root := os.DirFS(dir)
	checkWitness(t, observeIn(t, root, nil, factNofaultFix), true, false, "no call to nmi_uaccess_okay in copy_from_user_nofault")
	checkWitness(t, observeIn(t, root, nil, factVmallocCheck), true, true, "call find_vmap_area at check_heap_object+0x12")
}

// openCountingFS counts opens of one file.
type openCountingFS struct {
	fs.FS
	name  string
	opens atomic.Int32
}

func (c *openCountingFS) Open(name string) (fs.File, error) {
	if name == c.name {
		c.opens.Add(1)
	}
	return c.FS.Open(name)
}

// TestCallWitnessReadsKallsymsOnce: the facts of one Detect (one Host)
// share one read of kallsyms; another Host reads it again.
func TestCallWitnessReadsKallsymsOnce(t *testing.T) {
	root := &openCountingFS{FS: syntheticKernelRoot(kcodetest.Kernel{NofaultFix: true, VmallocLookup: true}), name: "proc/kallsyms"}
	h := &kernel.Host{FS: root}
	k := &Kernel{Arch: "amd64", ProcVersion: gccProcVersion}
	for _, f := range []Fact{factNofaultFix, factVmallocCheck, factNMICheck} {
		if o := observeWitness(context.Background(), h, k, f); !o.Known() {
			t.Fatalf("%s: %s", f, o.Witness)
		}
	}
	if n := root.opens.Load(); n != 1 {
		t.Errorf("kallsyms opened %d times for three facts, want 1", n)
	}
	observeWitness(context.Background(), &kernel.Host{FS: root}, k, factNofaultFix)
	if n := root.opens.Load(); n != 2 {
		t.Errorf("kallsyms opened %d times after a second Host, want 2", n)
	}
}

// permDeniedFS refuses to open one file, as the kernel does for /proc/kcore
// under lockdown or without CAP_SYS_RAWIO.
type permDeniedFS struct {
	fs.FS
	name string
}

func (p permDeniedFS) Open(name string) (fs.File, error) {
	if name == p.name {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
	}
	return p.FS.Open(name)
}

func TestCallWitnessUnobserved(t *testing.T) {
	patched := kcodetest.Kernel{NofaultFix: true, VmallocLookup: true}
	withFile := func(name string, data []byte) fstest.MapFS {
		root := syntheticKernelRoot(patched)
		root[name] = &fstest.MapFile{Data: data}
		return root
	}
	without := func(name string) fstest.MapFS {
		root := syntheticKernelRoot(patched)
		delete(root, name)
		return root
	}
	b := patched.Image().Build()
	lockedDown := withFile("sys/kernel/security/lockdown", []byte("none integrity [confidentiality]\n"))
	clang := &Kernel{Arch: "amd64", ProcVersion: "Linux version 6.6.30-android15 (build-user@build-host) (Android (11368308, +pgo, +bolt, +lto, +mlgo, based on r510928) clang version 18.0.0, LLD 18.0.0) #1 SMP PREEMPT"}
	lto := &Kernel{Arch: "amd64", ProcVersion: gccProcVersion, Config: map[string]string{"CONFIG_LTO_CLANG": "y"}}
	tests := []struct {
		name    string
		root    fs.FS
		k       *Kernel
		f       Fact
		witness string
	}{
		{"no kcore", without("proc/kcore"), nil, factNofaultFix, "/proc/kcore: no such file (CONFIG_PROC_KCORE off?)"},
		{"lockdown", permDeniedFS{lockedDown, "proc/kcore"}, nil, factNofaultFix, "/proc/kcore: lockdown: confidentiality"},
		{"kallsyms hidden", withFile("proc/kallsyms", []byte(b.Kallsyms(true))), nil, factNofaultFix, "kallsyms addresses are zero: kptr_restrict"},
		{"no kallsyms", without("proc/kallsyms"), nil, factNofaultFix, "open /proc/kallsyms"},
		{"kcore of another arch", withFile("proc/kcore", kcodetest.Core(elf.EM_AARCH64, kcodetest.Segment{Vaddr: b.Base, Data: b.Text})), nil, factNofaultFix, "/proc/kcore is EM_AARCH64, the kernel is amd64"},
		{"not a core", withFile("proc/kcore", []byte("not an ELF file, not at all, no.............................................")), nil, factNofaultFix, "/proc/kcore: read kcore headers"},
		{"function missing", syntheticKernelRoot(patched), nil, Fact{Kind: FactCall, Name: "copy_from_user_nofault_v2->nmi_uaccess_okay"}, "function copy_from_user_nofault_v2: not in kallsyms"},
		{"malformed", syntheticKernelRoot(patched), nil, Fact{Kind: FactCall, Name: "copy_from_user_nofault"}, `want "function->callee"`},
		{"arm64 and nmi_uaccess_okay", syntheticKernelRoot(patched), &Kernel{Arch: "arm64"}, factNofaultFix, "arch arm64: nmi_uaccess_okay is compiled away there"},
		{"no disassembler", syntheticKernelRoot(patched), &Kernel{Arch: "riscv64"}, factNofaultFix, "arch riscv64: no disassembler"},
		// A call that is not there means nothing where LTO may have inlined the callee...
		{"clang without config", syntheticKernelRoot(patched), clang, factNMICheck, "built with Clang and its config is unreadable, so LTO cannot be ruled out"},
		{"LTO", syntheticKernelRoot(patched), lto, factNMICheck, "built with LTO (CONFIG_LTO_CLANG=y): __check_object_size may be inlined into copy_from_user_nmi"},
		{"compiler unknown", syntheticKernelRoot(patched), &Kernel{Arch: "amd64", ProcVersion: "Linux version 6.1.0"}, factNMICheck, "neither /proc/version nor the config tells the compiler"},
		{"unknown kind", syntheticKernelRoot(patched), nil, Fact{Kind: "magic", Name: "x"}, `no witness for facts of kind "magic"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkWitness(t, observeIn(t, tt.root, tt.k, tt.f), false, false, tt.witness)
		})
	}
	t.Run("LTO does not hide a call that is there", func(t *testing.T) {
		checkWitness(t, observeIn(t, syntheticKernelRoot(patched), lto, factNofaultFix), true, true, "call nmi_uaccess_okay at copy_from_user_nofault+0x11")
	})
	t.Run("config without LTO", func(t *testing.T) {
		k := &Kernel{Arch: "amd64", ProcVersion: clang.ProcVersion, Config: map[string]string{"CONFIG_LTO_NONE": "y"}}
		checkWitness(t, observeIn(t, syntheticKernelRoot(patched), k, factNMICheck), true, false, "no call to __check_object_size")
	})
	t.Run("a kprobe in the code read", func(t *testing.T) {
		// An int3 or optimized jump on the call would hide it: the
		// absence of a call means nothing then.
		nmi := b.Addr("copy_from_user_nmi")
		list := fmt.Sprintf("%016x  k  copy_from_user_nmi+0x0    [FTRACE]\n%016x  k  copy_from_user_nmi+0x1d    [OPTIMIZED]\n", nmi, nmi+0x1d)
		checkWitness(t, observeIn(t, withFile("sys/kernel/debug/kprobes/list", []byte(list)), nil, factNMICheck), false, false,
			"no call found, but a kprobe at copy_from_user_nmi+0x1d patches the code read")
		hidden := "0000000000000000  k  copy_from_user_nmi+0x1d\n"
		checkWitness(t, observeIn(t, withFile("sys/kernel/debug/kprobes/list", []byte(hidden)), nil, factNMICheck), false, false,
			"a kprobe at copy_from_user_nmi+0x1d")
		ftraceOnly := fmt.Sprintf("%016x  k  copy_from_user_nmi+0x0    [FTRACE]\n%016x  k  copy_from_user_nofault+0x11\n", nmi, b.Addr("copy_from_user_nofault")+0x11)
		checkWitness(t, observeIn(t, withFile("sys/kernel/debug/kprobes/list", []byte(ftraceOnly)), nil, factNMICheck), true, false,
			"no call to __check_object_size in copy_from_user_nmi")
	})
	t.Run("callee absent from kallsyms", func(t *testing.T) {
		f := Fact{Kind: FactCall, Name: "__check_object_size->no_such_function"}
		checkWitness(t, observeIn(t, syntheticKernelRoot(patched), nil, f), true, false, "no_such_function is not in kallsyms: the kernel has no function of that name to call")
	})
	t.Run("canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		o := observeWitness(ctx, &kernel.Host{FS: syntheticKernelRoot(patched)}, &Kernel{Arch: "amd64"}, factNofaultFix)
		checkWitness(t, o, false, false, "context canceled")
	})
}

// btfFixtureRoot is a replayed root whose /sys/kernel/btf/vmlinux holds types.
func btfFixtureRoot(t *testing.T, types ...btf.Type) fstest.MapFS {
	t.Helper()
	b, err := btf.NewBuilder(types, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := b.Marshal(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return fstest.MapFS{"sys/kernel/btf/vmlinux": {Data: raw}}
}

// The shapes struct bpf_map has had (include/linux/bpf.h).
func btfBPFMapTypes() (ptr, u32, progType, boolean, btfType btf.Type) {
	u32 = &btf.Int{Name: "unsigned int", Size: 4}
	boolean = &btf.Int{Name: "_Bool", Size: 1, Encoding: btf.Bool}
	progType = &btf.Enum{Name: "bpf_prog_type", Size: 4, Values: []btf.EnumValue{{Name: "BPF_PROG_TYPE_UNSPEC", Value: 0}}}
	btfType = &btf.Struct{Name: "btf_type", Size: 12, Members: []btf.Member{{Name: "name_off", Type: u32}}}
	ptr = &btf.Pointer{Target: &btf.Const{Type: btfType}}
	return
}

func TestBTFWitness(t *testing.T) {
	attachProto, u32, progType, boolean, _ := btfBPFMapTypes()
	owner66 := &btf.Struct{Size: 12, Members: []btf.Member{ // 6.6: no attach_func_proto
		{Name: "lock", Type: u32}, {Name: "type", Type: progType, Offset: 32}, {Name: "jited", Type: boolean, Offset: 64},
	}}
	owner612 := &btf.Struct{Size: 24, Members: []btf.Member{ // 6.12 (28ead3eaabc1): anonymous struct
		{Name: "lock", Type: u32}, {Name: "type", Type: progType, Offset: 32}, {Name: "jited", Type: boolean, Offset: 64},
		{Name: "attach_func_proto", Type: attachProto, Offset: 128},
	}}
	bpfMapOwner := &btf.Struct{Name: "bpf_map_owner", Size: 16, Members: []btf.Member{ // "bpf: Move bpf map owner out of common struct"
		{Name: "type", Type: progType}, {Name: "jited", Type: boolean, Offset: 32}, {Name: "attach_func_proto", Type: attachProto, Offset: 64},
	}}
	bpfMap := func(ms ...btf.Member) *btf.Struct {
		return &btf.Struct{Name: "bpf_map", Size: 64, Members: append([]btf.Member{{Name: "map_type", Type: u32}}, ms...)}
	}
	tests := []struct {
		name    string
		root    fstest.MapFS
		f       string
		known   bool
		holds   bool
		witness string
	}{
		{"6.12: anonymous struct", btfFixtureRoot(t, bpfMap(btf.Member{Name: "owner", Type: owner612, Offset: 64})),
			"bpf_map.owner.attach_func_proto", true, true,
			"member struct bpf_map.owner (anonymous struct).attach_func_proto present (/sys/kernel/btf/vmlinux)"},
		{"later: pointer to struct bpf_map_owner", btfFixtureRoot(t, bpfMap(btf.Member{Name: "owner", Type: &btf.Pointer{Target: bpfMapOwner}, Offset: 64})),
			"bpf_map.owner.attach_func_proto", true, true,
			"member struct bpf_map.owner (struct bpf_map_owner *).attach_func_proto present"},
		{"pointer to a forward declaration, defined elsewhere", btfFixtureRoot(t,
			bpfMap(btf.Member{Name: "owner", Type: &btf.Pointer{Target: &btf.Fwd{Name: "bpf_map_owner", Kind: btf.FwdStruct}}, Offset: 64}), bpfMapOwner),
			"bpf_map.owner.attach_func_proto", true, true,
			"member struct bpf_map.owner (struct bpf_map_owner *).attach_func_proto present"},
		{"pointer to a forward declaration only", btfFixtureRoot(t,
			bpfMap(btf.Member{Name: "owner", Type: &btf.Pointer{Target: &btf.Fwd{Name: "bpf_map_owner", Kind: btf.FwdStruct}}, Offset: 64})),
			"bpf_map.owner.attach_func_proto", true, false,
			"struct bpf_map.owner (struct bpf_map_owner *, declared but never defined) is not a struct or union"},
		{"6.6: owner without attach_func_proto", btfFixtureRoot(t, bpfMap(btf.Member{Name: "owner", Type: owner66, Offset: 64})),
			"bpf_map.owner.attach_func_proto", true, false,
			"struct bpf_map.owner (anonymous struct) has no member attach_func_proto"},
		{"5.10: no owner", btfFixtureRoot(t, bpfMap()),
			"bpf_map.owner.attach_func_proto", true, false, "struct bpf_map has no member owner"},
		{"member in an anonymous union", btfFixtureRoot(t, bpfMap(btf.Member{Type: &btf.Union{Size: 24, Members: []btf.Member{{Name: "owner", Type: owner612}}}, Offset: 64})),
			"bpf_map.owner.attach_func_proto", true, true, "attach_func_proto present"},
		{"through a typedef", btfFixtureRoot(t, bpfMap(btf.Member{Name: "owner", Type: &btf.Typedef{Name: "owner_t", Type: owner612}, Offset: 64})),
			"bpf_map.owner.attach_func_proto", true, true, "attach_func_proto present"},
		{"not a struct", btfFixtureRoot(t, bpfMap(btf.Member{Name: "owner", Type: u32, Offset: 64})),
			"bpf_map.owner.attach_func_proto", true, false, "struct bpf_map.owner (int unsigned int) is not a struct or union"},
		{"no such struct", btfFixtureRoot(t, bpfMap()), "bpf_mop.owner", false, false, "no struct or union bpf_mop in the kernel's BTF"},
		{"malformed", btfFixtureRoot(t, bpfMap()), "bpf_map", false, false, `want "struct.member`},
		{"malformed: empty part", btfFixtureRoot(t, bpfMap()), "bpf_map..owner", false, false, `want "struct.member`},
		{"no BTF", fstest.MapFS{}, "bpf_map.owner", false, false, "/sys/kernel/btf/vmlinux: no such file (CONFIG_DEBUG_INFO_BTF off?)"},
		{"garbage BTF", fstest.MapFS{"sys/kernel/btf/vmlinux": {Data: []byte("garbage")}}, "bpf_map.owner", false, false, "parse /sys/kernel/btf/vmlinux"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := observeIn(t, tt.root, nil, Fact{Kind: FactBTF, Name: tt.f})
			checkWitness(t, o, tt.known, tt.holds, tt.witness)
		})
	}
}

// TestBTFWitnessThroughRoot: a root (a container's host root) serves the
// kernel's real BTF, a few MiB, which the host-file bound (1 MiB) refused;
// it is read through kernel.MaxBTFSize.
func TestBTFWitnessThroughRoot(t *testing.T) {
	fi, err := os.Stat("/sys/kernel/btf/vmlinux")
	if err != nil || fi.Size() <= kernel.MaxFileSize {
		t.Skipf("needs /sys/kernel/btf/vmlinux larger than %d bytes (CONFIG_DEBUG_INFO_BTF): %v", kernel.MaxFileSize, err)
	}
	o := observeIn(t, os.DirFS("/"), nil, Fact{Kind: FactBTF, Name: "bpf_map.owner"})
	if !o.Known() {
		t.Errorf("bpf_map.owner through a root holding %d bytes of BTF: %s", fi.Size(), o.Witness)
	}
}

func TestSelfTestWitnessGates(t *testing.T) {
	root := fstest.MapFS{"proc/kallsyms": {Data: []byte("ffffffff81000000 T __x64_sys_uretprobe\n")}}
	for _, tt := range []struct {
		name    string
		root    fs.FS
		k       *Kernel
		f       Fact
		witness string
	}{
		{"replayed root", root, nil, factSeccomp, "self-tests run only on the live host"},
		{"unknown self-test", root, nil, Fact{Kind: FactSelfTest, Name: "fork-bomb"}, "selftest fork-bomb: no such self-test"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			checkWitness(t, observeIn(t, tt.root, tt.k, tt.f), false, false, tt.witness)
		})
	}
	t.Run("arm64", func(t *testing.T) {
		o := observeWitness(context.Background(), &kernel.Host{}, &Kernel{Arch: "arm64"}, factSeccomp)
		checkWitness(t, o, false, false, "arch arm64: the uretprobe syscall and the self-test's helper are x86-64 only")
	})
	t.Run("uretprobes unavailable", func(t *testing.T) {
		if !kernel.Privileged() {
			t.Skip("the privilege gate comes first")
		}
		k := &Kernel{Arch: "amd64", Mechanisms: map[Mechanism]Support{Uretprobe: Unsupported("no uprobe PMU and no tracefs")}}
		o := observeWitness(context.Background(), &kernel.Host{}, k, factSeccomp)
		checkWitness(t, o, false, false, "uretprobes unavailable: no uprobe PMU and no tracefs")
	})
	t.Run("no uretprobe syscall in kallsyms", func(t *testing.T) {
		if !kernel.Privileged() {
			t.Skip("the privilege gate comes first")
		}
		k := &Kernel{Arch: "amd64", Kallsyms: Kallsyms{Readable: true, Symbols: map[string]bool{"__x64_sys_uretprobe": false}}}
		o := observeWitness(context.Background(), &kernel.Host{}, k, factSeccomp)
		checkWitness(t, o, false, false, "no uretprobe syscall (__x64_sys_uretprobe not in kallsyms): nothing to test")
	})
}
