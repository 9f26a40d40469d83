package hazards

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// RangeText renders version constraints (go-version syntax, as hazard
// entries write them) as people write kernel ranges, joining disjoint
// ranges with " or ":
//
//   - a pessimistic constraint becomes the range it means ("~> 4.18.0" is
//     the 4.18 line, printed "4.18.y"; "~> 5.19" is ">= 5.19, < 6.0");
//   - a bound past a major version's last minor release moves to the next
//     major version (there was no 5.20: "< 5.20" is "< 6.0");
//   - touching or overlapping ranges merge: "~> 5.19.0", "~> 6.0.0" and
//     ">= 6.1, < 6.1.36" print as ">= 5.19, < 6.1.36".
//
// A constraint that is not one interval ("!= 5.4", a prerelease, text that
// does not parse) is kept as written. The rendering is for people: its
// text is not a stable interface.
func RangeText(constraints ...string) string {
	var ivs []interval
	var raw []string
	for _, c := range constraints {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		iv, ok := parseInterval(c)
		if !ok {
			raw = append(raw, c)
			continue
		}
		ivs = append(ivs, iv)
	}
	slices.SortStableFunc(ivs, func(a, b interval) int { return a.lo.cmpLower(b.lo) })
	var merged []interval
	for _, iv := range ivs {
		if n := len(merged); n > 0 && merged[n-1].touches(iv) {
			if merged[n-1].hi.cmpUpper(iv.hi) < 0 {
				merged[n-1].hi = iv.hi
			}
			continue
		}
		merged = append(merged, iv)
	}
	out := make([]string, 0, len(merged)+len(raw))
	for _, iv := range merged {
		out = append(out, iv.String())
	}
	return strings.Join(append(out, raw...), " or ")
}

// lastMinor is the last minor release of each finished major line of
// Linux (kernel.org: 3.19 was followed by 4.0, 4.20 by 5.0, 5.19 by 6.0).
var lastMinor = map[int]int{3: 19, 4: 20, 5: 19}

// rver is a version as a constraint writes it: up to three numbers, n of
// them written.
type rver struct {
	seg [3]int
	n   int
}

func (v rver) cmp(o rver) int {
	for i := range v.seg {
		if c := v.seg[i] - o.seg[i]; c != 0 {
			return c
		}
	}
	return 0
}

// normal moves X.(last+1).0 to (X+1).0.
func (v rver) normal() rver {
	if last, ok := lastMinor[v.seg[0]]; ok && v.seg[1] == last+1 && v.seg[2] == 0 {
		return rver{seg: [3]int{v.seg[0] + 1, 0, 0}, n: 2}
	}
	return v
}

func (v rver) String() string {
	s := strconv.Itoa(v.seg[0])
	if v.n >= 2 || v.seg[1] != 0 || v.seg[2] != 0 {
		s += "." + strconv.Itoa(v.seg[1])
	}
	if v.seg[2] != 0 {
		s += "." + strconv.Itoa(v.seg[2])
	}
	return s
}

// bound is one end of an interval; a nil v means unbounded.
type bound struct {
	v    *rver
	incl bool
}

// cmpLower orders lower bounds: unbounded first, then by version, an
// inclusive bound before an exclusive one at the same version.
func (b bound) cmpLower(o bound) int {
	switch {
	case b.v == nil && o.v == nil:
		return 0
	case b.v == nil:
		return -1
	case o.v == nil:
		return 1
	}
	if c := b.v.cmp(*o.v); c != 0 {
		return c
	}
	return boolCmp(!b.incl, !o.incl)
}

// cmpUpper orders upper bounds: by version, an exclusive bound before an
// inclusive one at the same version, unbounded last.
func (b bound) cmpUpper(o bound) int {
	switch {
	case b.v == nil && o.v == nil:
		return 0
	case b.v == nil:
		return 1
	case o.v == nil:
		return -1
	}
	if c := b.v.cmp(*o.v); c != 0 {
		return c
	}
	return boolCmp(b.incl, o.incl)
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

type interval struct{ lo, hi bound }

// touches reports whether o, which starts no earlier than iv, overlaps or
// adjoins iv.
func (iv interval) touches(o interval) bool {
	if iv.hi.v == nil || o.lo.v == nil {
		return true
	}
	c := o.lo.v.cmp(*iv.hi.v)
	return c < 0 || c == 0 && (iv.hi.incl || o.lo.incl)
}

func (iv interval) String() string {
	lo, hi := iv.lo, iv.hi
	switch {
	case lo.v != nil && hi.v != nil && lo.incl && hi.incl && lo.v.cmp(*hi.v) == 0:
		return lo.v.String()
	case lo.v != nil && hi.v != nil && lo.incl && !hi.incl && lo.v.seg[2] == 0 &&
		hi.v.cmp(rver{seg: [3]int{lo.v.seg[0], lo.v.seg[1] + 1, 0}}.normal()) == 0:
		return fmt.Sprintf("%d.%d.y", lo.v.seg[0], lo.v.seg[1])
	}
	var parts []string
	if lo.v != nil {
		op := ">"
		if lo.incl {
			op = ">="
		}
		parts = append(parts, op+" "+lo.v.String())
	}
	if hi.v != nil {
		op := "<"
		if hi.incl {
			op = "<="
		}
		parts = append(parts, op+" "+hi.v.String())
	}
	if len(parts) == 0 {
		return "every version"
	}
	return strings.Join(parts, ", ")
}

var termRE = regexp.MustCompile(`^\s*(>=|<=|~>|!=|=|>|<)?\s*([0-9]+)(?:\.([0-9]+))?(?:\.([0-9]+))?\s*$`)

// parseInterval reads a comma-separated conjunction of terms as one
// interval; ok is false for what is not one (non-empty) interval.
func parseInterval(c string) (interval, bool) {
	iv := interval{}
	for _, term := range strings.Split(c, ",") {
		m := termRE.FindStringSubmatch(term)
		if m == nil {
			return interval{}, false
		}
		var v rver
		for i, s := range m[2:] {
			if s == "" {
				break
			}
			n, err := strconv.Atoi(s)
			if err != nil || n > 1<<20 {
				return interval{}, false
			}
			v.seg[i], v.n = n, i+1
		}
		var lo, hi bound
		switch m[1] {
		case ">=":
			lo = bound{&v, true}
		case ">":
			lo = bound{&v, false}
		case "<":
			hi = bound{&v, false}
		case "<=":
			hi = bound{&v, true}
		case "", "=":
			lo, hi = bound{&v, true}, bound{&v, true}
		case "~>":
			// go-version: every written segment but the last is fixed.
			var next rver
			switch v.n {
			case 3:
				next = rver{seg: [3]int{v.seg[0], v.seg[1] + 1, 0}, n: 2}
			case 2:
				next = rver{seg: [3]int{v.seg[0] + 1, 0, 0}, n: 2}
			default:
				return interval{}, false
			}
			lo, hi = bound{&v, true}, bound{&next, false}
		default: // "!="
			return interval{}, false
		}
		if lo.v != nil && iv.lo.cmpLower(lo) < 0 {
			iv.lo = lo
		}
		if hi.v != nil && (iv.hi.v == nil || iv.hi.cmpUpper(hi) > 0) {
			iv.hi = hi
		}
	}
	for _, b := range []*bound{&iv.lo, &iv.hi} {
		if b.v != nil {
			n := b.v.normal()
			b.v = &n
		}
	}
	if iv.lo.v != nil && iv.hi.v != nil {
		c := iv.lo.v.cmp(*iv.hi.v)
		if c > 0 || c == 0 && !(iv.lo.incl && iv.hi.incl) {
			return interval{}, false // empty
		}
	}
	return iv, true
}
