package tracefs

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// Stale is an event that [FS.CleanupStale] found and judged.
type Stale struct {
	// File is the events file it was listed in (kprobe_events or
	// uprobe_events).
	File string
	// Probe is the parsed line.
	Probe Probe
	// Owner is the owner named by the group.
	Owner Owner
	// Why says why the owner is provably dead (for removed events) or why
	// it cannot be judged (for kept ones).
	Why string
	// Err is why removal failed; nil when the event was removed or kept.
	Err error
}

// Cleanup is what [FS.CleanupStale] did.
type Cleanup struct {
	// Removed lists the events of provably dead owners, each with the
	// outcome of its removal (Err).
	Removed []Stale
	// Kept lists events whose owner could be neither proven alive nor
	// proven dead (another PID namespace not visible from here, a legacy
	// name): they are left in place.
	Kept []Stale
	// Live counts the events of owners that still run.
	Live int
}

// CleanupStale removes the events in kprobe_events and uprobe_events that
// this package created ("safebpf_…" groups, see [ParseGroup]) for an
// owner that is provably dead, and leaves every other event alone. An
// owner is provably dead when
//
//   - it is in this process's PID namespace and its pid no longer exists
//     there, or now belongs to a process with another start time;
//   - it is in a PID namespace this process sees (a descendant) that has
//     no such process;
//   - this process is in the initial PID namespace, which sees every
//     process, and no process is in the owner's namespace any more;
//   - for a legacy name ("safebpf_<pid>_<n>", which carries no namespace):
//     this process is in the initial PID namespace and no process in any
//     namespace has that pid.
//
// Anything else is kept and reported in Cleanup.Kept, with the reason.
// Judging needs /proc to show this PID namespace completely (no hidepid);
// otherwise nothing is removed. The error joins the failures to list or
// remove events; an events file the kernel lacks is skipped.
func (f *FS) CleanupStale() (Cleanup, error) {
	var (
		res  Cleanup
		errs []error
	)
	// List first, judge after: an owner that lists an event before the
	// process scan is in the scan if it still runs.
	type listing struct {
		file   string
		probes []Probe
	}
	var lists []listing
	for _, file := range []string{KprobeEventsFile, UprobeEventsFile} {
		probes, err := f.Probes(file)
		if errors.Is(err, os.ErrNotExist) || isNotSupported(err) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		lists = append(lists, listing{file, probes})
	}
	var sys *system
	for _, l := range lists {
		for _, p := range l.probes {
			owner, _, ok := ParseGroup(p.Group)
			if !ok {
				continue
			}
			if sys == nil {
				s, err := currentSystem()
				if err != nil {
					return res, errors.Join(append(errs, fmt.Errorf("judge tracefs event owners: %w", err))...)
				}
				s.locked = func(o Owner) (bool, error) { return tokenLocked(f.root, o) }
				sys = s
			}
			s := Stale{File: l.file, Probe: p, Owner: owner}
			var state liveness
			state, s.Why = sys.judge(owner)
			switch state {
			case ownerAlive:
				res.Live++
				continue
			case ownerUnknown:
				res.Kept = append(res.Kept, s)
				continue
			}
			if err := checkIdentifiers(p.Group, p.Event); err != nil {
				s.Err = fmt.Errorf("remove stale event: %w", err)
			} else if err := f.write(l.file, "-:"+p.Group+"/"+p.Event); err != nil && !errors.Is(err, os.ErrNotExist) {
				if errors.Is(err, syscall.EBUSY) {
					err = fmt.Errorf("%w (a perf event or BPF link, perhaps pinned, still uses it)", err)
				}
				s.Err = fmt.Errorf("remove stale event %s/%s of %s: %w", p.Group, p.Event, owner, err)
			}
			if s.Err != nil {
				errs = append(errs, s.Err)
			}
			res.Removed = append(res.Removed, s)
		}
	}
	return res, errors.Join(errs...)
}
