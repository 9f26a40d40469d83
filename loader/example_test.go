package loader_test

import (
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"

	"github.com/safebpf/safebpf/fallback"
	"github.com/safebpf/safebpf/loader"
	"github.com/safebpf/safebpf/probe"
)

func counter(name, section string, typ ebpf.ProgramType) *ebpf.ProgramSpec {
	return &ebpf.ProgramSpec{
		Name: name, Type: typ, SectionName: section, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0).WithSymbol(name), asm.Return()},
	}
}

// The collection-level way in: a spec (as bpf2go generates) holding an
// fentry and a kprobe variant of the same program. One is chosen for this
// kernel, the other is never loaded.
func ExampleLoader_LoadAndAttach() {
	spec := &ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{
		"unlink_fentry": counter("unlink_fentry", "fentry/do_unlinkat", ebpf.Tracing),
		"unlink_kprobe": counter("unlink_kprobe", "kprobe/do_unlinkat", ebpf.Kprobe),
	}}
	spec.Programs["unlink_fentry"].AttachTo = "do_unlinkat"
	spec.Programs["unlink_fentry"].AttachType = ebpf.AttachTraceFEntry

	l, err := loader.New(&loader.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()

	coll, err := l.LoadAndAttach(spec, nil)
	var refused *fallback.RefusedError
	if errors.As(err, &refused) {
		log.Fatalf("nothing safe on this kernel: %v", err) // names the hazard and the force ID
	}
	if err != nil {
		log.Fatal(err)
	}
	defer coll.Close()
	for _, d := range coll.Decisions {
		fmt.Println(loader.Explain(d))
	}
}

// The per-attachment way in, mirroring cilium/ebpf's link.Kprobe: the
// fentry variant lets the loader move the request where kprobes are
// missing or hazardous.
func ExampleLoader_Kprobe() {
	l, err := loader.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()

	kp, err := ebpf.NewProgram(counter("kp", "kprobe/do_unlinkat", ebpf.Kprobe))
	if err != nil {
		log.Fatal(err)
	}
	defer kp.Close()

	lk, err := l.Kprobe("do_unlinkat", kp, nil) // was: link.Kprobe("do_unlinkat", kp, nil)
	if errors.Is(err, loader.ErrRefused) {
		log.Fatal(err)
	}
	if err != nil {
		log.Fatal(err)
	}
	defer lk.Close()
	fmt.Println(loader.Explain(lk.Decision()))
}

// cilium/ebpf's fentry example, migrated: link.AttachTracing becomes
// l.AttachTracing, with the same options (AttachType may stay unset).
func ExampleLoader_AttachTracing() {
	l, err := loader.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	spec, err := ebpf.LoadCollectionSpec("fentry.o") // bpf2go's loadBpf()
	if err != nil {
		log.Fatal(err)
	}
	var objs struct {
		TcpConnect *ebpf.Program `ebpf:"tcp_connect"`
		Events     *ebpf.Map     `ebpf:"events"`
	}
	if err := spec.LoadAndAssign(&objs, nil); err != nil { // bpf2go's loadBpfObjects
		log.Fatal(err)
	}
	defer objs.TcpConnect.Close()
	defer objs.Events.Close()

	lk, err := l.AttachTracing(link.TracingOptions{Program: objs.TcpConnect}) // was link.AttachTracing
	if err != nil {
		log.Fatal(err) // a refusal: errors.Is(err, loader.ErrRefused)
	}
	defer lk.Close()
	fmt.Println(loader.Explain(lk.Decision()))
}

// The collection way: LoadAndAttach chooses among alternatives, skips an
// optional program whose symbol is missing, and Assign fills bpf2go's
// objects.
func ExampleCollection_Assign() {
	l, err := loader.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	spec, err := ebpf.LoadCollectionSpec("klockstat.o") // bpf2go's loadBpf()
	if err != nil {
		log.Fatal(err)
	}
	coll, err := l.LoadAndAttach(spec, &loader.CollectionOptions{Optional: []string{"kprobe_mutex_lock_killable"}})
	if err != nil {
		log.Fatal(err)
	}
	defer coll.Close()
	var objs struct {
		Counts *ebpf.Map `ebpf:"counts"`
	}
	if err := coll.Assign(&objs); err != nil {
		log.Fatal(err)
	}
	defer objs.Counts.Close()
	for _, p := range coll.Plans {
		if p.Refusal != "" {
			fmt.Printf("%s skipped: %s\n", p.Program, p.Refusal)
		}
	}
}

// Uprobes are opened on an executable bound to the Loader, as with
// link.OpenExecutable; registrations are paced on kernels that need it.
func ExampleExecutable_Uprobe() {
	l, err := loader.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	prog, err := ebpf.NewProgram(counter("readline", "uprobe", ebpf.Kprobe))
	if err != nil {
		log.Fatal(err)
	}
	defer prog.Close()

	ex, err := l.OpenExecutable("/bin/bash")
	if err != nil {
		log.Fatal(err)
	}
	up, err := ex.Uprobe("readline", prog, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer up.Close()
	if p := up.Decision().Settings.Pacing; p != nil {
		fmt.Println("paced every", p.Interval)
	}
}

// A hardware perf event: moved to software cpu-clock at the same frequency
// when hardware events are unavailable or the program reads user memory on
// a kernel with the NMI deadlock.
func ExampleLoader_AttachPerfEvent() {
	l, err := loader.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	spec := counter("profile", "perf_event", ebpf.PerfEvent)
	prog, err := ebpf.NewProgram(spec)
	if err != nil {
		log.Fatal(err)
	}
	defer prog.Close()
	lk, err := l.AttachPerfEvent(prog, loader.PerfEventOptions{Hardware: true, Frequency: 99}, &loader.Extra{Spec: spec})
	if err != nil {
		log.Fatal(err)
	}
	defer lk.Close()
	fmt.Println(lk.Decision().Chosen)
}

// PlanSpec plans a spec offline against a described kernel, as
// `safebpf plan` does: here a Debian 6.1.30 kernel whose kallsyms still has
// tasks_rcu_exit_srcu, so the fentry variant gives way to the kprobe one.
func ExamplePlanSpec() {
	spec := &ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{
		"unlink_fentry": counter("unlink_fentry", "fentry/do_unlinkat", ebpf.Tracing),
		"unlink_kprobe": counter("unlink_kprobe", "kprobe/do_unlinkat", ebpf.Kprobe),
	}}
	k, err := probe.Describe(probe.Description{
		Release:  "6.1.30",
		CPUs:     8,
		Kallsyms: "0000000000000000 d tasks_rcu_exit_srcu\n",
	})
	if err != nil {
		log.Fatal(err)
	}
	plans, err := loader.PlanSpec(spec, k, nil)
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range plans {
		fmt.Printf("%s (%s): chosen=%v alternatives=%v\n", p.Program, p.Mechanism, p.Chosen, p.Alternatives)
	}
	fmt.Println(plans[0].Decision.Steps[0].Hazard)
	// Output:
	// unlink_fentry (fentry): chosen=false alternatives=[unlink_kprobe]
	// unlink_kprobe (kprobe): chosen=true alternatives=[unlink_fentry]
	// fentry-zap-pid-ns-deadlock
}
