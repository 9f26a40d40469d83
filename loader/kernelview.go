package loader

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/safebpf/safebpf/hazards"
	"github.com/safebpf/safebpf/probe"
)

// kernelView is what a Loader knows about the kernel, completed on demand.
// New detects only the kernel's identity (release, version, config, BTF,
// mounts): a request's mechanisms, and the facts the hazards of those
// mechanisms ask for (hazards.Catalog.FactsFor), are probed and observed
// the first time a request may be planned onto them (need), before the
// planner reads them — never planned on while not yet looked for, since
// evidence not looked for is unknown. Each is looked for once per Loader
// (and once per process: probe.Detect caches the host); what was found is
// merged into a new Kernel, so a Kernel handed out is never changed.
type kernelView struct {
	cat *hazards.Catalog
	// detect looks for the mechanisms and facts given; nil when the
	// caller described the kernel (Options.Kernel), which is then taken
	// as it is.
	detect func(ctx context.Context, mechs []probe.Mechanism, facts []probe.Fact) (*probe.Kernel, error)

	mu     sync.Mutex
	k      *probe.Kernel
	probed map[probe.Mechanism]bool
	facts  map[string]bool // by probe.Fact.Key
}

// newKernelView returns a view of k, completed through detect (nil: k is
// complete as given).
func newKernelView(k *probe.Kernel, cat *hazards.Catalog, detect func(context.Context, []probe.Mechanism, []probe.Fact) (*probe.Kernel, error)) *kernelView {
	v := &kernelView{cat: cat, detect: detect, k: k, probed: map[probe.Mechanism]bool{}, facts: map[string]bool{}}
	for m := range k.Mechanisms {
		v.probed[m] = true
	}
	return v
}

// current returns the kernel as known now. It must not be modified.
func (v *kernelView) current() *probe.Kernel {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.k
}

// need returns the kernel with mechs probed and the facts of their
// hazards observed, looking for what is missing first. The result must
// not be modified.
func (v *kernelView) need(ctx context.Context, mechs []probe.Mechanism) (*probe.Kernel, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.detect == nil || len(mechs) == 0 {
		return v.k, nil
	}
	var newMechs []probe.Mechanism
	for _, m := range mechs {
		if !v.probed[m] && !slices.Contains(newMechs, m) {
			newMechs = append(newMechs, m)
		}
	}
	var newFacts []probe.Fact
	for _, f := range v.cat.FactsFor(mechs...) {
		if !v.facts[f.Key()] {
			newFacts = append(newFacts, f)
		}
	}
	if len(newMechs) == 0 && len(newFacts) == 0 {
		return v.k, nil
	}
	if newMechs == nil {
		newMechs = []probe.Mechanism{} // none: nil would probe every one
	}
	found, err := v.detect(ctx, newMechs, newFacts)
	if err != nil {
		return nil, fmt.Errorf("detect kernel for %v: %w", mechs, err)
	}
	v.k = v.k.Merge(found)
	for _, m := range newMechs {
		v.probed[m] = true
	}
	for _, f := range newFacts {
		v.facts[f.Key()] = true
	}
	return v.k, nil
}

// complete returns the kernel with every mechanism probed and every fact
// of the catalog observed.
func (v *kernelView) complete(ctx context.Context) (*probe.Kernel, error) {
	return v.need(ctx, probe.Mechanisms())
}
