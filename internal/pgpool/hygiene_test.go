package pgpool

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Tests of the pool-hygiene settings: min_pool_size, server_idle_timeout,
// server_lifetime, server_check_query and server_check_delay, the reserve pool,
// max_db_connections, idle_transaction_timeout, client_idle_timeout and query_timeout.
// Durations are short so the file runs in seconds; waits poll with a deadline.

// hygieneCtx bounds one hygiene test.
func hygieneCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitServerConns polls until the fixture's role has want backends.
func (f *fixture) waitServerConns(ctx context.Context, t *testing.T, su *pgx.Conn, want int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d server connections", want), 10*time.Second, func() bool {
		n, err := f.serverConnCount(ctx, su, 0)
		return err == nil && n == want
	})
}

// backendAlive reports whether a backend with pid is in pg_stat_activity.
func backendAlive(ctx context.Context, t *testing.T, su *pgx.Conn, pid uint32) bool {
	t.Helper()
	var n int
	if err := su.QueryRow(ctx, "select count(*) from pg_stat_activity where pid = $1", pid).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// backendPID returns the pid of the backend that runs q's next query.
func backendPID(ctx context.Context, t *testing.T, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) uint32 {
	t.Helper()
	var pid uint32
	if err := q.QueryRow(ctx, "select pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	return pid
}

// pgCode returns the SQLSTATE of a PostgreSQL error, or "" for any other error.
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// waitDisconnect blocks until the pooler ends the client's connection and returns the
// error it sent (a FATAL ErrorResponse closes a pgx connection).
func waitDisconnect(ctx context.Context, t *testing.T, c *pgx.Conn) (*pgconn.PgError, time.Duration) {
	t.Helper()
	start := time.Now()
	err := c.PgConn().WaitForNotification(ctx)
	elapsed := time.Since(start)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		t.Fatalf("want an ErrorResponse from pgpool before the connection closes, got %v after %v", err, elapsed)
	}
	if !c.IsClosed() {
		t.Fatalf("connection still open after %s (%s)", pe.Code, pe.Message)
	}
	return pe, elapsed
}

// TestHygieneMinPoolSize: once a pool exists, the janitor opens server connections up
// to min_pool_size without any client load.
func TestHygieneMinPoolSize(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cfg := f.config()
	cfg.MinPoolSize = 3
	_, addr := startPooler(t, cfg)
	ctx := hygieneCtx(t)
	su := f.pg.Connect(t)
	c := connect(t, f.connString(addr))
	if _, err := c.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	f.waitServerConns(ctx, t, su, 3)
}

// TestHygieneServerIdleTimeout: server connections idle longer than
// server_idle_timeout are closed down to min_pool_size.
func TestHygieneServerIdleTimeout(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cfg := f.config()
	cfg.MinPoolSize = 1
	cfg.ServerIdleTimeout = time.Second
	_, addr := startPooler(t, cfg)
	ctx := hygieneCtx(t)
	su := f.pg.Connect(t)
	// Three clients inside transactions at once need three server connections.
	var txs []pgx.Tx
	for i := 0; i < 3; i++ {
		c := connect(t, f.connString(addr))
		tx, err := c.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		backendPID(ctx, t, tx)
		txs = append(txs, tx)
	}
	if n, err := f.serverConnCount(ctx, su, 0); err != nil || n != 3 {
		t.Fatalf("server connections = %d (%v), want 3", n, err)
	}
	for _, tx := range txs {
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	f.waitServerConns(ctx, t, su, 1)
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Fatalf("idle connections closed after %v, before server_idle_timeout", d)
	}
}

// TestHygieneServerLifetime: a server connection past server_lifetime is not closed
// under a transaction, but is replaced once released; its backend ends.
func TestHygieneServerLifetime(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cfg := f.config()
	cfg.ServerLifetime = time.Second
	_, addr := startPooler(t, cfg)
	ctx := hygieneCtx(t)
	su := f.pg.Connect(t)
	c := connect(t, f.connString(addr))
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	old := backendPID(ctx, t, tx)
	// Stay in the transaction until the backend is older than server_lifetime.
	waitFor(t, "the server connection to outlive server_lifetime", 10*time.Second, func() bool {
		var pid uint32
		var age float64
		err := tx.QueryRow(ctx, "select pg_backend_pid(), extract(epoch from clock_timestamp() - backend_start)::float8 from pg_stat_activity where pid = pg_backend_pid()").Scan(&pid, &age)
		if err != nil {
			t.Fatalf("query inside the transaction: %v", err)
		}
		if pid != old {
			t.Fatalf("backend changed inside a transaction: %d, then %d", old, pid)
		}
		return age > 1.2
	})
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("commit after server_lifetime: %v", err)
	}
	if pid := backendPID(ctx, t, c); pid == old {
		t.Fatalf("expired server connection %d reused", old)
	}
	waitFor(t, "the expired backend to end", 10*time.Second, func() bool { return !backendAlive(ctx, t, su, old) })
}

// TestHygieneServerCheck: with server_check_delay 0 server_check_query runs every time
// an idle connection is reused, before the client's query; with a long delay it does
// not run.
func TestHygieneServerCheck(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		delay  time.Duration
		checks func(tx int) int // checks seen by the client's tx-th transaction (from 1)
	}{
		{"always", 0, func(tx int) int { return tx }}, // login used the connection first
		{"delayed", time.Hour, func(int) int { return 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			ctx := hygieneCtx(t)
			setup := connect(t, f.pg.ConnString(f.user, f.password, f.db))
			if _, err := setup.Exec(ctx, `create table checks (pid int);
				create function note_check() returns int language sql as
				$$ insert into checks values (pg_backend_pid()) returning 1 $$`); err != nil {
				t.Fatal(err)
			}
			setup.Close(ctx)
			cfg := f.config()
			cfg.DefaultPoolSize = 1
			cfg.ServerCheckDelay = tc.delay
			cfg.ServerCheckQuery = "select note_check() /* pgpool-check */"
			_, addr := startPooler(t, cfg)
			c := connect(t, f.connString(addr))
			var pid uint32
			for k := 1; k <= 4; k++ {
				var n int
				if err := c.QueryRow(ctx, "select count(*), pg_backend_pid() from checks where pid = pg_backend_pid()").Scan(&n, &pid); err != nil {
					t.Fatal(err)
				}
				if n != tc.checks(k) {
					t.Fatalf("transaction %d saw %d checks on its connection, want %d", k, n, tc.checks(k))
				}
			}
		})
	}
}

// TestHygieneServerTerminatedWhileIdle: a server connection whose backend is terminated
// while it sits in the pool is never handed to a client.
func TestHygieneServerTerminatedWhileIdle(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		delay time.Duration
	}{
		{"checked", 0},
		{"unchecked", time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			cfg := f.config()
			cfg.DefaultPoolSize = 1
			cfg.ServerCheckDelay = tc.delay
			pl, addr := startPooler(t, cfg)
			ctx := hygieneCtx(t)
			su := f.pg.Connect(t)
			c := connect(t, f.connString(addr))
			old := backendPID(ctx, t, c)
			var ok bool
			if err := su.QueryRow(ctx, "select pg_terminate_backend($1)", old).Scan(&ok); err != nil || !ok {
				t.Fatalf("pg_terminate_backend: %v %v", ok, err)
			}
			waitFor(t, "the terminated backend to end", 10*time.Second, func() bool { return !backendAlive(ctx, t, su, old) })
			if tc.delay > 0 {
				// Without a check before reuse, the connection's end must have been
				// read (PostgreSQL's FATAL, then EOF) before the next client comes:
				// the same holds for any pooler, which can only learn of it by reading.
				waitFor(t, "pgpool to see the connection end", 10*time.Second, func() bool {
					for _, p := range pl.poolList() {
						p.mu.Lock()
						n := p.total()
						p.mu.Unlock()
						if n > 0 {
							return false
						}
					}
					return true
				})
			}
			next := connect(t, f.connString(addr))
			pid := backendPID(ctx, t, next)
			if pid == old {
				t.Fatal("served by the terminated backend")
			}
			if pid2 := backendPID(ctx, t, c); pid2 != pid {
				t.Fatalf("first client got backend %d, want the pool's only connection %d", pid2, pid)
			}
		})
	}
}

// TestServerEndsAsItIsHandedOut: a connection whose backend ends after the pool
// handed it to a client, before the client owns it (its reader has ended and told
// nobody), is not used: the client's query runs on a new connection, without an
// error, instead of waiting for ever on the dead one.
func TestServerEndsAsItIsHandedOut(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cfg := f.config()
	cfg.DefaultPoolSize = 1
	cfg.ServerCheckDelay = time.Hour // no check before reuse: the client gets it as it is
	pl, addr := startPooler(t, cfg)
	ctx := hygieneCtx(t)
	su := f.pg.Connect(t)
	c := connect(t, f.connString(addr))
	old := backendPID(ctx, t, c)
	var armed atomic.Bool
	armed.Store(true)
	hookErr := make(chan error, 1)
	pl.hooks.Store(&cancelHooks{acquired: func(_ *client, s *server) {
		if !armed.CompareAndSwap(true, false) {
			return
		}
		var ok bool
		err := su.QueryRow(ctx, "select pg_terminate_backend($1)", int64(s.pid)).Scan(&ok)
		if err == nil && !ok {
			err = fmt.Errorf("pg_terminate_backend(%d) found no backend", s.pid)
		}
		if err == nil {
			select {
			case <-s.done: // the reader saw the end, with nobody to tell
			case <-ctx.Done():
				err = ctx.Err()
			}
		}
		hookErr <- err
	}})
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	pid := backendPID(qctx, t, c)
	if err := recv(t, hookErr, "the hook to end the backend"); err != nil {
		t.Fatalf("ending the backend as it was handed out: %v", err)
	}
	if pid == old {
		t.Fatalf("served by the ended backend %d", pid)
	}
}

// TestHygieneReservePool: a client that has waited reserve_pool_timeout for a full
// pool gets one of reserve_pool_size extra connections; beyond those it waits.
func TestHygieneReservePool(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cfg := f.config()
	cfg.DefaultPoolSize = 1
	cfg.ReservePoolSize = 1
	cfg.ReservePoolTimeout = 300 * time.Millisecond
	cfg.QueryWaitTimeout = 2 * time.Second
	_, addr := startPooler(t, cfg)
	ctx := hygieneCtx(t)
	su := f.pg.Connect(t)
	a := connect(t, f.connString(addr))
	b := connect(t, f.connString(addr))
	third := connect(t, f.connString(addr))
	txA, err := a.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pidA := backendPID(ctx, t, txA)
	start := time.Now()
	txB, err := b.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pidB := backendPID(ctx, t, txB)
	if d := time.Since(start); d < cfg.ReservePoolTimeout {
		t.Fatalf("second client served after %v, before reserve_pool_timeout", d)
	}
	if pidB == pidA {
		t.Fatal("both transactions on one backend")
	}
	if n, err := f.serverConnCount(ctx, su, 0); err != nil || n != 2 {
		t.Fatalf("server connections = %d (%v), want 2", n, err)
	}
	// The reserve is used up: a third client waits until query_wait_timeout.
	_, err = third.Exec(ctx, "select 1")
	if pgCode(err) != CodeProtocolViolation {
		t.Fatalf("third client: %v, want query_wait_timeout", err)
	}
	if err := txA.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := txB.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestHygieneMaxDBConnections: max_db_connections counts the server connections of
// every user's pool on a database. A pool that is full waits while the others' are in
// use, and takes the place of another pool's idle connection, which pgpool closes (as
// PgBouncer does), instead of waiting for server_idle_timeout.
func TestHygieneMaxDBConnections(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f2 := *f
	f2.user, f2.password = f.user+"_b", f.password+"b"
	f.pg.CreateRole(t, f2.user, f2.password)
	cfg := f.config()
	cfg.Userlist[f2.user] = f2.password
	cfg.MaxDBConnections = 1
	cfg.QueryWaitTimeout = 1500 * time.Millisecond // server_idle_timeout stays 600 s
	_, addr := startPooler(t, cfg)
	ctx := hygieneCtx(t)
	su := f.pg.Connect(t)
	dbConns := func() int {
		var n int
		if err := su.QueryRow(ctx, "select count(*) from pg_stat_activity where datname = $1 and backend_type = 'client backend'", f.db).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	first := connect(t, f.connString(addr))
	second := connect(t, f2.connString(addr)) // waits for first's idle connection to close
	tx, err := first.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	backendPID(ctx, t, tx)
	// The second user's connection was closed for the first's; its backend exits soon.
	waitFor(t, "one server connection to the database", 5*time.Second, func() bool { return dbConns() == 1 })
	start := time.Now()
	_, err = second.Exec(ctx, "select 1")
	if pgCode(err) != CodeProtocolViolation {
		t.Fatalf("second user's query while the first holds a transaction: %v, want query_wait_timeout", err)
	}
	if d := time.Since(start); d < cfg.QueryWaitTimeout {
		t.Fatalf("second user failed after %v, before query_wait_timeout", d)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	third := connect(t, f2.connString(addr))
	if _, err := third.Exec(ctx, "select 1"); err != nil {
		t.Fatalf("second user after the first committed: %v", err)
	}
}

// TestHygieneIdleTransactionTimeout: a client idle inside a transaction longer than
// idle_transaction_timeout is disconnected; its server connection is rolled back and
// serves the next client.
func TestHygieneIdleTransactionTimeout(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := hygieneCtx(t)
	setup := connect(t, f.pg.ConnString(f.user, f.password, f.db))
	if _, err := setup.Exec(ctx, "create table t (v int)"); err != nil {
		t.Fatal(err)
	}
	setup.Close(ctx)
	cfg := f.config()
	cfg.DefaultPoolSize = 1
	cfg.IdleTransactionTimeout = 500 * time.Millisecond
	_, addr := startPooler(t, cfg)
	c := connect(t, f.connString(addr))
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pid := backendPID(ctx, t, tx)
	if _, err := tx.Exec(ctx, "insert into t values (1)"); err != nil {
		t.Fatal(err)
	}
	pe, d := waitDisconnect(ctx, t, c)
	if pe.Code != CodeIdleInTransactionTimout {
		t.Fatalf("got %s (%s), want idle transaction timeout", pe.Code, pe.Message)
	}
	if d < 400*time.Millisecond {
		t.Fatalf("disconnected after %v, before idle_transaction_timeout", d)
	}
	next := connect(t, f.connString(addr))
	var n int
	var pid2 uint32
	if err := next.QueryRow(ctx, "select count(*), pg_backend_pid() from t").Scan(&n, &pid2); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d rows: the abandoned transaction was not rolled back", n)
	}
	if pid2 != pid {
		t.Fatalf("next client on backend %d, want the rolled-back connection %d", pid2, pid)
	}
}

// TestHygieneClientIdleTimeout: a client idle outside a transaction longer than
// client_idle_timeout is disconnected; one waiting on a long query is not.
func TestHygieneClientIdleTimeout(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cfg := f.config()
	cfg.ClientIdleTimeout = 500 * time.Millisecond
	_, addr := startPooler(t, cfg)
	ctx := hygieneCtx(t)
	c := connect(t, f.connString(addr))
	if _, err := c.Exec(ctx, "select pg_sleep(1)"); err != nil {
		t.Fatalf("query longer than client_idle_timeout: %v", err)
	}
	pe, d := waitDisconnect(ctx, t, c)
	if pe.Code != CodeAdminShutdown {
		t.Fatalf("got %s (%s), want client_idle_timeout", pe.Code, pe.Message)
	}
	if d < 400*time.Millisecond {
		t.Fatalf("disconnected after %v, before client_idle_timeout", d)
	}
	// A client that never ran anything is disconnected too.
	fresh := connect(t, f.connString(addr))
	if pe, _ := waitDisconnect(ctx, t, fresh); pe.Code != CodeAdminShutdown {
		t.Fatalf("got %s (%s), want client_idle_timeout", pe.Code, pe.Message)
	}
}

// TestHygieneQueryTimeout: a query running longer than query_timeout ends with an
// error long before it would finish, and the pool goes on serving others.
func TestHygieneQueryTimeout(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cfg := f.config()
	cfg.DefaultPoolSize = 1
	cfg.QueryTimeout = 500 * time.Millisecond
	_, addr := startPooler(t, cfg)
	ctx := hygieneCtx(t)
	other := connect(t, f.connString(addr))
	c := connect(t, f.connString(addr))
	start := time.Now()
	_, err := c.Exec(ctx, "select pg_sleep(5)")
	d := time.Since(start)
	if pgCode(err) != CodeQueryCanceled {
		t.Fatalf("got %v, want query timeout", err)
	}
	if d < 400*time.Millisecond || d > 3*time.Second {
		t.Fatalf("query ended after %v, want about query_timeout", d)
	}
	if _, err := other.Exec(ctx, "select 1"); err != nil {
		t.Fatalf("other client after a query timeout: %v", err)
	}
	if _, err := other.Exec(ctx, "select pg_sleep(0.1)"); err != nil {
		t.Fatalf("query shorter than query_timeout: %v", err)
	}
}

// TestHygieneResetQueryAlways: with server_reset_query_always, server_reset_query runs
// after every transaction in transaction mode, before the connection serves anyone
// else.
func TestHygieneResetQueryAlways(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := hygieneCtx(t)
	setup := connect(t, f.pg.ConnString(f.user, f.password, f.db))
	if _, err := setup.Exec(ctx, `create table resets (n int);
		create function note_reset() returns int language sql as
		'insert into resets values (1) returning 1'`); err != nil {
		t.Fatal(err)
	}
	cfg := f.config()
	cfg.DefaultPoolSize = 1
	cfg.ServerResetQuery = "select note_reset()"
	cfg.ServerResetQueryAlways = true
	_, addr := startPooler(t, cfg)
	c := connect(t, f.connString(addr))
	const txs = 3
	for i := 0; i < txs; i++ {
		var n int
		// Each transaction sees the resets of the ones before it: the reset ran
		// before the connection was handed out again.
		if err := c.QueryRow(ctx, "select count(*) from resets").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n < i {
			t.Fatalf("transaction %d saw %d resets", i, n)
		}
	}
	var n int
	waitFor(t, "the last reset", 10*time.Second, func() bool {
		setup.QueryRow(ctx, "select count(*) from resets").Scan(&n)
		return n >= txs
	})
}
