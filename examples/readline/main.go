//go:build linux && (386 || amd64)

// Command readline prints the lines that interactive shells read, from a
// uretprobe on readline(3) in a user binary (bash by default), and shows
// safebpf pacing uprobe registrations on kernels where registering uprobes
// stalls every process's mmap lock (uprobe-mmap-lock-stall).
//
// Usage (as root):
//
//	go run ./examples/readline [-binary /bin/bash] [-symbol readline] [-pid PID] [-safebpf-force IDS] [-safebpf-policy FILE]
//
// On kernels without that hazard (6.14 and later) the decision is a plain
// uretprobe; pacing-policy.yaml in this folder asserts the hazard for every
// kernel, so that pacing shows anywhere:
//
//	go run ./examples/readline -safebpf-policy examples/readline/pacing-policy.yaml
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/cilium/ebpf/link"

	"github.com/safebpf/safebpf/examples/explain"
	"github.com/safebpf/safebpf/loader"
)

type config struct {
	binary  string
	symbol  string
	pid     int
	verbose bool
	safebpf *loader.Flags
}

func main() {
	var c config
	c.safebpf = loader.RegisterFlags(flag.CommandLine)
	flag.StringVar(&c.binary, "binary", "/bin/bash", "executable or library that contains the symbol")
	flag.StringVar(&c.symbol, "symbol", "readline", "function returning the line read (char *)")
	flag.IntVar(&c.pid, "pid", 0, "trace only this process (0: every process running the binary)")
	flag.BoolVar(&c.verbose, "v", false, "log every decision to stderr (slog)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, c, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "readline:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config, out io.Writer) error {
	spec, err := loadReadline()
	if err != nil {
		return err
	}
	l, coll, err := explain.Start(out, c.safebpf, c.verbose, spec, &loader.CollectionOptions{
		Uprobes: map[string]loader.UprobeTarget{
			"readline_ret": {Binary: c.binary, Symbol: c.symbol, Options: &link.UprobeOptions{PID: c.pid}},
		},
	})
	if err != nil {
		return err
	}
	defer l.Close()
	defer coll.Close()

	fmt.Fprintf(out, "Tracing %s in %s; Ctrl-C to stop.\n", c.symbol, c.binary)
	fmt.Fprintf(out, "%-7s %-16s %s\n", "PID", "COMM", "LINE")
	return explain.Events(ctx, out, coll.Maps["events"], func(ev *readlineEvent) string {
		return fmt.Sprintf("%-7d %-16s %s", ev.Pid, explain.CString(ev.Comm[:]), explain.CString(ev.Line[:]))
	})
}
