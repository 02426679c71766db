package pgpool

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/poolsuite/poolsuite/internal/testenv"
)

// TestDatabaseRestart: clients that need a server connection while PostgreSQL is down
// wait for it, as PgBouncer's do, instead of failing on the first connect error:
// pgpool tries again every server_login_retry and serves them once PostgreSQL is back,
// both clients logging in (no server parameters known yet) and logged-in clients
// running a query after the server connections they used died.
func TestDatabaseRestart(t *testing.T) {
	pg := testenv.StartPostgres(t, testenv.PostgresOptions{})
	f := &fixture{pg: pg, db: "restartdb", user: "restartuser", password: "restartpw"}
	pg.CreateRole(t, f.user, f.password)
	pg.CreateDatabase(t, f.db, f.user)
	cfg := f.config()
	cfg.ServerLoginRetry = 200 * time.Millisecond
	cfg.QueryWaitTimeout = 60 * time.Second
	pl, addr := startPooler(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	pool := func() *pool {
		pl.mu.Lock()
		defer pl.mu.Unlock()
		return pl.pools[poolKey{f.db, f.user}]
	}
	waiting := func(n int) func() bool {
		return func() bool {
			p := pool()
			if p == nil || p.stats.waiting.Load() < int64(n) {
				return false
			}
			p.mu.Lock()
			defer p.mu.Unlock()
			return p.lastErr != nil
		}
	}
	const n = 3

	// Down before pgpool ever reached it: clients wait at login.
	pg.Kill()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := pgx.Connect(ctx, f.connString(addr))
			if err == nil {
				defer c.Close(context.Background())
				_, err = c.Exec(ctx, "select 1")
			}
			errs[i] = err
		}()
	}
	waitFor(t, "clients waiting at login after a failed connect", 30*time.Second, waiting(n))
	pg.Restart(t)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("login while the server was down, client %d: %v", i, err)
		}
	}

	// Down again while clients are logged in: their next queries wait.
	conns := make([]*pgx.Conn, n)
	for i := range conns {
		conns[i] = connect(t, f.connString(addr))
		if _, err := conns[i].Exec(ctx, "select 1"); err != nil {
			t.Fatal(err)
		}
	}
	pg.Kill()
	waitFor(t, "the dead server connections to be noticed", 30*time.Second, func() bool {
		p := pool()
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.total() == 0
	})
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.Exec(ctx, "select 1")
		}()
	}
	waitFor(t, "queries waiting after a failed connect", 30*time.Second, waiting(n))
	pg.Restart(t)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("query while the server was down, client %d: %v", i, err)
		}
	}
}
