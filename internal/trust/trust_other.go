//go:build !linux

package trust

import "github.com/safebpf/safebpf/internal/boundedio"

// Current returns an unprivileged process: BPF exists only on Linux.
func Current() Process { return Process{} }

// ReadFile reads path with the boundedio checks only.
func (p Process) ReadFile(path string, limit int64, what string) ([]byte, error) {
	return boundedio.ReadFile(path, limit, what)
}

// Check reports whether path names a regular file.
func (p Process) Check(path, what string) error {
	f, err := boundedio.Open(path, what)
	if err != nil {
		return err
	}
	return f.Close()
}
