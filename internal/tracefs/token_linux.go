//go:build linux

package tracefs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

var (
	tokenMu    sync.Mutex
	tokenHeld  *os.File // never closed: the lock lives as long as the process
	tokenOwner Owner
)

// holdToken makes sure this process holds its liveness lock: a shared
// open-file-description lock (F_OFD_SETLK, Linux 3.15+) on one byte of
// TokenFile, taken before its first event exists and held until it exits.
func (f *FS) holdToken(self Owner) error {
	tokenMu.Lock()
	defer tokenMu.Unlock()
	if tokenHeld != nil && tokenOwner == self {
		return nil
	}
	fh, err := os.OpenFile(filepath.Join(f.root, TokenFile), os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("take the liveness lock on %s: %w", TokenFile, err)
	}
	lk := unix.Flock_t{Type: unix.F_RDLCK, Whence: 0, Start: tokenOffset(self), Len: 1}
	if err := unix.FcntlFlock(fh.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		fh.Close()
		return fmt.Errorf("take the liveness lock on %s: %w", TokenFile, err)
	}
	if tokenHeld != nil {
		tokenHeld.Close()
	}
	tokenHeld, tokenOwner = fh, self
	return nil
}

// tokenLocked reports whether some process holds o's liveness lock.
func tokenLocked(root string, o Owner) (bool, error) {
	fh, err := os.Open(filepath.Join(root, TokenFile))
	if err != nil {
		return false, fmt.Errorf("check liveness lock: %w", err)
	}
	defer fh.Close()
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: tokenOffset(o), Len: 1}
	if err := unix.FcntlFlock(fh.Fd(), unix.F_OFD_GETLK, &lk); err != nil {
		if errors.Is(err, unix.EINVAL) {
			return false, fmt.Errorf("check liveness lock: open file description locks need Linux 3.15+: %w", err)
		}
		return false, fmt.Errorf("check liveness lock: %w", err)
	}
	return lk.Type != unix.F_UNLCK, nil
}
