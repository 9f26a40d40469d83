package probe

import (
	"errors"
	"fmt"
	"strings"
)

// FactKind names how a fact about a kernel is established. The kinds are
// listed in the order of trust the hazard catalog gives them: what the
// running kernel does beats what its code says, which beats what its symbol
// table says.
type FactKind string

// The kinds of fact.
const (
	// FactSelfTest is a live self-test: safebpf provokes the behaviour in a
	// throw-away process and watches the outcome. Name is the self-test's
	// name ("uretprobe-seccomp-kill").
	FactSelfTest FactKind = "selftest"
	// FactCall is a fact about the running kernel's machine code, read from
	// /proc/kcore at the function's kallsyms address. Name is
	// "function->callee" ("copy_from_user_nofault->nmi_uaccess_okay"): the
	// function contains a direct call to the callee.
	FactCall FactKind = "call"
	// FactBTF is a member path in the kernel's BTF
	// ("bpf_map.owner.attach_func_proto"): the struct has the member.
	FactBTF FactKind = "btf"
	// FactSymbol is a name in /proc/kallsyms. Name is the symbol.
	FactSymbol FactKind = "symbol"
)

// Fact is one question asked about a kernel, typically by a hazard's
// evidence rule.
type Fact struct {
	Kind FactKind `json:"kind" yaml:"kind"`
	Name string   `json:"name" yaml:"name"`
	// Data marks a data symbol (FactSymbol only): its absence means
	// something only when kallsyms lists data symbols (CONFIG_KALLSYMS_ALL).
	Data bool `json:"data,omitempty" yaml:"data,omitempty"`
}

// Key is the fact's key in Kernel.Observations: "kind:name".
func (f Fact) Key() string { return string(f.Kind) + ":" + f.Name }

// String returns a human form: "call copy_from_user_nofault->nmi_uaccess_okay".
func (f Fact) String() string { return string(f.Kind) + " " + f.Name }

// CallParts splits a FactCall name into the function and the callee.
func (f Fact) CallParts() (function, callee string, ok bool) {
	function, callee, ok = strings.Cut(f.Name, "->")
	function, callee = strings.TrimSpace(function), strings.TrimSpace(callee)
	return function, callee, ok && function != "" && callee != ""
}

// Observation is what a kernel said about one Fact.
type Observation struct {
	// Holds is true when the fact holds (the symbol is present, the call is
	// in the code, the member exists, the self-test saw the bug), false
	// when it does not, and nil when it could not be established.
	Holds *bool `json:"holds"`
	// Witness says what was seen ("call nmi_uaccess_okay at
	// copy_from_user_nofault+0x2e"), or why nothing could be established
	// ("/proc/kcore unreadable: lockdown"). Its text is not a stable
	// interface.
	Witness string `json:"witness"`
}

// Known reports whether the observation is conclusive.
func (o Observation) Known() bool { return o.Holds != nil }

// Observed returns a conclusive observation.
func Observed(holds bool, witness string) Observation { return Observation{&holds, witness} }

// Unobserved returns an inconclusive observation and why.
func Unobserved(why string) Observation { return Observation{nil, why} }

// Observe returns what is known about f. Symbol facts are answered from
// Kallsyms (a data symbol's absence is inconclusive unless kallsyms lists
// data symbols); other facts from Observations. A fact nobody looked for
// is inconclusive, never "does not hold".
func (k *Kernel) Observe(f Fact) Observation {
	if k == nil {
		return Unobserved("nothing is known about this kernel")
	}
	if o, ok := k.Observations[f.Key()]; ok {
		return o
	}
	if f.Kind != FactSymbol {
		return Unobserved(f.String() + ": not looked for")
	}
	if !k.Kallsyms.Readable {
		// A detection that asked for no symbol leaves Kallsyms zero, as
		// does one whose read failed (its Notes say why).
		return Unobserved(f.Name + ": not looked for in kallsyms, or kallsyms unreadable")
	}
	present, ok := k.Kallsyms.Symbols[f.Name]
	switch {
	case !ok:
		return Unobserved(f.Name + ": not looked for in kallsyms")
	case present:
		return Observed(true, f.Name+" present in kallsyms")
	case f.Data && !k.Kallsyms.DataSymbols:
		return Unobserved(f.Name + " absent, but kallsyms lists no data symbols (CONFIG_KALLSYMS_ALL off)")
	}
	return Observed(false, f.Name+" absent from kallsyms")
}

// errBadFact is wrapped by every malformed-fact error.
var errBadFact = errors.New("malformed fact")

// Valid checks that f has a known kind and a name of the shape its kind
// needs: "function->callee" for FactCall, "struct.member[.member…]" for
// FactBTF.
func (f Fact) Valid() error {
	switch f.Kind {
	case FactSymbol, FactSelfTest:
		if strings.TrimSpace(f.Name) == "" || strings.ContainsAny(f.Name, " \t\n") {
			return fmt.Errorf("%w: %s fact %q: want a name without spaces", errBadFact, f.Kind, f.Name)
		}
	case FactCall:
		if _, _, ok := f.CallParts(); !ok || strings.ContainsAny(f.Name, " \t\n") {
			return fmt.Errorf("%w: call fact %q: want \"function->callee\"", errBadFact, f.Name)
		}
	case FactBTF:
		parts := strings.Split(f.Name, ".")
		if len(parts) < 2 || slicesContainEmpty(parts) || strings.ContainsAny(f.Name, " \t\n") {
			return fmt.Errorf("%w: btf fact %q: want \"struct.member\" (more members may follow)", errBadFact, f.Name)
		}
	default:
		return fmt.Errorf("%w: unknown fact kind %q (known: selftest, call, btf, symbol)", errBadFact, f.Kind)
	}
	if f.Data && f.Kind != FactSymbol {
		return fmt.Errorf("%w: %s fact %q: only a symbol fact can be a data symbol", errBadFact, f.Kind, f.Name)
	}
	return nil
}

func slicesContainEmpty(ss []string) bool {
	for _, s := range ss {
		if s == "" {
			return true
		}
	}
	return false
}

// uniqueFacts validates facts and drops duplicates (same Key), keeping
// the first; a symbol fact asked for both as data and as text counts as
// data (its absence then needs CONFIG_KALLSYMS_ALL to mean anything).
func uniqueFacts(facts []Fact) ([]Fact, error) {
	var out []Fact
	seen := map[string]int{}
	for _, f := range facts {
		if err := f.Valid(); err != nil {
			return nil, err
		}
		if i, ok := seen[f.Key()]; ok {
			out[i].Data = out[i].Data || f.Data
			continue
		}
		seen[f.Key()] = len(out)
		out = append(out, f)
	}
	return out, nil
}

// symbolNames returns the names of the symbol facts.
func symbolNames(facts []Fact) []string {
	var out []string
	for _, f := range facts {
		if f.Kind == FactSymbol {
			out = append(out, f.Name)
		}
	}
	return out
}
