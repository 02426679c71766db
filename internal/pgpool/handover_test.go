package pgpool

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/poolsuite/poolsuite/internal/testenv"
)

// takeoverEnv is a pooler serving a loopback TCP port and a unix socket, as pgpool
// does, that a second pooler can take over.
type takeoverEnv struct {
	addr   string // the TCP address clients use
	sock   string // the unix socket the new pooler takes over through
	old    *Pooler
	served chan error // one per listener of the old pooler
}

func startTakeoverPooler(t *testing.T, cfg *Config) *takeoverEnv {
	t.Helper()
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(tl.Addr().String())
	dir, err := os.MkdirTemp("", "ho")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, ".s.PGSQL."+port)
	ul, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	e := &takeoverEnv{addr: tl.Addr().String(), sock: sock, old: New(cfg, testLogger(t)), served: make(chan error, 2)}
	for _, ln := range []net.Listener{tl, ul} {
		go func() { e.served <- e.old.Serve(ln) }()
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.old.Shutdown(ctx)
	})
	return e
}

// takeOver runs a new pooler's takeover of e in the background.
func (e *takeoverEnv) takeOver(t *testing.T, cfg *Config) (*Pooler, <-chan takeResult) {
	t.Helper()
	pl := New(cfg, testLogger(t))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		pl.Shutdown(ctx)
	})
	res := make(chan takeResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		tk, err := pl.TakeOver(ctx, e.sock)
		res <- takeResult{tk, err}
	}()
	return pl, res
}

type takeResult struct {
	tk  *Takeover
	err error
}

// finish serves the taken listeners with pl, sends SHUTDOWN and waits until the old
// pooler has stopped serving.
func (e *takeoverEnv) finish(t *testing.T, pl *Pooler, r takeResult) {
	t.Helper()
	if r.err != nil {
		t.Fatalf("TakeOver: %v", r.err)
	}
	if len(r.tk.Listeners) != 2 {
		t.Fatalf("took %d listeners, want 2", len(r.tk.Listeners))
	}
	for _, ln := range r.tk.Listeners {
		go pl.Serve(ln)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.tk.Finish(ctx); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	for i := 0; i < 2; i++ {
		select {
		case err := <-e.served:
			if err != nil {
				t.Fatalf("old pooler's Serve: %v", err)
			}
		case <-ctx.Done():
			t.Fatal("the old pooler did not stop after SHUTDOWN")
		}
	}
	waitFor(t, "the old pooler's connections to close", 10*time.Second, func() bool { return e.old.nclients.Load() == 0 })
}

// psqlSession is a psql process reading statements from a pipe.
type psqlSession struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func startPsql(t *testing.T, dsn string) *psqlSession {
	t.Helper()
	psql := testenv.LookPath(t, "psql")
	cmd := exec.Command(psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", dsn)
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=10")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	return &psqlSession{cmd: cmd, in: in, out: bufio.NewReader(out)}
}

// send sends a statement that prints nothing.
func (p *psqlSession) send(t *testing.T, sql string) {
	t.Helper()
	if _, err := fmt.Fprintln(p.in, sql); err != nil {
		t.Fatalf("psql %s: %v", sql, err)
	}
}

// query sends one statement and returns the first line psql prints for it.
func (p *psqlSession) query(t *testing.T, sql string) string {
	t.Helper()
	if _, err := fmt.Fprintln(p.in, sql); err != nil {
		t.Fatalf("psql %s: %v", sql, err)
	}
	line, err := p.out.ReadString('\n')
	if err != nil {
		t.Fatalf("psql %s: %v (psql ended)", sql, err)
	}
	return strings.TrimSpace(line)
}

// TestTakeoverKeepsClients: a new pooler takes over from a running one (SUSPEND, SHOW
// FDS with the sockets, SHUTDOWN) while pgx and psql clients hold connections: one
// idle after a SET, one with a named prepared statement, one inside a transaction
// (the handover waits for its end), a psql session after a SET. After the takeover
// every client goes on on the same connection with its settings and statements, the
// old pooler has stopped, new connections reach the new pooler, and a cancel sent
// to the new pooler stops the right client's query.
func TestTakeoverKeepsClients(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.MaxPreparedStatements = 100
	cfg.AdminUsers = []string{f.user}
	e := startTakeoverPooler(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	withSet := connect(t, f.connString(e.addr))
	if _, err := withSet.Exec(ctx, "SET work_mem = '7MB'"); err != nil {
		t.Fatal(err)
	}
	if _, err := withSet.Exec(ctx, "SET application_name = 'kept-name'"); err != nil {
		t.Fatal(err)
	}
	prepared := connect(t, f.pgconnString(e.addr))
	if _, err := prepared.Prepare(ctx, "plus_one", "select $1::int + 1"); err != nil {
		t.Fatal(err)
	}
	inTx := connect(t, f.connString(e.addr))
	tx, err := inTx.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	ps := startPsql(t, f.pgconnString(e.addr))
	ps.send(t, "SET work_mem = '9MB';") // prints nothing
	if got := ps.query(t, "SELECT 40 + 2;"); got != "42" {
		t.Fatalf("psql before: %q", got)
	}

	pl, res := e.takeOver(t, cfg)
	// The three idle clients move; the one in a transaction holds the handover.
	waitFor(t, "the idle clients to be handed over", 20*time.Second, func() bool {
		return e.old.ho.Load() != nil && e.old.nclients.Load() == 2 // inTx and the new pooler's console
	})
	select {
	case r := <-res:
		t.Fatalf("takeover finished while a transaction was open: %v", r.err)
	default:
	}
	if _, err := tx.Exec(ctx, "select 2"); err != nil {
		t.Fatalf("in the transaction during the handover: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("commit during the handover: %v", err)
	}
	r := <-res
	e.finish(t, pl, r)
	if r.tk.Clients != 4 || r.tk.Skipped != 0 {
		t.Fatalf("took %d clients (%d skipped), want 4", r.tk.Clients, r.tk.Skipped)
	}

	var s string
	if err := withSet.QueryRow(ctx, "SHOW work_mem").Scan(&s); err != nil || s != "7MB" {
		t.Fatalf("work_mem after takeover: %q, %v", s, err)
	}
	if err := withSet.QueryRow(ctx, "SHOW application_name").Scan(&s); err != nil || s != "kept-name" {
		t.Fatalf("application_name after takeover: %q, %v", s, err)
	}
	var n int
	if err := prepared.QueryRow(ctx, "plus_one", 41).Scan(&n); err != nil || n != 42 {
		t.Fatalf("prepared statement after takeover: %d, %v", n, err)
	}
	if err := inTx.QueryRow(ctx, "select 7").Scan(&n); err != nil || n != 7 {
		t.Fatalf("client that was in a transaction: %d, %v", n, err)
	}
	if got := ps.query(t, "SHOW work_mem;"); got != "9MB" {
		t.Fatalf("psql work_mem after takeover: %q", got)
	}
	fresh := connect(t, f.connString(e.addr))
	if err := fresh.QueryRow(ctx, "select 1").Scan(&n); err != nil {
		t.Fatalf("new connection after takeover: %v", err)
	}
	if got := pl.nclients.Load(); got != 5 {
		t.Fatalf("the new pooler serves %d clients, want 5", got)
	}

	// A cancel sent to the new pooler stops the query of the client it names only.
	bystander := make(chan error, 1)
	go func() {
		_, err := prepared.Exec(ctx, "select pg_sleep(1)")
		bystander <- err
	}()
	victim := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := withSet.Exec(ctx, "select pg_sleep(30)")
		victim <- err
	}()
	su := f.pg.Connect(t)
	waitFor(t, "the query to run", 20*time.Second, func() bool {
		var k int
		su.QueryRow(ctx, "select count(*) from pg_stat_activity where query = 'select pg_sleep(30)' and state = 'active'").Scan(&k)
		return k == 1
	})
	if err := withSet.PgConn().CancelRequest(ctx); err != nil {
		t.Fatal(err)
	}
	err = <-victim
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "57014" || time.Since(start) > 20*time.Second {
		t.Fatalf("cancelled query: %v after %v", err, time.Since(start))
	}
	if err := <-bystander; err != nil {
		t.Fatalf("the other client's query: %v", err)
	}
}

// TestTakeoverWaitsForRunningQueries: clients whose queries run when the takeover
// starts are handed over once answered, and see no error (PgBouncer's own suite runs
// its online restart over five clients in pg_sleep, in statement mode).
func TestTakeoverWaitsForRunningQueries(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.PoolMode = PoolStatement
	e := startTakeoverPooler(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const n = 5
	conns := make([]*pgx.Conn, n)
	for i := range conns {
		conns[i] = connect(t, f.connString(e.addr))
	}
	su := f.pg.Connect(t)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Exec(ctx, "select pg_sleep(1.5)")
			errs <- err
		}()
	}
	waitFor(t, "the queries to run", 20*time.Second, func() bool {
		var k int
		su.QueryRow(ctx, "select count(*) from pg_stat_activity where query = 'select pg_sleep(1.5)' and state = 'active'").Scan(&k)
		return k == n
	})
	pl, res := e.takeOver(t, cfg)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("query across the takeover: %v", err)
		}
	}
	r := <-res
	e.finish(t, pl, r)
	if r.tk.Clients != n {
		t.Fatalf("took %d clients, want %d", r.tk.Clients, n)
	}
	for i, c := range conns {
		var k int
		if err := c.QueryRow(ctx, "select "+strconv.Itoa(i)).Scan(&k); err != nil || k != i {
			t.Fatalf("client %d after takeover: %d, %v", i, k, err)
		}
	}
}

// TestTakeoverSCRAMPassthrough: with only a SCRAM verifier in the userlist, the pool
// logs in to PostgreSQL with the ClientKey recovered from the client's own SCRAM
// exchange. The new pooler has no password to open its server connections with but
// the keys that come with the client, so the client's next query after the takeover
// works only if they did (PgBouncer's test_scram_takeover).
func TestTakeoverSCRAMPassthrough(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var verifier string
	if err := f.pg.Connect(t).QueryRow(ctx, "select rolpassword from pg_authid where rolname = $1", f.user).Scan(&verifier); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(verifier, "SCRAM-SHA-256$") {
		t.Skipf("the role's password is not stored as SCRAM: %.10s", verifier)
	}
	cfg := f.config()
	cfg.Userlist = map[string]string{f.user: verifier}
	e := startTakeoverPooler(t, cfg)
	c := connect(t, f.connString(e.addr))
	var n int
	if err := c.QueryRow(ctx, "select 1").Scan(&n); err != nil {
		t.Fatal(err)
	}
	pl, res := e.takeOver(t, cfg)
	r := <-res
	e.finish(t, pl, r)
	if err := c.QueryRow(ctx, "select 2").Scan(&n); err != nil || n != 2 {
		t.Fatalf("query after the takeover: %d, %v", n, err)
	}
}

// TestTakeoverLinkedServer: a client that keeps its server connection (session mode,
// or pinned in transaction mode by a temporary table) moves with that connection:
// after the takeover it is served by the same backend (same pid, its temporary table
// and SQL-level prepared statement still there, its SET kept), and a cancel sent to
// the new pooler reaches that backend's query.
func TestTakeoverLinkedServer(t *testing.T) {
	f := newFixture(t)
	for _, mode := range []PoolMode{PoolSession, PoolTransaction} {
		t.Run(mode.String(), func(t *testing.T) {
			cfg := f.config()
			cfg.PoolMode = mode
			e := startTakeoverPooler(t, cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			c := connect(t, f.connString(e.addr))
			for _, q := range []string{"create temp table kept (x int)", "insert into kept values (41)",
				"prepare plus(int) as select $1 + 1", "SET work_mem = '3MB'"} {
				if _, err := c.Exec(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			var before, after int
			if err := c.QueryRow(ctx, "select pg_backend_pid()").Scan(&before); err != nil {
				t.Fatal(err)
			}
			pl, res := e.takeOver(t, cfg)
			r := <-res
			e.finish(t, pl, r)
			if r.tk.Clients != 1 {
				t.Fatalf("took %d clients, want 1", r.tk.Clients)
			}
			if err := c.QueryRow(ctx, "select pg_backend_pid()").Scan(&after); err != nil || after != before {
				t.Fatalf("backend after the takeover: %d (%v), before %d", after, err, before)
			}
			var n int
			if err := c.QueryRow(ctx, "select x from kept").Scan(&n); err != nil || n != 41 {
				t.Fatalf("temporary table after the takeover: %d, %v", n, err)
			}
			if err := c.QueryRow(ctx, "execute plus(1)").Scan(&n); err != nil || n != 2 {
				t.Fatalf("prepared statement after the takeover: %d, %v", n, err)
			}
			var s string
			if err := c.QueryRow(ctx, "SHOW work_mem").Scan(&s); err != nil || s != "3MB" {
				t.Fatalf("work_mem after the takeover: %q, %v", s, err)
			}
			victim := make(chan error, 1)
			go func() {
				_, err := c.Exec(ctx, "select pg_sleep(30)")
				victim <- err
			}()
			su := f.pg.Connect(t)
			waitFor(t, "the query to run", 20*time.Second, func() bool {
				var k int
				su.QueryRow(ctx, "select count(*) from pg_stat_activity where pid = $1 and query = 'select pg_sleep(30)' and state = 'active'", before).Scan(&k)
				return k == 1
			})
			if err := c.PgConn().CancelRequest(ctx); err != nil {
				t.Fatal(err)
			}
			var pe *pgconn.PgError
			if err := <-victim; !errors.As(err, &pe) || pe.Code != "57014" {
				t.Fatalf("cancelled query: %v", err)
			}
			// The client leaves; a new client logs in to a pool whose only server
			// connection came from the old process.
			if err := c.Close(ctx); err != nil {
				t.Fatal(err)
			}
			fresh := connect(t, f.connString(e.addr))
			if err := fresh.QueryRow(ctx, "select 5").Scan(&n); err != nil || n != 5 {
				t.Fatalf("new client after the takeover: %d, %v", n, err)
			}
		})
	}
}

// TestShowFDSFromPsql: SHOW FDS in a psql session of pgpool's own OS user over the
// unix socket, even after SUSPEND, lists the sockets with PgBouncer's columns and
// hands nothing over: the clients stay served by this pooler.
func TestShowFDSFromPsql(t *testing.T) {
	psql := testenv.LookPath(t, "psql")
	f := newFixture(t)
	cfg := f.config()
	e := startTakeoverPooler(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := connect(t, f.connString(e.addr))
	var n int
	if err := c.QueryRow(ctx, "select 1").Scan(&n); err != nil {
		t.Fatal(err)
	}
	dir, port := filepath.Dir(e.sock), strings.TrimPrefix(filepath.Base(e.sock), ".s.PGSQL.")
	cmd := exec.Command(psql, "-X", "-A", "-h", dir, "-p", port, "-U", ownAdminUser, "-d", "pgbouncer",
		"-c", "SUSPEND", "-c", "SHOW FDS", "-c", "RESUME")
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=10")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("psql: %v\n%s", err, out)
	}
	var header string
	var pooler, client int
	for _, l := range strings.Split(string(out), "\n") {
		cols := strings.Split(l, "|")
		switch {
		case len(cols) > 1 && cols[0] == "fd":
			header = l
		case len(cols) > 1 && cols[1] == "pooler":
			pooler++
		case len(cols) > 1 && cols[1] == "client":
			client++
		}
	}
	if header != "fd|task|user|database|addr|port|cancel|link|client_encoding|std_strings|datestyle|timezone|password|scram_client_key|scram_server_key|"+fdStateColumn {
		t.Fatalf("SHOW FDS header %q:\n%s", header, out)
	}
	if pooler != 2 || client < 2 { // the pgx client and psql itself
		t.Fatalf("SHOW FDS lists %d listeners and %d clients:\n%s", pooler, client, out)
	}
	if err := c.QueryRow(ctx, "select 2").Scan(&n); err != nil || n != 2 {
		t.Fatalf("client after SHOW FDS: %d, %v", n, err)
	}
	if e.old.ho.Load() != nil {
		t.Fatal("SHOW FDS from psql started a handover")
	}
}

// TestTakeoverIdleServers: the pools' idle server connections move too: after the
// takeover the same backend serves the pool (of one connection), and a client that
// logs in to the new pooler, whose pool has opened no connection of its own, is told
// the pool's parameters.
func TestTakeoverIdleServers(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.DefaultPoolSize = 1
	e := startTakeoverPooler(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := connect(t, f.connString(e.addr))
	var before, after int
	if err := c.QueryRow(ctx, "select pg_backend_pid()").Scan(&before); err != nil {
		t.Fatal(err)
	}
	pl, res := e.takeOver(t, cfg)
	r := <-res
	e.finish(t, pl, r)
	if r.tk.IdleServers != 1 || r.tk.Clients != 1 {
		t.Fatalf("took %d idle server connections and %d clients, want 1 and 1", r.tk.IdleServers, r.tk.Clients)
	}
	fresh := connect(t, f.connString(e.addr))
	if err := fresh.QueryRow(ctx, "select pg_backend_pid()").Scan(&after); err != nil || after != before {
		t.Fatalf("backend after the takeover: %d (%v), before %d", after, err, before)
	}
	if err := c.QueryRow(ctx, "select pg_backend_pid()").Scan(&after); err != nil || after != before {
		t.Fatalf("the first client's backend after the takeover: %d (%v), before %d", after, err, before)
	}
}

// TestTakeoverAbandoned: when the new process goes away during SHOW FDS (its takeover
// gives up), the old pooler keeps the clients it has not handed over, serves them on
// and accepts new connections again.
func TestTakeoverAbandoned(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	e := startTakeoverPooler(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	inTx := connect(t, f.connString(e.addr))
	tx, err := inTx.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	pl := New(cfg, testLogger(t))
	t.Cleanup(func() {
		c, stop := context.WithCancel(context.Background())
		stop()
		pl.Shutdown(c)
	})
	tctx, tcancel := context.WithCancel(ctx)
	res := make(chan error, 1)
	go func() {
		_, err := pl.TakeOver(tctx, e.sock)
		res <- err
	}()
	waitFor(t, "the handover to start", 20*time.Second, func() bool { return e.old.ho.Load() != nil })
	tcancel()
	if err := <-res; !errors.Is(err, ErrTakeover) {
		t.Fatalf("TakeOver after its context ended: %v", err)
	}
	waitFor(t, "the old pooler to accept again", 20*time.Second, func() bool { return e.old.ho.Load() == nil })
	if _, err := tx.Exec(ctx, "select 2"); err != nil {
		t.Fatalf("the transaction after the abandoned takeover: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := inTx.QueryRow(ctx, "select 3").Scan(&n); err != nil || n != 3 {
		t.Fatalf("the client after its transaction: %d, %v", n, err)
	}
	fresh := connect(t, f.connString(e.addr))
	if err := fresh.QueryRow(ctx, "select 4").Scan(&n); err != nil || n != 4 {
		t.Fatalf("a new client of the old pooler: %d, %v", n, err)
	}
	// (The taker's console connection ends just after the handover does.)
	waitFor(t, "the old pooler serving its 2 clients and no more", 10*time.Second, func() bool { return e.old.nclients.Load() == 2 })
}
