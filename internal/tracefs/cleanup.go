package tracefs

import (
	"errors"
	"fmt"
	"os"
)

// Stale is an event that [FS.CleanupStale] found owned by a dead process.
type Stale struct {
	// File is the events file it was listed in (kprobe_events or
	// uprobe_events).
	File string
	// Probe is the parsed line.
	Probe Probe
	// PID is the dead owner, from the group name.
	PID int
	// Err is why removal failed; nil when the event was removed.
	Err error
}

// CleanupStale removes every event in kprobe_events and uprobe_events whose
// group was created by this package ("safebpf_<pid>_<n>") for a process
// that no longer exists. It returns every such event with the outcome of
// its removal, and an error joining the removal failures. An events file
// the kernel lacks is skipped.
//
// PIDs are compared in the caller's PID namespace: run it from the host
// namespace, or only where every agent shares the caller's namespace.
func (f *FS) CleanupStale() ([]Stale, error) {
	var (
		out  []Stale
		errs []error
	)
	self := os.Getpid()
	for _, file := range []string{KprobeEventsFile, UprobeEventsFile} {
		probes, err := f.Probes(file)
		if errors.Is(err, os.ErrNotExist) || isNotSupported(err) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, p := range probes {
			pid, _, ok := ParseGroup(p.Group)
			if !ok || pid == self || alive(pid) {
				continue
			}
			s := Stale{File: file, Probe: p, PID: pid}
			if err := f.write(file, "-:"+p.Group+"/"+p.Event); err != nil && !errors.Is(err, os.ErrNotExist) {
				s.Err = fmt.Errorf("remove stale event %s/%s of dead pid %d: %w", p.Group, p.Event, pid, err)
				errs = append(errs, s.Err)
			}
			out = append(out, s)
		}
	}
	return out, errors.Join(errs...)
}
