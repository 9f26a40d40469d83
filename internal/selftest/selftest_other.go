//go:build !linux

package selftest

import (
	"context"
	"fmt"
	"runtime"
)

// RunUretprobeSeccomp is Linux-only; elsewhere it fails with ErrNotSupported.
func RunUretprobeSeccomp(context.Context, *UretprobeOptions) (UretprobeResult, error) {
	return UretprobeResult{}, fmt.Errorf("uretprobe self-test on %s: %w", runtime.GOOS, ErrNotSupported)
}
