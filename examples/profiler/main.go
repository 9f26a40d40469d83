//go:build linux && (386 || amd64)

// Command profiler samples user stacks at 99 Hz and prints the hottest ones,
// and shows how safebpf judges a sampling program that touches user
// memory. It asks for the hardware cycles event (the software cpu-clock
// event where there is no PMU: same frequency). Its program takes user
// stacks and reads no other user memory, so only nmi-user-stack-deadlock
// (copy_from_user_nmi, fixed in 6.0 and 5.19.14) can refuse it, on either
// event: the cpu-clock event runs in hard IRQ and is no way around it. The
// profiler prints which path applies and how each deadlock was judged.
//
// Usage (as root):
//
//	go run ./examples/profiler [-pid PID] [-duration 10s] [-top 10] [-safebpf-force IDS] [-safebpf-policy FILE]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"

	"github.com/cilium/ebpf"

	"github.com/safebpf/safebpf/examples/explain"
	"github.com/safebpf/safebpf/loader"
)

// maxDepth is MAX_DEPTH in profiler.c.
const maxDepth = 127

type config struct {
	pid      int
	freq     uint64
	duration time.Duration
	top      int
	software bool
	verbose  bool
	safebpf  *loader.Flags
}

func main() {
	var c config
	c.safebpf = loader.RegisterFlags(flag.CommandLine)
	flag.IntVar(&c.pid, "pid", 0, "profile only this process (0: every process)")
	flag.Uint64Var(&c.freq, "freq", 99, "samples per second per CPU")
	flag.DurationVar(&c.duration, "duration", 0, "stop after this long (0: at Ctrl-C or SIGTERM)")
	flag.IntVar(&c.top, "top", 10, "print this many stacks")
	flag.BoolVar(&c.software, "software", false, "ask for the software cpu-clock event instead of hardware cycles")
	flag.BoolVar(&c.verbose, "v", false, "log every decision to stderr (slog)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, c, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "profiler:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config, out io.Writer) error {
	spec, err := loadProfiler()
	if err != nil {
		return err
	}
	if c.pid != 0 {
		if err := spec.Variables["target_tgid"].Set(uint32(c.pid)); err != nil {
			return fmt.Errorf("set target pid: %w", err)
		}
	}
	l, coll, err := explain.Start(out, c.safebpf, c.verbose, spec, &loader.CollectionOptions{
		PerfEvents: map[string]loader.PerfEventOptions{
			"profile": {Hardware: !c.software, Frequency: c.freq},
		},
	})
	if err != nil {
		writeRefusalPath(out, err)
		return err
	}
	defer l.Close()
	defer coll.Close()
	for _, p := range coll.Plans {
		if p.Program == "profile" {
			writePath(out, p)
		}
	}

	who := "every process"
	if c.pid != 0 {
		who = fmt.Sprintf("pid %d", c.pid)
	}
	fmt.Fprintf(out, "Profiling %s at %d Hz; Ctrl-C to stop and print the top %d stacks.\n", who, c.freq, c.top)
	start := time.Now()
	if c.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.duration)
		defer cancel()
	}
	<-ctx.Done()
	elapsed := time.Since(start)

	stacks, err := collect(coll.Maps["counts"], coll.Maps["stacks"])
	if err != nil {
		return err
	}
	report(out, stacks, elapsed, c.top, newSymbolizer("/proc"))
	fmt.Fprintln(out, "Detaching.")
	return nil
}

// sample is one distinct (process, user stack) and how often it was seen.
type sample struct {
	pid     uint32
	comm    string
	stackID int32
	frames  []uint64
	count   uint64
}

// collect reads the per-stack counts and the stacks they refer to.
func collect(counts, stacks *ebpf.Map) ([]sample, error) {
	var (
		out []sample
		k   profilerKey
		n   uint64
	)
	it := counts.Iterate()
	for it.Next(&k, &n) {
		s := sample{pid: k.Pid, comm: explain.CString(k.Comm[:]), stackID: k.UserStackId, count: n}
		if k.UserStackId >= 0 {
			var ips [maxDepth]uint64
			if err := stacks.Lookup(uint32(k.UserStackId), &ips); err == nil {
				for _, ip := range ips {
					if ip == 0 {
						break
					}
					s.frames = append(s.frames, ip)
				}
			}
		}
		out = append(out, s)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read sample counts: %w", err)
	}
	return out, nil
}

// report prints the top stacks, hottest first, symbolized.
func report(out io.Writer, samples []sample, elapsed time.Duration, top int, sym *symbolizer) {
	var total uint64
	for _, s := range samples {
		total += s.count
	}
	sort.Slice(samples, func(i, j int) bool {
		if samples[i].count != samples[j].count {
			return samples[i].count > samples[j].count
		}
		return samples[i].pid < samples[j].pid
	})
	fmt.Fprintf(out, "Profiled %s: %d samples in %d distinct stacks.\n", elapsed.Round(time.Millisecond), total, len(samples))
	for i, s := range samples {
		if i == top {
			break
		}
		fmt.Fprintf(out, "%6d samples (%4.1f%%)  pid %d %s\n", s.count, 100*float64(s.count)/float64(total), s.pid, s.comm)
		if s.stackID < 0 {
			fmt.Fprintf(out, "        [no user stack: %v]\n", stackError(s.stackID))
			continue
		}
		for j, ip := range s.frames {
			// Frames after the first are return addresses: look up the
			// call instruction just before them.
			at := ip
			if j > 0 {
				at--
			}
			fmt.Fprintf(out, "        %s\n", sym.symbolize(s.pid, at))
		}
	}
}

// stackError explains a negative bpf_get_stackid result.
func stackError(id int32) string {
	switch err := syscall.Errno(-id); {
	case errors.Is(err, syscall.EFAULT):
		return "EFAULT (kernel thread, or the stack could not be read)"
	case errors.Is(err, syscall.EEXIST), errors.Is(err, syscall.ENOMEM):
		return err.Error() + " (stack map full)"
	default:
		return err.Error()
	}
}
