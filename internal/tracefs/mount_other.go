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

// Self fails with an error wrapping [ebpf.ErrNotSupported]: owners are
// Linux processes.
func Self() (Owner, error) {
	return Owner{}, fmt.Errorf("identify this process: %w", ebpf.ErrNotSupported)
}

func currentSystem() (*system, error) {
	return nil, fmt.Errorf("judge event owners: %w", ebpf.ErrNotSupported)
}

func (f *FS) holdToken(Owner) error {
	return fmt.Errorf("take the liveness lock: %w", ebpf.ErrNotSupported)
}

func tokenLocked(string, Owner) (bool, error) {
	return false, fmt.Errorf("check liveness lock: %w", ebpf.ErrNotSupported)
}

// alive reports true: without kill(2) semantics nothing is known dead.
func alive(int) bool { return true }
