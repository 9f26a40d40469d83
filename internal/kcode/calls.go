package kcode

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// MaxFunctionSize bounds the bytes read for one function. A longer extent
// means kallsyms lacks the symbols that follow it, not a real function.
const MaxFunctionSize = 64 << 10

// padding is the room before a function entry that x86 call depth
// tracking (CONFIG_CALL_THUNKS) patches calls into (CONFIG_FUNCTION_PADDING_BYTES).
const padding = 16

// ErrNoSymbol is wrapped by [FindCall]'s error when the function is not in
// kallsyms.
var ErrNoSymbol = errors.New("not in kallsyms")

// Memory supplies kernel memory; [*Core] implements it.
type Memory interface {
	Read(addr uint64, n int) ([]byte, error)
}

// Query asks whether Function calls Callee.
type Query struct {
	Function, Callee string
	// Follow names static functions the compiler may or may not inline
	// into Function. When Function calls one of them (or a GCC clone of
	// it) directly, that function's own direct calls count as Function's.
	// One level deep. Nil follows nothing.
	Follow []string
}

// Finding is what [FindCall] saw.
type Finding struct {
	// Found is set when a direct call or tail call to the callee was seen.
	Found bool
	// Site names that instruction, e.g. "call nmi_uaccess_okay at
	// copy_from_user_nofault+0x2e". Empty when not Found.
	Site string
	// Calls lists the direct call and tail call targets seen, once each,
	// in order of appearance ("__check_object_size", "__x86_return_thunk").
	Calls []string
	// Read lists the code decoded, e.g. "copy_from_user_nofault (0x1a0 bytes)".
	Read []string
	// Spans are the address ranges decoded, in the order of Read.
	Spans []Span
	// NoCallee is set when kallsyms lists no function called Callee (nor
	// a GCC clone of it): there is nothing to call, and no code was read.
	NoCallee bool
}

// Span is a function's code: [Start, End).
type Span struct {
	Name       string
	Start, End uint64
}

// region is a run of code to decode.
type region struct {
	name       string
	start, end uint64
	via        string // "__check_object_size+0x8c" when reached by Follow
}

// FindCall reads q.Function (and its ".cold" part) from mem at its
// kallsyms address and looks for a direct call or tail call to q.Callee.
// arch is the kernel's GOARCH name ("amd64", "arm64").
//
// A returned Finding with Found set is conclusive even when err is not
// nil (the error then says what else could not be read). With Found unset,
// a nil error means the code was decoded completely and the call is not
// there; a non-nil error means the answer is unknown.
func FindCall(syms *Symbols, mem Memory, arch string, q Query) (*Finding, error) {
	if syms == nil || syms.Len() == 0 {
		return nil, errors.New("no kallsyms")
	}
	fn, err := syms.unique(q.Function)
	if err != nil {
		return nil, err
	}
	if !syms.hasClone(q.Callee) {
		return &Finding{NoCallee: true}, nil
	}
	f := &Finding{}
	var queue []region
	var errs []error
	enqueue := func(i int, via string) {
		r, err := syms.region(i, via)
		if err != nil {
			errs = append(errs, err)
			return
		}
		queue = append(queue, r)
	}
	enqueueWithCold := func(i int, via string) {
		enqueue(i, via)
		for _, c := range syms.Lookup(syms.Name(i) + ".cold") {
			enqueue(c, via)
		}
	}
	enqueueWithCold(fn, "")
	followed := map[uint64]bool{}
	seen := map[string]bool{}
	for len(queue) > 0 {
		r := queue[0]
		queue = queue[1:]
		code, err := mem.Read(r.start, int(r.end-r.start))
		if err != nil {
			errs = append(errs, fmt.Errorf("read %s: %w", r.name, err))
			continue
		}
		if !slices.ContainsFunc(code, func(b byte) bool { return b != 0 }) {
			errs = append(errs, fmt.Errorf("read %s at %#x: only zero bytes (memory the core cannot read)", r.name, r.start))
			continue
		}
		f.Read = append(f.Read, fmt.Sprintf("%s (%#x bytes)", r.name, len(code)))
		f.Spans = append(f.Spans, Span{r.name, r.start, r.end})
		bs, derr := branches(arch, code, r.start)
		for _, b := range bs {
			t := syms.resolve(arch, b.target, b.call)
			if !seen[t.label] {
				seen[t.label] = true
				f.Calls = append(f.Calls, t.label)
			}
			at := fmt.Sprintf("%s+%#x", r.name, b.pc-r.start)
			if t.entry >= 0 && slices.ContainsFunc(t.names, func(n string) bool { return isClone(n, q.Callee) }) {
				f.Found = true
				f.Site = fmt.Sprintf("%s %s at %s", b.text, t.label, at)
				if !b.call {
					f.Site += " (tail call)"
				}
				if r.via != "" {
					f.Site += fmt.Sprintf(", in %s called at %s", r.name, r.via)
				}
				return f, errors.Join(errs...)
			}
			if t.entry >= 0 && r.via == "" && !followed[b.target] && slices.ContainsFunc(t.names, func(n string) bool {
				return slices.ContainsFunc(q.Follow, func(fw string) bool { return isClone(n, fw) })
			}) {
				followed[b.target] = true
				enqueueWithCold(t.entry, at)
			}
		}
		if derr != nil {
			errs = append(errs, fmt.Errorf("decode %s: %w", r.name, derr))
		}
	}
	return f, errors.Join(errs...)
}

// unique returns the index of the symbol called name, failing when there
// is none or several at different addresses.
func (s *Symbols) unique(name string) (int, error) {
	is := s.Lookup(name)
	if len(is) == 0 {
		return 0, fmt.Errorf("function %s: %w", name, ErrNoSymbol)
	}
	for _, i := range is[1:] {
		if s.addrs[i] != s.addrs[is[0]] {
			return 0, fmt.Errorf("function %s: %d symbols of that name at different addresses", name, len(is))
		}
	}
	return is[0], nil
}

// hasClone reports whether a symbol named fn, or a GCC clone of it, exists.
func (s *Symbols) hasClone(fn string) bool {
	for i := range s.addrs {
		if n := s.name(i); len(n) >= len(fn) && string(n[:len(fn)]) == fn && isClone(string(n), fn) {
			return true
		}
	}
	return false
}

// region returns the code of symbol i up to the next symbol.
func (s *Symbols) region(i int, via string) (region, error) {
	name := s.Name(i)
	end, ok := s.End(i)
	switch {
	case !ok:
		return region{}, fmt.Errorf("function %s: no symbol after it in kallsyms, extent unknown", name)
	case end-s.addrs[i] > MaxFunctionSize:
		return region{}, fmt.Errorf("function %s: extent %#x bytes exceeds %#x (kallsyms incomplete?)", name, end-s.addrs[i], MaxFunctionSize)
	}
	return region{name: name, start: s.addrs[i], end: end, via: via}, nil
}

// target is a resolved branch target.
type target struct {
	names []string // the functions entered (aliases), nil when none
	entry int      // index of the entered symbol, -1 when the target is no entry
	label string   // "nmi_uaccess_okay", "foo+0x12", "nmi_uaccess_okay (padding thunk)"
}

// resolve names a branch target: a function entry, a point in the
// padding before one (a __pfx_ symbol, or for an x86 call the last
// [padding] bytes before a symbol: call depth thunks live there, and no
// call lands in the tail of another function), or an address inside a
// function.
func (s *Symbols) resolve(arch string, addr uint64, call bool) target {
	i, ok := s.At(addr)
	if !ok {
		return target{entry: -1, label: fmt.Sprintf("%#x", addr)}
	}
	name := s.Name(i)
	switch {
	case s.addrs[i] == addr && !strings.HasPrefix(name, "__pfx_"):
		return target{names: s.namesAt(i), entry: i, label: name}
	case strings.HasPrefix(name, "__pfx_"):
		fn := strings.TrimPrefix(name, "__pfx_")
		if end, ok := s.End(i); ok {
			if j, _ := s.At(end); s.hasName(end, fn) {
				return target{names: []string{fn}, entry: j, label: fn + " (padding thunk)"}
			}
		}
	case arch == "amd64" && call:
		if end, ok := s.End(i); ok && end-addr <= padding {
			j, _ := s.At(end)
			return target{names: s.namesAt(j), entry: j, label: s.Name(j) + " (padding thunk)"}
		}
	}
	return target{entry: -1, label: s.describe(addr)}
}

// namesAt returns every name at the address of symbol i.
func (s *Symbols) namesAt(i int) []string {
	var ns []string
	for j, _ := slices.BinarySearch(s.addrs, s.addrs[i]); j < len(s.addrs) && s.addrs[j] == s.addrs[i]; j++ {
		ns = append(ns, s.Name(j))
	}
	return ns
}

func (s *Symbols) hasName(addr uint64, name string) bool {
	for j, _ := slices.BinarySearch(s.addrs, addr); j < len(s.addrs) && s.addrs[j] == addr; j++ {
		if string(s.name(j)) == name {
			return true
		}
	}
	return false
}
