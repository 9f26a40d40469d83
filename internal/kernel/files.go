package kernel

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// OSRelease holds the fields of an os-release file that matter here.
type OSRelease struct {
	ID, VersionID, Name, PrettyName string
	// IDLike lists the ID_LIKE words ("rhel centos fedora").
	IDLike []string
}

// ParseOSRelease parses an os-release file (os-release(5)): KEY=value lines
// with optional single or double quotes; other lines are ignored.
func ParseOSRelease(r io.Reader) (OSRelease, error) {
	var o OSRelease
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		v = unquote(v)
		switch k {
		case "ID":
			o.ID = v
		case "VERSION_ID":
			o.VersionID = v
		case "NAME":
			o.Name = v
		case "PRETTY_NAME":
			o.PrettyName = v
		case "ID_LIKE":
			o.IDLike = strings.Fields(v)
		}
	}
	if err := sc.Err(); err != nil {
		return o, fmt.Errorf("read os-release: %w", err)
	}
	return o, nil
}

func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		v = v[1 : len(v)-1]
		if strings.Contains(v, `\`) {
			v = strings.NewReplacer(`\"`, `"`, `\\`, `\`, `\$`, `$`, "\\`", "`").Replace(v)
		}
	}
	return v
}

// MaxCPUs bounds a CPU count or list: CONFIG_NR_CPUS tops out at 8192 on
// x86 and 4096 on arm64, so 65536 leaves room for any machine.
const MaxCPUs = 1 << 16

// ParseCPUs returns the CPUs of a kernel CPU list such as "0-3,5,7-8" (the
// format of /sys/devices/system/cpu/online and possible) in ascending
// order. An empty list, a part that is not N or N-M with N <= M, parts out
// of ascending order and more than [MaxCPUs] CPUs are errors wrapping
// [ErrUnparseable].
func ParseCPUs(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("parse cpu list: empty: %w", ErrUnparseable)
	}
	var cpus []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("parse cpu list %q: bad CPU %q: %w", truncate(s), truncate(lo), ErrUnparseable)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("parse cpu list %q: bad range %q: %w", truncate(s), truncate(part), ErrUnparseable)
			}
		}
		if n := len(cpus); n > 0 && a <= cpus[n-1] {
			return nil, fmt.Errorf("parse cpu list %q: not ascending at %q: %w", truncate(s), truncate(part), ErrUnparseable)
		}
		if b-a >= MaxCPUs || len(cpus)+(b-a+1) > MaxCPUs {
			return nil, fmt.Errorf("parse cpu list %q: more than %d CPUs: %w", truncate(s), MaxCPUs, ErrUnparseable)
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}

// ParseCPUList counts the CPUs in a kernel CPU list such as "0-3,8"
// (/sys/devices/system/cpu/possible), as [ParseCPUs] reads it.
func ParseCPUList(s string) (int, error) {
	cpus, err := ParseCPUs(s)
	return len(cpus), err
}

// ParseConfig reads a kernel config (.config format) and returns the set
// options: CONFIG_X → "y", "m" or the value with quotes removed. Options
// that are "not set" are absent.
func ParseConfig(r io.Reader) (map[string]string, error) {
	cfg := make(map[string]string)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "CONFIG_") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || v == "n" {
			continue
		}
		cfg[k] = unquote(v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read kernel config: %w", err)
	}
	return cfg, nil
}

// KallsymsScan is what a scan of /proc/kallsyms found.
type KallsymsScan struct {
	// Lines is the number of symbol lines read.
	Lines int
	// DataSymbols is set when kallsyms lists data symbols, i.e. the kernel
	// was built with CONFIG_KALLSYMS_ALL: a static data symbol (types d, b,
	// r) or a global one (D, B, R) whose name does not start with '_'
	// appeared (init_task, in every kernel, is one). Without
	// CONFIG_KALLSYMS_ALL kallsyms still lists the linker's section markers
	// with global data types (__start_rodata D, __stop___param R,
	// __init_begin B, _edata, ...), which prove nothing about data symbols.
	DataSymbols bool
	// Found maps each wanted symbol to whether it appeared.
	Found map[string]bool
}

// ScanKallsyms reads /proc/kallsyms-formatted text ("ADDR TYPE NAME
// [MODULE]") and reports which of want appear. Module symbols count. It
// stops reading once every wanted symbol and a data symbol have appeared:
// the rest cannot change the answer (the kernel formats every line it is
// asked for, tens of milliseconds for a whole listing).
func ScanKallsyms(r io.Reader, want []string) (KallsymsScan, error) {
	s := KallsymsScan{Found: make(map[string]bool, len(want))}
	for _, w := range want {
		s.Found[w] = false
	}
	missing := len(s.Found)
	br := bufio.NewReaderSize(r, 64*1024)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 && s.scanLine(line) {
			missing--
		}
		if missing == 0 && s.DataSymbols {
			return s, nil
		}
		if err == bufio.ErrBufferFull {
			// An absurdly long line: skip the rest of it.
			for err == bufio.ErrBufferFull {
				_, err = br.ReadSlice('\n')
			}
		}
		if err == io.EOF {
			return s, nil
		}
		if err != nil {
			return s, fmt.Errorf("read kallsyms: %w", err)
		}
	}
}

// scanLine records one line and reports whether it names a wanted symbol
// seen for the first time.
func (s *KallsymsScan) scanLine(line []byte) bool {
	// ADDR SP TYPE SP NAME [\t[MODULE]]
	sp := indexByte(line, ' ')
	if sp < 0 || sp+3 >= len(line) || line[sp+2] != ' ' {
		return false
	}
	s.Lines++
	name := line[sp+3:]
	for i, c := range name {
		if c == '\t' || c == ' ' || c == '\n' || c == '\r' {
			name = name[:i]
			break
		}
	}
	switch line[sp+1] {
	case 'd', 'b', 'r':
		s.DataSymbols = true
	case 'D', 'B', 'R':
		if len(name) > 0 && name[0] != '_' {
			s.DataSymbols = true
		}
	}
	if found, ok := s.Found[string(name)]; ok && !found {
		s.Found[string(name)] = true
		return true
	}
	return false
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// Mount is one line of /proc/self/mounts.
type Mount struct {
	Device, Dir, Type string
}

// ParseMounts reads /proc/mounts-formatted text. Octal escapes in the mount
// point ("\040" for space) are decoded.
func ParseMounts(r io.Reader) ([]Mount, error) {
	var ms []Mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 {
			continue
		}
		ms = append(ms, Mount{Device: f[0], Dir: unescapeOctal(f[1]), Type: f[2]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	return ms, nil
}

func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// FirstMount returns the first mount point of filesystem type typ, or "".
func FirstMount(ms []Mount, typ string) string {
	for _, m := range ms {
		if m.Type == typ {
			return m.Dir
		}
	}
	return ""
}
