package tracefs

import (
	"fmt"
	"strconv"
	"strings"
)

// GroupPrefix starts the name of every group this package creates.
const GroupPrefix = "safebpf_"

// maxNameLen is the kernel's MAX_EVENT_NAME_LEN: group and event names must
// be strictly shorter.
const maxNameLen = 64

// GroupName returns the tracefs group name for the n-th event of process pid:
// "safebpf_<pid>_<n>".
func GroupName(pid int, n uint64) string {
	return GroupPrefix + strconv.Itoa(pid) + "_" + strconv.FormatUint(n, 10)
}

// ParseGroup reports the owning pid and counter of a group created by this
// package. ok is false for any other group name, including names that merely
// start with the prefix.
func ParseGroup(group string) (pid int, n uint64, ok bool) {
	rest, found := strings.CutPrefix(group, GroupPrefix)
	if !found {
		return 0, 0, false
	}
	pidStr, nStr, found := strings.Cut(rest, "_")
	if !found || !allDigits(pidStr) || !allDigits(nStr) {
		return 0, 0, false
	}
	p, err := strconv.Atoi(pidStr)
	if err != nil || p <= 0 {
		return 0, 0, false
	}
	n, err = strconv.ParseUint(nStr, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	return p, n, true
}

// EventName returns the event name for symbol in the n-th group of pid:
// the sanitised symbol, truncated, then "_<pid>_<n>". The result is a valid
// tracefs identifier shorter than 64 bytes.
func EventName(symbol string, pid int, n uint64) string {
	suffix := "_" + strconv.Itoa(pid) + "_" + strconv.FormatUint(n, 10)
	base := Sanitize(symbol)
	if base == "" || !isAlphaOrUnderscore(base[0]) {
		base = "e" + base
	}
	if limit := maxNameLen - 1 - len(suffix); len(base) > limit {
		base = base[:limit]
	}
	return base + suffix
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
