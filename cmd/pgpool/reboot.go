package main

import (
	"context"
	"fmt"
	"time"

	"github.com/poolsuite/poolsuite/internal/cli"
	"github.com/poolsuite/poolsuite/internal/pgpool"
)

// -R/--reboot, PgBouncer's online restart: the new process connects to the running
// one's admin console over <unix_socket_dir>/.s.PGSQL.<listen_port> as its own OS user,
// runs SUSPEND and SHOW FDS (which hands over the listeners and every client, with
// their sockets, between transactions), serves them, and sends SHUTDOWN; the old
// process then exits.

// takeoverSlack is how long the takeover may take beyond suspend_timeout.
const takeoverSlack = 30 * time.Second

// checkReboot refuses -R with a configuration that has no unix socket to take over
// through.
func checkReboot(rc *runConfig) error {
	if rc.Ini.UnixSocketDir == "" {
		return fmt.Errorf("%w: -R needs unix_socket_dir: the running process is reached through its unix socket", ErrOnlineRestart)
	}
	return nil
}

// takeOver takes the listeners and clients of the running process for s.pl and
// writes the pidfile in its place. On failure the pooler is shut down.
func (s *supervisor) takeOver(ctx context.Context, rc *runConfig) (*pgpool.Takeover, error) {
	path := unixSocketPath(rc.Ini.UnixSocketDir, rc.Ini.ListenPort)
	wait := rc.Pooler.SuspendTimeout
	if wait <= 0 {
		wait = 10 * time.Second
	}
	tctx, cancel := context.WithTimeout(ctx, wait+takeoverSlack)
	defer cancel()
	s.log.Info("online restart: taking over", "socket", path)
	tk, err := s.pl.TakeOver(tctx, path)
	if err == nil && rc.Ini.Pidfile != "" {
		// The clients are taken: a pidfile that cannot be written does not undo that.
		if perr := cli.TakeOverPidfile(rc.Ini.Pidfile, tk.OldPID); perr != nil {
			s.log.Warn("online restart: cannot write the pidfile", "err", perr)
		}
	}
	if err != nil {
		s.log.Error("cannot start", "err", err)
		c, stop := context.WithCancel(context.Background())
		stop()
		s.pl.Shutdown(c)
		return nil, &cli.ExitError{Code: 1, Err: fmt.Errorf("%w: %w", ErrOnlineRestart, err)}
	}
	return tk, nil
}

// finishTakeover tells the old process to exit, once this one serves.
func (s *supervisor) finishTakeover(tk *pgpool.Takeover) {
	ctx, cancel := context.WithTimeout(context.Background(), takeoverSlack)
	defer cancel()
	if err := tk.Finish(ctx); err != nil {
		s.log.Warn("online restart: the old process did not confirm its shutdown", "err", err, "old_pid", tk.OldPID)
		return
	}
	s.log.Info("online restart: the old process is shutting down", "old_pid", tk.OldPID, "clients", tk.Clients)
}
