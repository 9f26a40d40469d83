package hazards

import "github.com/safebpf/safebpf/probe"

// Catalog is an immutable, validated set of hazards. The zero value is empty.
type Catalog struct {
	hazards []Hazard
}

// Builtin returns the built-in catalog (catalog.yaml, embedded). It is
// parsed once, on first use.
func Builtin() *Catalog { panic("TODO: hazards.Builtin") }

// Hazards returns the entries in catalog order.
func (c *Catalog) Hazards() []Hazard { return append([]Hazard(nil), c.hazards...) }

// Lookup returns the hazard with the given ID.
func (c *Catalog) Lookup(id ID) (*Hazard, bool) {
	for i := range c.hazards {
		if c.hazards[i].ID == id {
			return &c.hazards[i], true
		}
	}
	return nil, false
}

// Evaluate returns one Finding per hazard that concerns a.Mechanism on k,
// in catalog order.
func (c *Catalog) Evaluate(k *probe.Kernel, a Attachment) []Finding {
	panic("TODO: hazards.Evaluate")
}
