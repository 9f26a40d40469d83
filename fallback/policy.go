package fallback

import (
	"sync"

	"github.com/safebpf/safebpf/hazards"
)

// policyCache remembers the last few catalogs a policy was applied to, so
// that planning many requests with one Loader's catalog and policy applies
// the policy once.
var policyCache struct {
	sync.Mutex
	entries []policyEntry // most recent last
}

type policyEntry struct {
	base *hazards.Catalog
	pol  *hazards.Policy
	cat  *hazards.Catalog
}

const policyCacheSize = 8

// withPolicy returns cat with pol applied. A policy that edits nothing in
// the catalog needs no new catalog. A catalog that already holds every one
// of pol's user rules is taken to have pol applied already (WithPolicy
// would reject the duplicate rule IDs).
func withPolicy(cat *hazards.Catalog, pol *hazards.Policy) (*hazards.Catalog, error) {
	if pol == nil || len(pol.Hazards) == 0 && len(pol.Kernels) == 0 && len(pol.Rules) == 0 {
		return cat, nil
	}
	policyCache.Lock()
	for _, e := range policyCache.entries {
		if e.base == cat && e.pol == pol {
			policyCache.Unlock()
			return e.cat, nil
		}
	}
	policyCache.Unlock()

	if len(pol.Rules) > 0 && hasAllRules(cat, pol) {
		return cat, nil
	}
	applied, err := cat.WithPolicy(pol)
	if err != nil {
		return nil, err
	}
	policyCache.Lock()
	policyCache.entries = append(policyCache.entries, policyEntry{cat, pol, applied})
	if n := len(policyCache.entries); n > policyCacheSize {
		policyCache.entries = append([]policyEntry(nil), policyCache.entries[n-policyCacheSize:]...)
	}
	policyCache.Unlock()
	return applied, nil
}

func hasAllRules(cat *hazards.Catalog, pol *hazards.Policy) bool {
	for _, r := range pol.Rules {
		if _, ok := cat.Lookup(r.ID); !ok {
			return false
		}
	}
	return true
}
