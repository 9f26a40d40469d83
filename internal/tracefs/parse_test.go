package tracefs

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseProbes(t *testing.T) {
	// Lines as printed by kernels 5.10–6.18 (probes_seq_show in
	// kernel/trace/trace_kprobe.c and trace_uprobe.c).
	const input = `p:kprobes/p_do_sys_open_0 do_sys_open
r16:safebpf_1234_0/do_exit_1234_0 do_exit
r:safebpf_1234_1/vfs_read_1234_1 vfs_read+0
p:safebpf_99_2/tcp_connect_99_2 tcp_connect+4 arg1=%di:u64

# comment
p:safebpf_55_0/bash_1a_55_0 /usr/bin/bash:0x000000000000001a
r:uprobes/readline /bin/bash:0x00000000000b2d40
`
	got, err := ParseProbes(strings.NewReader(input))
	if err != nil {
		t.Fatal(err)
	}
	want := []Probe{
		{Group: "kprobes", Event: "p_do_sys_open_0", Target: "do_sys_open"},
		{Return: true, MaxActive: 16, Group: "safebpf_1234_0", Event: "do_exit_1234_0", Target: "do_exit"},
		{Return: true, Group: "safebpf_1234_1", Event: "vfs_read_1234_1", Target: "vfs_read+0"},
		{Group: "safebpf_99_2", Event: "tcp_connect_99_2", Target: "tcp_connect+4 arg1=%di:u64"},
		{Group: "safebpf_55_0", Event: "bash_1a_55_0", Target: "/usr/bin/bash:0x000000000000001a"},
		{Return: true, Group: "uprobes", Event: "readline", Target: "/bin/bash:0x00000000000b2d40"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseProbes mismatch (-want +got):\n%s", diff)
	}
}

func TestParseProbesErrors(t *testing.T) {
	for _, line := range []string{
		"x:g/e sym",
		"p:ge sym",
		"p:/e sym",
		"p:g/ sym",
		"rX:g/e sym",
		"r-1:g/e sym",
		"pp:g/e sym",
		"do_exit",
	} {
		_, err := ParseProbes(strings.NewReader("p:ok/ok sym\n" + line + "\n"))
		if !errors.Is(err, errInvalidInput) {
			t.Errorf("ParseProbes(%q) error = %v; want errInvalidInput", line, err)
			continue
		}
		if !strings.Contains(err.Error(), "line 2") {
			t.Errorf("ParseProbes(%q) error %q does not name line 2", line, err)
		}
	}
}

func TestParseProfile(t *testing.T) {
	// Format "  %-44s %15lu %15lu\n" (probes_profile_seq_show).
	const input = `  do_exit_1234_0                                          12345               7
  p_do_sys_open_0                                             0               0

  vfs_read_1234_1                                  18446744073709551615               1
`
	got, err := ParseProfile(strings.NewReader(input))
	if err != nil {
		t.Fatal(err)
	}
	want := []ProfileEntry{
		{Event: "do_exit_1234_0", Hits: 12345, Missed: 7},
		{Event: "p_do_sys_open_0", Hits: 0, Missed: 0},
		{Event: "vfs_read_1234_1", Hits: 18446744073709551615, Missed: 1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseProfile mismatch (-want +got):\n%s", diff)
	}
}

func TestParseProfileErrors(t *testing.T) {
	for _, input := range []string{
		"  a 1\n",
		"  a 1 2 3\n",
		"  a x 2\n",
		"  a 1 -2\n",
	} {
		if _, err := ParseProfile(strings.NewReader(input)); err == nil {
			t.Errorf("ParseProfile(%q) = nil error; want one", input)
		}
	}
}

func FuzzParseProbes(f *testing.F) {
	f.Add("r16:safebpf_1_0/do_exit_1_0 do_exit\n")
	f.Add("p:g/e /bin/sh:0x10\n")
	f.Fuzz(func(t *testing.T, s string) {
		probes, err := ParseProbes(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, p := range probes {
			if p.Group == "" || p.Event == "" || p.MaxActive < 0 || (p.MaxActive > 0 && !p.Return) {
				t.Fatalf("ParseProbes(%q) returned invalid %+v", s, p)
			}
		}
	})
}
