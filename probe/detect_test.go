package probe

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// hostWant is testdata/hosts/<name>/want.json.
type hostWant struct {
	Kernel         Kernel            `json:"kernel"`
	SymbolsPresent []string          `json:"symbols_present"`
	Config         map[string]string `json:"config"`
	Mechanisms     map[string]bool   `json:"mechanisms"`
	NotesContain   []string          `json:"notes_contain"`
}

// hostOptions replays testdata/hosts/<name> through os.DirFS.
func hostOptions(tb testing.TB, dir string) *Options {
	tb.Helper()
	rel, err := os.ReadFile(filepath.Join(dir, "uname.txt"))
	if err != nil {
		tb.Fatal(err)
	}
	vdso, vdsoErr := os.ReadFile(filepath.Join(dir, "vdso.txt"))
	return &Options{
		Root:  os.DirFS(dir),
		Uname: func() (string, string, error) { return strings.TrimSpace(string(rel)), "#1 SMP", nil },
		VDSOVersion: func() (uint32, error) {
			if vdsoErr != nil {
				return 0, vdsoErr
			}
			var v Version
			if err := v.UnmarshalText([]byte(strings.TrimSpace(string(vdso)))); err != nil {
				return 0, err
			}
			return uint32(v.Major)<<16 | uint32(v.Minor)<<8 | uint32(min(v.Patch, 255)), nil
		},
		Arch: "amd64",
	}
}

func TestDetectHosts(t *testing.T) {
	dirs, err := filepath.Glob("testdata/hosts/*")
	if err != nil || len(dirs) < 3 {
		t.Fatalf("want at least 3 host fixtures, got %d (%v)", len(dirs), err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(dir, "want.json"))
			if err != nil {
				t.Fatal(err)
			}
			var want hostWant
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatalf("decode want.json: %v", err)
			}
			opts := hostOptions(t, dir)
			opts.Facts = testSymbolFacts
			got, err := Detect(context.Background(), opts)
			if err != nil {
				t.Fatalf("Detect: %v", err)
			}
			want.Kernel.Kallsyms.Symbols = map[string]bool{}
			for _, f := range testSymbolFacts {
				want.Kernel.Kallsyms.Symbols[f.Name] = false
			}
			for _, s := range want.SymbolsPresent {
				want.Kernel.Kallsyms.Symbols[s] = true
			}
			cmpOpts := cmp.Options{
				cmpopts.IgnoreFields(Kernel{}, "Config", "Mechanisms", "Notes", "VersionNote"),
			}
			if diff := cmp.Diff(want.Kernel, *got, cmpOpts); diff != "" {
				t.Errorf("Detect mismatch (-want +got):\n%s", diff)
			}
			if want.Config == nil {
				if got.Config != nil {
					t.Errorf("Config = %d entries, want none (unreadable)", len(got.Config))
				}
			}
			for k, v := range want.Config {
				if gv, known := got.ConfigValue(k); !known || gv != v {
					t.Errorf("ConfigValue(%s) = %q, %v; want %q, true", k, gv, known, v)
				}
			}
			for m, avail := range want.Mechanisms {
				s := got.Support(Mechanism(m))
				if !s.Known() || *s.Available != avail {
					t.Errorf("Support(%s) = %+v, want available=%v", m, s, avail)
				}
				if !strings.HasPrefix(s.Reason, "offline:") {
					t.Errorf("Support(%s).Reason = %q, want the offline prober's", m, s.Reason)
				}
			}
			if len(got.Mechanisms) != len(allMechanisms) {
				t.Errorf("Detect decided %d mechanisms, want %d", len(got.Mechanisms), len(allMechanisms))
			}
			if len(want.NotesContain) == 0 && len(got.Notes) > 0 {
				t.Errorf("Notes = %q, want none", got.Notes)
			}
			for _, sub := range want.NotesContain {
				if !strings.Contains(strings.Join(got.Notes, "\n"), sub) {
					t.Errorf("Notes = %q, want one mentioning %q", got.Notes, sub)
				}
			}
		})
	}
}

func TestDetectMapFS(t *testing.T) {
	fsys := fstest.MapFS{
		"proc/sys/kernel/osrelease": {Data: []byte("5.15.0-1051-azure\n")},
		"proc/version_signature":    {Data: []byte("Ubuntu 5.15.0-1051.59-azure 5.15.126\n")},
		"etc/os-release":            {Data: []byte("ID=ubuntu\nVERSION_ID=\"22.04\"\n")},
		"proc/kallsyms":             {Data: []byte("0000000000000000 T _stext\n0000000000000000 T copy_from_user_nofault\n")},
	}
	tests := []struct {
		name      string
		opts      *Options
		want      string // trusted version
		wantErr   bool
		wantNotes []string
	}{
		{
			name: "uname fails, release from osrelease",
			opts: &Options{
				Root:        fsys,
				Uname:       func() (string, string, error) { return "", "", errors.New("uname blocked by seccomp") },
				VDSOVersion: func() (uint32, error) { return 0, errors.New("no vDSO") },
				Facts:       []Fact{{Kind: FactSymbol, Name: "copy_from_user_nofault"}},
			},
			want:      "5.15.126",
			wantNotes: []string{"uname blocked by seccomp", "proc/version", "vDSO", "possible cpus", "kernel config", "mounts"},
		},
		{
			name: "no release anywhere",
			opts: &Options{
				Root:  fstest.MapFS{},
				Uname: func() (string, string, error) { return "", "", errors.New("uname blocked") },
			},
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := Detect(context.Background(), tt.opts)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Detect = %+v, want an error", k)
				}
				return
			}
			if err != nil {
				t.Fatalf("Detect: %v", err)
			}
			if k.Version == nil || k.Version.String() != tt.want {
				t.Errorf("Version = %v, want %s", k.Version, tt.want)
			}
			if k.Distro.UbuntuABI != 1051 {
				t.Errorf("UbuntuABI = %d, want 1051", k.Distro.UbuntuABI)
			}
			if !k.Kallsyms.Readable || k.Kallsyms.DataSymbols {
				t.Errorf("Kallsyms = %+v, want readable without data symbols", k.Kallsyms)
			}
			if p, known := k.Symbol("copy_from_user_nofault"); !p || !known {
				t.Errorf("Symbol(copy_from_user_nofault) = %v, %v; want true, true", p, known)
			}
			if _, known := k.Symbol("not_looked_for"); known {
				t.Error("Symbol(not_looked_for) is known; want unknown")
			}
			notes := strings.Join(k.Notes, "\n")
			for _, n := range tt.wantNotes {
				if !strings.Contains(notes, n) {
					t.Errorf("Notes lack %q:\n%s", n, notes)
				}
			}
		})
	}
}

func TestDetectCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Detect(ctx, hostOptions(t, "testdata/hosts/amzn2-4.14.336"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Detect with a canceled context = %v, want context.Canceled", err)
	}
}

func TestDetectHostCached(t *testing.T) {
	a, err := Detect(context.Background(), nil)
	if err != nil {
		t.Fatalf("Detect: %v", err)
	}
	b, err := Detect(context.Background(), nil)
	if err != nil {
		t.Fatalf("second Detect: %v", err)
	}
	if a == b {
		t.Fatal("Detect returned the same *Kernel twice; callers must get copies")
	}
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("cached Detect differs (-first +second):\n%s", diff)
	}
	a.Mechanisms[Kprobe] = Supported("mutated by caller")
	c, _ := Detect(context.Background(), nil)
	if c.Mechanisms[Kprobe].Reason == "mutated by caller" {
		t.Error("mutating a returned Kernel changed the cache")
	}
}

func TestKernelJSONRoundTrip(t *testing.T) {
	var kernels []*Kernel
	for _, id := range loadIdentities(t) {
		k, err := Describe(Description{
			Release: id.Release, ProcVersion: id.ProcVersion, VersionSignature: id.VersionSignature,
			OSRelease: id.OSRelease, Arch: id.Arch, CPUs: id.CPUs,
			Kallsyms: "ffffffff81000000 T _stext\nffffffff83a1c2e0 d tasks_rcu_exit_srcu\n",
			Config:   "CONFIG_KPROBES=y\nCONFIG_CC_VERSION_TEXT=\"gcc (GCC) 13\"\n",
		})
		if err != nil {
			t.Fatalf("%s: %v", id.Name, err)
		}
		kernels = append(kernels, k)
	}
	dirs, _ := filepath.Glob("testdata/hosts/*")
	for _, dir := range dirs {
		k, err := Detect(context.Background(), hostOptions(t, dir))
		if err != nil {
			t.Fatal(err)
		}
		kernels = append(kernels, k)
	}
	kernels = append(kernels, &Kernel{Release: "garbage", VersionSource: SourceNone,
		Mechanisms: map[Mechanism]Support{Fentry: Undecided("not root")}})
	for _, k := range kernels {
		b, err := json.Marshal(k)
		if err != nil {
			t.Fatalf("marshal %s: %v", k.Release, err)
		}
		var back Kernel
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("unmarshal %s: %v\n%s", k.Release, err, b)
		}
		if diff := cmp.Diff(k, &back); diff != "" {
			t.Errorf("%s: JSON round trip lost data (-before +after):\n%s", k.Release, diff)
		}
	}
}
