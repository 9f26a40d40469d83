//go:build linux

// Command otelstdout shows safebpf's decisions as OpenTelemetry spans and
// metrics printed to stdout by the otel stdout exporters, so they can be
// read without a collector.
//
// It attaches two tiny programs built in Go (no compiler needed):
//
//   - a uprobe on a function of its own binary (main.tick), which it then
//     calls a few times and counts, and
//   - a perf_event program on the hardware CPU-cycles event at 99 Hz, which
//     safebpf moves to the software cpu-clock event when hardware events are
//     missing (virtual machines) or hazardous for the program.
//
// Each attach is one "safebpf.attach" span with a "safebpf.decision" event;
// the metrics (safebpf.decisions, safebpf.attach.duration, …) are printed
// once, at exit. Decisions are also logged to stderr through slog.
//
// Usage (as root):
//
//	go run ./examples/otelstdout [-safebpf-force IDS] [-safebpf-policy FILE] [-hardware=false]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"runtime"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/rlimit"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/safebpf/safebpf/loader"
)

type config struct {
	// hardware asks for the hardware cycles event (false: cpu-clock).
	hardware bool
	// calls is how many times main.tick is called while the uprobe is attached.
	calls   int
	safebpf *loader.Flags
}

func main() {
	var c config
	c.safebpf = loader.RegisterFlags(flag.CommandLine)
	flag.BoolVar(&c.hardware, "hardware", true, "request the hardware cycles perf event (false: software cpu-clock)")
	flag.IntVar(&c.calls, "calls", 3, "times to call the probed function")
	flag.Parse()
	if err := run(context.Background(), c, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "otelstdout:", err)
		os.Exit(1)
	}
}

// tick is the function the uprobe attaches to.
//
//go:noinline
func tick(i int) int { return i * 2 }

// run sets up the providers, attaches, and shuts everything down in order
// so that every span and the final metrics reach stdout.
func run(ctx context.Context, c config, stdout, stderr io.Writer) (err error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return fmt.Errorf("remove memlock rlimit: %w", err)
	}

	res, err := resource.Merge(resource.Default(),
		resource.NewSchemaless(attribute.String("service.name", "safebpf-otelstdout")))
	if err != nil {
		return fmt.Errorf("build resource: %w", err)
	}
	metricExp, err := stdoutmetric.New(stdoutmetric.WithWriter(stdout), stdoutmetric.WithPrettyPrint())
	if err != nil {
		return fmt.Errorf("create metric exporter: %w", err)
	}
	// The periodic reader exports at its interval and once more at Shutdown
	// (deferred first, so it runs last: metrics print after the spans).
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(metricExp)), sdkmetric.WithResource(res))
	defer func() { err = errors.Join(err, mp.Shutdown(ctx)) }()

	spanExp, err := stdouttrace.New(stdouttrace.WithWriter(stdout), stdouttrace.WithPrettyPrint())
	if err != nil {
		return fmt.Errorf("create span exporter: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(spanExp), sdktrace.WithResource(res))
	defer func() { err = errors.Join(err, tp.Shutdown(ctx)) }()

	opts := &loader.Options{
		TracerProvider: tp,
		MeterProvider:  mp,
		Logger:         slog.New(slog.NewTextHandler(stderr, nil)),
	}
	if err := c.safebpf.Apply(opts); err != nil {
		return err
	}
	l, err := loader.New(opts)
	if err != nil {
		return fmt.Errorf("create loader: %w", err)
	}
	// Close flushes the loader's telemetry queues into the providers,
	// before the providers shut down (deferred above, so run later).
	defer func() { err = errors.Join(err, l.Close()) }()

	if err := attachUprobe(l, c.calls, stderr); err != nil {
		return err
	}
	return attachPerfEvent(l, c.hardware, stderr)
}

// attachUprobe attaches a counting uprobe to main.tick in this binary,
// calls tick, and prints the count.
func attachUprobe(l *loader.Loader, calls int, stderr io.Writer) error {
	counter, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		return fmt.Errorf("create counter map: %w", err)
	}
	defer counter.Close()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "count_ticks",
		Type:         ebpf.Kprobe,
		License:      "GPL",
		Instructions: countInstructions(counter.FD()),
	})
	if err != nil {
		return fmt.Errorf("load uprobe program: %w", err)
	}
	defer prog.Close()

	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	ex, err := l.OpenExecutable(self)
	if err != nil {
		return err
	}
	// "main.tick" in a built binary; the package path in a test binary.
	symbol := runtime.FuncForPC(reflect.ValueOf(tick).Pointer()).Name()
	lk, err := ex.Uprobe(symbol, prog, nil)
	if err != nil {
		return fmt.Errorf("uprobe %s: %w", symbol, err)
	}
	defer lk.Close()
	fmt.Fprintf(stderr, "uprobe: %s\n", loader.Explain(lk.Decision()))

	for i := 0; i < calls; i++ {
		tick(i)
	}
	var n uint64
	if err := counter.Lookup(uint32(0), &n); err != nil {
		return fmt.Errorf("read counter: %w", err)
	}
	fmt.Fprintf(stderr, "uprobe: %s hit %d times\n", symbol, n)
	return nil
}

// countInstructions adds one to the single value of an array map.
func countInstructions(mapFD int) asm.Instructions {
	return asm.Instructions{
		asm.StoreImm(asm.RFP, -4, 0, asm.Word), // key = 0
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.LoadMapPtr(asm.R1, mapFD),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "exit"),
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("exit"),
		asm.Return(),
	}
}

// attachPerfEvent attaches an empty perf_event program at 99 Hz.
func attachPerfEvent(l *loader.Loader, hardware bool, stderr io.Writer) error {
	spec := &ebpf.ProgramSpec{
		Name:    "sample",
		Type:    ebpf.PerfEvent,
		License: "GPL",
		Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R0, 0),
			asm.Return(),
		},
	}
	prog, err := ebpf.NewProgram(spec)
	if err != nil {
		return fmt.Errorf("load perf_event program: %w", err)
	}
	defer prog.Close()
	lk, err := l.AttachPerfEvent(prog, loader.PerfEventOptions{Hardware: hardware, Frequency: 99}, &loader.Extra{Spec: spec})
	if err != nil {
		return fmt.Errorf("attach perf event: %w", err)
	}
	defer lk.Close()
	fmt.Fprintf(stderr, "perf event: %s\n", loader.Explain(lk.Decision()))
	return nil
}
