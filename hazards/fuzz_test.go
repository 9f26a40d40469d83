package hazards

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/safebpf/safebpf/probe"
)

// FuzzParsePolicy checks that no input panics, that every rejection is a
// located *PolicyError, and that every accepted policy also applies to the
// built-in catalog and evaluates.
func FuzzParsePolicy(f *testing.F) {
	seeds, _ := filepath.Glob("../examples/policy/*.yaml")
	more, _ := filepath.Glob("testdata/*.yaml")
	for _, s := range append(seeds, more...) {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"apiVersion":"safebpf/v1","force":["all"],"kernels":[{"release":"^5","fixed":["x86-text-poke-race"]}]}`))
	f.Add([]byte("apiVersion: safebpf/v1\nforce: &a [all]\nmode: *a\n"))
	k := &probe.Kernel{Release: "5.4.0-100-generic", Version: &probe.Version{Major: 5, Minor: 4}, Arch: "amd64", CPUs: 128}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePolicy("fuzz.yaml", data)
		if err != nil {
			var pe *PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%T) is not a *PolicyError", err, err)
			}
			return
		}
		c, err := Builtin().WithPolicy(p)
		if err != nil {
			t.Fatalf("ParsePolicy accepted a policy that WithPolicy rejects: %v", err)
		}
		for _, m := range probe.Mechanisms() {
			for _, fd := range c.Evaluate(k, Attachment{Mechanism: m, ReadsUserMemory: true, Seccomp: true}) {
				if !fd.Verdict.Valid() {
					t.Fatalf("invalid verdict %q", fd.Verdict)
				}
			}
		}
	})
}
