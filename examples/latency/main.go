//go:build linux && (386 || amd64)

// Command latency prints a log2 histogram of vfs_read latency, and shows
// safebpf choosing between fexit and its kretprobe alternative: where it
// must use a kretprobe, the decision says which maxactive it set so that
// returns on busy machines are not silently missed.
//
// Usage (as root):
//
//	go run ./examples/latency [-pid PID] [-interval 5s] [-maxactive N] [-safebpf-force IDS] [-safebpf-policy FILE]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cilium/ebpf"

	"github.com/safebpf/safebpf/examples/explain"
	"github.com/safebpf/safebpf/loader"
)

// slots is MAX_SLOTS in latency.c.
const slots = 64

type config struct {
	pid       int
	interval  time.Duration
	duration  time.Duration
	maxActive int
	verbose   bool
	safebpf   *loader.Flags
}

func main() {
	var c config
	c.safebpf = loader.RegisterFlags(flag.CommandLine)
	flag.IntVar(&c.pid, "pid", 0, "time only this process's reads (0: every process)")
	flag.DurationVar(&c.interval, "interval", 0, "print the histogram this often (0: only at exit)")
	flag.DurationVar(&c.duration, "duration", 0, "stop after this long (0: at Ctrl-C or SIGTERM)")
	flag.IntVar(&c.maxActive, "maxactive", 0, "kretprobe maxactive to ask for (0: kernel default or the hazard's cap)")
	flag.BoolVar(&c.verbose, "v", false, "log every decision to stderr (slog)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, c, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "latency:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config, out io.Writer) error {
	spec, err := loadLatency()
	if err != nil {
		return err
	}
	if c.pid != 0 {
		if err := spec.Variables["target_tgid"].Set(uint32(c.pid)); err != nil {
			return fmt.Errorf("set target pid: %w", err)
		}
	}
	l, coll, err := explain.Start(out, c.safebpf, c.verbose, spec, &loader.CollectionOptions{KretprobeMaxActive: c.maxActive})
	if err != nil {
		return err
	}
	defer l.Close()
	defer coll.Close()

	fmt.Fprintln(out, "Timing vfs_read; Ctrl-C to stop and print the histogram.")
	if c.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.duration)
		defer cancel()
	}
	var tick <-chan time.Time
	if c.interval > 0 {
		t := time.NewTicker(c.interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-tick:
			if err := printHist(out, coll.Maps["hist"]); err != nil {
				return err
			}
		case <-ctx.Done():
			if err := printHist(out, coll.Maps["hist"]); err != nil {
				return err
			}
			fmt.Fprintln(out, "Detaching.")
			return nil
		}
	}
}

// printHist reads the histogram map and prints it.
func printHist(out io.Writer, hist *ebpf.Map) error {
	counts := make([]uint64, slots)
	for i := range counts {
		if err := hist.Lookup(uint32(i), &counts[i]); err != nil {
			return fmt.Errorf("read histogram slot %d: %w", i, err)
		}
	}
	fmt.Fprintf(out, "\n%s\n", time.Now().Format(time.TimeOnly))
	return printLog2Hist(out, counts, "nsecs")
}
