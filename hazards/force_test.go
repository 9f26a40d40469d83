package hazards

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestParseForce is the force-list syntax, as every entry point (flags,
// SAFEBPF_FORCE, the command) reads it.
func TestParseForce(t *testing.T) {
	tests := []struct {
		in      string
		want    []ID
		wantErr string
	}{
		{in: "", want: nil},
		{in: "  ", want: nil},
		{in: ",", want: nil},
		{in: "all", want: []ID{"all"}},
		{in: "all,kretprobe-contention", want: []ID{"all", "kretprobe-contention"}},
		{in: "ALL", wantErr: `unknown hazard ID "ALL"`},
		{in: "All", wantErr: `unknown hazard ID "All"`},
		{in: " all ", want: []ID{"all"}},
		{in: "Kretprobe-Contention", wantErr: `unknown hazard ID "Kretprobe-Contention"`},
		{in: "a-newer-hazard,kretprobe-contention", want: []ID{"a-newer-hazard", "kretprobe-contention"}},
		{in: "kretprobe-contention;x86-text-poke-race", wantErr: `unknown hazard ID "kretprobe-contention;x86-text-poke-race"`},
	}
	for _, tt := range tests {
		got, err := Builtin().ParseForce(tt.in, FromOperator)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrUnknownHazard) {
				t.Errorf("ParseForce(%q) = %v, %v; want an ErrUnknownHazard containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseForce(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got.IDs); diff != "" {
			t.Errorf("ParseForce(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

// TestCheckForce is the version-skew rule: an ID this catalog does not
// know is a warning from an operator and an error in a policy file.
func TestCheckForce(t *testing.T) {
	c := Builtin()
	f, err := c.CheckForce([]ID{"all", "x86-text-poke-race", "a-newer-hazard", "x86-text-poke-race"}, FromOperator)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Force{IDs: []ID{"all", "x86-text-poke-race", "a-newer-hazard"}, Unknown: []ID{"a-newer-hazard"}}, f); diff != "" {
		t.Errorf("from an operator (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]ID{"all", "x86-text-poke-race"}, f.Known()); diff != "" {
		t.Errorf("Known (-want +got):\n%s", diff)
	}
	if _, err := c.CheckForce([]ID{"x86-text-poke-race", "a-newer-hazard"}, FromPolicyFile); !errors.Is(err, ErrUnknownHazard) {
		t.Errorf("unknown ID in a policy file: %v, want ErrUnknownHazard", err)
	}
	var fe *ForceError
	if _, err := c.CheckForce([]ID{"all", "all"}, FromPolicyFile); !errors.As(err, &fe) || fe.Index != 1 || !strings.Contains(err.Error(), "duplicate") {
		t.Errorf("duplicate in a policy file: %v, want a *ForceError at index 1", err)
	}
	if _, err := c.CheckForce([]ID{"All"}, FromOperator); err == nil || !strings.Contains(err.Error(), "lower case") {
		t.Errorf("All: %v, want the lower-case hint", err)
	}
}
