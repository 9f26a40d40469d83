package loader

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/internal/testutil"
	"github.com/safebpf/safebpf/probe"
)

// userRulePolicy is a policy with one user rule, acme-kprobe-oops.
const userRulePolicy = `apiVersion: safebpf/v1
mode: warn
rules:
  - id: acme-kprobe-oops
    title: kprobes oops on a vendor build
    summary: Vendor builds oops when kprobes are detached under load.
    references:
      - link: https://example.com/tickets/OPS-1
    mechanisms: [kprobe]
    affected: [">= 5.15, < 5.16"]
    action: refuse
`

func writePolicy(t *testing.T, body string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(testutil.TrustedTempDir(t), "policy.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// clearEnv unsets the override variables for the test (t.Setenv restores them).
func clearEnv(t *testing.T) {
	t.Helper()
	t.Setenv(EnvForce, "")
	t.Setenv(EnvPolicy, "")
	t.Setenv(EnvHostRoot, "")
}

// pflagLike is a flag set with pflag's StringVar signature but none of
// package flag's machinery: RegisterFlags must need nothing more.
type pflagLike struct{ vars map[string]*string }

func (p *pflagLike) StringVar(v *string, name, value, usage string) {
	if usage == "" {
		panic("flag " + name + " has no usage")
	}
	*v = value
	p.vars[name] = v
}

func TestRegisterFlagsPflagLike(t *testing.T) {
	clearEnv(t)
	fs := &pflagLike{vars: map[string]*string{}}
	f := RegisterFlags(fs)
	if diff := cmp.Diff([]string{FlagForce, FlagHostRoot, FlagPolicy}, sortedKeys(fs.vars)); diff != "" {
		t.Fatalf("registered flags (-want +got):\n%s", diff)
	}
	*fs.vars[FlagForce] = "kretprobe-contention"
	o := &Options{}
	if err := f.Apply(o); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if diff := cmp.Diff([]hazards.ID{"kretprobe-contention"}, o.Force); diff != "" {
		t.Errorf("Force (-want +got):\n%s", diff)
	}
}

func sortedKeys(m map[string]*string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func TestFlagsApply(t *testing.T) {
	goodPolicy := writePolicy(t, userRulePolicy, 0o600)
	tests := []struct {
		name      string
		args      []string
		env       map[string]string
		start     Options
		wantForce []hazards.ID
		// wantMode is the mode of the resulting policy ("" for no policy).
		wantMode hazards.Mode
		// wantErr lists substrings of the error; empty means success.
		wantErr []string
		wantIs  error
	}{
		{name: "nothing"},
		{
			name:      "flag list with spaces, empties and duplicates",
			args:      []string{"-safebpf-force", " x86-text-poke-race, ,kretprobe-contention,x86-text-poke-race,"},
			wantForce: []hazards.ID{"x86-text-poke-race", "kretprobe-contention"},
		},
		{
			name:      "env only",
			env:       map[string]string{EnvForce: "fentry-zap-pid-ns-deadlock"},
			wantForce: []hazards.ID{"fentry-zap-pid-ns-deadlock"},
		},
		{
			name:      "flag beats env",
			args:      []string{"-safebpf-force=kretprobe-contention"},
			env:       map[string]string{EnvForce: "not-a-hazard"},
			wantForce: []hazards.ID{"kretprobe-contention"},
		},
		{
			name:      "all spelled exactly",
			args:      []string{"-safebpf-force=all"},
			wantForce: []hazards.ID{hazards.ForceAll},
		},
		{
			name:    "ALL rejected",
			args:    []string{"-safebpf-force=ALL"},
			wantErr: []string{"-safebpf-force", `"ALL"`, "lower case", "kretprobe-contention"},
			wantIs:  hazards.ErrUnknownHazard,
		},
		{
			name:    "All rejected from env",
			env:     map[string]string{EnvForce: "All"},
			wantErr: []string{EnvForce, `"All"`, "lower case"},
			wantIs:  hazards.ErrUnknownHazard,
		},
		{
			name: "malformed ID lists the known IDs",
			args: []string{"-safebpf-force=x86-text-poke-race,Fentry_Deadlock"},
			wantErr: []string{"-safebpf-force", `"Fentry_Deadlock"`, "nmi-user-read-deadlock",
				"x86-text-poke-race", "fentry-zap-pid-ns-deadlock", "kretprobe-contention",
				"uprobe-mmap-lock-stall", "uretprobe-seccomp-kill"},
			wantIs: hazards.ErrUnknownHazard,
		},
		{
			// Version skew: a newer release's ID is kept for New, which
			// warns and ignores it; it must not stop the agent.
			name:      "unknown well-formed ID from a newer release",
			args:      []string{"-safebpf-force=x86-text-poke-race,fentry-deadlock-from-v2"},
			wantForce: []hazards.ID{"x86-text-poke-race", "fentry-deadlock-from-v2"},
		},
		{
			name:      "unknown ID from the environment",
			env:       map[string]string{EnvForce: "hazard-of-tomorrow"},
			wantForce: []hazards.ID{"hazard-of-tomorrow"},
		},
		{
			name:      "user rule without its policy",
			args:      []string{"-safebpf-force=acme-kprobe-oops"},
			wantForce: []hazards.ID{"acme-kprobe-oops"},
		},
		{
			name:      "user rule known from the policy flag",
			args:      []string{"-safebpf-policy", goodPolicy, "-safebpf-force=acme-kprobe-oops"},
			wantForce: []hazards.ID{"acme-kprobe-oops"},
			wantMode:  hazards.Warn,
		},
		{
			name:      "user rule known from the policy env",
			env:       map[string]string{EnvPolicy: goodPolicy, EnvForce: "acme-kprobe-oops"},
			wantForce: []hazards.ID{"acme-kprobe-oops"},
			wantMode:  hazards.Warn,
		},
		{
			name:     "policy flag beats env",
			args:     []string{"-safebpf-policy", goodPolicy},
			env:      map[string]string{EnvPolicy: "/nonexistent/policy.yaml"},
			wantMode: hazards.Warn,
		},
		{
			name:    "missing policy file names its source",
			env:     map[string]string{EnvPolicy: "/nonexistent/policy.yaml"},
			wantErr: []string{EnvPolicy, "open policy"},
			wantIs:  os.ErrNotExist,
		},
		{
			name:    "invalid policy",
			args:    []string{"-safebpf-policy", writePolicy(t, "apiVersion: safebpf/v1\nmodee: warn\n", 0o600)},
			wantErr: []string{"-safebpf-policy", "modee"},
			wantIs:  hazards.ErrInvalidPolicy,
		},
		{
			name:      "merged with the options' force list",
			args:      []string{"-safebpf-force=kretprobe-contention,x86-text-poke-race"},
			start:     Options{Force: []hazards.ID{"x86-text-poke-race"}},
			wantForce: []hazards.ID{"x86-text-poke-race", "kretprobe-contention"},
		},
		{
			name:      "options' policy rules count when no file is given",
			args:      []string{"-safebpf-force=acme-kprobe-oops"},
			start:     Options{Policy: &hazards.Policy{APIVersion: "safebpf/v1", Rules: []hazards.Hazard{{ID: "acme-kprobe-oops"}}}},
			wantForce: []hazards.ID{"acme-kprobe-oops"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			f := RegisterFlags(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatalf("Parse: %v", err)
			}
			o := tt.start
			err := f.Apply(&o)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("Apply succeeded with Force %v, want an error", o.Force)
				}
				for _, s := range tt.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not contain %q", err, s)
					}
				}
				if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
					t.Errorf("error %v is not %v", err, tt.wantIs)
				}
				if diff := cmp.Diff(tt.start.Force, o.Force); diff != "" {
					t.Errorf("failed Apply changed Force (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if diff := cmp.Diff(tt.wantForce, o.Force); diff != "" {
				t.Errorf("Force (-want +got):\n%s", diff)
			}
			var mode hazards.Mode
			if o.Policy != nil {
				mode = o.Policy.Mode
			}
			if mode != tt.wantMode && !(tt.wantMode == "" && tt.start.Policy != nil) {
				t.Errorf("policy mode %q, want %q", mode, tt.wantMode)
			}
		})
	}
}

// TestPolicyWritableByOthers checks that the flag path refuses, as root, a
// policy file others can edit, and says why.
func TestPolicyWritableByOthers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the writable-policy check applies only to root")
	}
	clearEnv(t)
	path := writePolicy(t, userRulePolicy, 0o666)
	t.Setenv(EnvPolicy, path)
	var f *Flags // nil: environment only
	err := f.Apply(&Options{})
	if err == nil || !errors.Is(err, hazards.ErrUntrustedFile) || !strings.Contains(err.Error(), "writable by group and others") {
		t.Fatalf("Apply = %v, want a refusal of a world-writable policy", err)
	}
}

// The force-list syntax is hazards.TestParseForce.

func TestForceFromEnv(t *testing.T) {
	t.Setenv(EnvForce, "uprobe-mmap-lock-stall,all")
	got, err := ForceFromEnv(nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]hazards.ID{"uprobe-mmap-lock-stall", "all"}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	t.Setenv(EnvForce, "nope")
	if got, err := ForceFromEnv(nil); err != nil || len(got) != 1 || got[0] != "nope" {
		t.Errorf("ForceFromEnv with an unknown ID = %v, %v; want it returned for New to ignore", got, err)
	}
	t.Setenv(EnvForce, "No;pe")
	if _, err := ForceFromEnv(nil); err == nil || !strings.Contains(err.Error(), EnvForce) {
		t.Errorf("ForceFromEnv with a malformed ID = %v, want an error naming %s", err, EnvForce)
	}
}

func TestResolve(t *testing.T) {
	clearEnv(t)
	path := writePolicy(t, userRulePolicy, 0o600)
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	f := RegisterFlags(fs)
	if err := fs.Parse([]string{"-safebpf-policy=" + path, "-safebpf-force=acme-kprobe-oops,all"}); err != nil {
		t.Fatal(err)
	}
	force, pol, err := f.Resolve(nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]hazards.ID{"acme-kprobe-oops", "all"}, force); diff != "" {
		t.Errorf("force (-want +got):\n%s", diff)
	}
	if pol == nil || pol.Mode != hazards.Warn || len(pol.Rules) != 1 {
		t.Errorf("policy = %+v, want the file's (mode warn, one rule)", pol)
	}
}

// TestNewIgnoresUnknownForce: a force ID this release does not know (a
// newer release's, set fleet-wide during an upgrade) must not stop the
// agent: New warns, naming it, and ignores it; the known IDs still count.
func TestNewIgnoresUnknownForce(t *testing.T) {
	v := probe.Version{Major: 5, Minor: 5, Patch: 3, PatchKnown: true}
	k := &probe.Kernel{Release: "5.5.3", Version: &v, VersionSource: probe.SourceRelease, Arch: "amd64", CPUs: 2,
		Mechanisms: map[probe.Mechanism]probe.Support{probe.Kprobe: probe.Supported("fixture")}}
	var logs bytes.Buffer
	l, err := New(&Options{
		Kernel: k,
		Force:  []hazards.ID{"x86-text-poke-race", "hazard-from-a-newer-release"},
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatalf("New with an unknown force ID: %v", err)
	}
	defer l.Close()
	if diff := cmp.Diff([]hazards.ID{"x86-text-poke-race"}, l.policy.Force); diff != "" {
		t.Errorf("effective force (-want +got):\n%s", diff)
	}
	var rec struct {
		Level string   `json:"level"`
		Msg   string   `json:"msg"`
		IDs   []string `json:"ids"`
	}
	if err := l.rec.Flush(context.Background()); err != nil { // New hands its records over asynchronously
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if strings.Contains(line, "ignoring") {
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("log %q: %v", line, err)
			}
		}
	}
	if rec.Level != "WARN" || !slices.Equal(rec.IDs, []string{"hazard-from-a-newer-release"}) || !strings.Contains(rec.Msg, "ignoring") {
		t.Errorf("log record %+v, want a warning naming the ignored ID", rec)
	}

	// The known force still works: kprobe on 5.5.3 x86 attaches, warned.
	d, err := newPlanner(newKernelView(k, l.catalog, nil), l.catalog, &l.policy).plan(fallback.Request{Mechanism: probe.Kprobe})
	if err != nil || d.Chosen != probe.Kprobe || !slices.Contains(d.Forced, "x86-text-poke-race") {
		t.Errorf("decision %+v, %v: want kprobe forced past x86-text-poke-race", d, err)
	}

	// With a nil Logger the warning goes to slog.Default().
	logs.Reset()
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(&logs, nil)))
	defer slog.SetDefault(old)
	l2, err := New(&Options{Kernel: k, Force: []hazards.ID{"hazard-from-a-newer-release"}})
	if err != nil {
		t.Fatal(err)
	}
	l2.Close()
	if !strings.Contains(logs.String(), "hazard-from-a-newer-release") {
		t.Errorf("nil Logger: default logger got %q", logs.String())
	}
}

// TestFlagsHostRoot: SAFEBPF_HOST_ROOT and -safebpf-host-root reach
// Options.HostRoot, and New reads the host's os-release there.
func TestFlagsHostRoot(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "etc/os-release"), []byte("ID=host-distro-for-test\nVERSION_ID=7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvHostRoot, "/from/the/environment")
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	f := RegisterFlags(fs)
	if err := fs.Parse([]string{"-safebpf-host-root", dir}); err != nil {
		t.Fatal(err)
	}
	var o Options
	if err := f.Apply(&o); err != nil {
		t.Fatal(err)
	}
	if o.HostRoot != dir {
		t.Errorf("HostRoot %q, want the flag's %q", o.HostRoot, dir)
	}
	if _, _, hr := f.Settings(); hr.Source != "-"+FlagHostRoot {
		t.Errorf("host root source %q", hr.Source)
	}
	t.Setenv(EnvHostRoot, dir)
	o = Options{}
	if err := (*Flags)(nil).Apply(&o); err != nil || o.HostRoot != dir {
		t.Fatalf("from the environment: HostRoot %q, %v", o.HostRoot, err)
	}
	l, err := New(&o)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if d := l.Kernel().Distro; d.ID != "host-distro-for-test" || d.VersionID != "7" {
		t.Errorf("distro %+v, want the host root's", d)
	}
	t.Setenv(EnvHostRoot, filepath.Join(dir, "missing"))
	o = Options{}
	if err := (*Flags)(nil).Apply(&o); err != nil {
		t.Fatal(err)
	}
	if _, err := New(&o); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("New with a missing host root = %v, want an error naming it", err)
	}
}
