//go:build linux && amd64

// Command labguest runs one arm of a hazard-lab scenario (docs/hazard-lab.md)
// and prints its outcome as a LAB record (vmproto.LabRecord) on stdout. The
// lab (package vmtest, TestHazardLab) runs it inside the kernel-matrix
// guests, and scenario 3 also on the host:
//
//	labguest s1 -arm naive-fentry|naive-fexit|safebpf-fentry|safebpf-fexit
//	labguest s2 -arm naive|safebpf|safebpf-maxactive -sleepers N
//	labguest s3 -arm baseline|naive|paced|safebpf|multi -lib PATH -n N [-interval D] [-batch N] [-close-parallel N]
//	labguest s4 -arm naive|naive-deny|safebpf|filter
//	labguest s5 -arm witness|safebpf|repro [-duration D]
//
// The naive arms use cilium/ebpf directly, as an agent without safebpf
// would; the safebpf arms go through package loader and report its
// decision. Every wait is bounded. Other sub-commands (s1-init, s1-agent,
// s4-victim) are the helper processes the arms start; scenario 3's victim
// is a separate C program (victim/victim.c).
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/safebpf/safebpf/internal/vmtest/vmproto"
	"github.com/safebpf/safebpf/loader"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: labguest s1|s2|s3|s4|s5 [flags] (see package doc)")
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	switch cmd {
	case "s1":
		arm := fs.String("arm", "", "naive-fentry, naive-fexit, safebpf-fentry or safebpf-fexit")
		hang := fs.Duration("hang-after", 10*time.Second, "how long the namespace may take to die before it counts as hung")
		recheck := fs.Duration("recheck", 5*time.Second, "second look at a hung namespace's stacks")
		fs.Parse(args)
		emit(s1(*arm, *hang, *recheck))
	case "s1-init":
		s1Init(args)
	case "s1-agent":
		s1Agent(args)
	case "s2":
		arm := fs.String("arm", "", "naive, safebpf or safebpf-maxactive")
		sleepers := fs.Int("sleepers", 256, "threads blocked in pipe_read while the kretprobe is attached")
		maxActive := fs.Int("maxactive", 16, "maxactive the safebpf-maxactive arm asks for")
		fs.Parse(args)
		emit(s2(*arm, *sleepers, *maxActive))
	case "s3":
		var o s3Options
		fs.StringVar(&o.arm, "arm", "", "baseline, naive, paced, safebpf or multi")
		fs.StringVar(&o.lib, "lib", "", "library the victim maps and the uprobes go on (copied first)")
		fs.IntVar(&o.n, "n", 500, "number of uprobes")
		fs.DurationVar(&o.interval, "interval", 10*time.Millisecond, "paced arm: interval between registrations")
		fs.IntVar(&o.batch, "batch", 0, "multi arm: symbols per uprobe_multi link (0: all in one)")
		fs.DurationVar(&o.settle, "settle", time.Second, "victim runtime before and after the attach window")
		fs.StringVar(&o.label, "label", "", "the record's arm name (default: -arm)")
		fs.StringVar(&o.victim, "victim", "", "the victim program (default: victim beside this program)")
		fs.IntVar(&o.closeParallel, "close-parallel", 0, "close the links this many at a time (0: one by one, as an agent would)")
		fs.Parse(args)
		emit(s3(o))
	case "s4":
		arm := fs.String("arm", "", "naive, naive-deny, safebpf or filter")
		calls := fs.Int("calls", 200, "calls of the uretprobed function in the victim")
		fs.Parse(args)
		emit(s4(*arm, *calls))
	case "s4-victim":
		s4Victim(args)
	case "s5":
		arm := fs.String("arm", "", "witness, safebpf or repro")
		d := fs.Duration("duration", 60*time.Second, "repro: how long to try")
		freq := fs.Uint64("freq", 1000, "repro: cpu-clock samples per second")
		fs.Parse(args)
		emit(s5(*arm, *d, *freq))
	default:
		fmt.Fprintf(os.Stderr, "labguest: unknown sub-command %q\n", cmd)
		os.Exit(2)
	}
}

// emit prints r as a LAB record line.
func emit(r vmproto.LabRecord) {
	b, err := json.Marshal(r)
	if err != nil {
		b = []byte(fmt.Sprintf(`{"scenario":%q,"arm":%q,"outcome":"error","error":%q}`, r.Scenario, r.Arm, err.Error()))
	}
	fmt.Fprintf(os.Stdout, "%s%s %s\n", vmproto.Prefix, vmproto.LabTag, b)
}

// failed returns r as an error record.
func failed(r vmproto.LabRecord, format string, args ...any) vmproto.LabRecord {
	r.Outcome = "error"
	r.Error = fmt.Sprintf(format, args...)
	if r.Summary == "" {
		r.Summary = "could not run: " + r.Error
	}
	return r
}

// logf prints progress to stderr (the console in guests).
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "labguest: "+format+"\n", args...)
}

// ms returns d in milliseconds.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// symbolWitnesses says, for each name, whether /proc/kallsyms lists it
// (exact match). It scans the file once without parsing every line:
// formatting kallsyms is slow enough under TCG.
func symbolWitnesses(names ...string) []string {
	b, err := os.ReadFile("/proc/kallsyms")
	if err != nil {
		return []string{"kallsyms unreadable: " + err.Error()}
	}
	var out []string
	for _, n := range names {
		// Lines end "<type> <name>\n" or "<type> <name>\t[module]\n".
		ok := bytes.Contains(b, []byte(" "+n+"\n")) || bytes.Contains(b, []byte(" "+n+"\t"))
		out = append(out, fmt.Sprintf("kallsyms %s: %s", n, map[bool]string{true: "present", false: "absent"}[ok]))
	}
	return out
}

// decisionOf returns safebpf's decision behind a failed attach: the
// explained Decision of an *loader.AttachError, or the refusal's message.
func decisionOf(err error) string {
	var ae *loader.AttachError
	if errors.As(err, &ae) {
		return loader.Explain(ae.Decision)
	}
	return err.Error()
}
