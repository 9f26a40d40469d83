package tracefs

import (
	"fmt"
	"strconv"
	"strings"
)

// GroupPrefix starts the name of every group this package creates.
const GroupPrefix = "safebpf_"

// maxNameLen is the kernel's MAX_EVENT_NAME_LEN (kernel/trace/trace.h):
// traceprobe_parse_event_name refuses a group of 64 bytes or more, and
// this package keeps event names below it too.
const maxNameLen = 64

// Owner identifies the process that created an event, in a form that any
// process can judge from its own PID namespace: the inode number of the
// owner's PID namespace, its pid there, and its start time. Together they
// are unique on the host for as long as the owner lives: an inode number
// names one live namespace, and a pid is reused only by a process that
// starts later.
type Owner struct {
	// PIDNS is the inode number of the owner's PID namespace
	// (/proc/PID/ns/pid). Zero for events named by older versions
	// ("safebpf_<pid>_<n>"), which carry no namespace.
	PIDNS uint64
	// PID is the owner's pid in its own namespace (getpid()).
	PID int
	// Start is the owner's start time in clock ticks since boot (field 22
	// of /proc/PID/stat), as seen from the initial time namespace. Zero in
	// older names.
	Start uint64
}

// Legacy reports whether o comes from an older name without namespace and
// start time.
func (o Owner) Legacy() bool { return o.PIDNS == 0 }

// String prints the owner for messages: "pid 12 (start 4711) in pid
// namespace 4026532281", or "pid 12 (namespace unknown)" for a legacy name.
func (o Owner) String() string {
	if o.Legacy() {
		return fmt.Sprintf("pid %d (namespace unknown)", o.PID)
	}
	return fmt.Sprintf("pid %d (start %d) in pid namespace %d", o.PID, o.Start, o.PIDNS)
}

// id is the part of group and event names that identifies the n-th event
// of o: "<pidns>_<pid>_<start>_<n>".
func (o Owner) id(n uint64) string {
	return strconv.FormatUint(o.PIDNS, 10) + "_" + strconv.Itoa(o.PID) + "_" +
		strconv.FormatUint(o.Start, 10) + "_" + strconv.FormatUint(n, 10)
}

func (o Owner) valid() error {
	if o.PIDNS == 0 || o.PID <= 0 {
		return fmt.Errorf("owner %+v: want a pid namespace and a pid: %w", o, errInvalidInput)
	}
	return nil
}

// GroupName returns the tracefs group of the n-th event of o:
// "safebpf_<pidns>_<pid>_<start>_<n>" (at most 8+10+1+7+1+20+1+14 = 62
// bytes for real values: a namespace inode fits 32 bits, a pid 22 bits).
func GroupName(o Owner, n uint64) (string, error) {
	if err := o.valid(); err != nil {
		return "", err
	}
	g := GroupPrefix + o.id(n)
	if len(g) >= maxNameLen {
		return "", fmt.Errorf("group %q is %d bytes, the kernel takes at most %d: %w", g, len(g), maxNameLen-1, errInvalidInput)
	}
	return g, nil
}

// ParseGroup reports the owner and counter of a group created by this
// package, in the current form "safebpf_<pidns>_<pid>_<start>_<n>" or the
// legacy form "safebpf_<pid>_<n>" (Owner.Legacy then holds). ok is false
// for any other group name, including names that merely start with the
// prefix.
func ParseGroup(group string) (o Owner, n uint64, ok bool) {
	rest, found := strings.CutPrefix(group, GroupPrefix)
	if !found {
		return Owner{}, 0, false
	}
	parts := strings.Split(rest, "_")
	nums := make([]uint64, len(parts))
	for i, p := range parts {
		if !allDigits(p) || (len(p) > 1 && p[0] == '0') {
			return Owner{}, 0, false
		}
		v, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return Owner{}, 0, false
		}
		nums[i] = v
	}
	var pid uint64
	switch len(nums) {
	case 2: // legacy: pid, n
		pid, n = nums[0], nums[1]
	case 4: // pidns, pid, start, n
		o.PIDNS, pid, o.Start, n = nums[0], nums[1], nums[2], nums[3]
		if o.PIDNS == 0 {
			return Owner{}, 0, false
		}
	default:
		return Owner{}, 0, false
	}
	if pid == 0 || pid > maxPID {
		return Owner{}, 0, false
	}
	o.PID = int(pid)
	return o, n, true
}

// maxPID is PID_MAX_LIMIT (4M, 2^22) on 64-bit kernels.
const maxPID = 1 << 22

// EventName returns the event name for symbol in the n-th group of o: the
// sanitised symbol, truncated, then "_" and the group's identifying part.
// The whole owner is in the name because kprobe_profile lists events by
// name alone: two agents in different PID namespaces must not share one.
func EventName(symbol string, o Owner, n uint64) (string, error) {
	if err := o.valid(); err != nil {
		return "", err
	}
	suffix := "_" + o.id(n)
	base := Sanitize(symbol)
	if base == "" || !isAlphaOrUnderscore(base[0]) {
		base = "e" + base
	}
	limit := maxNameLen - 1 - len(suffix)
	if limit < 1 {
		return "", fmt.Errorf("event name suffix %q leaves no room under %d bytes: %w", suffix, maxNameLen, errInvalidInput)
	}
	if len(base) > limit {
		base = base[:limit]
	}
	return base + suffix, nil
}

// Sanitize replaces every byte outside [A-Za-z0-9_] with '_'.
func Sanitize(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlphaOrUnderscore(c) || (c >= '0' && c <= '9') {
			b.WriteByte(c)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// validIdentifier reports whether s is accepted by the kernel as a group or
// event name (is_good_name in kernel/trace/trace_probe.c, plus the length).
func validIdentifier(s string) bool {
	if s == "" || len(s) >= maxNameLen || !isAlphaOrUnderscore(s[0]) {
		return false
	}
	return Sanitize(s) == s
}

func isAlphaOrUnderscore(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func checkIdentifiers(group, name string) error {
	if !validIdentifier(group) {
		return fmt.Errorf("group %q: %w", group, errInvalidInput)
	}
	if !validIdentifier(name) {
		return fmt.Errorf("event name %q: %w", name, errInvalidInput)
	}
	return nil
}
