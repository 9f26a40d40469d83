//go:build linux

package tracefs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/safebpf/safebpf/internal/boundedio"
)

// userHZ is USER_HZ, the unit of /proc/PID/stat start times: 100 on every
// Linux architecture (sysconf(_SC_CLK_TCK)).
const userHZ = 100

var (
	selfMu   sync.Mutex
	selfOnce *Owner
)

// Self returns the calling process as an [Owner]: the inode of its PID
// namespace (/proc/self/ns/pid), its pid, and its start time from
// /proc/self/stat. It needs /proc; the result is cached once read.
func Self() (Owner, error) {
	selfMu.Lock()
	defer selfMu.Unlock()
	if selfOnce != nil {
		return *selfOnce, nil
	}
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/pid", &st); err != nil {
		return Owner{}, fmt.Errorf("read own pid namespace from /proc/self/ns/pid (is /proc mounted?): %w", err)
	}
	start, err := readStart("/proc/self/stat")
	if err != nil {
		return Owner{}, fmt.Errorf("read own start time: %w", err)
	}
	o := Owner{PIDNS: st.Ino, PID: os.Getpid(), Start: start}
	selfOnce = &o
	return o, nil
}

// readStart reads the start time (field 22) of a /proc/PID/stat file,
// normalised to the initial time namespace.
func readStart(path string) (uint64, error) {
	b, err := boundedio.ReadFile(path, 64<<10, "process status")
	if err != nil {
		return 0, err
	}
	// "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses,
	// so count fields after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse %s: no command name", path)
	}
	f := strings.Fields(string(b[i+1:]))
	const startField = 22 - 3 // fields after ')' start at field 3 (state)
	if len(f) <= startField {
		return 0, fmt.Errorf("parse %s: %d fields, want at least 22", path, len(f)+2)
	}
	v, err := strconv.ParseUint(f[startField], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %s start time: %w", path, err)
	}
	off := bootOffsetTicks()
	if off > 0 && uint64(off) > v {
		return 0, nil
	}
	return uint64(int64(v) - off), nil
}

var bootOffset = sync.OnceValue(func() int64 {
	// "boottime <seconds> <nanoseconds>" since 5.6 (CONFIG_TIME_NS); no
	// file means no time namespaces, offset 0.
	b, err := boundedio.ReadFile("/proc/self/timens_offsets", 4096, "time namespace offsets")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && (f[0] == "boottime" || f[0] == "7") { // CLOCK_BOOTTIME is 7
			sec, err1 := strconv.ParseInt(f[1], 10, 64)
			nsec, err2 := strconv.ParseInt(f[2], 10, 64)
			if err1 == nil && err2 == nil {
				return sec*userHZ + nsec/(1e9/userHZ)
			}
		}
	}
	return 0
})

// bootOffsetTicks is this process's time namespace boot-time offset in
// ticks: /proc start times are shifted by it.
func bootOffsetTicks() int64 { return bootOffset() }

// currentSystem describes the processes this process can see through
// /proc, for judging event owners. The process list is read at most once,
// when first needed.
func currentSystem() (*system, error) {
	self, err := Self()
	if err != nil {
		return nil, err
	}
	s := &system{self: self, procErr: checkProc(self)}
	s.start = func(pid int) (uint64, bool, error) {
		v, err := readStart("/proc/" + strconv.Itoa(pid) + "/stat")
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH) {
			return 0, false, nil
		}
		return v, err == nil, err
	}
	s.procs = sync.OnceValues(func() ([]proc, error) { return scanProcs(self.PIDNS) })
	return s, nil
}

// checkProc returns why /proc cannot be trusted to show every process of
// this PID namespace, or nil.
func checkProc(self Owner) error {
	link, err := os.Readlink("/proc/self")
	if err != nil {
		return fmt.Errorf("/proc is not this pid namespace's (readlink /proc/self: %v)", err)
	}
	if link != strconv.Itoa(self.PID) {
		return fmt.Errorf("/proc belongs to another pid namespace (/proc/self is %s, this process is pid %d)", link, self.PID)
	}
	mi, err := boundedio.ReadFile("/proc/self/mountinfo", 64<<20, "mount table")
	if err != nil {
		return fmt.Errorf("read /proc mount options: %w", err)
	}
	if hp := procHidepid(mi); hp != "" {
		return fmt.Errorf("/proc is mounted with hidepid=%s: processes of other users are hidden", hp)
	}
	return nil
}

// scanProcs lists every process in /proc (which checkProc found to be
// this namespace's, selfNS) with its PID namespace, its pid there and its
// start time. It fails when a process's namespace cannot be read (only a
// process that exits meanwhile is skipped): a partial list proves no
// absence.
func scanProcs(selfNS uint64) ([]proc, error) {
	d, err := os.Open("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var out []proc
	for _, name := range names {
		if !allDigits(name) {
			continue
		}
		p, err := readProc(name, selfNS)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH) {
			continue // exited meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("cannot see every process: %w", err)
		}
		out = append(out, p)
	}
	return out, nil
}

// readProc reads one process. Its NSpid line lists its pid in this
// namespace and in each namespace below it; a single entry means it is in
// this namespace. Only a process in a descendant namespace needs its
// namespace link read, which takes ptrace access.
func readProc(name string, selfNS uint64) (proc, error) {
	status, err := boundedio.ReadFile("/proc/"+name+"/status", 64<<10, "process status")
	if err != nil {
		return proc{}, err
	}
	var nspid []string
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "NSpid:"); ok {
			nspid = strings.Fields(rest)
		}
	}
	if len(nspid) == 0 {
		return proc{}, fmt.Errorf("/proc/%s/status has no NSpid line (kernel before 4.1?)", name)
	}
	pid, err := strconv.Atoi(nspid[len(nspid)-1])
	if err != nil || pid <= 0 {
		return proc{}, fmt.Errorf("/proc/%s/status: NSpid %q", name, nspid)
	}
	p := proc{ns: selfNS, pid: pid}
	if len(nspid) > 1 {
		var st unix.Stat_t
		if err := unix.Stat("/proc/"+name+"/ns/pid", &st); err != nil {
			return proc{}, &fs.PathError{Op: "stat", Path: "/proc/" + name + "/ns/pid", Err: err}
		}
		p.ns = st.Ino
	}
	if p.start, err = readStart("/proc/" + name + "/stat"); err != nil {
		return proc{}, err
	}
	return p, nil
}
