// Command safebpf is the operator's view of safebpf: what the running
// kernel is and allows, which known kernel hazards apply to it, what the
// planner would decide for a described kernel or an ELF object, and whether
// a policy file is valid.
//
// Usage:
//
//	safebpf probe [--json] [--policy FILE]
//	safebpf hazards [--json] [ID]
//	safebpf check (--release R | --kernel FIXTURE.json) [flags]
//	safebpf policy validate FILE
//	safebpf plan OBJECT.o [--kernel FIXTURE.json] [--json]
//	safebpf help [COMMAND]
//
// Exit status: 0 when all is fine; 1 when a decision refused an attachment
// (check, plan), when a policy file is invalid (policy validate) or when the
// host could not be probed; 2 for usage and input errors (unknown flag or
// command, unknown mechanism or hazard ID, unparseable release, unreadable
// file). Errors are one line on stderr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/safebpf/safebpf/probe"
)

// Exit codes.
const (
	exitOK      = 0
	exitRefused = 1 // a refusal, an invalid policy, or a probe failure
	exitUsage   = 2 // bad command line or unusable input
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// cli carries one invocation. Tests replace detect to replay a host.
type cli struct {
	stdout, stderr io.Writer
	color          bool
	detect         func(ctx context.Context) (*probe.Kernel, error)
}

// run executes the command line args (without the program name) and
// returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	c := &cli{
		stdout: stdout,
		stderr: stderr,
		color:  useColor(stdout),
		detect: func(ctx context.Context) (*probe.Kernel, error) { return probe.Detect(ctx, nil) },
	}
	return c.run(args)
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	usage   string
	run     func(c *cli, args []string) int
}

// commandTable lists the subcommands (a function, not a variable, because
// help refers back to it).
func commandTable() []command {
	return []command{
		{"probe", "probe this machine's kernel: identity, mechanisms, hazard verdicts", probeUsage, (*cli).probe},
		{"hazards", "list the hazard catalog, or explain one hazard", hazardsUsage, (*cli).hazards},
		{"check", "evaluate a described kernel offline and plan an attachment", checkUsage, (*cli).check},
		{"policy", "validate a policy file", policyUsage, (*cli).policy},
		{"plan", "plan every program of an ELF object on this (or a fixture) kernel", planUsage, (*cli).plan},
		{"help", "show help for a command", "usage: safebpf help [COMMAND]", (*cli).help},
	}
}

func (c *cli) run(args []string) int {
	if len(args) == 0 {
		c.mainUsage(c.stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help":
		c.mainUsage(c.stdout)
		return exitOK
	}
	for _, cmd := range commandTable() {
		if cmd.name == name {
			return cmd.run(c, args[1:])
		}
	}
	return c.usageErr("", fmt.Errorf("unknown command %q (commands: %s)", name, commandNames()))
}

func commandNames() string {
	var names []string
	for _, cmd := range commandTable() {
		names = append(names, cmd.name)
	}
	return strings.Join(names, ", ")
}

const exitCodesHelp = `Exit status:
  0  fine
  1  a refusal is present (check, plan), the policy file is invalid
     (policy validate), or the host could not be probed (probe)
  2  usage or input error: unknown command, flag, mechanism or hazard ID,
     unparseable release, unreadable file
`

func (c *cli) mainUsage(w io.Writer) {
	fmt.Fprintf(w, "safebpf: attach eBPF programs safely; inspect kernels and plans.\n\nUsage: safebpf COMMAND [flags]\n\nCommands:\n")
	for _, cmd := range commandTable() {
		fmt.Fprintf(w, "  %-8s %s\n", cmd.name, cmd.summary)
	}
	fmt.Fprintf(w, "\nRun 'safebpf help COMMAND' for a command's flags.\n\n%s", exitCodesHelp)
}

func (c *cli) help(args []string) int {
	if len(args) == 0 {
		c.mainUsage(c.stdout)
		return exitOK
	}
	for _, cmd := range commandTable() {
		if cmd.name == args[0] {
			fmt.Fprintln(c.stdout, cmd.usage)
			fmt.Fprintf(c.stdout, "\n%s", exitCodesHelp)
			return exitOK
		}
	}
	return c.usageErr("help", fmt.Errorf("unknown command %q (commands: %s)", args[0], commandNames()))
}

// usageErr prints err as one line and returns exitUsage.
func (c *cli) usageErr(cmd string, err error) int {
	c.errLine(cmd, err)
	return exitUsage
}

func (c *cli) errLine(cmd string, err error) {
	prefix := "safebpf"
	if cmd != "" {
		prefix += " " + cmd
	}
	msg := strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; ")
	fmt.Fprintf(c.stderr, "%s: %s\n", prefix, msg)
}

// flagSet returns a FlagSet that reports nothing itself: parse errors are
// printed by parse as one line.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parse parses args, allowing flags after positional arguments
// ("plan obj.o --json"). It returns the positional arguments, or an exit
// status when parsing ended the command (help or error).
func (c *cli) parse(fs *flag.FlagSet, usage string, args []string) ([]string, int, bool) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprintln(c.stdout, usage)
				return nil, exitOK, false
			}
			return nil, c.usageErr(fs.Name(), fmt.Errorf("%v (see 'safebpf help %s')", err, fs.Name())), false
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, 0, true
		}
		// flag stops at the first non-flag; "--" ends flags for good.
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), 0, true
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// useColor reports whether w is a terminal and NO_COLOR is unset or empty
// (https://no-color.org).
func useColor(w io.Writer) bool {
	if os.Getenv("NO_COLOR") != "" {
		return false
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
