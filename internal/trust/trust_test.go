package trust

import (
	"io/fs"
	"strings"
	"testing"
)

func TestJudge(t *testing.T) {
	root := Process{EUID: 0, Privileged: true}
	capUser := Process{EUID: 1000, Privileged: true}
	user := Process{EUID: 1000}
	for _, tc := range []struct {
		name    string
		p       Process
		obj     object
		problem string // "" means trusted
	}{
		{"root file", root, object{kind: "file", uid: 0, mode: 0o644}, ""},
		{"root-only file", root, object{kind: "file", uid: 0, mode: 0o600}, ""},
		{"nobody file", root, object{kind: "file", uid: 65534, mode: 0o644}, "owned by uid 65534"},
		{"group-writable", root, object{kind: "file", uid: 0, mode: 0o664}, "writable by group"},
		{"world-writable", root, object{kind: "file", uid: 0, mode: 0o646}, "writable by others"},
		{"0666", root, object{kind: "file", uid: 0, mode: 0o666}, "writable by group and others"},
		{"0777 dir", root, object{kind: "directory", uid: 0, mode: fs.ModeDir | 0o777}, "writable by group and others"},
		{"sticky tmp", root, object{kind: "directory", uid: 0, mode: fs.ModeDir | fs.ModeSticky | 0o777}, "sticky bit"},
		{"nobody dir", root, object{kind: "directory", uid: 65534, mode: fs.ModeDir | 0o755}, "owned by uid 65534"},
		{"nobody symlink", root, object{kind: "symbolic link", uid: 65534, mode: fs.ModeSymlink | 0o777}, "owned by uid 65534"},
		{"root symlink", root, object{kind: "symbolic link", uid: 0, mode: fs.ModeSymlink | 0o777}, ""},
		// A capability-privileged non-root process trusts root and itself.
		{"cap: own file", capUser, object{kind: "file", uid: 1000, mode: 0o644}, ""},
		{"cap: root file", capUser, object{kind: "file", uid: 0, mode: 0o644}, ""},
		{"cap: other user's file", capUser, object{kind: "file", uid: 1001, mode: 0o644}, "owned by uid 1001"},
		{"cap: 0666", capUser, object{kind: "file", uid: 1000, mode: 0o666}, "writable by group and others"},
		// An unprivileged process checks nothing: it cannot attach anything.
		{"unprivileged 0666", user, object{kind: "file", uid: 65534, mode: 0o666}, ""},
	} {
		problem, fix := tc.p.judge(tc.obj)
		if tc.problem == "" {
			if problem != "" {
				t.Errorf("%s: judged %q; want trusted", tc.name, problem)
			}
			continue
		}
		if !strings.Contains(problem, tc.problem) || fix == "" {
			t.Errorf("%s: judged %q (fix %q); want %q and a fix", tc.name, problem, fix, tc.problem)
		}
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/etc/safebpf/policy.yaml": "/etc/safebpf/policy.yaml",
		"/tmp/a b":                 "'/tmp/a b'",
		"/x/it's":                  `'/x/it'\''s'`,
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %q; want %q", in, got, want)
		}
	}
}
