package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/poolsuite/poolsuite/internal/cli"
	"github.com/poolsuite/poolsuite/internal/config/nutyml"
	"github.com/poolsuite/poolsuite/internal/kv"
	"github.com/poolsuite/poolsuite/internal/kv/kvmemcache"
	"github.com/poolsuite/poolsuite/internal/kv/kvredis"
	"github.com/poolsuite/poolsuite/internal/version"
	"github.com/poolsuite/poolsuite/protocol/memcache"
	"github.com/poolsuite/poolsuite/protocol/redis"
)

// Version is kvproxy's version: the suite's, which pgpool reports too.
const Version = version.Version

// DefaultConfig is the file kvproxy reads without -c, where Debian's nutcracker
// package keeps it.
const DefaultConfig = "/etc/nutcracker/nutcracker.yml"

func main() {
	os.Exit(execute(context.Background(), os.Args[1:], os.Stdout, os.Stderr, func(o *options) {
		runtime.GOMAXPROCS(cli.Procs(o.procs, os.Getenv("GOMAXPROCS") != "", runtime.GOMAXPROCS(0)))
	}))
}

// options are the command line settings of a run.
type options struct {
	config          string
	testConf        bool
	statsPort       int
	statsAddr       string
	statsInterval   int
	metricsAddr     string
	logLevel        string
	logFormat       string
	verbosity       int
	output          string
	daemonize       bool
	describeStats   bool
	pidFile         string
	mbufSize        int
	showVersion     bool
	shutdownTimeout time.Duration
	maxBulk         int
	maxArgs         int
	maxItemSize     int
	upgradeSocket   string
	takeover        string
	procs           int

	stderr io.Writer
	// signals, when set, replaces the process's signals (tests).
	signals <-chan os.Signal
	// started, when set, receives the running proxy (tests).
	started chan<- *kv.Proxy
}

// execute runs the command line and returns the exit status.
func execute(ctx context.Context, args []string, stdout, stderr io.Writer, hook func(*options)) int {
	return cli.Execute(ctx, newRootCommand(stdout, stderr, hook), "kvproxy", args, stderr)
}

func newRootCommand(stdout, stderr io.Writer, hook func(*options)) *cobra.Command {
	opts := &options{stderr: stderr}
	root := &cobra.Command{
		Use:   "kvproxy [-c FILE] [nutcracker's options]",
		Short: "A twemproxy-compatible sharding proxy for Redis and memcached",
		Long: `kvproxy reads twemproxy's nutcracker.yml and shards keys over Redis or
memcached servers exactly as twemproxy does, with a finite default timeout (1s), replicas,
separate server passwords, live reload (SIGHUP) and Prometheus metrics.`,
		Example: `  kvproxy -c /etc/nutcracker/nutcracker.yml
  kvproxy -d -o /var/log/nutcracker/nutcracker.log -p /run/nutcracker/nutcracker.pid -v 6
  kvproxy -t -c nutcracker.yml
  kvproxy check-config /etc/nutcracker/nutcracker.yml`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case opts.showVersion:
				return printBanner(stderr)
			case opts.describeStats:
				return describeStats(stderr)
			case opts.config == "":
				_ = cmd.Usage()
				return &cli.ExitError{Code: 2, Err: errors.New("no configuration file given (-c FILE)")}
			case opts.testConf:
				return testConf(stderr, opts.config)
			}
			if err := checkFlags(cmd, opts); err != nil {
				return err
			}
			if opts.daemonize && !cli.Daemonized() {
				// nutcracker's -d: the detached copy of this process does the work.
				if _, err := cli.Daemonize(""); err != nil {
					return &cli.ExitError{Code: 1, Err: err}
				}
				return nil
			}
			if hook != nil {
				hook(opts)
			}
			return run(cmd.Context(), opts)
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetOut(stdout)
	root.SetErr(stderr)
	f := root.Flags()
	f.StringVarP(&opts.config, "config", "c", DefaultConfig, "the nutcracker.yml to run with")
	f.StringVar(&opts.config, "conf-file", DefaultConfig, "the same as --config (nutcracker's long name)")
	f.BoolVarP(&opts.testConf, "test-conf", "t", false, "check the configuration and exit (as check-config)")
	f.BoolVarP(&opts.showVersion, "version", "V", false, "print the version banner and exit")
	f.BoolVarP(&opts.daemonize, "daemonize", "d", false, "run as a daemon (detached, in a session of its own)")
	f.BoolVarP(&opts.describeStats, "describe-stats", "D", false, "print the stats' descriptions and exit")
	f.IntVarP(&opts.verbosity, "verbose", "v", cli.DefaultVerbosity, "log level on nutcracker's scale, 0-11 (5: notices; 7 and more: debug); SIGTTIN/SIGTTOU move it")
	f.StringVarP(&opts.output, "output", "o", "", "log to this file instead of standard error (reopened on SIGHUP)")
	f.StringVarP(&opts.pidFile, "pid-file", "p", "", "write the process id to this file")
	f.IntVarP(&opts.mbufSize, "mbuf-size", "m", 16384, "accepted for nutcracker compatibility (512-16777216); kvproxy sizes its buffers itself")
	f.IntVarP(&opts.statsPort, "stats-port", "s", 22222, "port of twemproxy's JSON stats (0 disables them)")
	f.StringVarP(&opts.statsAddr, "stats-addr", "a", "0.0.0.0", "address of twemproxy's JSON stats")
	f.IntVarP(&opts.statsInterval, "stats-interval", "i", 30000, "accepted for nutcracker compatibility; stats are always current")
	f.StringVar(&opts.metricsAddr, "metrics-addr", "", "serve Prometheus metrics at http://ADDR/metrics (default: the file's metrics_listen)")
	f.StringVar(&opts.logLevel, "log-level", "", "log level by name: debug, info, warn, error (instead of -v)")
	f.StringVar(&opts.logFormat, "log-format", "text", "log format: text or json")
	f.DurationVar(&opts.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long SIGINT/SIGTERM wait for requests in flight")
	f.IntVar(&opts.maxBulk, "max-bulk", redis.DefaultMaxBulk, "largest bulk string a client may send, in bytes")
	f.IntVar(&opts.maxArgs, "max-args", redis.DefaultMaxArgs, "most arguments a client request may have")
	f.IntVar(&opts.maxItemSize, "max-item-size", memcache.DefaultMaxValue, "largest memcached value a client may store, in bytes (set it to the servers' -I)")
	f.StringVar(&opts.upgradeSocket, "upgrade-socket", "", "listen on this unix socket for a new kvproxy taking over (default: PIDFILE.upgrade with -p, else none; \"off\" for none)")
	f.IntVar(&opts.procs, "procs", 0, "threads running Go code (GOMAXPROCS); 0: 1 on a machine of up to 2 CPUs, else every CPU (the GOMAXPROCS environment variable overrides 0)")
	f.StringVar(&opts.takeover, "takeover", "", "take the listeners and clients over from the kvproxy whose upgrade socket this is, without dropping a client")
	root.AddCommand(newCheckConfigCommand(stdout), newVersionCommand(stdout))
	return root
}

func newVersionCommand(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print kvproxy's version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintf(stdout, "kvproxy %s\n", Version)
			return err
		},
	}
}

func newCheckConfigCommand(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "check-config FILE",
		Short: "Check a nutcracker.yml; print every problem with its line",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return checkConfig(stdout, args[0])
		},
	}
}

// testConf is nutcracker's -t: every problem of the file on standard error, then
// whether its syntax is ok (exit 0) or invalid (exit 1), in nutcracker's words.
func testConf(w io.Writer, path string) error {
	err := checkConfig(w, path)
	verdict := "ok"
	if err != nil {
		verdict = "invalid"
	}
	fmt.Fprintf(w, "kvproxy: configuration file '%s' syntax is %s\n", path, verdict)
	return err
}

// printBanner is -V: nutcracker's banner with kvproxy's name and version.
func printBanner(w io.Writer) error {
	_, err := fmt.Fprintf(w, "This is kvproxy-%s (nutcracker-0.5.0 compatible)\n\n", Version)
	return err
}

// statDescriptions are twemproxy's stats with its descriptions, as -D prints them.
var statDescriptions = [2][][2]string{
	{
		{"client_eof", "# eof on client connections"},
		{"client_err", "# errors on client connections"},
		{"client_connections", "# active client connections"},
		{"server_ejects", "# times backend server was ejected"},
		{"forward_error", "# times we encountered a forwarding error"},
		{"fragments", "# fragments created from a multi-vector request"},
	},
	{
		{"server_eof", "# eof on server connections"},
		{"server_err", "# errors on server connections"},
		{"server_timedout", "# timeouts on server connections"},
		{"server_connections", "# active server connections"},
		{"server_ejected_at", "timestamp when server was ejected in usec since epoch"},
		{"requests", "# requests"},
		{"request_bytes", "total request bytes"},
		{"responses", "# responses"},
		{"response_bytes", "total response bytes"},
		{"in_queue", "# requests in incoming queue"},
		{"in_queue_bytes", "current request bytes in incoming queue"},
		{"out_queue", "# requests in outgoing queue"},
		{"out_queue_bytes", "current request bytes in outgoing queue"},
	},
}

// describeStats is -D: the banner, then each stat with its description.
func describeStats(w io.Writer) error {
	printBanner(w)
	for i, title := range []string{"pool stats:", "server stats:"} {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w, title)
		for _, d := range statDescriptions[i] {
			fmt.Fprintf(w, "  %-20s\"%s\"\n", d[0], d[1])
		}
	}
	return nil
}

// checkConfig prints every problem of the file at path, one per line, and fails with
// status 1 if there is any.
func checkConfig(w io.Writer, path string) error {
	cfg, err := nutyml.Load(path)
	if err != nil {
		var list nutyml.Errors
		if errors.As(err, &list) {
			for _, e := range list {
				fmt.Fprintf(w, "%s: %s\n", path, e.Error())
			}
		} else {
			fmt.Fprintf(w, "%s: %v\n", path, err)
		}
		return &cli.ExitError{Code: 1}
	}
	fmt.Fprintf(w, "%s: configuration OK (%d pools)\n", path, len(cfg.Pools))
	return nil
}

// newLogger makes the logger of a run, writing to w at the level v follows.
func newLogger(opts *options, w io.Writer, v *cli.Verbosity) (*slog.Logger, error) {
	if opts.logLevel != "" {
		var level slog.Level
		if err := level.UnmarshalText([]byte(opts.logLevel)); err != nil {
			return nil, &cli.ExitError{Code: 2, Err: fmt.Errorf("--log-level %q: want debug, info, warn or error", opts.logLevel)}
		}
		for n := cli.MinVerbosity; n <= cli.MaxVerbosity; n++ {
			if cli.SlogLevel(n) == level || (level > slog.LevelInfo && cli.SlogLevel(n) <= level) {
				v.Set(n)
				break
			}
		}
	}
	ho := &slog.HandlerOptions{Level: v.Leveler()}
	switch opts.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, ho)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, ho)), nil
	}
	return nil, &cli.ExitError{Code: 2, Err: fmt.Errorf("--log-format %q: want text or json", opts.logFormat)}
}

// checkFlags refuses values nutcracker refuses too.
func checkFlags(cmd *cobra.Command, opts *options) error {
	bad := func(format string, a ...any) error {
		_ = cmd.Usage()
		return &cli.ExitError{Code: 1, Err: fmt.Errorf(format, a...)}
	}
	if opts.statsPort < 0 || opts.statsPort > 65535 {
		return bad("option -s value %d is not a valid port", opts.statsPort)
	}
	if opts.mbufSize < 512 || opts.mbufSize > 16777216 {
		return bad("mbuf chunk size must be between 512 and 16777216 bytes")
	}
	if opts.verbosity < cli.MinVerbosity || opts.verbosity > cli.MaxVerbosity {
		return bad("option -v value %d: want 0 to 11", opts.verbosity)
	}
	if opts.procs < 0 {
		return bad("option --procs value %d: want 0 or more", opts.procs)
	}
	return nil
}

// load reads and checks the file.
func load(path string) (*nutyml.Config, error) {
	cfg, err := nutyml.Load(path)
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

// run serves until SIGINT/SIGTERM (or ctx), reloading on SIGHUP.
func run(ctx context.Context, opts *options) error {
	verbosity := cli.NewVerbosity(opts.verbosity)
	var logOut io.Writer = opts.stderr
	var logFile *cli.LogFile
	if opts.output != "" && opts.output != "stderr" {
		lf, err := cli.OpenLogFile(opts.output)
		if err != nil {
			return &cli.ExitError{Code: 1, Err: err}
		}
		defer lf.Close()
		logFile, logOut = lf, lf
	}
	log, err := newLogger(opts, logOut, verbosity)
	if err != nil {
		return err
	}
	// ownPid: the pid file is this process's to remove at exit. It is not once a new
	// process took over: that one writes its own in its place as this one exits, and
	// a removal here (read this id, the new one renamed in, remove) could take it.
	ownPid := false
	defer func() {
		if ownPid {
			cli.RemovePidfile(opts.pidFile)
		}
	}()
	if opts.pidFile != "" && opts.takeover == "" {
		if err := cli.WritePidfile(opts.pidFile); err != nil {
			return &cli.ExitError{Code: 1, Err: err}
		}
		ownPid = true
	}
	cfg, err := load(opts.config)
	if err != nil {
		return &cli.ExitError{Code: 1, Err: fmt.Errorf("%s: %w", opts.config, err)}
	}
	// A takeover starts only once the file is good: until Ready the running process
	// is untouched and goes on serving if this one fails.
	var takeover *kv.Takeover
	if opts.takeover != "" {
		takeover, err = kv.DialTakeover(opts.takeover)
		if err != nil {
			return &cli.ExitError{Code: 1, Err: err}
		}
	}
	statsAddr := ""
	if opts.statsPort > 0 {
		statsAddr = net.JoinHostPort(opts.statsAddr, strconv.Itoa(opts.statsPort))
	}
	sigs := opts.signals
	if sigs == nil {
		ch := make(chan os.Signal, 4)
		signal.Notify(ch, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM, syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGSEGV)
		defer signal.Stop(ch)
		sigs = ch
	}
	limits := redis.Limits{MaxBulk: opts.maxBulk, MaxArgs: opts.maxArgs}
	p, err := kv.Start(cfg, kv.Options{
		NewCodec:    newCodec(limits, memcache.Limits{MaxValue: opts.maxItemSize}),
		Logger:      log,
		StatsAddr:   statsAddr,
		MetricsAddr: opts.metricsAddr,
		Takeover:    takeover,
	})
	if err != nil {
		if takeover != nil {
			takeover.Abort()
		}
		return &cli.ExitError{Code: 1, Err: err}
	}
	var takeoverDone <-chan struct{}
	if takeover != nil {
		if err := takeover.Ready(p, 2*opts.shutdownTimeout+time.Minute); err != nil {
			_ = shutdown(p, log, opts.shutdownTimeout, nil)
			return &cli.ExitError{Code: 1, Err: err}
		}
		takeoverDone = takeover.Done()
		if opts.pidFile != "" {
			if err := cli.TakeOverPidfile(opts.pidFile, takeover.OldPid()); err != nil {
				log.Error("pid file not written", "err", err)
			} else {
				ownPid = true
			}
		}
		log.Info("took over the listeners; the old process hands its clients over", "old_pid", takeover.OldPid())
	}
	upgradeSocket := opts.upgradeSocket
	switch {
	case upgradeSocket == "off":
		upgradeSocket = ""
	case upgradeSocket == "" && opts.pidFile != "":
		upgradeSocket = opts.pidFile + ".upgrade"
	}
	if upgradeSocket != "" && takeover == nil {
		if err := p.ServeUpgrades(upgradeSocket, opts.shutdownTimeout); err != nil {
			_ = shutdown(p, log, opts.shutdownTimeout, nil)
			return &cli.ExitError{Code: 1, Err: err}
		}
	}
	log.Info("kvproxy started", "version", Version, "config", opts.config, "pools", len(cfg.Pools), "stats", statsAddr, "upgrade_socket", upgradeSocket)
	// systemd's Type=notify: ready now, reloading around SIGHUP, stopping at the end.
	notify, err := cli.NewNotifier()
	if err != nil {
		log.Warn("systemd notifications off", "err", err)
	}
	defer notify.Close()
	notify.Ready()
	notify.StartWatchdog()
	if opts.started != nil {
		opts.started <- p
	}
	for {
		select {
		case <-ctx.Done():
			notify.Stopping()
			return shutdown(p, log, opts.shutdownTimeout, nil)
		case <-takeoverDone:
			takeoverDone = nil
			if err := takeover.Err(); err != nil {
				log.Warn("takeover: the old process stopped handing clients over", "err", err, "clients", takeover.Adopted())
			} else {
				log.Info("takeover complete", "old_pid", takeover.OldPid(), "clients", takeover.Adopted())
			}
			if upgradeSocket != "" {
				if err := p.ServeUpgrades(upgradeSocket, opts.shutdownTimeout); err != nil {
					log.Error("upgrade socket not opened; a later upgrade cannot take over", "err", err)
				}
			}
		case <-p.TakenOver():
			log.Info("a new process took over; exiting")
			ownPid = false
			return shutdown(p, log, opts.shutdownTimeout, nil)
		case sig := <-sigs:
			switch sig {
			case syscall.SIGHUP:
				notify.Reloading()
				// As nutcracker: reopen the log file (logrotate); and reload the file.
				if logFile != nil {
					if err := logFile.Reopen(); err != nil {
						log.Error("log file not reopened", "err", err)
					} else {
						log.Info("signal SIGHUP received, log file reopened", "output", logFile.Path())
					}
				}
				reload(p, log, opts.config)
				notify.Ready()
			case syscall.SIGTTIN:
				log.Warn(fmt.Sprintf("signal SIGTTIN received, up log level to %d", verbosity.Up()))
			case syscall.SIGTTOU:
				log.Warn(fmt.Sprintf("signal SIGTTOU received, down log level to %d", verbosity.Down()))
			case syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGSEGV:
				// A SIGSEGV sent by kill (a real fault still crashes): nutcracker dumps
				// core; kvproxy logs it by name, as it does the others, and goes on.
				log.Info(fmt.Sprintf("signal %s received; nothing to do", signalName(sig)), "signal", sig.String())
			default:
				log.Info("shutting down", "signal", sig.String())
				notify.Stopping()
				return shutdown(p, log, opts.shutdownTimeout, sigs)
			}
		}
	}
}

// signalName is sig's name as nutcracker logs it ("SIGUSR1").
func signalName(sig os.Signal) string {
	if s, ok := sig.(syscall.Signal); ok {
		if name := unix.SignalName(s); name != "" {
			return name
		}
	}
	return sig.String()
}

// newCodec returns the codec of each pool: Redis with redis: true, memcached
// otherwise, as in twemproxy.
func newCodec(rl redis.Limits, ml memcache.Limits) func(*nutyml.Pool) (kv.Codec, error) {
	rc, mc := kvredis.NewCodecFunc(rl), kvmemcache.NewCodecFunc(ml)
	return func(p *nutyml.Pool) (kv.Codec, error) {
		if p.Redis {
			return rc(p)
		}
		return mc(p)
	}
}

// reload re-reads the file and applies it; on any problem the running configuration
// stays and every problem is logged with its line.
func reload(p *kv.Proxy, log *slog.Logger, path string) {
	cfg, err := load(path)
	if err == nil {
		err = p.Reload(cfg)
	}
	if err != nil {
		var list nutyml.Errors
		if errors.As(err, &list) {
			for _, e := range list {
				log.Error("reload refused; running configuration kept", "config", path, "problem", e.Error())
			}
			return
		}
		log.Error("reload refused; running configuration kept", "config", path, "err", err)
		return
	}
	log.Info("configuration reloaded", "config", path, "pools", len(cfg.Pools))
}

// shutdown drains the proxy; a second signal cuts the wait short.
func shutdown(p *kv.Proxy, log *slog.Logger, timeout time.Duration, sigs <-chan os.Signal) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if sigs != nil {
		go func() {
			select {
			case <-sigs:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	if err := p.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return &cli.ExitError{Code: 1, Err: err}
	}
	log.Info("kvproxy stopped")
	return nil
}
