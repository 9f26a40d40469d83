package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/safebpf/safebpf/internal/boundedio"
	"github.com/safebpf/safebpf/internal/kernel"
	"github.com/safebpf/safebpf/loader"
	"github.com/safebpf/safebpf/probe"
)

// TestArchNames: the names people write for an architecture mean what
// the GOARCH name means, and an unknown one is an error, never a kernel
// on which every arch-conditioned hazard silently drops (issue 12, 3).
func TestArchNames(t *testing.T) {
	decide := func(arch string) (int, string) {
		r := runCLI(t, "check", "--json", "--release", "5.5.3", "--mechanism", "kprobe", "--arch", arch)
		if r.code == exitUsage {
			return r.code, r.stderr
		}
		c := decodeCheck(t, r)
		return r.code, c.Decision.Action
	}
	for names, want := range map[[2]string]string{
		{"amd64", "x86_64"}: "refuse", {"amd64", "X86_64"}: "refuse", {"amd64", "x86-64"}: "refuse",
		{"386", "i686"}: "refuse", {"386", "i386"}: "refuse",
		{"arm64", "aarch64"}: "allow",
	} {
		for _, n := range names {
			if _, got := decide(n); got != want {
				t.Errorf("--arch %s on 5.5.3: kprobe %s, want %s (x86-text-poke-race is x86-only)", n, got, want)
			}
		}
	}
	for _, bad := range []string{"sparc", "x86_65", "", "amd64 "} {
		code, stderr := decide(bad)
		if bad == "amd64 " {
			if code == exitUsage {
				t.Errorf("--arch %q: %s", bad, stderr)
			}
			continue
		}
		if code != exitUsage || !strings.Contains(stderr, "unknown arch") || !strings.Contains(stderr, "aarch64") {
			t.Errorf("--arch %q: exit %d %q, want 2 naming the accepted names", bad, code, stderr)
		}
	}
}

// TestInputsBounded: where a file is expected only a regular file of a
// bounded size is read; a device, a FIFO or a directory fails at once with
// an error naming the file (issue 12, 5).
func TestInputsBounded(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// Sparse files just past each limit: no disk used, nothing read.
	sparse := func(name string, size int64) string {
		p := filepath.Join(dir, name)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(size); err != nil {
			t.Fatal(err)
		}
		f.Close()
		return p
	}
	bigKallsyms := sparse("kallsyms", kernel.MaxKallsymsSize+1)
	bigObject := sparse("big.o", loader.MaxObjectSize+1)
	bigFixture := sparse("big.json", probe.MaxKernelJSONSize+1)
	bigFleet := sparse("big.jsonl", maxFleetSize+1)
	// A small gzip file that inflates past the config limit.
	var gz bytes.Buffer
	zw := newGzip(&gz)
	chunk := make([]byte, 1<<20)
	for n := int64(0); n <= kernel.MaxConfigSize; n += int64(len(chunk)) {
		zw.Write(chunk)
	}
	zw.Close()
	bomb := filepath.Join(dir, "config.gz")
	if err := os.WriteFile(bomb, gz.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	check := []string{"check", "--release", "6.1.30"}
	tests := []struct {
		args []string
		want []string
	}{
		{append(check, "--kallsyms", "/dev/zero"), []string{"--kallsyms", "/dev/zero", "not a regular file", "character device"}},
		{append(check, "--config", "/dev/zero"), []string{"--config", "/dev/zero", "not a regular file"}},
		{append(check, "--os-release", "/dev/zero"), []string{"--os-release", "/dev/zero"}},
		{[]string{"check", "--kernel", "/dev/zero"}, []string{"--kernel", "/dev/zero", "not a regular file"}},
		{[]string{"check", "--fleet", "/dev/zero"}, []string{"--fleet", "/dev/zero", "not a regular file"}},
		{[]string{"plan", "/dev/zero"}, []string{"/dev/zero", "not a regular file"}},
		{append(check, "--kallsyms", fifo), []string{"--kallsyms", fifo, "a FIFO"}},
		{[]string{"check", "--kernel", fifo}, []string{fifo, "a FIFO"}},
		{[]string{"plan", fifo}, []string{fifo, "a FIFO"}},
		{append(check, "--config", dir), []string{dir, "a directory"}},
		{append(check, "--kallsyms", bigKallsyms), []string{bigKallsyms, limit(kernel.MaxKallsymsSize)}},
		{[]string{"plan", bigObject}, []string{bigObject, limit(loader.MaxObjectSize)}},
		{[]string{"check", "--kernel", bigFixture}, []string{bigFixture, limit(probe.MaxKernelJSONSize)}},
		{[]string{"check", "--fleet", bigFleet}, []string{bigFleet, limit(maxFleetSize)}},
		{append(check, "--config", bomb), []string{bomb, limit(kernel.MaxConfigSize)}},
	}
	for _, tt := range tests {
		name := strings.Join(tt.args, " ")
		start := time.Now()
		r := runCLI(t, tt.args...)
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("%s took %v", name, took)
		}
		if r.code != exitUsage {
			t.Errorf("%s: exit %d, want 2; stderr %q", name, r.code, r.stderr)
			continue
		}
		oneLineErr(t, r, tt.want...)
	}
	// /proc files are regular, of size 0: read to the limit.
	if _, err := os.Stat("/proc/kallsyms"); err == nil {
		r := runCLI(t, "check", "--json", "--release", "6.1.30", "--kallsyms", "/proc/kallsyms", "--mechanism", "uprobe")
		if r.code == exitUsage {
			t.Errorf("--kallsyms /proc/kallsyms: %s", r.stderr)
		}
	}
}

// TestFlagBounds: values no machine has are usage errors (issue 12, 8).
func TestFlagBounds(t *testing.T) {
	base := []string{"check", "--release", "6.1.30", "--mechanism", "perf-event-hardware"}
	for _, tt := range []struct {
		flag, value, want string
	}{
		{"--cpus", "0", "want 1 to 65536"},
		{"--cpus", "-1", "want 1 to 65536"},
		{"--cpus", "65537", "want 1 to 65536"},
		{"--cpus", "9223372036854775807", "--cpus"},
		{"--frequency", "0", "want 1 to 100000"},
		{"--frequency", "100001", "want 1 to 100000"},
		{"--frequency", "-5", "--frequency"},
		{"--attach-to", "__x64_sys_getpid,,x", "want kernel names separated by commas"},
		{"--targets", "0", "want 1 to 1048576"},
		{"--targets", "1048577", "want 1 to 1048576"},
		{"--maxactive", "-1", "want 0"},
		{"--maxactive", "4097", "4096"},
	} {
		r := runCLI(t, append(base, tt.flag, tt.value)...)
		if r.code != exitUsage {
			t.Errorf("%s %s: exit %d, want 2", tt.flag, tt.value, r.code)
			continue
		}
		oneLineErr(t, r, tt.want)
	}
	if r := runCLI(t, append(base, "--targets", "1", "--attach-to", "a,b")...); r.code != exitUsage {
		t.Errorf("--targets 1 --attach-to a,b: exit %d, want 2", r.code)
	} else {
		oneLineErr(t, r, "--attach-to names 2 targets but --targets is 1")
	}
	for _, ok := range [][]string{{"--cpus", "1"}, {"--cpus", "65536"}, {"--frequency", "100000"}, {"--maxactive", "4096"}, {"--targets", "1048576"}, {"--attach-to", "a,b"}, {"--targets", "3", "--attach-to", "a,b"}} {
		if r := runCLI(t, append(base, ok...)...); r.code == exitUsage {
			t.Errorf("%v: %s", ok, r.stderr)
		}
	}
}

// TestFixtureBounds: fixtures no machine could have produced are rejected
// with an error saying what is wrong (issue 12, 8).
func TestFixtureBounds(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name, json string
		want       []string
	}{
		{"empty kernel", `{"kernel":{}}`, []string{`no "release"`}},
		{"not an object", `[1,2]`, []string{"want a JSON object"}},
		{"release x", `{"kernel":{"release":"x"}}`, []string{`"x"`}},
		{"negative CPUs", `{"kernel":{"release":"6.1.0","cpus":-1}}`, []string{`cpus -1`, "65536"}},
		{"too many CPUs", `{"release":"6.1.0","cpus":100000,"version_source":"release"}`, []string{`cpus 100000`}},
		{"unknown arch", `{"kernel":{"release":"6.1.0","arch":"sparc"}}`, []string{"arch", `"sparc"`}},
		{"bad version", `{"kernel":{"release":"6.1.0","version":"6.-1.0"}}`, []string{"6.-1.0"}},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".json")
		if err := os.WriteFile(p, []byte(tt.json), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"check", "--kernel", p}, {"plan", opensnoopObject, "--kernel", p}} {
			r := runCLI(t, args...)
			if r.code != exitUsage {
				t.Errorf("%s: %v: exit %d, want 2", tt.name, args[0], r.code)
				continue
			}
			oneLineErr(t, r, append([]string{p}, tt.want...)...)
		}
		// The same checks hold for a fleet's lines, naming the line.
		fleet := filepath.Join(dir, "fleet-"+filepath.Base(p))
		good := `{"name":"good","release":"6.1.30"}`
		if err := os.WriteFile(fleet, []byte(good+"\n\n"+tt.json+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		r := runCLI(t, "check", "--fleet", fleet)
		if r.code != exitUsage {
			t.Errorf("%s in a fleet: exit %d, want 2", tt.name, r.code)
			continue
		}
		if tt.name != "not an object" {
			oneLineErr(t, r, append([]string{fleet + ":3"}, tt.want...)...)
		}
	}
	// A fleet's described kernels (probe.Describe) meet the same bounds.
	for _, tt := range []struct{ line, want string }{
		{`{"name":"n","release":"6.1.0","cpus":-1}`, "cpus -1"},
		{`{"name":"n","release":"6.1.0","cpus":65537}`, "cpus 65537"},
		{`{"name":"n","release":"6.1.0","arch":"sparc"}`, `"sparc"`},
	} {
		fleet := filepath.Join(dir, "described.jsonl")
		if err := os.WriteFile(fleet, []byte(`{"name":"good","release":"6.1.30"}`+"\n"+tt.line+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		r := runCLI(t, "check", "--fleet", fleet)
		if r.code != exitUsage {
			t.Errorf("%s in a fleet: exit %d, want 2", tt.line, r.code)
			continue
		}
		oneLineErr(t, r, fleet+":2", tt.want)
	}
}

// TestControlCharactersEscaped: text from fixtures and ELF section names
// reaches the terminal escaped (issue 12, 9).
func TestControlCharactersEscaped(t *testing.T) {
	dir := t.TempDir()
	fixture := filepath.Join(dir, "evil.json")
	k := map[string]any{"kernel": map[string]any{
		"release": "6.1.30-evil\x1b]0;pwned\x07", "version": "6.1.30", "version_source": "release",
		"distro": map[string]any{"id": "deb\x1b[2Jian\u202e"}, "arch": "amd64",
	}}
	b, _ := json.Marshal(k)
	if err := os.WriteFile(fixture, b, 0o600); err != nil {
		t.Fatal(err)
	}
	// A BPF object whose section and program carry an escape sequence.
	obj, err := os.ReadFile(opensnoopObject)
	if err != nil {
		t.Fatal(err)
	}
	obj = bytes.ReplaceAll(obj, []byte("do_sys_openat2"), []byte("do_sys_o\x1b[1mt2"))
	evilObj := filepath.Join(dir, "evil.o")
	if err := os.WriteFile(evilObj, obj, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"check", "--kernel", fixture},
		{"check", "--kernel", fixture, "--mechanism", "fentry", "-o", "wide"},
		{"check", "--kernel", fixture + "\x1b[31m"},
		{"plan", evilObj, "--kernel", fixture},
		{"plan", evilObj, "--kernel", fixture, "-o", "wide"},
		{"check", "--release", "6.1.30-\x1b[31mred", "--mechanism", "uprobe"},
		{"hazards", "\x1b[31mred"},
	} {
		r := runCLI(t, args...)
		for _, out := range []string{r.stdout, r.stderr} {
			if strings.ContainsAny(out, "\x1b\x07\u202e") {
				t.Errorf("%q: raw control characters reach the terminal:\n%q", args, out)
			}
		}
		if !strings.Contains(r.stdout+r.stderr, `\x1b`) {
			t.Errorf("%q: the escape is not shown escaped:\n%s%s", args, r.stdout, r.stderr)
		}
	}
}

func newGzip(w *bytes.Buffer) *gzip.Writer { return gzip.NewWriter(w) }

// limit is how an error names a size limit: "256 MiB limit".
func limit(n int64) string { return boundedio.FormatSize(n) + " limit" }
