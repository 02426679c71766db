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
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/poolsuite/poolsuite/internal/cli"
	"github.com/poolsuite/poolsuite/internal/config/nutyml"
	"github.com/poolsuite/poolsuite/internal/kv"
	"github.com/poolsuite/poolsuite/internal/kv/kvredis"
	"github.com/poolsuite/poolsuite/protocol/redis"
)

// Version is kvproxy's version.
const Version = "0.1.0"

func main() {
	os.Exit(execute(context.Background(), os.Args[1:], os.Stdout, os.Stderr, nil))
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
	shutdownTimeout time.Duration
	maxBulk         int
	maxArgs         int

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
		Use:   "kvproxy --config FILE",
		Short: "A twemproxy-compatible sharding proxy for Redis",
		Long: `kvproxy reads twemproxy's nutcracker.yml and shards keys over Redis servers
exactly as twemproxy does, with a finite default timeout (1s), replicas,
separate server passwords, live reload (SIGHUP) and Prometheus metrics.`,
		Example: `  kvproxy -c /etc/nutcracker.yml
  kvproxy check-config /etc/nutcracker.yml`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.config == "" {
				_ = cmd.Usage()
				return &cli.ExitError{Code: 2, Err: errors.New("no configuration file given (--config FILE)")}
			}
			if opts.testConf {
				return checkConfig(stdout, opts.config)
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
	f.StringVarP(&opts.config, "config", "c", "", "the nutcracker.yml to run with")
	f.BoolVarP(&opts.testConf, "test-conf", "t", false, "check the configuration and exit (as check-config)")
	f.IntVarP(&opts.statsPort, "stats-port", "s", 22222, "port of twemproxy's JSON stats (0 disables them)")
	f.StringVarP(&opts.statsAddr, "stats-addr", "a", "0.0.0.0", "address of twemproxy's JSON stats")
	f.IntVarP(&opts.statsInterval, "stats-interval", "i", 30000, "accepted for nutcracker compatibility; stats are always current")
	f.StringVar(&opts.metricsAddr, "metrics-addr", "", "serve Prometheus metrics at http://ADDR/metrics (default: the file's metrics_listen)")
	f.StringVar(&opts.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.StringVar(&opts.logFormat, "log-format", "text", "log format: text or json")
	f.DurationVar(&opts.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long SIGINT/SIGTERM wait for requests in flight")
	f.IntVar(&opts.maxBulk, "max-bulk", redis.DefaultMaxBulk, "largest bulk string a client may send, in bytes")
	f.IntVar(&opts.maxArgs, "max-args", redis.DefaultMaxArgs, "most arguments a client request may have")
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

// checkConfig prints every problem of the file at path, one per line, and fails with
// status 1 if there is any.
func checkConfig(w io.Writer, path string) error {
	cfg, err := nutyml.Load(path)
	if err == nil {
		for _, p := range cfg.Pools {
			if !p.Redis {
				err = &nutyml.ConfigError{Line: p.Line, Pool: p.Name, Key: "redis", Msg: "memcached pools are not supported yet; set redis: true", Err: nutyml.ErrInvalidValue}
				break
			}
		}
	}
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

func newLogger(opts *options) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(opts.logLevel)); err != nil {
		return nil, &cli.ExitError{Code: 2, Err: fmt.Errorf("--log-level %q: want debug, info, warn or error", opts.logLevel)}
	}
	ho := &slog.HandlerOptions{Level: level}
	switch opts.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(opts.stderr, ho)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(opts.stderr, ho)), nil
	}
	return nil, &cli.ExitError{Code: 2, Err: fmt.Errorf("--log-format %q: want text or json", opts.logFormat)}
}

// load reads and checks the file; memcached pools are refused until supported.
func load(path string) (*nutyml.Config, error) {
	cfg, err := nutyml.Load(path)
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

// run serves until SIGINT/SIGTERM (or ctx), reloading on SIGHUP.
func run(ctx context.Context, opts *options) error {
	log, err := newLogger(opts)
	if err != nil {
		return err
	}
	cfg, err := load(opts.config)
	if err != nil {
		return &cli.ExitError{Code: 1, Err: fmt.Errorf("%s: %w", opts.config, err)}
	}
	statsAddr := ""
	if opts.statsPort > 0 {
		statsAddr = net.JoinHostPort(opts.statsAddr, strconv.Itoa(opts.statsPort))
	}
	sigs := opts.signals
	if sigs == nil {
		ch := make(chan os.Signal, 4)
		signal.Notify(ch, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
		defer signal.Stop(ch)
		sigs = ch
	}
	limits := redis.Limits{MaxBulk: opts.maxBulk, MaxArgs: opts.maxArgs}
	p, err := kv.Start(cfg, kv.Options{
		NewCodec:    kvredis.NewCodecFunc(limits),
		Logger:      log,
		StatsAddr:   statsAddr,
		MetricsAddr: opts.metricsAddr,
	})
	if err != nil {
		return &cli.ExitError{Code: 1, Err: err}
	}
	log.Info("kvproxy started", "version", Version, "config", opts.config, "pools", len(cfg.Pools), "stats", statsAddr)
	if opts.started != nil {
		opts.started <- p
	}
	for {
		select {
		case <-ctx.Done():
			return shutdown(p, log, opts.shutdownTimeout, nil)
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				reload(p, log, opts.config)
				continue
			}
			log.Info("shutting down", "signal", sig.String())
			return shutdown(p, log, opts.shutdownTimeout, sigs)
		}
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
