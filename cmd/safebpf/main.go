// Command safebpf is the operator's view of safebpf: what the running
// kernel is and allows, which known kernel hazards apply to it and what
// the loader would decide there, the same for a described kernel or a
// whole fleet of them, what the loader would do with an ELF object,
// whether a policy file is valid, and a support bundle for bug reports.
//
// Usage:
//
//	safebpf probe [--host-root DIR] [flags]
//	safebpf hazards [ID]
//	safebpf check (--release R | --kernel FIXTURE.json | --fleet FILE) [flags]
//	safebpf plan OBJECT.o [--kernel FIXTURE.json] [flags]
//	safebpf policy validate FILE
//	safebpf version
//	safebpf bugreport [-o FILE] [--decisions LOG]
//	safebpf completion bash|zsh|fish|powershell
//	safebpf help [COMMAND]
//
// Human output fits 80 columns (-o wide prints the full text); --json
// prints one JSON document with a top-level "schema_version" on every
// command. SAFEBPF_FORCE, SAFEBPF_POLICY and SAFEBPF_HOST_ROOT count as
// they do for an agent (loader.Flags): a flag beats its variable.
//
// Exit status: 0 when all is fine; 1 when a decision refused an attachment
// (check, plan), when a policy file is invalid (policy validate) or when
// the host could not be probed; 2 for usage and input errors (unknown flag
// or command, unknown mechanism or malformed hazard ID, unparseable
// release, unreadable or oversized file). Errors are one line on stderr.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

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

// app carries one invocation. Tests replace detect to replay a host.
type app struct {
	stdout, stderr io.Writer
	color          bool
	// detect reads this machine's kernel (below hostRoot when set),
	// looking for the facts given: the catalog's evidence.
	detect func(ctx context.Context, hostRoot string, facts []probe.Fact) (*probe.Kernel, error)
	now    func() time.Time
	stdin  io.Reader // nil: os.Stdin
}

// run executes the command line args (without the program name) and
// returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	return newApp(stdout, stderr).run(args)
}

func newApp(stdout, stderr io.Writer) *app {
	return &app{
		stdout: stdout,
		stderr: stderr,
		color:  useColor(stdout),
		detect: detectHost,
		now:    time.Now,
	}
}

// detectHost probes the running kernel, reading its files below hostRoot
// when one is given, and looks for the facts (evidence nobody looked for is
// unknown to the hazard evaluation).
func detectHost(ctx context.Context, hostRoot string, facts []probe.Fact) (*probe.Kernel, error) {
	return probe.Detect(ctx, &probe.Options{HostRoot: hostRoot, Facts: facts})
}

// exitError ends a command with an exit code and, unless silent, a
// one-line message on stderr.
type exitError struct {
	code   int
	err    error
	silent bool // the output already says it (a refusal)
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErr is a usage or input error (exit 2).
func usageErr(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// failed is a failure that is not the user's input (exit 1).
func failed(err error) error { return &exitError{code: exitRefused, err: err} }

// errRefusals ends a command whose output shows a refusal (exit 1).
var errRefusals = &exitError{code: exitRefused, err: errors.New("refused"), silent: true}

const exitCodesHelp = `Exit status:
  0  fine
  1  a refusal is present (check, plan), the policy file is invalid
     (policy validate), or the host could not be probed (probe)
  2  usage or input error: unknown command, flag, mechanism or malformed
     hazard ID, unparseable release, unreadable or oversized file
`

const envHelp = `Environment (as for agents; a flag beats its variable):
  SAFEBPF_FORCE      hazard IDs to force past, like --force
  SAFEBPF_POLICY     policy file, like --policy
  SAFEBPF_HOST_ROOT  where the host's / is mounted in a container,
                     like --host-root
  NO_COLOR           no colours on a terminal
`

// rootCommand builds the command tree.
func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "safebpf",
		Short: "attach eBPF programs safely; inspect kernels and plans",
		Long: `safebpf: attach eBPF programs safely; inspect kernels and plans.

Human output fits 80 columns (-o wide prints the full text); --json prints
one JSON document with a top-level "schema_version".`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErr("%v (see 'safebpf help %s')", err, strings.TrimPrefix(c.CommandPath(), "safebpf "))
	})
	root.SetUsageTemplate(usageTemplate)
	root.AddCommand(
		a.probeCommand(),
		a.hazardsCommand(),
		a.checkCommand(),
		a.planCommand(),
		a.policyCommand(),
		a.versionCommand(),
		a.bugreportCommand(),
	)
	root.SetHelpCommand(&cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		ValidArgsFunction: func(c *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
			var names []cobra.Completion
			for _, sub := range c.Root().Commands() {
				names = append(names, sub.Name())
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(c *cobra.Command, args []string) error {
			target, rest, err := c.Root().Find(args)
			if err != nil || len(rest) > 0 || len(args) > 0 && target == c.Root() {
				var names []string
				for _, sub := range c.Root().Commands() {
					names = append(names, sub.Name())
				}
				return usageErr("unknown command %q (commands: %s)", strings.Join(args, " "), strings.Join(names, ", "))
			}
			return target.Help()
		},
	})
	return root
}

// usageTemplate is cobra's, with flag descriptions wrapped to 80 columns
// and the exit codes and environment at the end.
var usageTemplate = `Usage:{{if .Runnable}}
  {{.UseLine}}{{end}}{{if .HasAvailableSubCommands}}
  {{.CommandPath}} [command]{{end}}{{if gt (len .Aliases) 0}}

Aliases:
  {{.NameAndAliases}}{{end}}{{if .HasExample}}

Examples:
{{.Example}}{{end}}{{if .HasAvailableSubCommands}}

Commands:{{range .Commands}}{{if (or .IsAvailableCommand (eq .Name "help"))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{if .HasAvailableLocalFlags}}

Flags:
{{.LocalFlags.FlagUsagesWrapped 80 | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableInheritedFlags}}

Global Flags:
{{.InheritedFlags.FlagUsagesWrapped 80 | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableSubCommands}}

Use "{{.CommandPath}} [command] --help" for more information about a command.{{end}}

` + exitCodesHelp + `
` + envHelp

func (a *app) run(args []string) int {
	root := a.rootCommand()
	if len(args) == 0 {
		root.SetOut(a.stderr)
		_ = root.Help()
		return exitUsage
	}
	root.SetArgs(args)
	c, err := root.ExecuteC()
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if !errors.As(err, &ee) {
		// cobra's own errors: unknown command, wrong number of arguments.
		ee = &exitError{code: exitUsage, err: err}
	}
	if !ee.silent {
		a.errLine(c, ee.err)
	}
	return ee.code
}

// errLine prints err as one escaped line, prefixed by the command path.
func (a *app) errLine(c *cobra.Command, err error) {
	prefix := "safebpf"
	if c != nil {
		prefix = c.CommandPath()
	}
	msg := strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; ")
	fmt.Fprintf(a.stderr, "%s: %s\n", prefix, escape(msg))
}

// warn prints a warning as one escaped line on stderr.
func (a *app) warn(c *cobra.Command, format string, args ...any) {
	fmt.Fprintf(a.stderr, "%s: warning: %s\n", c.CommandPath(), escape(fmt.Sprintf(format, args...)))
}

// noArgs rejects positional arguments with a usage error.
func noArgs(c *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErr("unexpected argument %q", args[0])
	}
	return nil
}
