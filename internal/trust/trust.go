package trust

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// ErrUntrusted is matched by every [*UntrustedError].
var ErrUntrusted = errors.New("untrusted file")

// UntrustedError says which part of a path made a file untrusted and how to
// fix it.
type UntrustedError struct {
	// What is the kind of file ("policy", "catalog").
	What string
	// Path is the path as given.
	Path string
	// Component is the offending object: the file itself, a symbolic link
	// or a directory on the way, as an absolute path.
	Component string
	// Kind is "file", "directory" or "symbolic link".
	Kind string
	// UID and Mode are the offending object's owner and permission bits.
	UID  uint32
	Mode fs.FileMode
	// EUID is the effective uid the file was checked for.
	EUID uint32
	// Problem says what is wrong ("owned by uid 65534", "writable by others").
	Problem string
	// Fix is a command that fixes it.
	Fix string
}

// Error implements error.
func (e *UntrustedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "refusing %s %s: %s %s (owner uid %d, mode %s) is %s; "+
		"a privileged process reads a %s only when it, every symbolic link to it and every directory above it "+
		"are owned by root or uid %d and not writable by group or others",
		e.What, e.Path, e.Kind, e.Component, e.UID, octal(e.Mode), e.Problem, e.What, e.EUID)
	if e.Fix != "" {
		fmt.Fprintf(&b, "; fix: %s", e.Fix)
	}
	return b.String()
}

// Is matches ErrUntrusted.
func (e *UntrustedError) Is(target error) bool { return target == ErrUntrusted }

// Process is who a file is checked for.
type Process struct {
	// EUID is the effective uid: files owned by it are trusted like root's.
	EUID uint32
	// Privileged is set when the process may load or attach BPF programs
	// (uid 0, or CAP_SYS_ADMIN, CAP_PERFMON or CAP_BPF effective). Files are
	// checked only for a privileged process.
	Privileged bool
}

// ReadFile reads the file at path for the calling process ([Current]): see
// [Process.ReadFile].
func ReadFile(path string, limit int64, what string) ([]byte, error) {
	return Current().ReadFile(path, limit, what)
}

// Check checks the file at path for the calling process ([Current]) without
// reading it: see [Process.Check]. Prefer [ReadFile], which reads the very
// file it checked; Check suits a caller that must decide before it reads.
func Check(path, what string) error { return Current().Check(path, what) }

// Capability numbers (include/uapi/linux/capability.h).
const (
	capSysAdmin = 21
	capPerfmon  = 38 // since 5.8
	capBPF      = 39 // since 5.8
)

// privilegedCaps is the effective capability set that makes a process
// privileged here.
const privilegedCaps = 1<<capSysAdmin | 1<<capPerfmon | 1<<capBPF

// object is what the walk learned about one path component.
type object struct {
	path string // absolute, for messages
	kind string // "file", "directory", "symbolic link"
	uid  uint32
	mode fs.FileMode // permission and sticky bits
}

// judge returns the problem with obj for p, and a fix, or "" when obj is
// trusted. Symbolic links carry no meaningful permission bits; only their
// owner matters.
func (p Process) judge(obj object) (problem, fix string) {
	if !p.Privileged {
		return "", ""
	}
	if obj.uid != 0 && obj.uid != p.EUID {
		chown := "chown"
		if obj.kind == "symbolic link" {
			chown = "chown -h"
		}
		return fmt.Sprintf("owned by uid %d", obj.uid), fmt.Sprintf("%s root %s", chown, shellQuote(obj.path))
	}
	if obj.kind == "symbolic link" {
		return "", ""
	}
	var who []string
	if obj.mode&0o020 != 0 {
		who = append(who, "group")
	}
	if obj.mode&0o002 != 0 {
		who = append(who, "others")
	}
	if len(who) == 0 {
		return "", ""
	}
	problem = "writable by " + strings.Join(who, " and ")
	if obj.kind == "directory" && obj.mode&fs.ModeSticky != 0 && obj.mode&0o002 != 0 {
		problem += " (the sticky bit does not stop others from creating the file first)"
		return problem, "move the file to a directory only root can write, such as /etc/safebpf"
	}
	return problem, "chmod go-w " + shellQuote(obj.path)
}

func (p Process) check(what, given string, obj object) error {
	problem, fix := p.judge(obj)
	if problem == "" {
		return nil
	}
	return &UntrustedError{What: what, Path: given, Component: obj.path, Kind: obj.kind,
		UID: obj.uid, Mode: obj.mode, EUID: p.EUID, Problem: problem, Fix: fix}
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r == '/' || r == '.' || r == '_' || r == '-' || r == '+' || r == ',' || r == ':' || r == '@' ||
			(r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9'))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// octal prints the permission and sticky bits as chmod takes them ("1777").
func octal(m fs.FileMode) string {
	v := uint32(m.Perm())
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	return fmt.Sprintf("%04o", v)
}
