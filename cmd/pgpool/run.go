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
	quiet           bool          // -q: no logging to standard error
	daemon          bool          // -d
	reboot          bool          // -R: take over from the running process (reboot.go)
	user            string        // -u: overrides the ini's user
	shutdownTimeout time.Duration // bound of a graceful shutdown; 0: wait for every transaction
	debugAddr       string        // pprof/expvar address; "" off
	stderr          io.Writer     // where logs go unless -q (and -d)
	signals         bool          // handle the signals (off in tests that drive ctx)
}

// AllowRootEnv, set to 1 in the environment, lets pgpool run as root without a user
// to switch to (tests and containers that mean it); PgBouncer has no such escape.
const AllowRootEnv = "PGPOOL_ALLOW_ROOT"

// immediateExitWait bounds how long a second signal waits for connections to
// close before run returns anyway.
const immediateExitWait = 2 * time.Second

// supervisor is a running pgpool: the pooler, its listeners, and the current
// configuration, which reload replaces.
type supervisor struct {
	opts    runOptions
	log     *slog.Logger
	level   *slog.LevelVar
	pl      *pgpool.Pooler
	logFile *cli.LogFile  // the ini's logfile; nil if none
	notify  *cli.Notifier // systemd's notify socket; nil if none

	mu  sync.Mutex // serialises reloads (SIGHUP and the admin console's RELOAD)
	cur *runConfig
}

// run starts pgpool and serves until ctx ends or a shutdown signal arrives (if
// opts.signals): SIGINT shuts down gracefully, SIGTERM at once with status 1, as
// PgBouncer 1.18. It returns an *cli.ExitError for a configuration that does not
// load.
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
	osUser := rc.Ini.OSUser
	if opts.user != "" {
		osUser = opts.user
	}
	creds, err := cli.CheckUser(osUser, os.Getenv(AllowRootEnv) == "1")
	if errors.Is(err, cli.ErrRunAsRoot) {
		return &cli.ExitError{Code: 1, Err: fmt.Errorf("pgpool %w: set user = in [pgbouncer] or give -u USER", err)}
	} else if err != nil {
		return &cli.ExitError{Code: 1, Err: err}
	}
	if opts.daemon && !cli.Daemonized() {
		// PgBouncer's -d: checked here, where the error still reaches the terminal.
		if rc.Ini.Pidfile == "" {
			return &cli.ExitError{Code: 1, Err: ErrDaemonPidfile}
		}
		if err := checkPidfile(rc.Ini.Pidfile); err != nil && !opts.reboot {
			return &cli.ExitError{Code: 1, Err: err}
		}
		if _, err := cli.Daemonize(""); err != nil {
			return &cli.ExitError{Code: 1, Err: err}
		}
		return nil
	}

	s := &supervisor{opts: opts, cur: rc, level: new(slog.LevelVar)}
	var logOut io.Writer = io.Discard
	if !opts.quiet && !cli.Daemonized() {
		logOut = opts.stderr
	}
	if rc.Ini.Logfile != "" {
		lf, err := cli.OpenLogFile(rc.Ini.Logfile)
		if err != nil {
			return &cli.ExitError{Code: 1, Err: fmt.Errorf("pgpool: logfile: %w", err)}
		}
		defer lf.Close()
		s.logFile = lf
		if logOut == io.Discard {
			logOut = lf
		} else {
			// As PgBouncer: the logfile does not stop logging to standard error; -q does.
			logOut = io.MultiWriter(lf, logOut)
		}
	}
	h, syslogErr := newLogHandler(logOut, rc.Ini, s.level)
	s.log = slog.New(h)
	if syslogErr != nil {
		s.log.Warn("cannot open syslog", "err", syslogErr)
	}
	s.setLevel(rc)
	for _, w := range warnings {
		s.log.Warn("configuration warning", "warning", w)
	}
	s.notify, err = cli.NewNotifier()
	if err != nil {
		s.log.Warn("systemd notifications off", "err", err)
	}
	defer s.notify.Close()

	var sigs chan os.Signal
	if opts.signals {
		// Subscribe before the sockets are bound: the kernel completes connections to a
		// bound socket at once, so a caller that sees pgpool accept may signal it next,
		// and the signal's default action must not kill it then.
		sigs = make(chan os.Signal, 8)
		signal.Notify(sigs, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM, syscall.SIGUSR1, syscall.SIGUSR2)
		defer signal.Stop(sigs)
	}
	var lns []net.Listener
	if opts.reboot {
		// The listeners come from the running process (takeOver, below).
		if err := checkReboot(rc); err != nil {
			s.log.Error("cannot start", "err", err)
			return &cli.ExitError{Code: 1, Err: err}
		}
	} else {
		if err := writePidfile(rc.Ini.Pidfile); err != nil {
			s.log.Error("cannot start", "err", err)
			return &cli.ExitError{Code: 1, Err: err}
		}
		defer removePidfile(rc.Ini.Pidfile)

		lns, err = listen(rc.Ini, s.log.Warn)
		if err != nil {
			s.log.Error("cannot start", "err", err)
			return &cli.ExitError{Code: 1, Err: err}
		}
	}
	// Root is given up once the sockets are bound (ports below 1024 included).
	if err := cli.SwitchUser(creds); err != nil {
		for _, ln := range lns {
			ln.Close()
		}
		s.log.Error("cannot start", "err", err)
		return &cli.ExitError{Code: 1, Err: err}
	}
	if creds != nil {
		s.log.Info("switched user", "user", creds.Name, "uid", creds.UID, "gid", creds.GID)
	}
	s.pl = pgpool.New(rc.Pooler, s.log)
	var tk *pgpool.Takeover
	if opts.reboot {
		if tk, err = s.takeOver(ctx, rc); err != nil {
			return err
		}
		lns = tk.Listeners
		defer removePidfile(rc.Ini.Pidfile)
	}
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
	if tk != nil {
		s.finishTakeover(tk)
	}
	s.notify.Ready()
	s.notify.StartWatchdog()

	var exitErr error
	fast := false
wait:
	for {
		select {
		case sig := <-sigs:
			switch sig {
			case syscall.SIGHUP:
				s.log.Info("got SIGHUP, re-reading config", "config", opts.config)
				s.notify.Reloading()
				s.reload()
				s.notify.Ready()
				continue
			case syscall.SIGUSR1:
				if s.pl.Pause() {
					s.log.Info("got SIGUSR1, pausing all activity")
				} else {
					s.log.Info("got SIGUSR1, but already paused/suspended")
				}
				continue
			case syscall.SIGUSR2:
				if s.pl.Resume() {
					s.log.Info("got SIGUSR2, continuing from PAUSE")
				} else {
					s.log.Info("got SIGUSR2, but not paused/suspended")
				}
				continue
			case syscall.SIGTERM:
				s.log.Info("got SIGTERM, fast exit")
				fast = true
			default:
				s.log.Info("got SIGINT, shutting down", "signal", sig.String(), "timeout", opts.shutdownTimeout)
			}
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
	s.notify.Stopping()
	if fast || s.shutdown(sigs) {
		s.fastExit()
		exitErr = &cli.ExitError{Code: 1}
	}
	s.log.Info("pgpool stopped")
	return exitErr
}

// fastExit closes every connection at once (SIGTERM).
func (s *supervisor) fastExit() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan error, 1)
	go func() { done <- s.pl.Shutdown(ctx) }()
	select {
	case <-done:
	case <-time.After(immediateExitWait):
	}
}

// shutdown stops accepting and waits for transactions to finish, at most
// opts.shutdownTimeout; a second SIGINT cuts the wait short. It reports a SIGTERM
// during the wait, which asks for a fast exit instead.
func (s *supervisor) shutdown(sigs <-chan os.Signal) (fast bool) {
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
			return false
		case sig := <-sigs:
			switch sig {
			case syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2:
				continue
			case syscall.SIGTERM:
				s.log.Warn("got SIGTERM, fast exit")
				cancelNow()
				return true
			}
			s.log.Warn("second signal: exiting now", "signal", sig.String())
			cancelNow()
			select {
			case <-done:
			case <-time.After(immediateExitWait):
			}
			return false
		}
	}
}

// reload re-reads the configuration; on errors it logs them and keeps the
// running one.
func (s *supervisor) reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.logFile != nil {
		// As PgBouncer, every reload reopens the logfile (logrotate moved it away).
		if err := s.logFile.Reopen(); err != nil {
			s.log.Error("logfile not reopened", "err", err)
		} else {
			s.log.Info("logfile reopened", "logfile", s.logFile.Path())
		}
	}
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
// console's SET verbose), to which -v adds: debug from 1 on. (-q, as PgBouncer's,
// only keeps standard error silent.)
func (s *supervisor) setVerbose(n int) {
	switch {
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

// checkPidfile refuses a pidfile that names a live process, before -d detaches.
func checkPidfile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	pid, perr := strconv.Atoi(strings.TrimSpace(string(data)))
	if perr == nil && pid > 0 && pid != os.Getpid() && syscall.Kill(pid, 0) == nil {
		return fmt.Errorf("%w %s: %w (pid %d)", ErrPidfile, path, cli.ErrPidfileInUse, pid)
	}
	return nil
}

// writePidfile writes the process id to path ("" does nothing). A pidfile that
// names a live process is an error, as in PgBouncer; a stale one is replaced.
func writePidfile(path string) error {
	if path == "" {
		return nil
	}
	if err := cli.WritePidfile(path); err != nil {
		return fmt.Errorf("%w: %w", ErrPidfile, err)
	}
	return nil
}

// removePidfile removes path if it still holds this process's id.
func removePidfile(path string) {
	if path != "" {
		cli.RemovePidfile(path)
	}
}
