package vmtest

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// DefaultCache is where scripts/provision-kernels.sh keeps kernels unless
// SAFEBPF_KERNEL_CACHE says otherwise.
const DefaultCache = "/var/cache/safebpf-kernels"

// CacheDir returns SAFEBPF_KERNEL_CACHE or DefaultCache.
func CacheDir() string {
	if d := os.Getenv("SAFEBPF_KERNEL_CACHE"); d != "" {
		return d
	}
	return DefaultCache
}

// Kernel is one provisioned kernel: a directory holding vmlinuz, config and
// manifest, as written by scripts/provision-kernels.sh.
type Kernel struct {
	// Name is the matrix name ("debian-6.1"), also the fixture file name.
	Name string
	// Package, Version, Release and Suite come from the manifest
	// ("linux-image-6.1.0-56-cloud-amd64", "6.1.192-2",
	// "6.1.0-56-cloud-amd64", "bookworm-security/main").
	Package, Version, Release, Suite string
	// Vmlinuz and Config are file paths.
	Vmlinuz, Config string
	// Kind is [KindLab] for kernels built by scripts/build-lab-kernel.sh
	// (the hazard lab's own builds, which the matrix does not boot), empty
	// for the distributions' kernels.
	Kind string
}

// KindLab is the manifest kind (kind=lab) of the hazard lab's own kernels.
const KindLab = "lab"

// String returns "name (package version)".
func (k Kernel) String() string { return fmt.Sprintf("%s (%s %s)", k.Name, k.Package, k.Version) }

// Codename returns the Debian release the kernel's suite belongs to
// ("bookworm-security/main" → "bookworm").
func (k Kernel) Codename() string {
	s, _, _ := strings.Cut(k.Suite, "/")
	s, _, _ = strings.Cut(s, "-")
	return s
}

// ErrNoKernels is returned by [Kernels] when nothing has been provisioned.
var ErrNoKernels = errors.New("no provisioned kernels")

// Kernels lists the distribution kernels provisioned under dir, ordered by
// name. Lab kernels are left out (see [LabKernels]).
func Kernels(dir string) ([]Kernel, error) {
	ks, err := allKernels(dir)
	if err != nil {
		return nil, err
	}
	var out []Kernel
	for _, k := range ks {
		if k.Kind == "" {
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("list kernels in %s: %w (run scripts/provision-kernels.sh)", dir, ErrNoKernels)
	}
	return out, nil
}

// LabKernels lists the lab kernels built under dir by
// scripts/build-lab-kernel.sh, ordered by name. None is not an error.
func LabKernels(dir string) ([]Kernel, error) {
	ks, err := allKernels(dir)
	if err != nil && !errors.Is(err, ErrNoKernels) {
		return nil, err
	}
	var out []Kernel
	for _, k := range ks {
		if k.Kind == KindLab {
			out = append(out, k)
		}
	}
	return out, nil
}

func allKernels(dir string) ([]Kernel, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("list kernels in %s: %w (run scripts/provision-kernels.sh)", dir, ErrNoKernels)
	}
	if err != nil {
		return nil, fmt.Errorf("list kernels in %s: %w", dir, err)
	}
	var ks []Kernel
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		d := filepath.Join(dir, e.Name())
		m, err := os.Open(filepath.Join(d, "manifest"))
		if errors.Is(err, fs.ErrNotExist) {
			continue // apt/, debs/
		}
		if err != nil {
			return nil, fmt.Errorf("read kernel manifest: %w", err)
		}
		k, err := parseManifest(m)
		m.Close()
		if err != nil {
			return nil, fmt.Errorf("read kernel manifest in %s: %w", d, err)
		}
		k.Vmlinuz = filepath.Join(d, "vmlinuz")
		k.Config = filepath.Join(d, "config")
		ks = append(ks, k)
	}
	if len(ks) == 0 {
		return nil, fmt.Errorf("list kernels in %s: %w (run scripts/provision-kernels.sh)", dir, ErrNoKernels)
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i].Name < ks[j].Name })
	return ks, nil
}

func parseManifest(f *os.File) (Kernel, error) {
	var k Kernel
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		switch key {
		case "name":
			k.Name = val
		case "package":
			k.Package = val
		case "version":
			k.Version = val
		case "release":
			k.Release = val
		case "suite":
			k.Suite = val
		case "kind":
			k.Kind = val
		}
	}
	if err := sc.Err(); err != nil {
		return k, err
	}
	if k.Name == "" || k.Release == "" {
		return k, errors.New("manifest lacks name= or release=")
	}
	if k.Kind != "" && k.Kind != KindLab {
		return k, fmt.Errorf("manifest has kind=%s: want kind=%s or no kind", k.Kind, KindLab)
	}
	return k, nil
}
