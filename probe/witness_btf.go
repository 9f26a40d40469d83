package probe

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/cilium/ebpf/btf"

	"github.com/safebpf/safebpf/internal/kernel"
)

// btfSpec is a kernel's BTF and where it was read from.
type btfSpec struct {
	spec   *btf.Spec
	source string
}

// observeBTF answers "struct.member.member" from the kernel's BTF.
func observeBTF(h *kernel.Host, f Fact) Observation {
	s, err := witnessCached(h, func() **witnessValue[btfSpec] { return &witnessCache.btf }, func() (btfSpec, error) { return loadBTF(h) })
	if err != nil {
		return Unobserved(fmt.Sprintf("%s: %v", f, err))
	}
	holds, witness, err := btfMember(s.spec, f.Name)
	if err != nil {
		return Unobserved(fmt.Sprintf("%s: %v", f, err))
	}
	return Observed(holds, witness+" ("+s.source+")")
}

// loadBTF reads the kernel's BTF: through cilium/ebpf (which maps
// /sys/kernel/btf/vmlinux and decodes types lazily) on the live host, from
// the file under the root otherwise.
func loadBTF(h *kernel.Host) (btfSpec, error) {
	const path = "/sys/kernel/btf/vmlinux"
	if h == nil || h.FS == nil {
		spec, err := btf.LoadKernelSpec()
		if err != nil {
			if !h.Exists(path) {
				return btfSpec{}, fmt.Errorf("%s: no such file (CONFIG_DEBUG_INFO_BTF off?): %w", path, err)
			}
			return btfSpec{}, fmt.Errorf("load kernel BTF: %w", err)
		}
		return btfSpec{spec, path}, nil
	}
	b, err := h.ReadBTF() // bounded by kernel.MaxBTFSize
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return btfSpec{}, fmt.Errorf("%s: no such file (CONFIG_DEBUG_INFO_BTF off?)", path)
		}
		return btfSpec{}, fmt.Errorf("read %s: %w", path, err)
	}
	spec, err := btf.LoadSpecFromReader(bytes.NewReader(b))
	if err != nil {
		return btfSpec{}, fmt.Errorf("parse %s: %w", path, err)
	}
	return btfSpec{spec, path}, nil
}

// btfMember reports whether the member path "struct.a.b" exists: each name
// is looked up in the struct or union reached so far, through anonymous
// members, and a member that is a pointer to a struct is followed
// (bpf_map.owner is an anonymous struct in 6.12 and a struct bpf_map_owner *
// later). The witness names each step. An error means the path could not
// be walked at all (the first struct is not in the BTF).
func btfMember(spec *btf.Spec, path string) (bool, string, error) {
	parts := strings.Split(path, ".")
	if len(parts) < 2 || slices.Contains(parts, "") {
		return false, "", fmt.Errorf("btf fact %q: want \"struct.member[.member…]\"", path)
	}
	cur := btfNamedComposite(spec, parts[0])
	if cur == nil {
		return false, "", fmt.Errorf("no struct or union %s in the kernel's BTF: nothing to look in", parts[0])
	}
	steps := []string{btfDescribe(cur)}
	for i, name := range parts[1:] {
		m, ok := btfFindMember(cur, name)
		if !ok {
			return false, fmt.Sprintf("%s has no member %s", strings.Join(steps, "."), name), nil
		}
		steps = append(steps, name)
		if i == len(parts)-2 {
			return true, fmt.Sprintf("member %s present", strings.Join(steps, ".")), nil
		}
		next, how := btfComposite(spec, m.Type)
		steps[len(steps)-1] += " (" + how + ")"
		if next == nil {
			return false, fmt.Sprintf("%s is not a struct or union", strings.Join(steps, ".")), nil
		}
		cur = next
	}
	panic("unreachable")
}

// members returns the members of a struct or union, ok false for any
// other type (a forward declaration has none).
func btfMembers(t btf.Type) ([]btf.Member, bool) {
	switch c := t.(type) {
	case *btf.Struct:
		return c.Members, true
	case *btf.Union:
		return c.Members, true
	}
	return nil, false
}

// btfNamedComposite returns the struct or union called name (not a forward
// declaration), or nil.
func btfNamedComposite(spec *btf.Spec, name string) btf.Type {
	types, _ := spec.AnyTypesByName(name)
	for _, t := range types {
		if _, ok := btfMembers(t); ok {
			return t
		}
	}
	return nil
}

// btfFindMember finds a member by name in c, descending into anonymous struct
// and union members.
func btfFindMember(c btf.Type, name string) (btf.Member, bool) {
	ms, _ := btfMembers(c)
	for _, m := range ms {
		if m.Name == name {
			return m, true
		}
		if m.Name == "" {
			if im, ok := btfFindMember(btf.UnderlyingType(m.Type), name); ok {
				return im, true
			}
		}
	}
	return btf.Member{}, false
}

// composite resolves a member's type to the struct or union to look in
// next, through typedefs, qualifiers, one pointer and forward declarations,
// and says how ("anonymous struct", "struct bpf_map_owner *").
func btfComposite(spec *btf.Spec, t btf.Type) (btf.Type, string) {
	t = btf.UnderlyingType(t)
	ptr := ""
	if p, ok := t.(*btf.Pointer); ok {
		t, ptr = btf.UnderlyingType(p.Target), " *"
	}
	if fwd, ok := t.(*btf.Fwd); ok {
		if c := btfNamedComposite(spec, fwd.Name); c != nil {
			return c, btfDescribe(c) + ptr
		}
		return nil, fmt.Sprintf("%s %s%s, declared but never defined", fwd.Kind, fwd.Name, ptr)
	}
	if _, ok := btfMembers(t); ok {
		return t, btfDescribe(t) + ptr
	}
	kind := strings.ToLower(strings.TrimPrefix(fmt.Sprintf("%T", t), "*btf."))
	if n := t.TypeName(); n != "" {
		kind += " " + n
	}
	return nil, kind + ptr
}

func btfDescribe(t btf.Type) string {
	kind := "struct"
	if _, ok := t.(*btf.Union); ok {
		kind = "union"
	}
	if n := t.TypeName(); n != "" {
		return kind + " " + n
	}
	return "anonymous " + kind
}
