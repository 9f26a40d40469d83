package loader

import (
	"fmt"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// benchSpec has three uprobes and a tracepoint.
func benchSpec(tg target) *ebpf.CollectionSpec {
	var progs []*ebpf.ProgramSpec
	for i := range 3 {
		progs = append(progs, counterProg(fmt.Sprintf("up%d", i), "uprobe/"+tg.Path+":"+tg.Symbol, ebpf.Kprobe, int32(i), 0))
	}
	progs = append(progs, counterProg("tp", "tracepoint/sched/sched_process_exec", ebpf.TracePoint, 3, 0))
	return spec(progs...)
}

// BenchmarkLoadAndAttach compares load + attach + close of the same
// collection through plain cilium/ebpf and through the loader; the
// safebpf line reports the ratio safebpf/cilium (run both sub-benchmarks
// in one invocation).
func BenchmarkLoadAndAttach(b *testing.B) {
	l := newHostLoader(b, nil)
	mountTracefs(b)
	tg := buildTarget(b)
	cs := benchSpec(tg)
	var perOp = map[string]time.Duration{}

	b.Run("cilium", func(b *testing.B) {
		start := time.Now()
		for b.Loop() {
			coll, err := ebpf.NewCollection(cs)
			if err != nil {
				b.Fatal(err)
			}
			ex, err := link.OpenExecutable(tg.Path)
			if err != nil {
				b.Fatal(err)
			}
			var links []link.Link
			for i := range 3 {
				lk, err := ex.Uprobe(tg.Symbol, coll.Programs[fmt.Sprintf("up%d", i)], nil)
				if err != nil {
					b.Fatal(err)
				}
				links = append(links, lk)
			}
			lk, err := link.Tracepoint("sched", "sched_process_exec", coll.Programs["tp"], nil)
			if err != nil {
				b.Fatal(err)
			}
			links = append(links, lk)
			for _, lk := range links {
				lk.Close()
			}
			coll.Close()
		}
		perOp["cilium"] = time.Since(start) / time.Duration(b.N)
	})
	b.Run("safebpf", func(b *testing.B) {
		start := time.Now()
		for b.Loop() {
			c, err := l.LoadAndAttach(cs, nil)
			if err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
		perOp["safebpf"] = time.Since(start) / time.Duration(b.N)
		if perOp["cilium"] > 0 {
			// Reported on this line so one run shows the ratio.
			b.ReportMetric(float64(perOp["safebpf"])/float64(perOp["cilium"]), "safebpf/cilium")
		}
	})
	if perOp["cilium"] > 0 && perOp["safebpf"] > 0 {
		b.Logf("safebpf/cilium = %.3f (%s vs %s per load+attach+close)",
			float64(perOp["safebpf"])/float64(perOp["cilium"]), perOp["safebpf"], perOp["cilium"])
	}
}
