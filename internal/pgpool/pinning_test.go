package pgpool

import (
	"context"
	"net"
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
			found = row["pinned"] == "advisory_lock" && row["link"] != ""
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

// pinnedOf returns SHOW CLIENTS' pinned column for the client connection conn.
func pinnedOf(t *testing.T, adm, conn *pgx.Conn) string {
	t.Helper()
	_, port, _ := net.SplitHostPort(conn.PgConn().Conn().LocalAddr().String())
	_, rows := adminQueryResult(t, adm, "SHOW CLIENTS")
	for _, row := range rows {
		if row["port"] == port {
			return row["pinned"]
		}
	}
	t.Fatalf("client on port %s not in SHOW CLIENTS: %v", port, rows)
	return ""
}

// TestPinEndsWhenTransactionEnds: a client that took and released a session advisory
// lock outside a transaction (as rails db:migrate does) gives up its server connection
// when the unlock's transaction ends, not at its next request: with a pool of 2, two
// other clients are then served at once while the first stays idle.
func TestPinEndsWhenTransactionEnds(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.DefaultPoolSize = 2
	cfg.QueryWaitTimeout = 30 * time.Second
	_, addr := startPooler(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	su := f.pg.Connect(t)
	a := connect(t, f.connString(addr))
	b := connect(t, f.connString(addr))
	c := connect(t, f.connString(addr))
	var ok bool
	if err := a.QueryRow(ctx, "select pg_try_advisory_lock(4343)").Scan(&ok); err != nil || !ok {
		t.Fatalf("lock: %v %v", ok, err)
	}
	if err := a.QueryRow(ctx, "select pg_advisory_unlock(4343)").Scan(&ok); err != nil || !ok {
		t.Fatalf("unlock: %v %v", ok, err)
	}
	// A now sends nothing. B and C hold transactions at the same time: both server
	// connections are needed.
	txB, err := b.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer txB.Rollback(ctx)
	var pidB, pidC int
	if err := txB.QueryRow(ctx, "select pg_backend_pid()").Scan(&pidB); err != nil {
		t.Fatal(err)
	}
	txC, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer txC.Rollback(ctx)
	if err := txC.QueryRow(ctx, "select pg_backend_pid()").Scan(&pidC); err != nil {
		t.Fatalf("third client not served while the first is idle after unlocking: %v", err)
	}
	if pidB == pidC {
		t.Fatal("two transactions on one backend")
	}
	if err := txB.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := txC.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if advisoryHeld(ctx, t, su, 4343) {
		t.Fatal("lock still held after unlock")
	}
	if _, err := a.Exec(ctx, "select 1"); err != nil {
		t.Fatalf("the released client's next request: %v", err)
	}
}

// TestPinCheckRace: a client that sends its next request while the check after its
// unlock runs waits for the check's outcome and is served, many times over, on a pool
// of one connection that another client then gets.
func TestPinCheckRace(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.DefaultPoolSize = 1
	cfg.QueryWaitTimeout = 10 * time.Second
	_, addr := startPooler(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := connect(t, f.connString(addr))
	b := connect(t, f.connString(addr))
	for i := 0; i < 50; i++ {
		if _, err := a.Exec(ctx, "select pg_advisory_lock(7070)"); err != nil {
			t.Fatal(err)
		}
		// The next request follows the unlock's answer at once, usually while the
		// check it started still runs.
		if _, err := a.Exec(ctx, "select pg_advisory_unlock(7070)"); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := a.QueryRow(ctx, "select count(*) from pg_locks where locktype = 'advisory' and pid = pg_backend_pid()").Scan(&n); err != nil {
			t.Fatalf("round %d: request sent during the check: %v", i, err)
		}
		if n != 0 {
			t.Fatalf("round %d: %d advisory locks after unlock", i, n)
		}
		if _, err := b.Exec(ctx, "select 1"); err != nil {
			t.Fatalf("round %d: other client: %v", i, err)
		}
	}
}

// TestTryLockFailedDoesNotPin: a pg_try_advisory_lock that returned false (another
// session holds the lock) leaves no pin; one that got the lock shows as advisory_lock.
func TestTryLockFailedDoesNotPin(t *testing.T) {
	e := newAdminEnv(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	other := connect(t, e.f.pg.ConnString(e.f.user, e.f.password, e.f.db)) // advisory locks are per database
	if _, err := other.Exec(ctx, "select pg_advisory_lock(5252)"); err != nil {
		t.Fatal(err)
	}
	adm := adminConnect(t, e.dsn(false, e.admin, e.adminPassword, "pgbouncer"))
	app := connect(t, e.f.connString(e.addr))
	var ok bool
	if err := app.QueryRow(ctx, "select pg_try_advisory_lock(5252)").Scan(&ok); err != nil || ok {
		t.Fatalf("try lock held by another session: %v %v", ok, err)
	}
	if _, err := app.Exec(ctx, "select 1"); err != nil { // waits for the check, if still running
		t.Fatal(err)
	}
	if p := pinnedOf(t, adm, app); p != "" {
		t.Fatalf("client whose try lock failed is pinned: %q", p)
	}
	if err := app.QueryRow(ctx, "select pg_try_advisory_lock(5353)").Scan(&ok); err != nil || !ok {
		t.Fatalf("try lock: %v %v", ok, err)
	}
	if _, err := app.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	if p := pinnedOf(t, adm, app); p != "advisory_lock" {
		t.Fatalf("client holding a lock shows pinned %q, want advisory_lock", p)
	}
}

// TestPinReasonsShown: SHOW CLIENTS names each reason a client is pinned for, and
// after a release only the reasons left.
func TestPinReasonsShown(t *testing.T) {
	e := newAdminEnv(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := adminConnect(t, e.dsn(false, e.admin, e.adminPassword, "pgbouncer"))
	app := connect(t, e.f.connString(e.addr))
	steps := []struct{ sql, want string }{
		{"listen pgpool_reasons", "listen"},
		{"create temp table tr (v int)", "listen,temp_table"},
		{"select pg_advisory_lock(6262)", "advisory_lock,listen,temp_table"},
		{"set statement_timeout = '5min'; set work_mem = '8MB'", "advisory_lock,listen,temp_table,set"},
		{"unlisten pgpool_reasons", "advisory_lock,temp_table,set"},
		{"select pg_advisory_unlock(6262)", "temp_table,set"},
		{"drop table tr", "set"},
		{"reset all", ""},
	}
	for _, st := range steps {
		if _, err := app.Exec(ctx, st.sql); err != nil {
			t.Fatalf("%s: %v", st.sql, err)
		}
		if _, err := app.Exec(ctx, "select 1"); err != nil { // waits for the check, if still running
			t.Fatal(err)
		}
		if got := pinnedOf(t, adm, app); got != st.want {
			t.Fatalf("after %q: pinned %q, want %q", st.sql, got, st.want)
		}
	}
}

func TestPins(t *testing.T) {
	var p pins
	if p.String() != "" || p.has(serverPins) {
		t.Fatalf("empty: %q", p)
	}
	p = p.add(pinListen).add(pinSet).add(pinAdvisoryLock)
	if got := p.String(); got != "advisory_lock,listen,set" {
		t.Fatalf("String = %q", got)
	}
	if !p.has(serverPins) || !p.has(pinSet) || p.has(pinCursor) {
		t.Fatalf("has: %q", p)
	}
	if got := p.clear(pinSet).String(); got != "advisory_lock,listen" {
		t.Fatalf("clear = %q", got)
	}
	// A check that finds only a temp table: the server's kinds are replaced, set stays.
	if got := p.checked(pinTempTable | pinPipeline).String(); got != "temp_table,set" {
		t.Fatalf("checked = %q", got)
	}
	if got := (pinCursor | pinPrepare | pinPipeline).String(); got != "prepare,cursor,pipeline" {
		t.Fatalf("String = %q", got)
	}
	for _, tc := range []struct {
		rows [][]string
		want pins
		ok   bool
	}{
		{[][]string{{"0", "0", "0", "0", "0"}}, 0, true},
		{[][]string{{"2", "0", "1", "0", "3"}}, pinAdvisoryLock | pinPrepare | pinTempTable, true},
		{[][]string{{"0", "1", "0", "1", "0"}}, pinListen | pinCursor, true},
		{[][]string{{"0"}}, 0, false},
		{[][]string{{"x", "0", "0", "0", "0"}}, 0, false},
		{nil, 0, false},
	} {
		got, ok := remainingPins(tc.rows)
		if got != tc.want || ok != tc.ok {
			t.Errorf("remainingPins(%v) = %q %v, want %q %v", tc.rows, got, ok, tc.want, tc.ok)
		}
	}
}
