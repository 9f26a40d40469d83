package vmtest

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/u-root/u-root/pkg/cpio"

	"github.com/safebpf/safebpf/internal/vmtest/vmproto"
)

// File is one entry of an initramfs. Exactly one of Data and HostPath
// supplies a regular file's contents; Dir makes a directory and CharDev a
// character device.
type File struct {
	// Name is the path inside the guest, without a leading slash.
	Name string
	// Mode holds the permission bits.
	Mode     uint64
	Data     []byte
	HostPath string
	Dir      bool
	// CharDev, when set, makes a character device with this major:minor.
	CharDev *[2]uint64
	// Symlink, when set, makes a symbolic link to this target.
	Symlink string
	// Optional skips a HostPath that no longer exists (the source tree is
	// edited while the harness runs).
	Optional bool
}

// WriteInitramfs writes files as a gzip-compressed newc cpio archive, the
// format the kernel unpacks into its rootfs. Parent directories are created
// as needed (the kernel does not create them).
func WriteInitramfs(w io.Writer, files []File) error {
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return fmt.Errorf("create gzip writer: %w", err)
	}
	rw := cpio.NewDedupWriter(cpio.Newc.Writer(zw))
	written := map[string]bool{}
	mkdirs := func(name string) error {
		dir := path.Dir(name)
		if dir == "." || written[dir] {
			return nil
		}
		var parts []string
		for d := dir; d != "." && !written[d]; d = path.Dir(d) {
			parts = append(parts, d)
		}
		for i := len(parts) - 1; i >= 0; i-- {
			if err := rw.WriteRecord(cpio.Directory(parts[i], 0o755)); err != nil {
				return err
			}
			written[parts[i]] = true
		}
		return nil
	}
	for _, f := range files {
		name := cpio.Normalize(f.Name)
		if err := mkdirs(name); err != nil {
			return fmt.Errorf("write initramfs directory for %s: %w", name, err)
		}
		var rec cpio.Record
		switch {
		case f.Dir:
			if written[name] {
				continue
			}
			rec = cpio.Directory(name, f.Mode)
		case f.Symlink != "":
			rec = cpio.Symlink(name, f.Symlink)
		case f.CharDev != nil:
			rec = cpio.CharDev(name, f.Mode, f.CharDev[0], f.CharDev[1])
		case f.HostPath != "":
			fh, err := os.Open(f.HostPath)
			if err != nil && f.Optional && os.IsNotExist(err) {
				continue
			}
			if err != nil {
				return fmt.Errorf("write initramfs file %s: %w", name, err)
			}
			st, err := fh.Stat()
			if err != nil {
				fh.Close()
				return fmt.Errorf("write initramfs file %s: %w", name, err)
			}
			rec = cpio.Record{ReaderAt: fh, Info: cpio.Info{Name: name, Mode: cpio.S_IFREG | f.Mode, FileSize: uint64(st.Size())}}
			err = rw.WriteRecord(rec)
			fh.Close()
			if err != nil {
				return fmt.Errorf("write initramfs file %s: %w", name, err)
			}
			written[name] = true
			continue
		default:
			rec = cpio.StaticRecord(f.Data, cpio.Info{Name: name, Mode: cpio.S_IFREG | f.Mode})
		}
		if err := rw.WriteRecord(rec); err != nil {
			return fmt.Errorf("write initramfs entry %s: %w", name, err)
		}
		written[name] = true
	}
	if err := cpio.WriteTrailer(rw); err != nil {
		return fmt.Errorf("write initramfs trailer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("compress initramfs: %w", err)
	}
	return nil
}

// GuestConfig selects what a guest runs.
type GuestConfig struct {
	// Run is passed to every test binary as -test.run when not empty.
	Run string
	// StepTimeout bounds each test binary (and is its -test.timeout, less a
	// margin so Go prints the stuck goroutines first).
	StepTimeout time.Duration
	// Env holds extra KEY=VALUE pairs for every step.
	Env []string
	// Bench, when not empty, is passed to every test binary as
	// -test.bench, with BenchTime as -test.benchtime when set; with no
	// Run, the tests themselves are not run (-test.run=^$).
	Bench, BenchTime string
	// Steps, when not empty, replaces the plan's steps (the test binaries
	// and `safebpf probe --json`): the hazard lab runs its own programs.
	Steps []vmproto.Step
	// NoSource leaves the module's source tree out of the initramfs.
	NoSource bool
}

// osRelease returns an os-release file for the Debian release a kernel
// package comes from, so the guest looks like that Debian system to
// distro detection. The kernel facts themselves are the real kernel's.
func osRelease(codename string) []byte {
	ver := map[string]string{"buster": "10", "bullseye": "11", "bookworm": "12", "trixie": "13"}[codename]
	if ver == "" {
		return nil
	}
	return fmt.Appendf(nil, "PRETTY_NAME=\"Debian GNU/Linux %[1]s (%[2]s)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"%[1]s\"\nVERSION=\"%[1]s (%[2]s)\"\nVERSION_CODENAME=%[2]s\nID=debian\n", ver, codename)
}

// GuestFiles lists the initramfs of a guest for kernel k: the init, the plan,
// the test binaries, the module's source tree under /src (tests run in
// /src/<pkg> as `go test` runs them in the package directory), the kernel config at /boot/config-<release>, an
// os-release for the kernel's Debian release, and /dev/console.
func GuestFiles(b *Build, k Kernel, cfg GuestConfig) ([]File, error) {
	plan := Plan(b, k, cfg)
	pj, err := json.MarshalIndent(plan, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode plan: %w", err)
	}
	files := []File{
		{Name: "dev", Dir: true, Mode: 0o755},
		{Name: "dev/console", Mode: 0o600, CharDev: &[2]uint64{5, 1}},
		{Name: "dev/null", Mode: 0o666, CharDev: &[2]uint64{1, 3}},
		{Name: "proc", Dir: true, Mode: 0o555},
		{Name: "sys", Dir: true, Mode: 0o555},
		{Name: "tmp", Dir: true, Mode: 0o1777},
		{Name: "root", Dir: true, Mode: 0o700},
		{Name: "init", HostPath: b.Init, Mode: 0o755},
		{Name: strings.TrimPrefix(vmproto.PlanPath, "/"), Data: pj, Mode: 0o644},
	}
	if k.Config != "" {
		if _, err := os.Stat(k.Config); err == nil {
			files = append(files, File{Name: "boot/config-" + k.Release, HostPath: k.Config, Mode: 0o644})
		}
	}
	if osr := osRelease(k.Codename()); osr != nil {
		files = append(files, File{Name: "etc/os-release", Data: osr, Mode: 0o644})
	}
	for _, t := range b.Tests {
		files = append(files, File{Name: "vmtest/bin/" + path.Base(t.Path), HostPath: t.Path, Mode: 0o755})
	}
	if b.CLI != "" {
		files = append(files, File{Name: "vmtest/bin/safebpf", HostPath: b.CLI, Mode: 0o755})
	}
	for guest, host := range b.Prebuilt {
		files = append(files, File{Name: "vmtest/prebuilt/" + guest, HostPath: host, Mode: 0o755})
	}
	files = append(files, hostUserland()...)
	for _, t := range b.Tests {
		files = append(files, File{Name: "src/" + t.Pkg, Dir: true, Mode: 0o755})
	}
	if cfg.NoSource {
		return files, nil
	}
	src, err := treeFiles(b.Root)
	if err != nil {
		return nil, err
	}
	files = append(files, src...)
	return files, nil
}

// HostPrograms are copied from the host into every guest, with the shared
// libraries they need, so tests find a C library to place uprobes on and a
// shell (readline in /bin/bash). Missing ones are left out.
var HostPrograms = []string{"/bin/bash"}

// hostUserland lists HostPrograms and their libraries (from ldd) at the
// paths the host uses, plus /bin/sh and the usr-merge links.
func hostUserland() []File {
	files := []File{
		{Name: "usr/bin", Symlink: "../bin"},
		{Name: "usr/lib", Symlink: "../lib"},
		{Name: "usr/lib64", Symlink: "../lib64"},
	}
	seen := map[string]bool{}
	add := func(p string) {
		if seen[p] {
			return
		}
		seen[p] = true
		if _, err := os.Stat(p); err == nil {
			files = append(files, File{Name: strings.TrimPrefix(p, "/"), HostPath: p, Mode: 0o755})
		}
	}
	for _, prog := range HostPrograms {
		if _, err := os.Stat(prog); err != nil {
			continue
		}
		add(prog)
		out, err := exec.Command("ldd", prog).Output()
		if err != nil {
			continue
		}
		for _, lib := range parseLdd(string(out)) {
			add(lib)
		}
	}
	if seen["/bin/bash"] {
		files = append(files, File{Name: "bin/sh", Symlink: "bash"})
	}
	return files
}

// parseLdd returns the absolute library paths in ldd output.
func parseLdd(out string) []string {
	var libs []string
	for _, l := range strings.Split(out, "\n") {
		for _, f := range strings.Fields(l) {
			if strings.HasPrefix(f, "/") {
				libs = append(libs, f)
				break
			}
		}
	}
	return libs
}

// maxSourceFile bounds the files of the module tree copied into a guest.
const maxSourceFile = 8 << 20

// treeFiles lists the module's files (without .git and files above
// maxSourceFile) as initramfs entries under src/, so tests that read
// testdata, examples or docs by relative path find them in the guest.
func treeFiles(root string) ([]File, error) {
	var files []File
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p != root && os.IsNotExist(err) {
				return nil // removed while we walked
			}
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if info, err := d.Info(); err != nil || info.Size() > maxSourceFile {
			return nil
		}
		r, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		files = append(files, File{Name: "src/" + filepath.ToSlash(r), HostPath: p, Mode: 0o644, Optional: true})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list module files in %s: %w", root, err)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	return files, nil
}

// FixtureStep is the name of the guest step that prints `safebpf probe
// --json`.
const FixtureStep = "safebpf-probe-json"

// Plan returns the steps a guest for k runs: every test binary with -test.v,
// then `safebpf probe --json` when the CLI was built.
func Plan(b *Build, k Kernel, cfg GuestConfig) vmproto.Plan {
	timeout := cfg.StepTimeout
	if timeout <= 0 {
		timeout = 4 * time.Minute
	}
	goTimeout := timeout - timeout/10
	p := vmproto.Plan{Kernel: k.Name, Env: append([]string{"SAFEBPF_TEST_PRIVILEGED=1", "SAFEBPF_VM_PREBUILT=/vmtest/prebuilt"}, cfg.Env...)}
	if len(cfg.Steps) > 0 {
		p.Steps = cfg.Steps
		return p
	}
	for _, t := range b.Tests {
		args := []string{"-test.v", "-test.count=1", "-test.timeout=" + goTimeout.String()}
		if cfg.Run != "" {
			args = append(args, "-test.run="+cfg.Run)
		}
		args = append(args, benchArgs(cfg)...)
		p.Steps = append(p.Steps, vmproto.Step{
			Name:    t.Pkg,
			Path:    "/vmtest/bin/" + path.Base(t.Path),
			Args:    args,
			Dir:     "/src/" + t.Pkg,
			Timeout: timeout,
		})
	}
	if b.CLI != "" {
		p.Steps = append(p.Steps, vmproto.Step{
			Name:    FixtureStep,
			Path:    "/vmtest/bin/safebpf",
			Args:    []string{"probe", "--json"},
			Timeout: 2 * time.Minute,
			Data:    true,
		})
	}
	return p
}
