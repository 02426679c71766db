package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/poolsuite/poolsuite/internal/cli"
	"github.com/poolsuite/poolsuite/internal/pgpool"
)

func main() {
	cmd := newRootCommand(os.Stdout, os.Stderr, setProcs)
	os.Exit(cli.Execute(context.Background(), cmd, "pgpool", os.Args[1:], os.Stderr))
}

// setProcs sets the threads running Go code for --procs n (see cli.Procs).
func setProcs(n int) {
	runtime.GOMAXPROCS(cli.Procs(n, os.Getenv("GOMAXPROCS") != "", runtime.GOMAXPROCS(0)))
}

// execute runs the command line args and returns the process exit status. It leaves
// the process's GOMAXPROCS alone (tests run it in their own process).
func execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return cli.Execute(ctx, newRootCommand(stdout, stderr, nil), "pgpool", args, stderr)
}

// newRootCommand builds the pgpool command tree. The root command runs the
// pooler; check-config and version are subcommands. procs, when not nil, applies
// --procs before the pooler starts.
func newRootCommand(stdout, stderr io.Writer, procs func(int)) *cobra.Command {
	opts := runOptions{stderr: stderr, signals: true}
	var nprocs int
	root := &cobra.Command{
		Use:   "pgpool [flags] FILE",
		Short: "A PostgreSQL connection pooler that runs from a pgbouncer.ini",
		Long: `pgpool shares a few PostgreSQL server connections per (database, user) among
many clients. It reads PgBouncer's configuration: pgbouncer.ini and the
userlist.txt named by its auth_file. Its command line and signals are
PgBouncer 1.18's.

Signals: SIGHUP reloads the configuration and reopens the logfile; SIGUSR1
pauses (as the console's PAUSE), SIGUSR2 resumes; SIGINT stops accepting,
lets running transactions finish (up to --shutdown-timeout) and exits 0;
SIGTERM exits at once with status 1 (PgBouncer 1.18's "fast exit").

Started as root, pgpool gives up root for the ini's user (or -u USER) once
its sockets are bound, and refuses to run as root without one.`,
		Example: `  pgpool /etc/pgbouncer/pgbouncer.ini
  pgpool -d -u postgres /etc/pgbouncer/pgbouncer.ini
  pgpool --config /etc/pgbouncer/pgbouncer.ini -v
  pgpool check-config /etc/pgbouncer/pgbouncer.ini`,
		Version:       pgpool.VersionString,
		Args:          cobra.MaximumNArgs(1),
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) == 1 && opts.config != "" && args[0] != opts.config:
				return &cli.ExitError{Code: 2, Err: fmt.Errorf("both --config %s and %s given", opts.config, args[0])}
			case len(args) == 1:
				opts.config = args[0]
			case opts.config == "":
				cmd.Usage()
				return &cli.ExitError{Code: 2, Err: errors.New("no configuration file given")}
			}
			if nprocs < 0 {
				return &cli.ExitError{Code: 2, Err: fmt.Errorf("option --procs value %d: want 0 or more", nprocs)}
			}
			if procs != nil {
				procs(nprocs)
			}
			return run(cmd.Context(), opts)
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate("{{.Version}}\n")
	f := root.Flags()
	f.StringVar(&opts.config, "config", "", "the pgbouncer.ini to run with")
	f.BoolVarP(&opts.daemon, "daemon", "d", false, "run in the background, detached (needs pidfile in the ini)")
	f.BoolVarP(&opts.reboot, "reboot", "R", false, "online restart: take over the listeners and clients of the pgpool running with this ini (through its unix socket)")
	f.BoolVarP(&opts.quiet, "quiet", "q", false, "do not log to standard error (the logfile still gets everything)")
	f.CountVarP(&opts.verbose, "verbose", "v", "more log detail (debug level); repeatable, adds to the ini's verbose")
	f.StringVarP(&opts.user, "user", "u", "", "when started as root, switch to this user after binding (overrides the ini's user)")
	f.BoolVarP(new(bool), "version", "V", false, "print the version and exit")
	f.DurationVar(&opts.shutdownTimeout, "shutdown-timeout", 30*time.Second,
		"how long SIGINT waits for transactions to finish before closing them")
	f.IntVar(&nprocs, "procs", 0, "threads running Go code (GOMAXPROCS); 0: 1 on a machine of up to 2 CPUs, else every CPU (the GOMAXPROCS environment variable overrides 0)")
	f.StringVar(&opts.debugAddr, "debug-addr", "",
		"serve net/http/pprof and expvar on this address (e.g. 127.0.0.1:6060); off if empty")

	root.AddCommand(newCheckConfigCommand(stdout), newVersionCommand(stdout))
	return root
}

// newVersionCommand builds `pgpool version`.
func newVersionCommand(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print pgpool's version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintln(stdout, pgpool.VersionString)
			return err
		},
	}
}

// newCheckConfigCommand builds `pgpool check-config FILE`.
func newCheckConfigCommand(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "check-config FILE",
		Short: "Check a pgbouncer.ini and its auth_file; print every problem and warning",
		Long: `check-config reads a pgbouncer.ini, the files it includes and its auth_file, and
prints every error and warning with its file and line. It exits with status 1
if there are errors, 0 otherwise (warnings alone do not fail).`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return checkConfig(stdout, args[0])
		},
	}
}

// checkConfig prints the problems and warnings of the configuration at path.
func checkConfig(w io.Writer, path string) error {
	_, warnings, err := loadConfig(path)
	for _, s := range warnings {
		fmt.Fprintln(w, "warning:", s)
	}
	var errs ConfigErrors
	if err != nil && !errors.As(err, &errs) {
		errs = ConfigErrors{err}
	}
	for _, e := range errs {
		fmt.Fprintln(w, "error:", e)
	}
	if len(errs) > 0 {
		fmt.Fprintf(w, "%s: %d error(s), %d warning(s)\n", path, len(errs), len(warnings))
		return &cli.ExitError{Code: 1}
	}
	fmt.Fprintf(w, "%s: ok, %d warning(s)\n", path, len(warnings))
	return nil
}
