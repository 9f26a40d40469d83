package probe

import (
	"context"
	"fmt"
	"sync"
)

// probeAll decides every mechanism with p. The built-in prober's probes
// run concurrently: they are independent (each loads its own trial
// program, opens its own event or reads its own files, the BTF-typed ones
// share one parse of the kernel's BTF), and most of their time is the
// kernel's. A caller's prober is asked one mechanism at a time, as its
// contract has always been.
func probeAll(ctx context.Context, p FeatureProber, k *Kernel) (map[Mechanism]Support, error) {
	res := make([]Support, len(allMechanisms))
	if _, ok := p.(*hostProber); ok {
		var wg sync.WaitGroup
		for i, m := range allMechanisms {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res[i] = p.Probe(ctx, m, k)
			}()
		}
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("detect kernel: probe mechanisms: %w", err)
		}
	} else {
		for i, m := range allMechanisms {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("detect kernel: probe %s: %w", m, err)
			}
			res[i] = p.Probe(ctx, m, k)
		}
	}
	out := make(map[Mechanism]Support, len(allMechanisms))
	for i, m := range allMechanisms {
		out[m] = res[i]
	}
	return out, nil
}
