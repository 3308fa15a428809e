// app.go holds the command tree: the root command, the flags every command
// shares, and how errors become exit statuses.

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Exit statuses.
const (
	exitOK = 0
	// exitFail: the command failed, or found what it looked for to be
	// wrong (verify: problems in the segment).
	exitFail = 1
	// exitUsage: the command line was wrong, or a destructive command
	// lacked --yes; verify also uses it for "could not check".
	exitUsage = 2
)

// Defaults of the shared flags.
const (
	defaultDir     = "/dev/shm"
	defaultAgent   = "127.0.0.1:7947"
	defaultTimeout = 3 * time.Second
	segmentPrefix  = "gardenstate-"
)

// Environment variables read when the matching flag is not given.
const (
	envSegment = "GARDEN_SEGMENT"
	envApp     = "GARDEN_APP"
	envAgent   = "GARDEN_AGENT"
)

// app is one invocation of gardenctl: its streams, its environment and the
// values of the shared flags. Tests replace the streams, env and now.
type app struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	now    func() time.Time
	// terminal reports whether w is an interactive terminal (progress
	// bars are drawn only there).
	terminal func(w io.Writer) bool
	client   *http.Client

	// Shared flags, after the environment is applied (see resolveShared).
	segment     string
	appName     string
	dir         string
	agent       string
	timeout     time.Duration
	segmentSet  bool // --segment given (or GARDEN_SEGMENT)
	appSet      bool // --app given (or GARDEN_APP)
	agentSet    bool // --agent given (or GARDEN_AGENT)
	envConflict bool // GARDEN_SEGMENT and GARDEN_APP both set, neither flag given

	// started is set once a command's own code runs; an error before that
	// is a usage error.
	started bool
}

// run executes gardenctl with args (without the program name) and returns
// its exit status. Interrupts (Ctrl-C) and SIGTERM end long-running
// commands such as watch cleanly.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// Commands stop between two segment operations, never inside one
		// (a process killed holding a stripe lock makes workers take it
		// over). A second interrupt kills at once.
		<-ctx.Done()
		stop()
	}()
	return newApp(stdout, stderr).run(ctx, args)
}

// errInterrupted is returned by a command stopped by Ctrl-C or SIGTERM.
var errInterrupted = errors.New("interrupted")

func newApp(stdout, stderr io.Writer) *app {
	return &app{
		stdin: os.Stdin, stdout: stdout, stderr: stderr,
		getenv: os.Getenv, now: time.Now, terminal: isTerminal,
		client: &http.Client{},
	}
}

func (a *app) run(ctx context.Context, args []string) int {
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	code := exitFail
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		code = ee.code
	case !a.started:
		code = exitUsage
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintf(a.stderr, "gardenctl: %s\n", msg)
	}
	if code == exitUsage && !a.started && cmd != nil {
		fmt.Fprintf(a.stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

// exitError carries an exit status other than exitFail. An empty message
// prints nothing.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageErrorf is an error in how the command was called (exit status 2).
func usageErrorf(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// silentExit is an exit status whose reason was already printed.
func silentExit(code int) error { return &exitError{code: code} }

const rootLong = `gardenctl shows what is in a gardenstate segment and what the host's agent
(gardend) is doing, without stopping anything: it attaches to the segment
like one more worker process, reads it one stripe at a time while the
workers keep serving, and asks the agent over its admin HTTP API.

Choose the segment with --segment PATH, or --app NAME for
<dir>/gardenstate-NAME (--dir, default /dev/shm); GARDEN_SEGMENT and
GARDEN_APP set them from the environment, flags win. The agent's admin
address is --agent (default 127.0.0.1:7947, or GARDEN_AGENT).

Every command prints a table by default and JSON with --json.

Exit status: 0 success; 1 failure, or (verify) problems found;
2 bad command line, a destructive command without --yes, or (verify)
the segment could not be checked.`

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "gardenctl",
		Short: "Inspect gardenstate segments and ask the agent about its peers",
		Long:  rootLong,
		Example: `  gardenctl segments
  gardenctl stat --app shop
  export GARDEN_APP=shop
  gardenctl ls --prefix user- --limit 20
  gardenctl get 'Xy3kq9...'
  gardenctl watch --agent 127.0.0.1:7947
  gardenctl peers`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			a.started = true
			a.resolveShared(cmd.Flags())
			return nil
		},
	}
	pf := root.PersistentFlags()
	pf.StringVarP(&a.segment, "segment", "s", "", "segment file to inspect (env "+envSegment+")")
	pf.StringVarP(&a.appName, "app", "a", "", "application whose segment to inspect: <dir>/"+segmentPrefix+"NAME (env "+envApp+")")
	pf.StringVar(&a.dir, "dir", defaultDir, "directory holding the segments")
	pf.StringVar(&a.agent, "agent", defaultAgent, "admin address of the agent, host:port or a URL (env "+envAgent+")")
	pf.DurationVar(&a.timeout, "timeout", defaultTimeout, "how long to wait for the agent")
	_ = root.RegisterFlagCompletionFunc("app", a.completeApps)
	_ = root.MarkPersistentFlagFilename("segment")
	_ = root.MarkPersistentFlagDirname("dir")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		if cmd.ValidArgsFunction != nil && strings.Contains(err.Error(), "unknown shorthand flag") {
			// Session ids may start with "-".
			return usageErrorf("%v (an id that starts with - goes after --: %s -- -id)", err, cmd.CommandPath())
		}
		return usageErrorf("%v", err)
	})

	root.AddCommand(
		a.segmentsCommand(),
		a.statCommand(),
		a.lsCommand(),
		a.getCommand(),
		a.verifyCommand(),
		a.watchCommand(),
		a.dumpCommand(),
		a.loadCommand(),
		a.rmCommand(),
		a.flushCommand(),
		a.peersCommand(),
		a.statusCommand(),
	)
	return root
}

// resolveShared applies the environment to the shared flags not given on
// the command line.
func (a *app) resolveShared(fs *pflag.FlagSet) {
	changed := func(name string) bool {
		f := fs.Lookup(name)
		return f != nil && f.Changed
	}
	a.segmentSet, a.appSet = changed("segment"), changed("app")
	if !a.segmentSet && !a.appSet {
		seg, name := a.getenv(envSegment), a.getenv(envApp)
		a.envConflict = seg != "" && name != ""
		if seg != "" {
			a.segment, a.segmentSet = seg, true
		}
		if name != "" {
			a.appName, a.appSet = name, true
		}
	}
	a.agentSet = changed("agent")
	if !a.agentSet {
		if addr := a.getenv(envAgent); addr != "" {
			a.agent, a.agentSet = addr, true
		}
	}
}

// addJSONFlag gives cmd the --json flag.
func addJSONFlag(cmd *cobra.Command, p *bool) {
	cmd.Flags().BoolVar(p, "json", false, "print JSON instead of a table")
}

// exactArgs requires n arguments, naming what is missing.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < n:
			return fmt.Errorf("%s needs %s", cmd.Name(), what)
		case len(args) > n:
			return fmt.Errorf("%s takes %d argument(s), got %d: %q", cmd.Name(), n, len(args), args)
		}
		return nil
	}
}
