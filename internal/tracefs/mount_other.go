//go:build !linux

package tracefs

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// Find returns [ErrNotMounted]: tracefs exists only on Linux.
func Find() (*FS, error) {
	return nil, fmt.Errorf("find tracefs: %w (%w)", ErrNotMounted, ebpf.ErrNotSupported)
}

// Mount fails with an error wrapping [ebpf.ErrNotSupported]: tracefs exists
// only on Linux.
func Mount() (*FS, error) {
	return nil, fmt.Errorf("mount tracefs: %w", ebpf.ErrNotSupported)
}

// alive reports true: without kill(2) semantics nothing is known dead.
func alive(int) bool { return true }
