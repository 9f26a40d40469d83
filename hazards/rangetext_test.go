package hazards

import (
	"fmt"
	"strings"
	"testing"

	goversion "github.com/hashicorp/go-version"
)

func TestRangeText(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{nil, ""},
		// nmi-user-read-deadlock's ranges: 5.19.y and 6.0.y touch 6.1 (there was no 5.20).
		{[]string{"~> 5.19.0", "~> 6.0.0", ">= 6.1, < 6.1.36", "~> 6.2.0", ">= 6.3, < 6.3.10"}, ">= 5.19, < 6.1.36 or >= 6.2, < 6.3.10"},
		{[]string{">= 5.2, < 5.6"}, ">= 5.2, < 5.6"},
		{[]string{"~> 4.18.0"}, "4.18.y"},
		{[]string{"~> 5.19"}, "5.19.y"}, // >= 5.19, < 6.0: the last 5.x line
		{[]string{"~> 5.18"}, ">= 5.18, < 6.0"},
		{[]string{"< 5.20"}, "< 6.0"},
		{[]string{">= 86, < 1000"}, ">= 86, < 1000"},
		{[]string{"< 5.11", ">= 5.11, < 6.7"}, "< 6.7"},
		{[]string{">= 6.2, < 6.3", ">= 5.0, < 6.2.5"}, ">= 5.0, < 6.3"},
		{[]string{">=6.1,<6.1.36"}, ">= 6.1, < 6.1.36"},
		{[]string{"> 5.4.1", "<= 4.9"}, "<= 4.9 or > 5.4.1"},
		{[]string{"5.10.1"}, "5.10.1"},
		{[]string{"!= 5.4"}, "!= 5.4"},
		{[]string{"~> 5"}, "~> 5"},
		{[]string{"nonsense", "< 6.14"}, "< 6.14 or nonsense"},
		{[]string{">= 6.0, < 5.0"}, ">= 6.0, < 5.0"}, // empty: kept as written
	}
	for _, tt := range tests {
		if got := RangeText(tt.in...); got != tt.want {
			t.Errorf("RangeText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestRangeTextMeansTheSame holds every rendering against go-version
// itself: on every kernel version that exists (no X.20 where X.19 was the
// last), a version satisfies the rendered text exactly when it satisfies
// one of the catalog's constraints.
func TestRangeTextMeansTheSame(t *testing.T) {
	sets := [][]string{
		{"~> 5.19.0", "~> 6.0.0", ">= 6.1, < 6.1.36", "~> 6.2.0", ">= 6.3, < 6.3.10"},
		{"~> 4.18.0"}, {"~> 5.19"}, {"~> 5.18"}, {"< 5.20"}, {"> 5.4.1", "<= 4.9"},
		{"< 5.11", ">= 5.11, < 6.7"}, {">= 6.2, < 6.3", ">= 5.0, < 6.2.5"},
	}
	for _, h := range Builtin().Hazards() {
		if len(h.Affected) > 0 {
			sets = append(sets, h.Affected)
		}
		for _, d := range h.Distros {
			if d.Upstream != "" {
				sets = append(sets, []string{d.Upstream})
			}
		}
	}
	for _, set := range sets {
		text := RangeText(set...)
		var rendered []goversion.Constraints
		for _, part := range strings.Split(text, " or ") {
			if line, ok := strings.CutSuffix(part, ".y"); ok {
				part = "~> " + line + ".0"
			}
			cs, err := goversion.NewConstraint(part)
			if err != nil {
				t.Fatalf("RangeText(%q) = %q: part %q does not parse: %v", set, text, part, err)
			}
			rendered = append(rendered, cs)
		}
		var orig []goversion.Constraints
		for _, s := range set {
			orig = append(orig, goversion.MustConstraints(goversion.NewConstraint(s)))
		}
		for major := 3; major <= 7; major++ {
			for minor := 0; minor <= 21; minor++ {
				if last, ok := lastMinor[major]; ok && minor > last {
					continue
				}
				for _, patch := range []int{0, 1, 9, 10, 11, 35, 36, 37, 255} {
					v := goversion.Must(goversion.NewVersion(fmt.Sprintf("%d.%d.%d", major, minor, patch)))
					if a, b := anyCheck(orig, v), anyCheck(rendered, v); a != b {
						t.Errorf("%s: %q says %v, its rendering %q says %v", v, set, a, text, b)
					}
				}
			}
		}
	}
}

func anyCheck(cs []goversion.Constraints, v *goversion.Version) bool {
	for _, c := range cs {
		if c.Check(v) {
			return true
		}
	}
	return false
}
