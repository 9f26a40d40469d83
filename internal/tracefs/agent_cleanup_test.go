//go:build linux

package tracefs

import "fmt"

// agentCleanup runs CleanupStale and prints what it removed and kept.
func agentCleanup(f *FS) {
	res, err := f.CleanupStale()
	for _, s := range res.Removed {
		fmt.Printf("REMOVED %s/%s %s\n", s.Probe.Group, s.Probe.Event, s.Why)
	}
	for _, s := range res.Kept {
		fmt.Printf("KEPT %s/%s %s\n", s.Probe.Group, s.Probe.Event, s.Why)
	}
	if err != nil {
		fmt.Printf("CLEANUPERR %v\n", err)
	}
}
