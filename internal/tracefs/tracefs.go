package tracefs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/safebpf/safebpf/internal/boundedio"
)

// ErrNotMounted means neither /sys/kernel/tracing nor
// /sys/kernel/debug/tracing holds a tracefs. [Mount] can fix that as root.
var ErrNotMounted = errors.New("tracefs is not mounted")

// errInvalidInput marks argument and format errors.
var errInvalidInput = errors.New("invalid input")

// Well-known tracefs locations, in the order [Find] tries them.
const (
	TracingPath      = "/sys/kernel/tracing"
	DebugTracingPath = "/sys/kernel/debug/tracing"
)

// Files inside tracefs that this package reads or writes.
const (
	KprobeEventsFile  = "kprobe_events"
	UprobeEventsFile  = "uprobe_events"
	KprobeProfileFile = "kprobe_profile"
)

// maxEventsList bounds reads of kprobe_events, uprobe_events and
// kprobe_profile: tens of thousands of events list a few MiB.
const maxEventsList = 64 << 20

// FS is a mounted tracefs. Its methods are safe for concurrent use: each
// call opens, writes and closes the kernel file it needs.
type FS struct {
	root string
}

// New returns the tracefs mounted at root without checking it; use [Find]
// or [Mount] to locate the system's tracefs.
func New(root string) *FS { return &FS{root: root} }

// Path returns the directory the tracefs is mounted at.
func (f *FS) Path() string { return f.root }

// EventID reads the ID of trace event group/name from events/GROUP/EVENT/id:
// the perf_event_open config for PERF_TYPE_TRACEPOINT. A missing event
// matches [os.ErrNotExist].
func (f *FS) EventID(group, name string) (uint64, error) {
	if err := checkIdentifiers(group, name); err != nil {
		return 0, fmt.Errorf("read trace event ID: %w", err)
	}
	path := filepath.Join(f.root, "events", group, name, "id")
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read trace event ID %s/%s: %w", group, name, err)
	}
	id, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse trace event ID %s/%s: %w", group, name, err)
	}
	return id, nil
}

// Profile reads kprobe_profile, keyed by event name. It wraps
// [ebpf.ErrNotSupported] when the kernel has no kprobe events.
func (f *FS) Profile() (map[string]ProfileEntry, error) {
	file, err := os.Open(filepath.Join(f.root, KprobeProfileFile))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", KprobeProfileFile, notSupported(err, "kprobe events"))
	}
	defer file.Close()
	entries, err := ParseProfile(boundedio.LimitReader(file, maxEventsList, KprobeProfileFile, file.Name()))
	if err != nil {
		return nil, err
	}
	out := make(map[string]ProfileEntry, len(entries))
	for _, e := range entries {
		out[e.Event] = e
	}
	return out, nil
}

// Probes reads and parses the given events file ([KprobeEventsFile] or
// [UprobeEventsFile]).
func (f *FS) Probes(file string) ([]Probe, error) {
	fh, err := os.Open(filepath.Join(f.root, file))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", file, notSupported(err, file))
	}
	defer fh.Close()
	return ParseProbes(boundedio.LimitReader(fh, maxEventsList, file, fh.Name()))
}

func isNotSupported(err error) bool { return errors.Is(err, ebpf.ErrNotSupported) }
