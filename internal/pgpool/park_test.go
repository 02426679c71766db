package pgpool

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

// connectIdle logs n clients in (without a query) and returns them.
func connectIdle(ctx context.Context, t *testing.T, dsn string, n int) []*pgconn.PgConn {
	t.Helper()
	out := make([]*pgconn.PgConn, 0, n)
	t.Cleanup(func() {
		for _, c := range out {
			c.Close(context.Background())
		}
	})
	for range n {
		c, err := pgconn.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

func needParker(t *testing.T, pl *Pooler) {
	t.Helper()
	if pl.parker == nil {
		t.Skip("no connection parking on this system")
	}
}

// startParkPooler starts a pooler over a fixture of its own, with trust logins, and
// skips the test where connections cannot be parked.
func startParkPooler(t *testing.T) (*fixture, *Pooler, string) {
	t.Helper()
	f := newFixture(t)
	cfg := f.config()
	cfg.AuthType = "trust"
	pl, addr := startPooler(t, cfg)
	needParker(t, pl)
	return f, pl, addr
}

// TestParkedIdleClients: logged-in clients waiting for a query hold no goroutine
// (their connections are parked); a query wakes one, a client's close ends it, and
// Shutdown closes the parked ones at once.
func TestParkedIdleClients(t *testing.T) {
	// Not parallel: it counts the process's goroutines.
	f := newFixture(t)
	cfg := f.config()
	cfg.AuthType = "trust" // 500 logins: SCRAM's iterations are not what this tests
	cfg.MaxClientConn = 1000
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pl := New(cfg, testLogger(t))
	needParker(t, pl)
	served := make(chan error, 1)
	go func() { served <- pl.Serve(ln) }()
	ctx := hygieneCtx(t)
	dsn := f.pgconnString(ln.Addr().String())

	warm := connectIdle(ctx, t, dsn, 1)
	waitFor(t, "the first client parked", 10*time.Second, func() bool { return pl.parker.Parked() == 1 })
	runtime.GC()
	g0 := runtime.NumGoroutine()
	const n = 500
	conns := connectIdle(ctx, t, dsn, n)
	waitFor(t, "the idle clients parked", 20*time.Second, func() bool { return pl.parker.Parked() == n+1 })
	waitFor(t, "their goroutines ended", 10*time.Second, func() bool { return runtime.NumGoroutine()-g0 < n/20 })
	t.Logf("%d goroutines for %d idle clients", runtime.NumGoroutine()-g0, n)

	// A query wakes a parked client.
	if res, err := conns[0].Exec(ctx, "select 41 + 1").ReadAll(); err != nil || len(res) != 1 || len(res[0].Rows) != 1 || string(res[0].Rows[0][0]) != "42" {
		t.Fatalf("query on a parked client: %+v, %v", res, err)
	}
	// (Its first query: it parks again if the reply, and the server's release, came
	// before its goroutine went back to read.)
	if got := pl.parker.Parked(); got != n && got != n+1 {
		t.Fatalf("%d parked after one of %d woke, want %d", got, n+1, n)
	}
	// A client's close wakes it, and it is gone.
	for _, c := range conns[n-100:] {
		c.Close(ctx)
	}
	conns = conns[:n-100]
	waitFor(t, "closed clients gone", 10*time.Second, func() bool { return pl.nclients.Load() == int64(n+1-100) })
	// (The client that ran a query waits in Read, unless the janitor's idle sweep
	// parked it meanwhile.)
	if got := pl.parker.Parked(); got != n-100 && got != n-100+1 {
		t.Fatalf("%d parked after 100 closed, want %d", got, n-100)
	}

	// Shutdown finds the parked clients and closes them without waiting for its
	// deadline.
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	if err := pl.Shutdown(sctx); err != nil {
		t.Fatalf("shutdown with parked clients: %v", err)
	}
	t.Logf("shutdown with %d parked clients took %v", len(conns)+len(warm), time.Since(start))
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if pl.nclients.Load() != 0 {
		t.Fatalf("%d clients left after shutdown", pl.nclients.Load())
	}
	buf := make([]byte, 1)
	for _, c := range append(conns, warm...) {
		c.Conn().SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			if _, err := c.Conn().Read(buf); err != nil {
				break // the shutdown's notice was read; then EOF
			}
		}
	}
}

// TestParkedClientIdleTimeout: client_idle_timeout ends a parked client at its
// deadline (the Parker does not see deadlines: a timer wakes the client).
func TestParkedClientIdleTimeout(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cfg := f.config()
	cfg.ClientIdleTimeout = 400 * time.Millisecond
	pl, addr := startPooler(t, cfg)
	needParker(t, pl)
	ctx := hygieneCtx(t)
	c := connect(t, f.connString(addr))
	waitFor(t, "the client parked", 10*time.Second, func() bool { return pl.parker.Parked() == 1 })
	pe, d := waitDisconnect(ctx, t, c)
	if pe.Code != CodeAdminShutdown {
		t.Fatalf("got %s (%s), want client_idle_timeout", pe.Code, pe.Message)
	}
	if d > 5*time.Second {
		t.Fatalf("parked client closed after %v, client_idle_timeout is 400ms", d)
	}
	waitFor(t, "the client gone", 10*time.Second, func() bool { return pl.nclients.Load() == 0 })
}

// TestParkedClientsHandedOver: an online restart wakes parked clients and hands them
// over at once; the new pooler parks them again and serves them.
func TestParkedClientsHandedOver(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.AdminUsers = []string{f.user}
	e := startTakeoverPooler(t, cfg)
	needParker(t, e.old)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const n = 10
	conns := make([]*pgx.Conn, n)
	for i := range conns {
		conns[i] = connect(t, f.connString(e.addr))
	}
	waitFor(t, "the clients parked", 10*time.Second, func() bool { return e.old.parker.Parked() == n })
	pl, res := e.takeOver(t, cfg)
	r := <-res
	e.finish(t, pl, r)
	if r.tk.Clients != n || r.tk.Skipped != 0 {
		t.Fatalf("took %d clients (%d skipped), want %d", r.tk.Clients, r.tk.Skipped, n)
	}
	waitFor(t, "the clients parked in the new pooler", 10*time.Second, func() bool { return pl.parker.Parked() == n })
	for _, c := range conns {
		var v int
		if err := c.QueryRow(ctx, "select 7").Scan(&v); err != nil || v != 7 {
			t.Fatalf("query after the handover: %d, %v", v, err)
		}
	}
}

// TestParkedBySweep: a client whose read began while its query ran (so it waits in
// Read after its server is released) is parked by the idle sweep, is woken by its
// next query, and its client_idle_timeout still counts from its last query; the
// sweep leaves a client inside a transaction alone.
func TestParkedBySweep(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cfg := f.config()
	cfg.ClientIdleTimeout = 2 * time.Second
	pl, addr := startPooler(t, cfg)
	needParker(t, pl)
	pl.sweepPaused.Store(true) // the test runs the sweep
	ctx := hygieneCtx(t)
	c := connect(t, f.connString(addr))
	inTx := connect(t, f.connString(addr))
	waitFor(t, "the clients parked after login", 10*time.Second, func() bool { return pl.parker.Parked() == 2 })
	// c's query waits for an advisory lock the test holds on a connection of its
	// own, until c's goroutine has gone back to read while its server serves it.
	holder := connect(t, fmt.Sprintf("host=%s port=%d user=%s password=%s dbname=%s sslmode=disable", f.pg.Host, f.pg.Port, f.user, f.password, f.db))
	if _, err := holder.Exec(ctx, "select pg_advisory_lock(7)"); err != nil {
		t.Fatal(err)
	}
	queried := make(chan error, 1)
	go func() {
		_, err := c.Exec(ctx, "select pg_advisory_xact_lock(7)")
		queried <- err
	}()
	waitFor(t, "c reading while its query runs", 10*time.Second, func() bool {
		for _, cl := range pl.clientList() {
			if clientState(cl.state.Load()) == clientActive && cl.parking.reading.Load() {
				return true
			}
		}
		return false
	})
	if _, err := holder.Exec(ctx, "select pg_advisory_unlock(7)"); err != nil {
		t.Fatal(err)
	}
	if err := <-queried; err != nil {
		t.Fatal(err)
	}
	last := time.Now()
	tx, err := inTx.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	if n := pl.parker.Parked(); n != 0 {
		t.Fatalf("%d parked after both clients ran queries, want 0 (they wait in Read)", n)
	}
	pl.sweepIdle() // marks them idle
	pl.sweepIdle() // wakes the idle one's read
	waitFor(t, "the idle client parked by the sweep", 10*time.Second, func() bool { return pl.parker.Parked() == 1 })
	// The transaction goes on.
	if _, err := tx.Exec(ctx, "select 2"); err != nil {
		t.Fatalf("in the transaction after the sweep: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("commit after the sweep: %v", err)
	}
	pe, _ := waitDisconnect(ctx, t, c)
	if pe.Code != CodeAdminShutdown {
		t.Fatalf("got %s (%s), want client_idle_timeout", pe.Code, pe.Message)
	}
	if d := time.Since(last); d < 1800*time.Millisecond || d > 4*time.Second {
		t.Fatalf("swept client closed %v after its last query, client_idle_timeout is 2s", d)
	}
}

// parkedHijacked starts a pooler (trust logins) and logs one client in to it, waits
// for the client to be parked and returns the pooler and the client's connection,
// taken from pgconn, with a deadline of d for its reads and writes.
func parkedHijacked(t *testing.T, d time.Duration) (*Pooler, *pgconn.HijackedConn) {
	t.Helper()
	f, pl, addr := startParkPooler(t)
	pl.sweepPaused.Store(true) // only what the test does wakes the client
	ctx := hygieneCtx(t)
	pc := connectIdle(ctx, t, f.pgconnString(addr), 1)[0]
	waitFor(t, "the client parked", 10*time.Second, func() bool { return pl.parker.Parked() == 1 })
	hc, err := pc.Hijack()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hc.Conn.Close() })
	hc.Conn.SetDeadline(time.Now().Add(d))
	return pl, hc
}

// TestParkedCloseAfterWake: a close whose Wake comes just after the Parker woke the
// client (its Sync arrived) still ends the client: the woken goroutine, which goes
// on answering messages that leave it idle, never parks again on the descriptor the
// close is about to close (where nothing would wake it: the client would live on,
// and Shutdown would wait for it for ever).
func TestParkedCloseAfterWake(t *testing.T) {
	t.Parallel()
	pl, hc := parkedHijacked(t, 20*time.Second)
	pl.hotGap.Store(0) // never hot: only the close keeps the woken client from parking
	fe := hc.Frontend
	sync := func() error {
		fe.Send(&pgproto3.Sync{})
		if err := fe.Flush(); err != nil {
			return err
		}
		m, err := fe.Receive()
		if err != nil {
			return err
		}
		if _, ok := m.(*pgproto3.ReadyForQuery); !ok {
			return fmt.Errorf("got %T, want ReadyForQuery", m)
		}
		return nil
	}
	c := pl.clientList()[0]
	p := &c.parking

	// The goroutine the Parker starts waits for p.mu (resumed) until the watcher
	// has woken the client: the close's kick then finds no registration to wake.
	p.mu.Lock()
	fe.Send(&pgproto3.Sync{})
	err := fe.Flush()
	deadline := time.Now().Add(10 * time.Second)
	for err == nil && pl.parker.Parked() != 0 && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	// Judged before the woken goroutine goes on: once it has, it may read the Sync,
	// answer and park again before this goroutine looks.
	woken := err == nil && pl.parker.Parked() == 0
	if woken {
		// c.close's first half (closeKick), marked while the woken goroutine still
		// waits for p.mu, so that the kick comes between the wake-up and its next park.
		p.closing = true
	}
	p.mu.Unlock()
	if !woken {
		t.Fatalf("the parked client not woken by its Sync: %v", err)
	}
	c.kickParked()
	if m, err := fe.Receive(); err != nil {
		t.Fatal(err)
	} else if _, ok := m.(*pgproto3.ReadyForQuery); !ok {
		t.Fatalf("got %T, want ReadyForQuery", m)
	}
	if err := sync(); err != nil { // read by the kicked read, in Read
		t.Fatal(err)
	}
	waitFor(t, "the client waiting for its next message", 10*time.Second, func() bool {
		return pl.parker.Parked() == 1 || p.reading.Load()
	})
	c.conn.Close() // c.close's second half
	deadline = time.Now().Add(10 * time.Second)
	for pl.nclients.Load() != 0 && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	if n := pl.nclients.Load(); n != 0 {
		woke := p.pk.Wake() // let Shutdown end
		t.Fatalf("%d clients left after the close (parked on the closed descriptor: %v)", n, woke)
	}
}

// goroutineWaiting reports whether some goroutine's stack holds both fn and want
// (a function it is blocked in).
func goroutineWaiting(fn, want string) bool {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, fn) && strings.Contains(g, want) {
			return true
		}
	}
	return false
}

// TestSweepSparesMessageInParts: an idle sweep that found a client's read waiting,
// and wakes it only once that read has returned the first part of a long Parse
// (longer than the read buffer: the rest is read after), leaves the reads of the
// rest alone: the Parse is served, not failed as a client_idle_timeout.
func TestSweepSparesMessageInParts(t *testing.T) {
	t.Parallel()
	wakeMidMessage(t, "sweepIdle", func(pl *Pooler) { pl.sweepIdle() })
}

// TestHandoverWakeSparesMessageInParts: so does an online restart's wake-up of the
// clients at a handover point, which waits for the client's lock as the client's
// read returns the first part of a long Parse: the client finishes the message.
func TestHandoverWakeSparesMessageInParts(t *testing.T) {
	t.Parallel()
	wakeMidMessage(t, "wakeForHandover", func(pl *Pooler) { pl.wakeForHandover() })
}

// wakeMidMessage runs wake (named fn in stacks) against a client's read waiting for
// a long Parse, holding the client's lock until the read has returned the Parse's
// first part, and checks that the Parse is then served.
func wakeMidMessage(t *testing.T, fn string, wake func(*Pooler)) {
	pl, hc := parkedHijacked(t, 30*time.Second)
	c := pl.clientList()[0]
	p := &c.parking

	parse, err := (&pgproto3.Parse{Query: "select 1 /*" + strings.Repeat("x", wire.StreamSize+1<<16) + "*/"}).Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := (&pgproto3.Sync{}).Encode(parse)
	if err != nil {
		t.Fatal(err)
	}
	send := func(b []byte) {
		t.Helper()
		if _, err := hc.Conn.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	// The Parse's first bytes wake the client, whose read then waits for more.
	send(msg[:100])
	waitFor(t, "the client's read waiting", 10*time.Second, func() bool { return pl.parker.Parked() == 0 && p.reading.Load() })
	// The waker finds the read waiting, or is about to look at the client, and
	// waits for c.mu.
	c.mu.Lock()
	swept := make(chan struct{})
	go func() { defer close(swept); wake(pl) }()
	for lockDeadline := time.Now().Add(10 * time.Second); !goroutineWaiting(fn, "Mutex).Lock"); runtime.Gosched() {
		if time.Now().After(lockDeadline) {
			c.mu.Unlock()
			t.Fatalf("%s never waited for the client's lock", fn)
		}
	}
	// Meanwhile the read returns the Parse's first part; the rest is read next.
	first := wire.StreamSize + 1000
	wrote := make(chan error, 1)
	go func() {
		_, err := hc.Conn.Write(msg[100:first])
		wrote <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for p.reading.Load() && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	c.mu.Unlock()
	recv(t, swept, fn+" to return")
	if err := recv(t, wrote, "the middle write"); err != nil {
		t.Fatal(err)
	}
	send(msg[first:])
	for _, want := range []string{"*pgproto3.ParseComplete", "*pgproto3.ReadyForQuery"} {
		m, err := hc.Frontend.Receive()
		if err != nil {
			t.Fatalf("waiting for %s: %v", want, err)
		}
		if got := fmt.Sprintf("%T", m); got != want {
			t.Fatalf("got %s %+v, want %s", got, m, want)
		}
	}
}

// TestParkedUnixClient: a client on a unix socket is parked too, idle after login
// and, by the sweep, idle after a query; its next query wakes it and its close ends
// it.
func TestParkedUnixClient(t *testing.T) {
	t.Parallel()
	f, pl, _ := startParkPooler(t)
	dir, err := os.MkdirTemp("", "pgpool")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ln, err := net.Listen("unix", filepath.Join(dir, ".s.PGSQL.5432"))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- pl.Serve(ln) }()
	t.Cleanup(func() { ln.Close(); <-served })
	ctx := hygieneCtx(t)
	pc, err := pgconn.Connect(ctx, fmt.Sprintf("host=%s port=5432 user=%s dbname=%s sslmode=disable", dir, f.user, f.db))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close(context.Background())
	waitFor(t, "the unix client parked after login", 10*time.Second, func() bool { return pl.parker.Parked() == 1 })
	for i := 0; i < 3; i++ {
		res, err := pc.Exec(ctx, "select 40 + 2").ReadAll()
		if err != nil || len(res) != 1 || len(res[0].Rows) != 1 || string(res[0].Rows[0][0]) != "42" {
			t.Fatalf("query %d on the unix client: %+v, %v", i, res, err)
		}
		waitFor(t, "the unix client parked by the sweep", 10*time.Second, func() bool {
			pl.sweepIdle()
			return pl.parker.Parked() == 1
		})
	}
	pc.Close(ctx)
	waitFor(t, "the unix client gone", 10*time.Second, func() bool { return pl.nclients.Load() == 0 && pl.parker.Parked() == 0 })
}

// TestHotClientWaitsInRead: a client sending query after query is not parked
// between them, even when each reply (and the server's release) comes before its
// goroutine goes back to read (a hook holds the goroutine until then): it waits in
// Read, hot, and the idle sweep parks it once it has sent nothing since the sweep
// before. Parked, its goroutine has ended; its next query wakes it.
func TestHotClientWaitsInRead(t *testing.T) {
	t.Parallel()
	f, pl, addr := startParkPooler(t)
	pl.hotGap.Store(int64(time.Hour)) // a slow machine's queries are hot too
	pl.sweepPaused.Store(true)        // and this test runs the sweep
	// Before each read, wait until the reply to what was sent has released the
	// server: the client is idle when it decides whether to park.
	pl.hooks.Store(&cancelHooks{beforeRead: func(c *client) {
		deadline := time.Now().Add(10 * time.Second)
		for clientState(c.state.Load()) != clientIdle && time.Now().Before(deadline) {
			runtime.Gosched()
		}
	}})
	ctx := hygieneCtx(t)
	const n, queries = 5, 20
	conns := connectIdle(ctx, t, f.pgconnString(addr), n)
	waitFor(t, "the clients parked after login", 10*time.Second, func() bool { return pl.parker.Parked() == n })
	query := func(c *pgconn.PgConn, i int) {
		t.Helper()
		want := fmt.Sprint(i)
		res, err := c.Exec(ctx, "select "+want).ReadAll()
		if err != nil || len(res) != 1 || len(res[0].Rows) != 1 || string(res[0].Rows[0][0]) != want {
			t.Fatalf("select %s: %+v, %v", want, res, err)
		}
	}
	for _, c := range conns {
		query(c, 0) // the client's first request: not hot, parked after it
	}
	waitFor(t, "the clients parked after their first query", 10*time.Second, func() bool { return pl.parker.Parked() == n })
	parks := pl.parks.Load()
	for _, c := range conns {
		for i := 1; i <= queries; i++ {
			query(c, i)
		}
	}
	if got := pl.parks.Load() - parks; got != 0 {
		t.Fatalf("%d parks during %d back-to-back queries of %d clients, want none", got, queries, n)
	}
	clients := pl.clientList()
	waitFor(t, "the hot clients waiting in Read", 10*time.Second, func() bool {
		for _, c := range clients {
			if !c.parking.reading.Load() {
				return false
			}
		}
		return pl.parker.Parked() == 0
	})
	pl.sweepIdle() // marks them idle
	pl.sweepIdle() // wakes their reads to park
	waitFor(t, "the idle clients parked by the sweep", 10*time.Second, func() bool { return pl.parker.Parked() == n })
	// Parked clients are still served.
	for _, c := range conns {
		query(c, 42)
	}
}
