package hazards

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	goversion "github.com/hashicorp/go-version"

	"github.com/safebpf/safebpf/probe"
)

// constraint is a compiled go-version constraint over a kernel's numeric
// version core. go-version never appears in the exported API.
type constraint struct {
	// text is the constraint as people read it (RangeText); raw as written.
	text, raw string
	cs        goversion.Constraints
	// points are the X.Y.Z versions the text mentions, used to evaluate the
	// constraint over a whole X.Y line when the sublevel is unknown.
	points [][3]int
}

// maxConstraintLen bounds a constraint's text; real ones are a few dozen
// characters, and the bound keeps whole-line evaluation cheap.
const maxConstraintLen = 200

var constraintVersionRE = regexp.MustCompile(`\d+(?:\.\d+){0,2}`)

// parseConstraint compiles a version constraint such as ">= 6.1, < 6.1.36".
// Prerelease and metadata parts are rejected: kernel versions compared here
// are numeric X.Y.Z cores.
func parseConstraint(s string) (*constraint, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("empty version constraint")
	}
	if len(s) > maxConstraintLen {
		return nil, fmt.Errorf("version constraint is %d characters long, more than %d", len(s), maxConstraintLen)
	}
	cs, err := goversion.NewConstraint(s)
	if err != nil {
		return nil, fmt.Errorf("bad version constraint %q: %s", s, strings.TrimPrefix(err.Error(), "Malformed constraint: "))
	}
	for _, c := range cs {
		if c.Prerelease() || strings.ContainsAny(c.String(), "-+") {
			return nil, fmt.Errorf("bad version constraint %q: prerelease or metadata parts are not supported (kernel versions are compared as X.Y.Z)", s)
		}
	}
	// Every number in the text must be in range.
	c := &constraint{text: RangeText(s), raw: s, cs: cs}
	for _, m := range constraintVersionRE.FindAllString(s, -1) {
		var p [3]int
		for i, part := range strings.Split(m, ".") {
			n, err := strconv.Atoi(part)
			if err != nil || n > 1<<20 {
				return nil, fmt.Errorf("bad version constraint %q: %q out of range", s, m)
			}
			p[i] = n
		}
		c.points = append(c.points, p)
	}
	return c, nil
}

func numericVersion(major, minor, patch int) *goversion.Version {
	v, err := goversion.NewVersion(fmt.Sprintf("%d.%d.%d", major, minor, patch))
	if err != nil {
		panic(err) // three non-negative integers always parse
	}
	return v
}

// check reports whether major.minor.patch satisfies c.
func (c *constraint) check(major, minor, patch int) bool {
	return c.cs.Check(numericVersion(major, minor, patch))
}

// tri is a three-valued boolean.
type tri int8

const (
	triNo tri = iota
	triYes
	triUnknown
)

// matchAny evaluates "v satisfies any of cs". When v's sublevel is unknown
// it evaluates every sublevel of the X.Y line: if all agree the answer is
// conclusive, otherwise it is triUnknown. matched is the first constraint
// satisfied (for a conclusive yes).
func matchAny(cs []*constraint, v probe.Version) (tri, *constraint) {
	if v.PatchKnown {
		for _, c := range cs {
			if c.check(v.Major, v.Minor, v.Patch) {
				return triYes, c
			}
		}
		return triNo, nil
	}
	var first tri = triUnknown
	var firstMatch *constraint
	for _, p := range linePoints(cs, v.Major, v.Minor) {
		var got tri = triNo
		var match *constraint
		pv := numericVersion(v.Major, v.Minor, p)
		for _, c := range cs {
			if c.cs.Check(pv) {
				got, match = triYes, c
				break
			}
		}
		if first == triUnknown {
			first, firstMatch = got, match
		} else if got != first {
			return triUnknown, nil
		}
	}
	return first, firstMatch
}

// linePoints returns sublevels of major.minor that represent every interval
// over which the constraints cs are constant: 0, each sublevel they mention
// and its neighbours, and a very large sublevel.
func linePoints(cs []*constraint, major, minor int) []int {
	set := map[int]bool{0: true, 1 << 20: true}
	for _, c := range cs {
		for _, p := range c.points {
			if p[0] == major && p[1] == minor {
				for _, q := range []int{p[2] - 1, p[2], p[2] + 1} {
					if q >= 0 {
						set[q] = true
					}
				}
			}
		}
	}
	out := make([]int, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	// Order does not change the answer; sort for determinism anyway.
	slices.Sort(out)
	return out
}
