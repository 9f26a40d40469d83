//go:build linux

package kernel

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Perf event types and configs accepted by OpenPerfEvent, named as in
// linux/perf_event.h.
const (
	PerfTypeHardware     = unix.PERF_TYPE_HARDWARE
	PerfTypeSoftware     = unix.PERF_TYPE_SOFTWARE
	PerfCountHWCPUCycles = unix.PERF_COUNT_HW_CPU_CYCLES
	PerfCountSWCPUClock  = unix.PERF_COUNT_SW_CPU_CLOCK
)

// OpenPerfEvent opens a disabled, sampling perf event of the given type and
// config on cpu for all processes, then closes it. It returns the raw
// errno (unix.Errno) from perf_event_open on failure.
func OpenPerfEvent(typ uint32, config uint64, cpu int) error {
	attr := unix.PerfEventAttr{
		Type:   typ,
		Config: config,
		Size:   uint32(unsafe.Sizeof(unix.PerfEventAttr{})),
		Sample: 1_000_000, // sample period; frequency mode is off
		Bits:   unix.PerfBitDisabled,
	}
	fd, err := unix.PerfEventOpen(&attr, -1, cpu, -1, unix.PERF_FLAG_FD_CLOEXEC)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

// ErrnoName returns the symbolic name of an errno ("ENOENT"), or "" when err
// is not a unix.Errno.
func ErrnoName(err error) string {
	if e, ok := err.(unix.Errno); ok {
		if n := unix.ErrnoName(e); n != "" {
			return n
		}
	}
	return ""
}

// Privileged reports whether this process can load BPF programs and open
// system-wide perf events: effective UID 0, or CAP_BPF and CAP_PERFMON in
// its effective set.
func Privileged() bool {
	if os.Geteuid() == 0 {
		return true
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	has := func(c uint) bool { return data[c/32].Effective&(1<<(c%32)) != 0 }
	return has(unix.CAP_BPF) && has(unix.CAP_PERFMON)
}
