//go:build !linux

package kernel

import "errors"

// Perf event types and configs accepted by OpenPerfEvent.
const (
	PerfTypeHardware     = 0
	PerfTypeSoftware     = 1
	PerfCountHWCPUCycles = 0
	PerfCountSWCPUClock  = 0
)

// OpenPerfEvent is not supported on this OS.
func OpenPerfEvent(typ uint32, config uint64, cpu int) error {
	return errors.New("perf_event_open: not supported on this OS")
}

// ErrnoName returns "" on this OS.
func ErrnoName(err error) string { return "" }

// Privileged is false on this OS.
func Privileged() bool { return false }
