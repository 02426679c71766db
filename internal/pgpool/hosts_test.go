package pgpool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/poolsuite/poolsuite/internal/testenv"
)

func TestParseHosts(t *testing.T) {
	for _, tc := range []struct {
		host string
		port int
		want []endpoint
	}{
		{"", 0, []endpoint{{"tcp", "localhost:5432"}}},
		{"db1", 5433, []endpoint{{"tcp", "db1:5433"}}},
		{"a, b,,c", 6000, []endpoint{{"tcp", "a:6000"}, {"tcp", "b:6000"}, {"tcp", "c:6000"}}},
		{"::1,127.0.0.1", 5432, []endpoint{{"tcp", "[::1]:5432"}, {"tcp", "127.0.0.1:5432"}}},
		{"/run/pg,db", 5432, []endpoint{{"unix", "/run/pg/.s.PGSQL.5432"}, {"tcp", "db:5432"}}},
	} {
		got, err := parseHosts(tc.host, tc.port)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("parseHosts(%q, %d) = %v, %v; want %v", tc.host, tc.port, got, err, tc.want)
		}
	}
	for _, bad := range []string{",", " , ,", strings.Repeat("h,", maxHosts+1)} {
		if _, err := parseHosts(bad, 5432); !errors.Is(err, errHostList) {
			t.Errorf("parseHosts(%q): %v, want errHostList", bad, err)
		}
	}
}

func FuzzParseHosts(f *testing.F) {
	f.Add("a,b,c", 5432)
	f.Add("/tmp,::1,,x", 1)
	f.Add("", 0)
	f.Fuzz(func(t *testing.T, host string, port int) {
		eps, err := parseHosts(host, port)
		if err != nil {
			if !errors.Is(err, errHostList) {
				t.Fatalf("error %v is not errHostList", err)
			}
			return
		}
		if len(eps) == 0 || len(eps) > maxHosts {
			t.Fatalf("%d endpoints", len(eps))
		}
		o := &serverOptions{hosts: eps}
		for _, e := range eps {
			if e.network != "tcp" && e.network != "unix" {
				t.Fatalf("network %q", e.network)
			}
			if !o.hasAddr(e.addr) {
				t.Fatalf("hasAddr(%q) false", e.addr)
			}
		}
	})
}

// TestHostOrder checks how a pool picks the host of each new connection:
// round-robin, or the current host until it fails; a host that failed is tried
// last until server_login_retry has passed.
func TestHostOrder(t *testing.T) {
	eps, _ := parseHosts("a,b,c", 1)
	now := time.Now()
	rr := &serverOptions{hosts: eps}
	var h hostState
	var firsts []int
	for i := 0; i < 4; i++ {
		firsts = append(firsts, h.order(rr, now)[0])
	}
	if !slices.Equal(firsts, []int{0, 1, 2, 0}) {
		t.Errorf("round-robin starts %v", firsts)
	}
	h.result(rr, 1, false, now, time.Minute) // b refused
	// b's turn: it is skipped, tried only after the others.
	if got := h.order(rr, now); !slices.Equal(got, []int{2, 0, 1}) {
		t.Errorf("b's turn after b failed: %v, want [2 0 1]", got)
	}
	if got := h.order(rr, now); !slices.Equal(got, []int{2, 0, 1}) {
		t.Errorf("c's turn after b failed: %v, want [2 0 1]", got)
	}
	if got := h.order(rr, now.Add(2*time.Minute)); !slices.Equal(got, []int{0, 1, 2}) {
		t.Errorf("after server_login_retry: %v, want [0 1 2]", got)
	}
	h.result(rr, 1, true, now, time.Minute)
	if _, down := h.down["b:1"]; down {
		t.Error("b still down after a good connect")
	}

	sticky := &serverOptions{hosts: eps, stickyHost: true}
	var s hostState
	for i := 0; i < 3; i++ {
		if got := s.order(sticky, now); got[0] != 0 {
			t.Fatalf("disable: connect %d starts at %d", i, got[0])
		}
	}
	s.result(sticky, 0, false, now, time.Minute)
	got := s.order(sticky, now)
	if !slices.Equal(got, []int{1, 2, 0}) {
		t.Fatalf("disable after a failed: %v", got)
	}
	s.result(sticky, 1, true, now, time.Minute)
	if got := s.order(sticky, now.Add(2*time.Minute)); got[0] != 1 {
		t.Errorf("disable: stays on b once it worked, got %v", got)
	}
}

// socketAlias makes dir/.s.PGSQL.<port> lead to pg's unix socket, so that servers on
// different ports can share one port number in a host list.
func socketAlias(t *testing.T, pg *testenv.Postgres, port int) string {
	t.Helper()
	dir := t.TempDir()
	err := os.Symlink(filepath.Join(pg.SocketDir, fmt.Sprintf(".s.PGSQL.%d", pg.Port)),
		filepath.Join(dir, fmt.Sprintf(".s.PGSQL.%d", port)))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// serverPort connects a client and returns the port of the PostgreSQL server its
// session runs on; the client stays connected (session mode keeps its server).
func serverPort(t *testing.T, dsn string) int {
	t.Helper()
	c := connect(t, dsn)
	var port int
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.QueryRow(ctx, "select current_setting('port')::int").Scan(&port); err != nil {
		t.Fatal(err)
	}
	return port
}

// TestHostListRoundRobin: a [databases] host list naming two real servers. New server
// connections alternate between them (round-robin), or stay on the first
// (load_balance_hosts=disable); once one server is stopped, new connections go to
// the other.
func TestHostListRoundRobin(t *testing.T) {
	f := newFixture(t)
	b := testenv.StartPostgres(t, testenv.PostgresOptions{})
	b.CreateRole(t, f.user, f.password)
	b.CreateDatabase(t, f.db, f.user)
	a := f.pg
	port := a.Port
	dirA, dirB := socketAlias(t, a, port), socketAlias(t, b, port)

	cfg := f.config()
	cfg.PoolMode = PoolSession
	cfg.ServerLoginRetry = time.Minute
	hosts := dirB + "," + dirA
	cfg.Databases[f.db] = &Database{Host: hosts, Port: port, ReservePool: -1}
	sticky := "st_" + f.db
	cfg.Databases[sticky] = &Database{Host: hosts, Port: port, DBName: f.db, ReservePool: -1, LoadBalanceDisable: true}
	_, addr := startPooler(t, cfg)
	rrDSN := f.connString(addr)
	stDSN := strings.Replace(rrDSN, "/"+f.db+"?", "/"+sticky+"?", 1)

	var got []int
	for i := 0; i < 4; i++ {
		got = append(got, serverPort(t, rrDSN))
	}
	if want := []int{b.Port, a.Port, b.Port, a.Port}; !slices.Equal(got, want) {
		t.Errorf("round-robin: sessions on ports %v, want %v", got, want)
	}
	got = nil
	for i := 0; i < 3; i++ {
		got = append(got, serverPort(t, stDSN))
	}
	if want := []int{b.Port, b.Port, b.Port}; !slices.Equal(got, want) {
		t.Errorf("load_balance_hosts=disable: sessions on ports %v, want %v", got, want)
	}

	b.Stop()
	for _, dsn := range []string{rrDSN, rrDSN, rrDSN, stDSN, stDSN} {
		if p := serverPort(t, dsn); p != a.Port {
			t.Errorf("with %d stopped: session on port %d, want %d", b.Port, p, a.Port)
		}
	}
}

// syncBuffer collects log output written from many goroutines.
type syncBuffer = testenv.SyncBuffer

// startPoolerLog is startPooler with the pooler's log kept in a buffer.
func startPoolerLog(t *testing.T, cfg *Config) (*Pooler, string, *syncBuffer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	buf := &syncBuffer{}
	pl := New(cfg, slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	served := make(chan error, 1)
	go func() { served <- pl.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		pl.Shutdown(ctx)
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return pl, ln.Addr().String(), buf
}

// TestConnectQuery: connect_query runs on each new server connection before a client
// gets it; one that fails is logged and the connection serves clients all the same,
// as in PgBouncer.
func TestConnectQuery(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.PoolMode = PoolSession
	db := cfg.Databases[f.db]
	db.ConnectQuery = "set enable_seqscan = off; set enable_nestloop = off"
	bad := "bad_" + f.db
	cfg.Databases[bad] = &Database{Host: db.Host, Port: db.Port, DBName: f.db, ReservePool: -1,
		ConnectQuery: "select no_such_function_here()"}
	_, addr, logs := startPoolerLog(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for i := 0; i < 2; i++ { // two clients: two server connections
		c := connect(t, f.connString(addr))
		for _, name := range []string{"enable_seqscan", "enable_nestloop"} {
			var v string
			if err := c.QueryRow(ctx, "show "+name).Scan(&v); err != nil || v != "off" {
				t.Errorf("client %d: %s = %q, %v; want off", i, name, v, err)
			}
		}
	}

	c := connect(t, strings.Replace(f.connString(addr), "/"+f.db+"?", "/"+bad+"?", 1))
	var n int
	if err := c.QueryRow(ctx, "select 7").Scan(&n); err != nil || n != 7 {
		t.Fatalf("failing connect_query: select 7 = %d, %v", n, err)
	}
	if !strings.Contains(logs.String(), "connect_query failed") || !strings.Contains(logs.String(), "no_such_function_here") {
		t.Errorf("the failing connect_query was not logged:\n%s", logs.String())
	}
}

// TestAuthUserPerDatabase: auth_user in a [databases] entry looks up users absent
// from the auth_file with auth_query on that database, without a global auth_user.
func TestAuthUserPerDatabase(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.Userlist = map[string]string{f.pg.SuperUser: f.pg.SuperPassword}
	cfg.AuthUser = ""
	cfg.Databases[f.db].AuthUser = f.pg.SuperUser
	other := "noauth_" + f.db
	cfg.Databases[other] = &Database{Host: f.pg.Host, Port: f.pg.Port, DBName: f.db, ReservePool: -1}
	_, addr := startPooler(t, cfg)
	if n := queryInt(t, f.connString(addr), "select 5"); n != 5 {
		t.Fatal(n)
	}
	host, port, _ := net.SplitHostPort(addr)
	wrong := fmt.Sprintf("postgres://%s:nope@%s:%s/%s?sslmode=disable", f.user, host, port, f.db)
	wantSQLState(t, tryConnect(wrong), CodeInvalidPassword)
	// The entry without auth_user has no way to look the user up.
	noAuth := strings.Replace(f.connString(addr), "/"+f.db+"?", "/"+other+"?", 1)
	wantSQLState(t, tryConnect(noAuth), CodeInvalidPassword)
}

// TestServerFastClose: with server_fast_close, a session-mode server connection that
// RECONNECT marked is closed with its client once the client is idle outside a
// transaction; a transaction under way finishes first.
func TestServerFastClose(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.PoolMode = PoolSession
	admin, adminPW := "adm_"+f.user, "apw"
	cfg.AdminUsers = []string{admin}
	cfg.Userlist[admin] = adminPW
	pl, addr, log := startPoolerLog(t, cfg)
	host, port, _ := net.SplitHostPort(addr)
	adm := adminConnect(t, fmt.Sprintf("postgres://%s:%s@%s:%s/pgbouncer?sslmode=disable", admin, adminPW, host, port))
	adminExecOK(t, adm, "SET server_fast_close = 1")
	if !pl.settings().ServerFastClose {
		t.Fatal("SET server_fast_close = 1 did not take effect")
	}
	su := f.pg.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pidOf := func(q interface {
		QueryRow(context.Context, string, ...any) pgx.Row
	}) uint32 {
		t.Helper()
		var pid uint32
		if err := q.QueryRow(ctx, "select pg_backend_pid()").Scan(&pid); err != nil {
			t.Fatal(err)
		}
		return pid
	}
	waitGone := func(pid uint32) {
		t.Helper()
		adminWaitFor(t, fmt.Sprintf("backend %d to end", pid), func() bool { return !backendAlive(ctx, t, su, pid) })
	}

	idle := connect(t, f.connString(addr))
	inTx := connect(t, f.connString(addr))
	idlePID := pidOf(idle)
	tx, err := inTx.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	txPID := pidOf(tx)

	adminExecOK(t, adm, "RECONNECT "+f.db)

	// The idle session's server connection closes, and the client with it.
	waitGone(idlePID)
	if _, err := idle.Exec(ctx, "select 1"); err == nil {
		t.Error("the idle client's session survived server_fast_close")
	}
	if !strings.Contains(log.String(), "closing because: database configuration changed") {
		t.Errorf("no \"closing because: database configuration changed\" line:\n%s", log.String())
	}
	// The transaction goes on (the janitor runs three times a second meanwhile) ...
	for i := 0; i < 4; i++ {
		if _, err := tx.Exec(ctx, "select pg_sleep(0.2)"); err != nil {
			t.Fatalf("transaction interrupted by server_fast_close: %v", err)
		}
	}
	if !backendAlive(ctx, t, su, txPID) {
		t.Fatal("server connection closed inside a transaction")
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	// ... and once it has ended, the connection is closed.
	waitGone(txPID)
	if _, err := inTx.Exec(ctx, "select 1"); err == nil {
		t.Error("the session survived server_fast_close after its transaction")
	}

	// New clients get new server connections.
	fresh := connect(t, f.connString(addr))
	if pid := pidOf(fresh); pid == idlePID || pid == txPID {
		t.Errorf("new client on a closed server connection (pid %d)", pid)
	}
}

// TestAdminSetVerbose: SET verbose = N is accepted, shown by SHOW CONFIG, and handed
// to the function that sets the log level.
func TestAdminSetVerbose(t *testing.T) {
	e := newAdminEnv(t, false)
	got := make(chan int, 2)
	e.pl.SetVerboseFunc(func(n int) { got <- n })
	adm := adminConnect(t, e.dsn(false, e.admin, e.adminPassword, "pgbouncer"))
	adminExecOK(t, adm, "SET verbose = 2")
	select {
	case n := <-got:
		if n != 2 {
			t.Errorf("verbose function got %d, want 2", n)
		}
	default:
		t.Error("SET verbose did not call the verbose function")
	}
	_, rows := adminQueryResult(t, adm, "SHOW CONFIG")
	found := false
	for _, r := range rows {
		if r["key"] == "verbose" {
			found = true
			if r["value"] != "2" || r["default"] != "0" || r["changeable"] != "yes" {
				t.Errorf("SHOW CONFIG verbose: %v", r)
			}
		}
	}
	if !found {
		t.Error("SHOW CONFIG lacks verbose")
	}
	if pe := adminExecErr(t, adm, "SET verbose = 'loud'"); pe.Message != "SET failed" {
		t.Errorf("SET verbose = 'loud': %q", pe.Message)
	}
}
