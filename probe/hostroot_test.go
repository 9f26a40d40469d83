package probe

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

// TestDetectHostRoot detects this machine as an agent in a container
// would, with a host root whose os-release is not the one this process
// sees (a container image's versus the host's): the distro and the files
// the host root holds come from there, while the release, the CPUs (from
// this process's /sys, the same kernel), the mount table and every
// mechanism's availability are this running kernel's, probed for real.
func TestDetectHostRoot(t *testing.T) {
	ctx := context.Background()
	def, err := Detect(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	hostID := "ubuntu"
	if def.Distro.ID == hostID {
		hostID = "fedora"
	}
	dir := t.TempDir()
	for name, text := range map[string]string{
		"etc/os-release": "ID=" + hostID + "\nVERSION_ID=\"24.04\"\n",
		// Plain text is a valid config file too; the marker proves it was read.
		"proc/config.gz": "CONFIG_BPF=y\nCONFIG_SAFEBPF_HOST_ROOT_MARKER=y\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	k, err := Detect(ctx, &Options{HostRoot: dir})
	if err != nil {
		t.Fatalf("Detect with HostRoot: %v", err)
	}
	if k.Distro.ID != hostID || k.Distro.VersionID != "24.04" {
		t.Errorf("distro %+v, want the host root's %s 24.04 (this process sees %+v)", k.Distro, hostID, def.Distro)
	}
	if k.Config["CONFIG_SAFEBPF_HOST_ROOT_MARKER"] != "y" || k.ConfigSource != "/proc/config.gz" {
		t.Errorf("config from %s lacks the host root's marker", k.ConfigSource)
	}
	if k.Release != def.Release || k.CPUs != def.CPUs || k.Tracefs != def.Tracefs || k.BTF != def.BTF {
		t.Errorf("release %q, CPUs %d, tracefs %q, BTF %v; want this kernel's %q, %d, %q, %v",
			k.Release, k.CPUs, k.Tracefs, k.BTF, def.Release, def.CPUs, def.Tracefs, def.BTF)
	}
	for _, m := range Mechanisms() {
		got, want := k.Support(m), def.Support(m)
		if strings.HasPrefix(got.Reason, "offline:") {
			t.Errorf("%s decided offline (%s): HostRoot must keep the real probes", m, got.Reason)
		}
		if got.Known() != want.Known() || got.Yes() != want.Yes() {
			t.Errorf("%s: %+v with HostRoot, %+v without", m, got, want)
		}
	}
}

// TestDetectHostRootSlash: a host root of "/" is the default.
func TestDetectHostRootSlash(t *testing.T) {
	ctx := context.Background()
	def, err := Detect(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	k, err := Detect(ctx, &Options{HostRoot: "/"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(def, k); diff != "" {
		t.Errorf("HostRoot \"/\" differs from the default (-default +host root):\n%s", diff)
	}
}

func TestDetectHostRootErrors(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		opts *Options
		want []string
	}{
		{&Options{HostRoot: "host"}, []string{`"host"`, "absolute", "SAFEBPF_HOST_ROOT"}},
		{&Options{HostRoot: "/nonexistent/host"}, []string{"/nonexistent/host", "docs/containers.md"}},
		{&Options{HostRoot: "/", Root: fstest.MapFS{}}, []string{"both Root and HostRoot"}},
	} {
		_, err := Detect(ctx, tt.opts)
		if err == nil {
			t.Errorf("Detect(%+v) succeeded, want an error", tt.opts)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Detect(%+v) = %v, want it to contain %q", tt.opts, err, w)
			}
		}
	}
}
