package perf

import (
	"errors"
	"fmt"
)

// errInvalidInput marks argument errors.
var errInvalidInput = errors.New("invalid input")

// Event describes a per-CPU sampling event for perf_event programs.
type Event struct {
	// Hardware selects PERF_TYPE_HARDWARE/PERF_COUNT_HW_CPU_CYCLES (an NMI
	// on x86). False selects PERF_TYPE_SOFTWARE/PERF_COUNT_SW_CPU_CLOCK
	// (an hrtimer). Ignored when Type or Config is set.
	Hardware bool
	// Type and Config select any other event, as in perf_event_attr
	// (PERF_TYPE_HARDWARE with PERF_COUNT_HW_CACHE_MISSES, ...). Both zero
	// means Hardware decides.
	Type   uint32
	Config uint64
	// Frequency is the number of samples per second per CPU. When nonzero
	// it wins over Period.
	Frequency uint64
	// Period is the number of events (cycles, or nanoseconds for
	// cpu-clock) between samples, used when Frequency is zero. One of
	// Frequency and Period must be nonzero.
	Period uint64
	// CPUs lists the CPUs to open the event on. Nil or empty means every
	// online CPU (/sys/devices/system/cpu/online).
	CPUs []int
}

// attr returns the event's perf_event_attr type and config.
func (e Event) attr() (uint32, uint64) {
	switch {
	case e.Type != 0 || e.Config != 0:
		return e.Type, e.Config
	case e.Hardware:
		return 0, 0 // PERF_TYPE_HARDWARE, PERF_COUNT_HW_CPU_CYCLES
	}
	return 1, 0 // PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK
}

// software reports whether the event is a software event (no PMU).
func (e Event) software() bool {
	t, _ := e.attr()
	return t == 1
}

// Name returns the event's perf name: "cpu-cycles", "cpu-clock", or
// "type T config C" for other events.
func (e Event) Name() string {
	switch t, c := e.attr(); {
	case t == 0 && c == 0:
		return "cpu-cycles"
	case t == 1 && c == 0:
		return "cpu-clock"
	default:
		return fmt.Sprintf("type %d config %#x", t, c)
	}
}

func (e Event) validate() error {
	if e.Frequency == 0 && e.Period == 0 {
		return fmt.Errorf("event %s: neither frequency nor period set: %w", e.Name(), errInvalidInput)
	}
	return nil
}
