package vmtest

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/u-root/u-root/pkg/cpio"

	"github.com/safebpf/safebpf/internal/vmtest/vmproto"
)

// TestWriteInitramfs writes an archive and reads it back with the cpio
// reader: parents come before children (the kernel does not create them),
// and modes, device numbers and contents survive.
func TestWriteInitramfs(t *testing.T) {
	host := filepath.Join(t.TempDir(), "prog")
	if err := os.WriteFile(host, []byte("#!binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := []File{
		{Name: "dev/console", Mode: 0o600, CharDev: &[2]uint64{5, 1}},
		{Name: "init", HostPath: host, Mode: 0o755},
		{Name: "src/a/b/testdata/x.json", Data: []byte(`{}`), Mode: 0o644},
		{Name: "src/a", Dir: true, Mode: 0o755},
		{Name: "tmp", Dir: true, Mode: 0o1777},
	}
	var buf bytes.Buffer
	if err := WriteInitramfs(&buf, files); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	type entry struct {
		Name    string
		Mode    uint64
		Rmajor  uint64
		Content string
	}
	var got []entry
	for _, r := range recs {
		var content []byte
		if r.ReaderAt != nil && r.FileSize > 0 {
			content, _ = io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
		}
		got = append(got, entry{r.Name, r.Mode, r.Rmajor, string(content)})
	}
	want := []entry{
		{"dev", cpio.S_IFDIR | 0o755, 0, ""},
		{"dev/console", cpio.S_IFCHR | 0o600, 5, ""},
		{"init", cpio.S_IFREG | 0o755, 0, "#!binary"},
		{"src", cpio.S_IFDIR | 0o755, 0, ""},
		{"src/a", cpio.S_IFDIR | 0o755, 0, ""},
		{"src/a/b", cpio.S_IFDIR | 0o755, 0, ""},
		{"src/a/b/testdata", cpio.S_IFDIR | 0o755, 0, ""},
		{"src/a/b/testdata/x.json", cpio.S_IFREG | 0o644, 0, "{}"},
		{"tmp", cpio.S_IFDIR | 0o1777, 0, ""},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("archive (-want +got):\n%s", diff)
	}
}

func TestKernels(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Kernels(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "provision-kernels.sh") {
		t.Errorf("missing cache: err = %v, want a hint to provision", err)
	}
	write("debs/x.deb", "")
	write("debian-6.1/manifest", "name=debian-6.1\npackage=linux-image-6.1.0-56-cloud-amd64\nversion=6.1.192-2\nrelease=6.1.0-56-cloud-amd64\nsuite=bookworm-security/main\ndeb=x.deb\n")
	write("debian-5.10/manifest", "name=debian-5.10\npackage=linux-image-5.10.0-46-cloud-amd64\nversion=5.10.262-1\nrelease=5.10.0-46-cloud-amd64\nsuite=bullseye-security/main\n")
	ks, err := Kernels(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []Kernel{
		{Name: "debian-5.10", Package: "linux-image-5.10.0-46-cloud-amd64", Version: "5.10.262-1", Release: "5.10.0-46-cloud-amd64",
			Suite: "bullseye-security/main", Vmlinuz: filepath.Join(dir, "debian-5.10", "vmlinuz"), Config: filepath.Join(dir, "debian-5.10", "config")},
		{Name: "debian-6.1", Package: "linux-image-6.1.0-56-cloud-amd64", Version: "6.1.192-2", Release: "6.1.0-56-cloud-amd64",
			Suite: "bookworm-security/main", Vmlinuz: filepath.Join(dir, "debian-6.1", "vmlinuz"), Config: filepath.Join(dir, "debian-6.1", "config")},
	}
	if diff := cmp.Diff(want, ks); diff != "" {
		t.Errorf("Kernels (-want +got):\n%s", diff)
	}
	if got := ks[0].Codename(); got != "bullseye" {
		t.Errorf("Codename = %q, want bullseye", got)
	}
	// A lab kernel (scripts/build-lab-kernel.sh) is listed by LabKernels
	// only: the matrix does not boot it.
	write("lab-6.1-6.1.192-3-0123456789ab/manifest", "name=lab-6.1\nkind=lab\npackage=linux-source-6.1\nversion=6.1.192-3\nrelease=6.1.192-lab\nsuite=bookworm-security/main\n")
	if ks, err := Kernels(dir); err != nil || len(ks) != 2 {
		t.Errorf("Kernels with a lab kernel in the cache = %v, %v; want the 2 Debian kernels", ks, err)
	}
	lab, err := LabKernels(dir)
	if err != nil || len(lab) != 1 || lab[0].Name != "lab-6.1" || lab[0].Kind != "lab" || lab[0].Release != "6.1.192-lab" {
		t.Errorf("LabKernels = %+v, %v; want lab-6.1", lab, err)
	}
	if lab, err := LabKernels(filepath.Join(dir, "missing")); err != nil || len(lab) != 0 {
		t.Errorf("LabKernels of a missing cache = %v, %v; want none and no error", lab, err)
	}
	write("odd/manifest", "name=odd\nkind=custom\nrelease=1\n")
	if _, err := Kernels(dir); err == nil || !strings.Contains(err.Error(), "kind=custom") {
		t.Errorf("manifest of an unknown kind: err = %v, want it named", err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "odd")); err != nil {
		t.Fatal(err)
	}
	write("bad/manifest", "package=x\n")
	if _, err := Kernels(dir); err == nil {
		t.Error("manifest without name/release: no error")
	}
}

// TestKernelsInCache: in the real kernel cache (where scripts/kernel-matrix.sh
// provisions the Debian kernels and builds the lab kernel), the matrix's
// Kernels lists none of scripts/build-lab-kernel.sh's lab-* directories and
// LabKernels lists each of them.
func TestKernelsInCache(t *testing.T) {
	dir := CacheDir()
	labDirs, _ := filepath.Glob(filepath.Join(dir, "lab-*", "manifest"))
	if len(labDirs) == 0 {
		t.Skipf("no lab kernel built in %s (scripts/build-lab-kernel.sh)", dir)
	}
	ks, err := Kernels(dir)
	if err != nil {
		t.Fatalf("Kernels(%s): %v", dir, err)
	}
	for _, k := range ks {
		if strings.HasPrefix(filepath.Base(filepath.Dir(k.Vmlinuz)), "lab-") || k.Kind != "" {
			t.Errorf("Kernels(%s) lists %s from %s: the matrix would boot the lab kernel", dir, k.Name, k.Vmlinuz)
		}
	}
	lab, err := LabKernels(dir)
	if err != nil || len(lab) != len(labDirs) {
		t.Errorf("LabKernels(%s) = %v, %v; want the %d lab-* builds %v", dir, lab, err, len(labDirs), labDirs)
	}
}

func TestPlanAndQEMUArgs(t *testing.T) {
	b := &Build{Tests: []TestBinary{{Pkg: "internal/tracefs", Path: "/out/internal_tracefs.test"}}, CLI: "/out/safebpf"}
	p := Plan(b, Kernel{Name: "debian-6.12"}, GuestConfig{Run: "Integration", StepTimeout: 100 * time.Second, Env: []string{"A=1"}})
	if p.Kernel != "debian-6.12" || !slices.Equal(p.Env, []string{"SAFEBPF_TEST_PRIVILEGED=1", "SAFEBPF_VM_PREBUILT=/vmtest/prebuilt", "A=1"}) || len(p.Steps) != 2 {
		t.Fatalf("plan = %+v", p)
	}
	s := p.Steps[0]
	wantArgs := []string{"-test.v", "-test.count=1", "-test.timeout=1m30s", "-test.run=Integration"}
	if s.Name != "internal/tracefs" || s.Path != "/vmtest/bin/internal_tracefs.test" || s.Dir != "/src/internal/tracefs" ||
		s.Timeout != 100*time.Second || !slices.Equal(s.Args, wantArgs) {
		t.Errorf("test step = %+v", s)
	}
	if f := p.Steps[1]; f.Name != FixtureStep || !f.Data || !slices.Equal(f.Args, []string{"probe", "--json"}) {
		t.Errorf("fixture step = %+v", f)
	}

	args := strings.Join(QEMUArgs("/k/vmlinuz", "/k/initrd", BootOptions{Append: "nokaslr"}), " ")
	for _, want := range []string{"-accel tcg", "-cpu max", "-smp 2", "-m 1024", "-no-reboot", "-kernel /k/vmlinuz", "-initrd /k/initrd",
		"console=ttyS0 quiet panic=-1 no_timer_check rdinit=/init nokaslr"} {
		if !strings.Contains(args, want) {
			t.Errorf("QEMU args %q lack %q", args, want)
		}
	}
	if strings.Contains(args, "kvm") {
		t.Errorf("QEMU args %q use KVM, which hangs nested guests here", args)
	}
	if !strings.Contains(args, "-accel tcg,thread=single") {
		t.Errorf("QEMU args %q: want single-threaded TCG by default", args)
	}
	args = strings.Join(QEMUArgs("/k/vmlinuz", "/k/initrd", BootOptions{CPUs: 2, MaxCPUs: 64, MultiThreadTCG: true}), " ")
	for _, want := range []string{"-smp 2,maxcpus=64", "-accel tcg,thread=multi"} {
		if !strings.Contains(args, want) {
			t.Errorf("QEMU args %q lack %q", args, want)
		}
	}

	// The lab replaces the steps with its own programs.
	lab := []vmproto.Step{{Name: "s4-naive", Path: LabGuestPath, Args: []string{"s4", "-arm", "naive"}}}
	if p := Plan(b, Kernel{Name: "debian-6.1"}, GuestConfig{Steps: lab}); !slices.EqualFunc(p.Steps, lab, func(a, b vmproto.Step) bool { return a.Name == b.Name }) {
		t.Errorf("plan with lab steps = %+v, want only %+v", p.Steps, lab)
	}
}

func TestWriteTable(t *testing.T) {
	c := parseFile(t, "debian-6.1-hazards-fail.log")
	short := *c.Steps[0]
	short.Tests = short.Tests[:4]
	skipStep := &Step{Name: "loader", Ended: true, Tests: []TestResult{
		{Name: "TestFentry", Outcome: Skip, Reason: "kernel lacks fentry: EPERM"},
		{Name: "TestUprobe", Outcome: Pass},
		{Name: "TestUprobe/passed_everywhere", Outcome: Pass},
		{Name: "TestUprobe/skipped", Outcome: Skip, Reason: "kernel lacks fentry: EPERM"},
	}}
	crashed := &Step{Name: "probe", Ended: false, ExitCode: -1}
	cols := []Column{
		{Kernel: "debian-6.1", Steps: []*Step{&short, skipStep}},
		{Kernel: "debian-6.12", Steps: []*Step{crashed}, Note: "crashed"},
	}
	var buf bytes.Buffer
	if err := WriteTable(&buf, cols, TableOptions{}); err != nil {
		t.Fatal(err)
	}
	wantLines := []string{
		"TEST                                  debian-6.1  debian-6.12",
		"hazards TestBuiltinCatalog            PASS        - (crashed)",
		"hazards TestBuiltinMechanismCoverage  PASS        - (crashed)",
		"hazards TestParsePolicyExample        FAIL [1]    - (crashed)",
		"hazards TestParsePolicyJSON           PASS        - (crashed)",
		"loader TestFentry                     SKIP [2]    - (crashed)",
		"loader TestUprobe                     PASS        - (crashed)",
		"loader TestUprobe/skipped             SKIP [2]    - (crashed)",
		"probe (binary)                        -           FAIL [3]",
		"[1] open ../examples/policy/policy.yaml: no such file or directory",
		"[2] kernel lacks fentry: EPERM",
		"[3] did not finish",
	}
	got := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
	for i := range got {
		got[i] = strings.TrimRight(got[i], " ")
	}
	if diff := cmp.Diff(wantLines, got); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
}
