package probe

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/safebpf/safebpf/internal/boundedio"
)

// guestFixtures returns the kernels captured in the kernel-matrix guests
// (whole `safebpf probe --json` reports).
func guestFixtures(tb testing.TB) map[string][]byte {
	tb.Helper()
	paths, err := filepath.Glob("../testdata/kernels/*.json")
	if err != nil || len(paths) == 0 {
		tb.Fatalf("no guest fixtures: %v", err)
	}
	out := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		out[filepath.Base(p)] = b
	}
	return out
}

func TestReadKernelJSONFixtures(t *testing.T) {
	for name, b := range guestFixtures(t) {
		k, err := ReadKernelJSON(bytes.NewReader(b))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		var want struct {
			Kernel Kernel `json:"kernel"`
		}
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(&want.Kernel, k); diff != "" {
			t.Errorf("%s: ReadKernelJSON differs from the file (-file +read):\n%s", name, diff)
		}
		// The bare kernel object reads the same.
		bare, err := json.Marshal(k)
		if err != nil {
			t.Fatal(err)
		}
		k2, err := ReadKernelJSON(bytes.NewReader(bare))
		if err != nil {
			t.Fatalf("%s: bare kernel: %v", name, err)
		}
		if diff := cmp.Diff(k, k2); diff != "" {
			t.Errorf("%s: bare kernel differs (-wrapped +bare):\n%s", name, diff)
		}
	}
}

// TestReadKernelJSONRejects holds the fixture decoder to issue 12's
// finding 8: fixtures that decoded into nonsense kernels are refused with
// an error naming the field.
func TestReadKernelJSONRejects(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{``, "empty"},
		{`{"kernel":{}}`, "release"},
		{`{}`, "release"},
		{`{"release":"x"}`, "release"},
		{`{"release":""}`, "release"},
		{`{"release":"6.1.0","cpus":-1}`, "cpus"},
		{`{"release":"6.1.0","cpus":9223372036854775807}`, "cpus"},
		{`{"release":"6.1.0","arch":"sparc"}`, "arch"},
		{`{"release":"6.1.0\u001b[31m"}`, "release"},
		{`{"release":"6.1.0","proc_version":"Linux\nversion"}`, "proc_version"},
		{`{"release":"6.1.0","bogus":1}`, "bogus"},
		{`{"release":"6.1.0"} {"release":"6.2.0"}`, "after"},
		{`{"release":"6.1.0","mechanisms":{"teleport":{"available":true,"reason":""}}}`, "teleport"},
		{`{"release":"6.1.0","config":{"not_a_config":"y"}}`, "not_a_config"},
		{`{"release":"6.1.0","version":"1000.1.1"}`, "version"},
		{`{"release":"6.1.0","version_source":"hearsay"}`, "version_source"},
		{`{"release":"6.1.0","kallsyms":{"readable":true,"symbols":{"a b":true}}}`, "kallsyms"},
		{`[1,2,3]`, "object"},
		{`{"kernel":5}`, "kernel"},
	} {
		k, err := ReadKernelJSON(strings.NewReader(tc.in))
		if err == nil {
			t.Errorf("ReadKernelJSON(%s) = %+v; want an error naming %q", tc.in, k, tc.want)
			continue
		}
		if !errors.Is(err, ErrInvalidKernel) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ReadKernelJSON(%s) error %q; want ErrInvalidKernel naming %q", tc.in, err, tc.want)
		}
	}
	// An endless input stops at the limit.
	_, err := ReadKernelJSON(endless{})
	if !errors.Is(err, boundedio.ErrTooLarge) || !strings.Contains(err.Error(), "4 MiB") {
		t.Errorf("ReadKernelJSON(endless) = %v; want ErrTooLarge naming 4 MiB", err)
	}
	// Accepted: an alias arch is written in its GOARCH form.
	k, err := ReadKernelJSON(strings.NewReader(`{"release":"6.1.0-18-amd64","arch":"x86_64","cpus":4}`))
	if err != nil || k.Arch != "amd64" || k.CPUs != 4 {
		t.Errorf("ReadKernelJSON(x86_64) = %+v, %v; want arch amd64", k, err)
	}
	// A kernel without a version source has none ('unknown (unknown)' in
	// reports, not 'unknown ()').
	if err == nil && k.VersionSource != SourceNone {
		t.Errorf("ReadKernelJSON without version_source: source %q; want %q", k.VersionSource, SourceNone)
	}
}

type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

func FuzzReadKernelJSON(f *testing.F) {
	// The guest fixtures, with their configs cut to a few options: the
	// 3000-option configs only slow each execution down.
	for _, b := range guestFixtures(f) {
		var report map[string]any
		if err := json.Unmarshal(b, &report); err != nil {
			f.Fatal(err)
		}
		if k, ok := report["kernel"].(map[string]any); ok {
			if cfg, ok := k["config"].(map[string]any); ok {
				small := map[string]any{}
				for name, v := range cfg {
					if len(small) < 8 {
						small[name] = v
					}
				}
				k["config"] = small
			}
		}
		small, err := json.Marshal(report)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(small)
	}
	f.Add([]byte(`{"kernel":{}}`))
	f.Add([]byte(`{"release":"6.1.0","cpus":-1,"version":"6.1.1","arch":"x86_64"}`))
	f.Add([]byte(`{"release":"5.4.0-150-generic","config":{"CONFIG_X":"y"},"mechanisms":{"kprobe":{"available":null,"reason":"r"}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ReadKernelJSON(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, ErrInvalidKernel) && !errors.Is(err, boundedio.ErrTooLarge) {
				t.Fatalf("ReadKernelJSON(%q) error %v matches neither ErrInvalidKernel nor ErrTooLarge", b, err)
			}
			return
		}
		if k.Release == "" || k.CPUs < 0 || k.CPUs > MaxCPUs {
			t.Fatalf("ReadKernelJSON(%q) accepted %+v", b, k)
		}
		// What was accepted round-trips.
		again, err := json.Marshal(k)
		if err != nil {
			t.Fatal(err)
		}
		k2, err := ReadKernelJSON(bytes.NewReader(again))
		if err != nil {
			t.Fatalf("re-reading %s: %v", again, err)
		}
		if diff := cmp.Diff(k, k2, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("round trip differs (-first +second):\n%s", diff)
		}
	})
}
