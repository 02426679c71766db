package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// advisoryHeld reports whether any session holds advisory lock key.
func advisoryHeld(ctx context.Context, t *testing.T, su *pgx.Conn, key int) bool {
	t.Helper()
	var n int
	if err := su.QueryRow(ctx, "select count(*) from pg_locks where locktype = 'advisory' and objid = $1 and granted", key).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// TestAdvisoryLockPinsClient: a session-level advisory lock taken outside a transaction
// stays held, on the same server connection, until the client unlocks it; then the
// connection is shared again.
func TestAdvisoryLockPinsClient(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.DefaultPoolSize = 2
	_, addr := startPooler(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	su := f.pg.Connect(t)
	a := connect(t, f.connString(addr))
	b := connect(t, f.connString(addr))
	var pidA int
	if err := a.QueryRow(ctx, "select pg_backend_pid() from (select pg_advisory_lock(4242)) l").Scan(&pidA); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		// Other clients keep working meanwhile, never on A's connection.
		var pidB, pid int
		if err := b.QueryRow(ctx, "select pg_backend_pid()").Scan(&pidB); err != nil {
			t.Fatal(err)
		}
		if pidB == pidA {
			t.Fatal("another client got the connection that holds the lock")
		}
		if err := a.QueryRow(ctx, "select pg_backend_pid()").Scan(&pid); err != nil {
			t.Fatal(err)
		}
		if pid != pidA {
			t.Fatalf("client holding a lock moved from backend %d to %d", pidA, pid)
		}
		if !advisoryHeld(ctx, t, su, 4242) {
			t.Fatal("advisory lock released while the client holds it")
		}
	}
	if _, err := a.Exec(ctx, "select pg_advisory_unlock(4242)"); err != nil {
		t.Fatal(err)
	}
	if advisoryHeld(ctx, t, su, 4242) {
		t.Fatal("lock still held after unlock")
	}
	// After the unlock the client is shared again: with both clients in transactions at
	// once, they must be on the two different connections, and later requests may move.
	if _, err := a.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	txA, err := a.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	txB, err := b.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var p1, p2 int
	txA.QueryRow(ctx, "select pg_backend_pid()").Scan(&p1)
	txB.QueryRow(ctx, "select pg_backend_pid()").Scan(&p2)
	txA.Commit(ctx)
	txB.Commit(ctx)
	if p1 == p2 {
		t.Fatal("two transactions on one backend")
	}
}

// TestAdvisoryLockReleasedOnDisconnect: a client that leaves while holding a lock never
// leaks it to the next client of its server connection.
func TestAdvisoryLockReleasedOnDisconnect(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.DefaultPoolSize = 1
	_, addr := startPooler(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	su := f.pg.Connect(t)
	a := connect(t, f.connString(addr))
	var ok bool
	if err := a.QueryRow(ctx, "select pg_try_advisory_lock(777)").Scan(&ok); err != nil || !ok {
		t.Fatalf("lock: %v %v", ok, err)
	}
	if !advisoryHeld(ctx, t, su, 777) {
		t.Fatal("lock not held")
	}
	a.Close(ctx)
	b := connect(t, f.connString(addr))
	var n int
	if err := b.QueryRow(ctx, "select count(*) from pg_locks where locktype = 'advisory' and pid = pg_backend_pid()").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatal("the next client inherited the departed client's advisory lock")
	}
	if advisoryHeld(ctx, t, su, 777) {
		t.Fatal("lock leaked after the client disconnected")
	}
}

// TestSessionStatePins: each kind of session state keeps the client's server
// connection from other clients until the client releases it. The pool has one
// connection, so another client can run only while the first is not pinned.
func TestSessionStatePins(t *testing.T) {
	cases := []struct {
		name, take, release string
	}{
		{"advisory lock", "select pg_advisory_lock(99)", "select pg_advisory_unlock(99)"},
		{"shared advisory lock", "select pg_try_advisory_lock_shared(98)", "select pg_advisory_unlock_all()"},
		{"listen", "listen pgpool_chan", "unlisten pgpool_chan"},
		{"sql prepare", "prepare q1 as select 1", "deallocate q1"},
		{"temp table", "create temp table tt (v int)", "drop table tt"},
		{"with hold cursor", "declare cur cursor with hold for select 1", "close cur"},
		{"set pgpool cannot follow", "set statement_timeout = '5min'; set work_mem = '8MB'", "reset all"},
	}
	f := newFixture(t)
	cfg := f.config()
	cfg.DefaultPoolSize = 1
	cfg.QueryWaitTimeout = 300 * time.Millisecond
	_, addr := startPooler(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := connect(t, f.connString(addr))
			b := connect(t, f.connString(addr))
			if _, err := a.Exec(ctx, tc.take); err != nil {
				t.Fatal(err)
			}
			_, err := b.Exec(ctx, "select 1")
			wantSQLState(t, err, CodeProtocolViolation) // query_wait_timeout: A keeps the connection
			if _, err := a.Exec(ctx, tc.release); err != nil {
				t.Fatal(err)
			}
			if _, err := a.Exec(ctx, "select 1"); err != nil { // the check runs before this
				t.Fatal(err)
			}
			b2 := connect(t, f.connString(addr))
			if _, err := b2.Exec(ctx, "select 1"); err != nil {
				t.Fatalf("after %q the connection is still pinned: %v", tc.release, err)
			}
		})
	}
}

// TestPinnedShownInAdmin: a pinned client shows in SHOW CLIENTS and is counted in SHOW
// STATS; with session_pinning off the client is not pinned (PgBouncer's behaviour).
func TestPinnedShownInAdmin(t *testing.T) {
	e := newAdminEnv(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := adminConnect(t, e.dsn(false, e.admin, e.adminPassword, "pgbouncer"))
	app := connect(t, e.f.connString(e.addr))
	if _, err := app.Exec(ctx, "select pg_advisory_lock(5150)"); err != nil {
		t.Fatal(err)
	}
	_, clients := adminQueryResult(t, adm, "SHOW CLIENTS")
	found := false
	for _, row := range clients {
		if row["user"] == e.f.user {
			found = row["pinned"] == "session state" && row["link"] != ""
		}
	}
	if !found {
		t.Fatalf("SHOW CLIENTS does not show the pinned client: %v", clients)
	}
	_, stats := adminQueryResult(t, adm, "SHOW STATS")
	for _, row := range stats {
		if row["database"] == e.f.db && row["pinned_clients"] != "1" {
			t.Fatalf("SHOW STATS pinned_clients = %q, want 1", row["pinned_clients"])
		}
	}
	if _, err := app.Exec(ctx, "select pg_advisory_unlock(5150)"); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	_, stats = adminQueryResult(t, adm, "SHOW STATS")
	for _, row := range stats {
		if row["database"] == e.f.db && row["pinned_clients"] != "0" {
			t.Fatalf("after unlock, pinned_clients = %q, want 0", row["pinned_clients"])
		}
	}
}

// TestSessionPinningOff: with pinning off, a client holding an advisory lock does not
// keep its server connection, as under PgBouncer.
func TestSessionPinningOff(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.DefaultPoolSize = 1
	cfg.QueryWaitTimeout = 2 * time.Second
	cfg.DisableSessionPinning = true
	_, addr := startPooler(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := connect(t, f.connString(addr))
	b := connect(t, f.connString(addr))
	if _, err := a.Exec(ctx, "select pg_advisory_lock(6160)"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Exec(ctx, "select 1"); err != nil {
		t.Fatalf("with pinning off the only connection must be shared: %v", err)
	}
}
