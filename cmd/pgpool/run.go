package main

import (
	"context"
	"errors"
	"expvar"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // served on --debug-addr only
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/poolsuite/poolsuite/internal/cli"
	"github.com/poolsuite/poolsuite/internal/pgpool"
)

// runOptions are the run command's flags.
type runOptions struct {
	config          string        // path of pgbouncer.ini
	verbose         int           // -v count
	quiet           bool          // -q
	shutdownTimeout time.Duration // bound of a graceful shutdown; 0: wait for every transaction
	debugAddr       string        // pprof/expvar address; "" off
	stderr          io.Writer     // where logs go when the ini sets no logfile
	signals         bool          // handle SIGHUP/SIGINT/SIGTERM (off in tests that drive ctx)
}

// immediateExitWait bounds how long a second signal waits for connections to
// close before run returns anyway.
const immediateExitWait = 2 * time.Second

// supervisor is a running pgpool: the pooler, its listeners, and the current
// configuration, which reload replaces.
type supervisor struct {
	opts  runOptions
	log   *slog.Logger
	level *slog.LevelVar
	pl    *pgpool.Pooler

	mu  sync.Mutex // serialises reloads (SIGHUP and the admin console's RELOAD)
	cur *runConfig
}

// run starts pgpool and serves until ctx ends or SIGINT/SIGTERM arrives (if
// opts.signals), then shuts down gracefully. It returns an *cli.ExitError for a
// configuration that does not load.
func run(ctx context.Context, opts runOptions) error {
	rc, warnings, err := loadConfig(opts.config)
	if err != nil {
		var errs ConfigErrors
		if errors.As(err, &errs) {
			for _, e := range errs {
				fmt.Fprintln(opts.stderr, "pgpool: error:", e)
			}
		}
		return &cli.ExitError{Code: 1, Err: fmt.Errorf("%w: %s", ErrConfig, opts.config)}
	}
	s := &supervisor{opts: opts, cur: rc, level: new(slog.LevelVar)}
	logOut, closeLog, err := openLog(rc.Ini.Logfile, opts.stderr)
	if err != nil {
		return &cli.ExitError{Code: 1, Err: err}
	}
	defer closeLog()
	h, syslogErr := newLogHandler(logOut, rc.Ini, s.level)
	s.log = slog.New(h)
	if syslogErr != nil {
		s.log.Warn("cannot open syslog", "err", syslogErr)
	}
	s.setLevel(rc)
	for _, w := range warnings {
		s.log.Warn("configuration warning", "warning", w)
	}

	if err := writePidfile(rc.Ini.Pidfile); err != nil {
		s.log.Error("cannot start", "err", err)
		return &cli.ExitError{Code: 1, Err: err}
	}
	defer removePidfile(rc.Ini.Pidfile)

	lns, err := listen(rc.Ini, s.log.Warn)
	if err != nil {
		s.log.Error("cannot start", "err", err)
		return &cli.ExitError{Code: 1, Err: err}
	}
	var sigs chan os.Signal
	if opts.signals {
		// Subscribe before announcing readiness, so a signal sent right after the
		// "listening" line is never lost.
		sigs = make(chan os.Signal, 4)
		signal.Notify(sigs, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
		defer signal.Stop(sigs)
	}
	s.pl = pgpool.New(rc.Pooler, s.log)
	shutdownReq := make(chan struct{}, 1)
	s.hookAdmin(shutdownReq)
	if opts.debugAddr != "" {
		if err := s.serveDebug(opts.debugAddr); err != nil {
			s.pl.Shutdown(context.Background())
			return &cli.ExitError{Code: 1, Err: err}
		}
	}

	serveErr := make(chan error, len(lns))
	addrs := make([]string, len(lns))
	for i, ln := range lns {
		addrs[i] = ln.Addr().String()
		go func() { serveErr <- s.pl.Serve(ln) }()
	}
	s.log.Info("pgpool started", "version", pgpool.Version, "pid", os.Getpid(),
		"config", opts.config, "listen", strings.Join(addrs, ","),
		"pool_mode", rc.Pooler.PoolMode, "databases", len(rc.Pooler.Databases))

	var exitErr error
wait:
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				s.log.Info("SIGHUP: reloading configuration", "config", opts.config)
				s.reload()
				continue
			}
			s.log.Info("shutting down", "signal", sig.String(), "timeout", opts.shutdownTimeout)
			break wait
		case <-shutdownReq:
			s.log.Info("shutting down", "reason", "admin console SHUTDOWN", "timeout", opts.shutdownTimeout)
			break wait
		case <-ctx.Done():
			s.log.Info("shutting down", "reason", context.Cause(ctx), "timeout", opts.shutdownTimeout)
			break wait
		case err := <-serveErr:
			if err != nil {
				s.log.Error("listener failed", "err", err)
				exitErr = &cli.ExitError{Code: 1, Err: fmt.Errorf("%w: %w", ErrListen, err)}
				break wait
			}
		}
	}
	s.shutdown(sigs)
	s.log.Info("pgpool stopped")
	return exitErr
}

// shutdown stops accepting and waits for transactions to finish, at most
// opts.shutdownTimeout; a second SIGINT/SIGTERM cuts the wait short.
func (s *supervisor) shutdown(sigs <-chan os.Signal) {
	ctx, cancel := context.Background(), context.CancelFunc(func() {})
	if s.opts.shutdownTimeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, s.opts.shutdownTimeout)
	}
	ctx, cancelNow := context.WithCancel(ctx)
	defer cancel()
	defer cancelNow()
	done := make(chan error, 1)
	go func() { done <- s.pl.Shutdown(ctx) }()
	for {
		select {
		case err := <-done:
			if err != nil {
				s.log.Warn("shutdown timeout reached; closed the remaining connections", "err", err)
			}
			return
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				continue
			}
			s.log.Warn("second signal: exiting now", "signal", sig.String())
			cancelNow()
			select {
			case <-done:
			case <-time.After(immediateExitWait):
			}
			return
		}
	}
}

// reload re-reads the configuration; on errors it logs them and keeps the
// running one.
func (s *supervisor) reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rc, warnings, err := loadConfig(s.opts.config)
	for _, w := range warnings {
		s.log.Warn("configuration warning", "warning", w)
	}
	if err != nil {
		var errs ConfigErrors
		if errors.As(err, &errs) {
			for _, e := range errs {
				s.log.Error("configuration error", "err", e)
			}
		}
		s.log.Error("reload failed; keeping the running configuration", "config", s.opts.config, "errors", len(errs))
		return err
	}
	old := s.cur.Ini
	if !slices.Equal(listenTargets(old), listenTargets(rc.Ini)) || old.SoReuseport != rc.Ini.SoReuseport {
		s.log.Warn("listen_addr, listen_port, unix_socket_dir and so_reuseport changes need a restart")
	}
	if old.Logfile != rc.Ini.Logfile || old.Pidfile != rc.Ini.Pidfile {
		s.log.Warn("logfile and pidfile changes need a restart")
	}
	s.setLevel(rc)
	s.pl.Reload(rc.Pooler)
	s.cur = rc
	return nil
}

// setLevel applies -v, -q and the ini's verbose.
func (s *supervisor) setLevel(rc *runConfig) { s.setVerbose(rc.Ini.Verbose) }

// setVerbose sets the log level for a verbose setting of n (the ini's, or the admin
// console's SET verbose), to which -v adds: debug from 1 on. -q keeps warnings only.
func (s *supervisor) setVerbose(n int) {
	switch {
	case s.opts.quiet:
		s.level.Set(slog.LevelWarn)
	case s.opts.verbose+n > 0:
		s.level.Set(slog.LevelDebug)
	default:
		s.level.Set(slog.LevelInfo)
	}
}

// hookAdmin connects the admin console's RELOAD and SHUTDOWN to the
// supervisor, when the pooler offers the hooks.
func (s *supervisor) hookAdmin(shutdownReq chan<- struct{}) {
	if h, ok := any(s.pl).(interface{ SetReloadFunc(func() error) }); ok {
		h.SetReloadFunc(s.reload)
	}
	if h, ok := any(s.pl).(interface{ SetVerboseFunc(func(int)) }); ok {
		h.SetVerboseFunc(func(n int) {
			s.setVerbose(n)
			s.log.Info("log level changed by the admin console", "verbose", n, "level", s.level.Level().String())
		})
	}
	if h, ok := any(s.pl).(interface{ SetShutdownFunc(func()) }); ok {
		h.SetShutdownFunc(func() {
			select {
			case shutdownReq <- struct{}{}:
			default:
			}
		})
	}
}

// serveDebug serves net/http/pprof and expvar (/debug/vars, with runtime
// MemStats) on addr.
func (s *supervisor) serveDebug(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%w on --debug-addr %s: %w", ErrListen, addr, err)
	}
	_ = expvar.Get("memstats") // registered by importing expvar
	s.log.Info("debug server listening", "addr", ln.Addr().String())
	go func() {
		srv := &http.Server{Handler: http.DefaultServeMux, ReadHeaderTimeout: 10 * time.Second}
		srv.Serve(ln)
	}()
	return nil
}

// openLog opens logfile for appending, or returns fallback when logfile is "".
func openLog(logfile string, fallback io.Writer) (io.Writer, func(), error) {
	if logfile == "" {
		return fallback, func() {}, nil
	}
	f, err := os.OpenFile(logfile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, nil, fmt.Errorf("pgpool: logfile: %w", err)
	}
	return f, func() { f.Close() }, nil
}

// writePidfile writes the process id to path ("" does nothing). A pidfile that
// names a live process is an error, as in PgBouncer; a stale one is replaced.
func writePidfile(path string) error {
	if path == "" {
		return nil
	}
	if data, err := os.ReadFile(path); err == nil {
		pid, perr := strconv.Atoi(strings.TrimSpace(string(data)))
		if perr == nil && pid > 0 && pid != os.Getpid() && syscall.Kill(pid, 0) == nil {
			return fmt.Errorf("%w %s: process %d is running", ErrPidfile, path, pid)
		}
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return fmt.Errorf("%w: %w", ErrPidfile, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("%w: %w", ErrPidfile, err)
	}
	return nil
}

// removePidfile removes path if it still holds this process's id.
func removePidfile(path string) {
	if path == "" {
		return
	}
	if data, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(data)) == strconv.Itoa(os.Getpid()) {
		os.Remove(path)
	}
}
