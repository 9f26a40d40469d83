package probe

import (
	"context"
	"fmt"
	"sync"

	"github.com/cilium/ebpf/btf"

	"github.com/safebpf/safebpf/internal/kernel"
)

// probeAll decides the mechanisms ms with p. The built-in prober's probes
// run concurrently: they are independent (each loads its own trial
// program, opens its own event or reads its own files, the BTF-typed ones
// share one parse of the kernel's BTF), and most of their time is the
// kernel's. A caller's prober is asked one mechanism at a time, as its
// contract has always been.
func probeAll(ctx context.Context, p FeatureProber, k *Kernel, ms []Mechanism) (map[Mechanism]Support, error) {
	res := make([]Support, len(ms))
	if _, ok := p.(*hostProber); ok {
		var wg sync.WaitGroup
		for i, m := range ms {
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
		for i, m := range ms {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("detect kernel: probe %s: %w", m, err)
			}
			res[i] = p.Probe(ctx, m, k)
		}
	}
	out := make(map[Mechanism]Support, len(ms))
	for i, m := range ms {
		out[m] = res[i]
	}
	return out, nil
}

// observeAll answers every fact that is not a kallsyms symbol, the facts
// concurrently: the witnesses are independent (machine code from
// /proc/kcore, BTF, a live self-test) and mostly wait on the kernel. k is
// read, not written. BTF facts use shared's parse of the kernel's BTF when
// it is set. Nil when there is none.
func observeAll(ctx context.Context, h *kernel.Host, k *Kernel, facts []Fact, shared *btf.Cache) (map[string]Observation, error) {
	var todo []Fact
	for _, f := range facts {
		if f.Kind != FactSymbol {
			todo = append(todo, f)
		}
	}
	if len(todo) == 0 {
		return nil, nil
	}
	res := make([]Observation, len(todo))
	var wg sync.WaitGroup
	for i, f := range todo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if f.Kind == FactBTF && shared != nil {
				shareBTF(h, shared)
			}
			res[i] = observeWitness(ctx, h, k, f)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("detect kernel: observe facts: %w", err)
	}
	out := make(map[string]Observation, len(todo))
	for i, f := range todo {
		out[f.Key()] = res[i]
	}
	return out, nil
}
