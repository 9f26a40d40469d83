//go:build linux && (386 || amd64)

// Command opensnoop prints every file open on the machine, and shows
// safebpf's transparent fentry→kprobe choice: the object carries an fentry
// program and a kprobe program on do_sys_openat2, and safebpf attaches the
// one that is available and safe on this kernel.
//
// Usage (as root):
//
//	go run ./examples/opensnoop [-safebpf-force IDS] [-safebpf-policy FILE] [-v]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/safebpf/safebpf/examples/explain"
	"github.com/safebpf/safebpf/loader"
)

func main() {
	safebpfFlags := loader.RegisterFlags(flag.CommandLine)
	verbose := flag.Bool("v", false, "log every decision to stderr (slog)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, safebpfFlags, *verbose, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "opensnoop:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, safebpfFlags *loader.Flags, verbose bool, out io.Writer) error {
	spec, err := loadOpensnoop()
	if err != nil {
		return err
	}
	l, coll, err := explain.Start(out, safebpfFlags, verbose, spec, nil)
	if err != nil {
		return err
	}
	defer l.Close()
	defer coll.Close()

	fmt.Fprintln(out, "Tracing file opens; Ctrl-C to stop.")
	fmt.Fprintf(out, "%-7s %-16s %s\n", "PID", "COMM", "FILENAME")
	return explain.Events(ctx, out, coll.Maps["events"], func(ev *opensnoopEvent) string {
		return fmt.Sprintf("%-7d %-16s %s", ev.Pid, explain.CString(ev.Comm[:]), explain.CString(ev.Filename[:]))
	})
}
