package vmtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/safebpf/safebpf/probe"
)

// FixtureDir is where the guests' `safebpf probe --json` outputs are kept,
// relative to the module root.
const FixtureDir = "testdata/kernels"

// FixturePath returns the fixture file for a kernel name
// (testdata/kernels/debian-6.1.json).
func FixturePath(root, kernel string) string {
	return filepath.Join(root, FixtureDir, kernel+".json")
}

// DecodeFixture decodes the output of `safebpf probe --json` (the report,
// or its "kernel" member) with probe.ReadKernelJSON, the decoder of the
// command's --kernel, and checks it describes a real kernel: a trusted
// version.
func DecodeFixture(b []byte) (*probe.Kernel, error) {
	k, err := probe.ReadKernelJSON(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("decode probe output: %w", err)
	}
	if k.Version == nil {
		return nil, fmt.Errorf("decode probe output: release %q has no trusted version", k.Release)
	}
	return k, nil
}

// WriteFixture validates a guest's probe output and writes it, indented, as
// the kernel's fixture.
func WriteFixture(root, kernel string, data []byte) error {
	if _, err := DecodeFixture(data); err != nil {
		return fmt.Errorf("write fixture %s: %w", kernel, err)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(data), "", "  "); err != nil {
		return fmt.Errorf("write fixture %s: %w", kernel, err)
	}
	buf.WriteByte('\n')
	p := FixturePath(root, kernel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("write fixture %s: %w", kernel, err)
	}
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write fixture %s: %w", kernel, err)
	}
	return nil
}
