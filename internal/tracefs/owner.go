package tracefs

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
)

// initPIDNS is the inode number of the initial PID namespace
// (PROC_PID_INIT_INO in include/linux/proc_ns.h, fixed since 3.8). A
// process there sees every process on the host in /proc.
const initPIDNS = 0xEFFFFFFC

// liveness is what cleanup concluded about an event's owner.
type liveness int

const (
	ownerAlive   liveness = iota // the owner runs: keep its events
	ownerDead                    // provably dead: remove its events
	ownerUnknown                 // cannot be proven either way: keep, and count
)

// proc is one process as /proc shows it.
type proc struct {
	ns    uint64 // inode of its PID namespace
	pid   int    // its pid in its own namespace (last NSpid entry)
	start uint64 // start time in ticks, normalised like Owner.Start
}

// system is what cleanup knows about the processes it can see. The Linux
// implementation reads /proc; tests fill it in directly.
type system struct {
	self Owner
	// procErr is nil when /proc shows this process's own PID namespace
	// completely (not another namespace's /proc, no hidepid); pids in this
	// namespace can be judged only then.
	procErr error
	// start returns the start time (normalised) of pid in this namespace,
	// ok false when no such process exists.
	start func(pid int) (start uint64, ok bool, err error)
	// procs lists every process visible, or fails when some cannot be
	// seen (permissions, hidepid): then no absence proves anything.
	procs func() ([]proc, error)
	// locked reports whether an owner holds its liveness lock (see
	// TokenFile); nil or an error means locks cannot be checked.
	locked func(Owner) (bool, error)
}

// sameStart compares start times, allowing one tick: an owner in another
// time namespace normalised its start with its own boot-time offset, and
// the two roundings may differ by one tick.
func sameStart(a, b uint64) bool {
	if a > b {
		a, b = b, a
	}
	return b-a <= 1
}

// judge decides whether o still runs, and says why. Every owner of a
// current name holds its liveness lock from before its first event until
// it exits, so the lock decides wherever it can be checked, whatever the
// PID namespaces; /proc decides otherwise, and for legacy names.
func (s *system) judge(o Owner) (liveness, string) {
	if o == s.self {
		return ownerAlive, "this process"
	}
	if o.Legacy() {
		return s.judgeLegacy(o)
	}
	if s.locked != nil {
		held, err := s.locked(o)
		switch {
		case err != nil:
			// Fall back to /proc below.
		case held:
			return ownerAlive, fmt.Sprintf("%s holds its liveness lock", o)
		default:
			// A process that runs but lost its lock (it closed every
			// descriptor) is still alive: /proc has the last word here.
			if o.PIDNS == s.self.PIDNS {
				if state, why := s.judgeHere(o); state != ownerDead {
					return state, why + ", though it holds no liveness lock"
				}
			}
			return ownerDead, fmt.Sprintf("%s holds no liveness lock on tracefs %s (every live owner holds one from before its first event)", o, TokenFile)
		}
	}
	if o.PIDNS == s.self.PIDNS {
		return s.judgeHere(o)
	}
	return s.judgeElsewhere(o)
}

// judgeHere judges an owner in this process's own PID namespace.
func (s *system) judgeHere(o Owner) (liveness, string) {
	if s.procErr != nil {
		return ownerUnknown, fmt.Sprintf("%v: cannot look up pid %d", s.procErr, o.PID)
	}
	start, ok, err := s.start(o.PID)
	switch {
	case err != nil:
		return ownerUnknown, fmt.Sprintf("look up pid %d: %v", o.PID, err)
	case !ok:
		return ownerDead, fmt.Sprintf("pid %d no longer exists in this pid namespace (%d)", o.PID, o.PIDNS)
	case !sameStart(start, o.Start):
		return ownerDead, fmt.Sprintf("pid %d in this pid namespace now belongs to a process started at tick %d; the owner started at tick %d", o.PID, start, o.Start)
	}
	return ownerAlive, fmt.Sprintf("pid %d runs", o.PID)
}

// judgeElsewhere judges an owner in another PID namespace. Its processes
// are visible only when that namespace descends from ours; from the
// initial namespace every process is visible, so a namespace without a
// visible process has none left.
func (s *system) judgeElsewhere(o Owner) (liveness, string) {
	procs, err := s.seeAll()
	if err != nil {
		return ownerUnknown, fmt.Sprintf("pid namespace %d: %v", o.PIDNS, err)
	}
	seen := false
	for _, p := range procs {
		if p.ns != o.PIDNS {
			continue
		}
		seen = true
		if p.pid == o.PID {
			if sameStart(p.start, o.Start) {
				return ownerAlive, fmt.Sprintf("pid %d runs in pid namespace %d", o.PID, o.PIDNS)
			}
			return ownerDead, fmt.Sprintf("pid %d in pid namespace %d now belongs to a process started at tick %d; the owner started at tick %d", o.PID, o.PIDNS, p.start, o.Start)
		}
	}
	switch {
	case seen:
		return ownerDead, fmt.Sprintf("pid namespace %d, which this process sees whole, has no pid %d", o.PIDNS, o.PID)
	case s.self.PIDNS == initPIDNS:
		return ownerDead, fmt.Sprintf("pid namespace %d has no process left (seen from the initial pid namespace, which sees every process)", o.PIDNS)
	}
	return ownerUnknown, fmt.Sprintf("pid namespace %d is not visible from pid namespace %d; an agent in the initial pid namespace can judge it", o.PIDNS, s.self.PIDNS)
}

// judgeLegacy judges an owner named without namespace ("safebpf_<pid>_<n>",
// older versions): it is dead when no process in any namespace has its
// pid, which only the initial namespace can see.
func (s *system) judgeLegacy(o Owner) (liveness, string) {
	if s.self.PIDNS != initPIDNS {
		return ownerUnknown, fmt.Sprintf("legacy name for pid %d carries no pid namespace; only an agent in the initial pid namespace can judge it", o.PID)
	}
	procs, err := s.seeAll()
	if err != nil {
		return ownerUnknown, fmt.Sprintf("legacy name for pid %d: %v", o.PID, err)
	}
	for _, p := range procs {
		if p.pid == o.PID {
			return ownerUnknown, fmt.Sprintf("legacy name for pid %d, and a process with that pid runs in pid namespace %d", o.PID, p.ns)
		}
	}
	return ownerDead, fmt.Sprintf("legacy name for pid %d, and no process in any pid namespace has that pid", o.PID)
}

// seeAll returns every process, or why the view is not complete.
func (s *system) seeAll() ([]proc, error) {
	if s.procErr != nil {
		return nil, s.procErr
	}
	if s.procs == nil {
		return nil, fmt.Errorf("cannot list processes")
	}
	return s.procs()
}

// procHidepid returns the hidepid option of the /proc mount in a
// mountinfo text, or "" when processes are not hidden.
func procHidepid(mountinfo []byte) string {
	hidden := ""
	sc := bufio.NewScanner(bytes.NewReader(mountinfo))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [TAGS...] - TYPE SOURCE SUPEROPTS
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 3 || f[4] != "/proc" || g[0] != "proc" {
			continue
		}
		hidden = "" // the last mount on /proc wins
		for _, opt := range strings.Split(g[2], ",") {
			if v, ok := strings.CutPrefix(opt, "hidepid="); ok && v != "0" && v != "off" {
				hidden = v
			}
		}
	}
	return hidden
}
