// Package testutil gates tests on privileges and kernel capabilities. It is
// imported only from _test.go files.
package testutil

import (
	"errors"
	"os"
	"testing"

	"github.com/cilium/ebpf"
)

// Privileged reports whether the process runs as root.
func Privileged() bool { return os.Geteuid() == 0 }

// RequirePrivileged skips tb unless the process is root. With
// SAFEBPF_TEST_PRIVILEGED set (CI), it fails instead of skipping.
func RequirePrivileged(tb testing.TB) {
	tb.Helper()
	if Privileged() {
		return
	}
	if os.Getenv("SAFEBPF_TEST_PRIVILEGED") != "" {
		tb.Fatal("privileged test cannot run: needs root (SAFEBPF_TEST_PRIVILEGED is set)")
	}
	tb.Skip("needs root: loads and attaches BPF programs")
}

// SkipIfNotSupported skips tb with the capability's name when err says the
// kernel lacks a feature, and fails it on any other non-nil error.
func SkipIfNotSupported(tb testing.TB, capability string, err error) {
	tb.Helper()
	if err == nil {
		return
	}
	if errors.Is(err, ebpf.ErrNotSupported) {
		tb.Skipf("kernel lacks %s: %v", capability, err)
	}
	tb.Fatalf("%s: %v", capability, err)
}
