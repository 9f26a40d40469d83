package kernel

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// TestHostRootFS replays a container: the host's root (an Ubuntu host
// with its kernel config in /boot) mounted below the container's own root
// (a Debian image whose /proc and /sys show the same kernel).
func TestHostRootFS(t *testing.T) {
	host := fstest.MapFS{
		"etc/os-release":                 {Data: []byte("ID=ubuntu\nVERSION_ID=\"24.04\"\n")},
		"boot/config-6.8.0-86-generic":   {Data: []byte("CONFIG_BPF=y\nCONFIG_HOST_ONLY=y\n")},
		"proc/version":                   {Data: []byte("Linux version 6.8.0-86-generic (host)\n")},
		"proc/self/mounts":               {Data: []byte("tracefs /host/only/tracing tracefs rw 0 0\n")},
		"sys/kernel/security/lsm":        {Data: []byte("lockdown,capability,bpf\n")},
		"usr/share/doc/host-only/README": {Data: []byte("x")},
	}
	local := fstest.MapFS{
		"etc/os-release":                  {Data: []byte("ID=debian\nVERSION_ID=\"12\"\n")},
		"usr/lib/os-release":              {Data: []byte("ID=debian\n")},
		"boot/config-6.8.0-86-generic":    {Data: []byte("CONFIG_IMAGE_ONLY=y\n")},
		"proc/version":                    {Data: []byte("Linux version 6.8.0-86-generic (container view)\n")},
		"proc/self/mounts":                {Data: []byte("tracefs /sys/kernel/tracing tracefs rw 0 0\n")},
		"sys/devices/system/cpu/possible": {Data: []byte("0-3\n")},
	}
	h := &Host{FS: hostRootFS{host: host, local: local}}

	osr, _, err := h.OSRelease()
	if err != nil || osr.ID != "ubuntu" || osr.VersionID != "24.04" {
		t.Errorf("OSRelease = %+v, %v; want the host's ubuntu 24.04", osr, err)
	}
	cfg, src, err := h.Config("6.8.0-86-generic")
	if err != nil || src != "/boot/config-6.8.0-86-generic" || cfg["CONFIG_HOST_ONLY"] != "y" || cfg["CONFIG_IMAGE_ONLY"] != "" {
		t.Errorf("Config = %v from %q, %v; want the host's /boot", cfg, src, err)
	}
	if pv, err := h.ProcVersion(); err != nil || !strings.Contains(pv, "(host)") {
		t.Errorf("ProcVersion = %q, %v; want the host root's", pv, err)
	}
	// Kernel-wide files the host root lacks: this process's view of the same kernel.
	if n, err := h.PossibleCPUs(); err != nil || n != 4 {
		t.Errorf("PossibleCPUs = %d, %v; want 4 from the local /sys", n, err)
	}
	// The mount table is this process's own: its paths are the ones it can use.
	ms, err := h.Mounts()
	if err != nil || FirstMount(ms, "tracefs") != "/sys/kernel/tracing" {
		t.Errorf("Mounts = %v, %v; want this process's own", ms, err)
	}
	// Outside /proc and /sys nothing falls back to the container's files.
	delete(host, "etc/os-release")
	if osr, _, err := h.OSRelease(); err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OSRelease with no host os-release = %+v, %v; want not-exist, never the image's", osr, err)
	}
	if !h.Exists("usr/share/doc/host-only/README") || h.Exists("usr/lib/os-release") {
		t.Errorf("Exists does not follow the host root")
	}
}

func TestHostRootFSArgument(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ dir, want string }{
		{"host", "absolute path"},
		{filepath.Join(dir, "missing"), "no such file"},
		{file, "not a directory"},
	} {
		if _, err := HostRootFS(tt.dir); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("HostRootFS(%q) = %v, want an error containing %q", tt.dir, err, tt.want)
		}
	}
	if _, err := HostRootFS(dir); err != nil {
		t.Errorf("HostRootFS(%q): %v", dir, err)
	}
}
