package tracefs

import (
	"errors"
	"strings"
	"testing"
)

// TestJudge walks the rules of CleanupStale over a described system: the
// liveness lock first, /proc when the lock cannot be checked, and legacy
// names only from the initial PID namespace.
func TestJudge(t *testing.T) {
	const (
		here  = 4026532300 // this process's namespace (not the initial one)
		child = 4026532301 // a namespace below it
		other = 4026532302 // a namespace it cannot see
	)
	self := Owner{PIDNS: here, PID: 7, Start: 5000}
	procsHere := []proc{
		{ns: here, pid: 1, start: 100}, {ns: here, pid: 7, start: 5000}, {ns: here, pid: 9, start: 7000},
		{ns: child, pid: 1, start: 8000}, {ns: child, pid: 2, start: 8001},
	}
	startHere := func(pid int) (uint64, bool, error) {
		for _, p := range procsHere {
			if p.ns == here && p.pid == pid {
				return p.start, true, nil
			}
		}
		return 0, false, nil
	}
	noLock := func(Owner) (bool, error) { return false, errors.New("README unreadable") }
	lockFor := func(live ...Owner) func(Owner) (bool, error) {
		return func(o Owner) (bool, error) {
			for _, l := range live {
				if l == o {
					return true, nil
				}
			}
			return false, nil
		}
	}
	base := func() *system {
		return &system{self: self, start: startHere, procs: func() ([]proc, error) { return procsHere, nil }, locked: noLock}
	}
	inInit := func(s *system) *system {
		s.self.PIDNS = initPIDNS
		return s
	}
	blind := func(s *system) *system {
		s.procErr = errors.New("/proc is mounted with hidepid=2")
		return s
	}
	withLock := func(s *system, live ...Owner) *system {
		s.locked = lockFor(live...)
		return s
	}
	for _, tc := range []struct {
		name string
		sys  *system
		o    Owner
		want liveness
		why  string
	}{
		{"self", base(), self, ownerAlive, "this process"},

		// The liveness lock decides, in any namespace.
		{"lock held elsewhere", withLock(base(), Owner{PIDNS: other, PID: 1, Start: 3}), Owner{PIDNS: other, PID: 1, Start: 3}, ownerAlive, "holds its liveness lock"},
		{"no lock elsewhere", withLock(base()), Owner{PIDNS: other, PID: 1, Start: 3}, ownerDead, "holds no liveness lock"},
		{"no lock, pid gone here", withLock(base()), Owner{PIDNS: here, PID: 8, Start: 6000}, ownerDead, "holds no liveness lock"},
		{"no lock but runs here", withLock(base()), Owner{PIDNS: here, PID: 9, Start: 7000}, ownerAlive, "though it holds no liveness lock"},
		{"no lock, runs here, /proc blind", withLock(blind(base())), Owner{PIDNS: here, PID: 9, Start: 7000}, ownerUnknown, "hidepid"},

		// Without locks, /proc: this namespace.
		{"pid gone here", base(), Owner{PIDNS: here, PID: 8, Start: 6000}, ownerDead, "no longer exists"},
		{"pid reused here", base(), Owner{PIDNS: here, PID: 9, Start: 6000}, ownerDead, "now belongs to a process started at tick 7000"},
		{"pid runs here", base(), Owner{PIDNS: here, PID: 9, Start: 7000}, ownerAlive, "runs"},
		{"start one tick off", base(), Owner{PIDNS: here, PID: 9, Start: 7001}, ownerAlive, "runs"},
		{"hidepid", blind(base()), Owner{PIDNS: here, PID: 8, Start: 6000}, ownerUnknown, "hidepid"},
		// A namespace below this one: seen whole.
		{"child: runs", base(), Owner{PIDNS: child, PID: 1, Start: 8000}, ownerAlive, "runs in pid namespace"},
		{"child: pid gone", base(), Owner{PIDNS: child, PID: 3, Start: 8005}, ownerDead, "sees whole, has no pid 3"},
		{"child: pid reused", base(), Owner{PIDNS: child, PID: 2, Start: 10}, ownerDead, "now belongs"},
		// A namespace not visible: unknown, except from the initial one.
		{"other: invisible", base(), Owner{PIDNS: other, PID: 1, Start: 3}, ownerUnknown, "not visible"},
		{"other: from init", inInit(base()), Owner{PIDNS: other, PID: 1, Start: 3}, ownerDead, "no process left"},
		{"other: from init, blind", blind(inInit(base())), Owner{PIDNS: other, PID: 1, Start: 3}, ownerUnknown, "hidepid"},
		{"other: scan failed", inInit(&system{self: self, start: startHere, locked: noLock,
			procs: func() ([]proc, error) { return nil, errors.New("cannot see every process: permission denied") }}),
			Owner{PIDNS: other, PID: 1, Start: 3}, ownerUnknown, "permission denied"},

		// Legacy names carry no namespace.
		{"legacy, not init", withLock(base()), Owner{PID: 4242}, ownerUnknown, "only an agent in the initial pid namespace"},
		{"legacy, init, pid unused", inInit(base()), Owner{PID: 4242}, ownerDead, "no process in any pid namespace"},
		{"legacy, init, pid used below", inInit(base()), Owner{PID: 2}, ownerUnknown, "a process with that pid runs"},
		{"legacy, init, blind", blind(inInit(base())), Owner{PID: 4242}, ownerUnknown, "hidepid"},
	} {
		got, why := tc.sys.judge(tc.o)
		if got != tc.want || !strings.Contains(why, tc.why) {
			t.Errorf("%s: judge(%v) = %v, %q; want %v, …%q…", tc.name, tc.o, got, why, tc.want, tc.why)
		}
	}
}

func TestProcHidepid(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"22 1 0:21 / /proc rw,nosuid shared:12 - proc proc rw\n", ""},
		{"22 1 0:21 / /proc rw,nosuid shared:12 - proc proc rw,hidepid=2\n", "2"},
		{"22 1 0:21 / /proc rw - proc proc rw,hidepid=invisible,subset=pid\n", "invisible"},
		{"22 1 0:21 / /proc rw - proc proc rw,hidepid=0\n", ""},
		{"22 1 0:21 / /proc rw - proc proc rw,hidepid=2\n23 1 0:22 / /proc rw - proc proc rw\n", ""},
		{"30 1 0:30 / /other rw - proc proc rw,hidepid=2\n", ""},
	} {
		if got := procHidepid([]byte(tc.in)); got != tc.want {
			t.Errorf("procHidepid(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}
