package hazards

import "testing"

func TestIDWellFormed(t *testing.T) {
	for id, want := range map[ID]bool{
		"nmi-user-read-deadlock": true, "all": true, "a1-b2": true, "x": true,
		"": false, "ALL": false, "All": false, "Kretprobe-Contention": false, "a;b": false,
		"a--b": false, "-a": false, "a-": false, "a b": false, "a\nb": false,
		ID(make([]byte, 65)): false,
	} {
		if got := id.WellFormed(); got != want {
			t.Errorf("ID(%q).WellFormed() = %v, want %v", id, got, want)
		}
	}
	for _, id := range Builtin().IDs() {
		if !id.WellFormed() {
			t.Errorf("built-in ID %q is not well-formed", id)
		}
	}
}
