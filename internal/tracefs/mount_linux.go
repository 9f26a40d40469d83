package tracefs

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Find returns the mounted tracefs: /sys/kernel/tracing if a tracefs is
// mounted there, else /sys/kernel/debug/tracing if a debugfs (which exposes
// tracefs below it) is mounted at /sys/kernel/debug. It returns
// [ErrNotMounted] when neither is; it never mounts anything.
func Find() (*FS, error) {
	for _, c := range []struct {
		path  string
		magic int64
	}{
		{TracingPath, unix.TRACEFS_MAGIC},
		{DebugTracingPath, unix.TRACEFS_MAGIC},
		{DebugTracingPath, unix.DEBUGFS_MAGIC},
	} {
		var st unix.Statfs_t
		if err := unix.Statfs(c.path, &st); err == nil && int64(st.Type) == c.magic {
			return New(c.path), nil
		}
	}
	return nil, fmt.Errorf("find tracefs at %s or %s: %w", TracingPath, DebugTracingPath, ErrNotMounted)
}

// Mount returns the mounted tracefs like [Find] and, if there is none,
// mounts one at /sys/kernel/tracing (mount -t tracefs tracefs
// /sys/kernel/tracing). It needs CAP_SYS_ADMIN and changes the host's mount
// table, so only callers that own the machine (tests, PID 1 in a VM) should
// use it.
func Mount() (*FS, error) {
	if f, err := Find(); err == nil {
		return f, nil
	}
	if _, err := os.Stat(TracingPath); err != nil {
		return nil, fmt.Errorf("mount tracefs at %s: %w", TracingPath, err)
	}
	err := unix.Mount("tracefs", TracingPath, "tracefs", 0, "")
	if errors.Is(err, unix.EBUSY) {
		// Someone else mounted it concurrently.
		return Find()
	}
	if errors.Is(err, unix.ENODEV) {
		return nil, fmt.Errorf("mount tracefs at %s: kernel has no tracefs: %w", TracingPath, ErrNotMounted)
	}
	if err != nil {
		return nil, fmt.Errorf("mount tracefs at %s: %w", TracingPath, err)
	}
	return Find()
}

// alive reports whether process pid exists. A process that exists but that
// we may not signal (EPERM) is alive.
func alive(pid int) bool {
	err := unix.Kill(pid, 0)
	if err == nil || errors.Is(err, unix.EPERM) {
		return true
	}
	if errors.Is(err, unix.ESRCH) {
		return false
	}
	_, statErr := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return statErr == nil
}
