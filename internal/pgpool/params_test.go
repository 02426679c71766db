package pgpool

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/poolsuite/poolsuite/internal/testenv"
)

// TestSetFollowsClient: one client's SET search_path and SET TimeZone are invisible to
// the other clients of the same server connection and persist for itself across
// transactions on different server connections.
func TestSetFollowsClient(t *testing.T) {
	f := newFixture(t)
	setup := connect(t, f.pg.ConnString(f.user, f.password, f.db))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, q := range []string{
		"create schema s1", "create table public.t (v text)", "create table s1.t (v text)",
		"insert into public.t values ('public')", "insert into s1.t values ('s1')",
	} {
		if _, err := setup.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	cfg := f.config()
	cfg.DefaultPoolSize = 2
	_, addr := startPooler(t, cfg)
	a := connect(t, f.connString(addr))
	b := connect(t, f.connString(addr))
	var defaultTZ string
	if err := b.QueryRow(ctx, "show timezone").Scan(&defaultTZ); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Exec(ctx, "SET search_path = s1"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Exec(ctx, "SET TimeZone = 'Asia/Tokyo'"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Exec(ctx, "SET statement_timeout = '7min'"); err != nil {
		t.Fatal(err)
	}
	// A SET that fails changes nothing.
	if _, err := a.Exec(ctx, "SET work_mem = 'not a size'"); err == nil {
		t.Fatal("bad SET succeeded")
	}
	for i := 0; i < 6; i++ {
		// Hold a transaction on one client now and then, so the two clients trade
		// server connections.
		var tx interface{ Commit(context.Context) error }
		if i%2 == 1 {
			t2, err := b.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			t2.Exec(ctx, "select 1")
			tx = t2
		}
		var va, tza, sta string
		if err := a.QueryRow(ctx, "select v, current_setting('TimeZone'), current_setting('statement_timeout') from t").Scan(&va, &tza, &sta); err != nil {
			t.Fatal(err)
		}
		if va != "s1" || tza != "Asia/Tokyo" || sta != "7min" {
			t.Fatalf("round %d: client A sees %q, %q, %q; want s1, Asia/Tokyo, 7min", i, va, tza, sta)
		}
		if tx != nil {
			tx.Commit(ctx)
		}
		var vb, tzb, stb string
		if err := b.QueryRow(ctx, "select v, current_setting('TimeZone'), current_setting('statement_timeout') from t").Scan(&vb, &tzb, &stb); err != nil {
			t.Fatal(err)
		}
		if vb != "public" || tzb != defaultTZ || stb != "0" {
			t.Fatalf("round %d: client B sees %q, %q, %q; want public, %s, 0 (A's SET leaked)", i, vb, tzb, stb, defaultTZ)
		}
	}
	if _, err := a.Exec(ctx, "RESET search_path"); err != nil {
		t.Fatal(err)
	}
	var va string
	if err := a.QueryRow(ctx, "select v from t").Scan(&va); err != nil || va != "public" {
		t.Fatalf("after RESET: %q, %v", va, err)
	}
}

// readTenant returns a client's myapp.tenant, "" when it has none.
func readTenant(ctx context.Context, t *testing.T, c *pgx.Conn) string {
	t.Helper()
	var v string
	if err := c.QueryRow(ctx, "select coalesce(current_setting('myapp.tenant', true), '')").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestCustomSettingFollowsClient: SET of a dotted custom setting (how tenant ids reach
// row-level security) follows the client like any SET: the client keeps no server
// connection for it (the pool has one, which another client shares), others never see
// it, and RESET, RESET ALL and DISCARD ALL forget it.
func TestCustomSettingFollowsClient(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.DefaultPoolSize = 1
	cfg.QueryWaitTimeout = 2 * time.Second
	_, addr := startPooler(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := connect(t, f.connString(addr))
	b := connect(t, f.connString(addr))
	for _, forget := range []string{"RESET myapp.tenant", "RESET ALL", "DISCARD ALL"} {
		if _, err := a.Exec(ctx, "SET myapp.tenant = 'acme'"); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			if v := readTenant(ctx, t, a); v != "acme" {
				t.Fatalf("client A reads tenant %q, want acme", v)
			}
			if v := readTenant(ctx, t, b); v != "" {
				t.Fatalf("client B reads A's tenant %q", v)
			}
		}
		if _, err := a.Exec(ctx, forget); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Exec(ctx, "select 1"); err != nil {
			t.Fatal(err)
		}
		if v := readTenant(ctx, t, a); v != "" {
			t.Fatalf("after %s client A reads tenant %q", forget, v)
		}
	}
}

// TestSetConfigFollowsClient: set_config(name, value, false) follows the client like
// SET, sent as a simple Query or with the extended protocol; with is_local true nothing
// follows; with a parameter for the value the client is pinned (the one server
// connection is then not shared).
func TestSetConfigFollowsClient(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.DefaultPoolSize = 1
	cfg.QueryWaitTimeout = time.Second
	_, addr := startPooler(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	extended := connect(t, f.connString(addr))
	simple := connect(t, f.pgconnString(addr)+"&default_query_exec_mode=simple_protocol")
	b := connect(t, f.connString(addr))
	var v string
	if err := extended.QueryRow(ctx, "select set_config('myapp.tenant', 'ext', false)").Scan(&v); err != nil || v != "ext" {
		t.Fatalf("set_config: %q %v", v, err)
	}
	if err := simple.QueryRow(ctx, "SELECT set_config('myapp.tenant', 'simple', false);").Scan(&v); err != nil || v != "simple" {
		t.Fatalf("set_config: %q %v", v, err)
	}
	tx, err := b.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRow(ctx, "select set_config('myapp.tenant', 'local', true)").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		for _, tc := range []struct {
			c    *pgx.Conn
			want string
		}{{extended, "ext"}, {simple, "simple"}, {b, ""}} {
			if got := readTenant(ctx, t, tc.c); got != tc.want {
				t.Fatalf("round %d: tenant %q, want %q", i, got, tc.want)
			}
		}
	}
	// A value given as a parameter cannot be followed: the client keeps its connection.
	if err := extended.QueryRow(ctx, "select set_config('myapp.tenant', $1, false)", "param").Scan(&v); err != nil {
		t.Fatal(err)
	}
	_, err = b.Exec(ctx, "select 1")
	wantSQLState(t, err, CodeProtocolViolation) // query_wait_timeout: pinned
	if got := readTenant(ctx, t, extended); got != "param" {
		t.Fatalf("pinned client reads %q", got)
	}
}

// TestStartupParamsFollowClient: startup parameters PgBouncer refuses (client_min_messages,
// any setting, options with -c switches and libpq's escaped spaces) are accepted and
// follow the client over a pool it shares with another client, which never sees them;
// RESET goes back to the startup value, as in PostgreSQL. A setting PostgreSQL refuses
// fails the login with PostgreSQL's error.
func TestStartupParamsFollowClient(t *testing.T) {
	f := newFixture(t)
	setup := connect(t, f.pg.ConnString(f.user, f.password, f.db))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, q := range []string{"create schema s1", "create table public.t (v text)", "create table s1.t (v text)",
		"insert into public.t values ('public')", "insert into s1.t values ('s1')"} {
		if _, err := setup.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	cfg := f.config()
	cfg.DefaultPoolSize = 1
	cfg.QueryWaitTimeout = 2 * time.Second
	_, addr := startPooler(t, cfg)
	pc, err := pgx.ParseConfig(f.connString(addr))
	if err != nil {
		t.Fatal(err)
	}
	pc.RuntimeParams["client_min_messages"] = "warning"
	pc.RuntimeParams["options"] = `-c search_path=s1 -c statement_timeout=4567 --myapp.tenant=a\ b`
	a, err := pgx.ConnectConfig(ctx, pc)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(ctx)
	b := connect(t, f.connString(addr))
	const q = "select current_setting('client_min_messages'), current_setting('search_path'), current_setting('statement_timeout'), coalesce(current_setting('myapp.tenant', true), ''), v from t"
	read := func(c *pgx.Conn) string {
		t.Helper()
		var m, sp, st, tn, v string
		if err := c.QueryRow(ctx, q).Scan(&m, &sp, &st, &tn, &v); err != nil {
			t.Fatal(err)
		}
		return strings.Join([]string{m, sp, st, tn, v}, "|")
	}
	const wantA, wantB = "warning|s1|4567ms|a b|s1", `notice|"$user", public|0||public`
	for i := 0; i < 3; i++ {
		if got := read(a); got != wantA {
			t.Fatalf("round %d: client A reads %q, want %q", i, got, wantA)
		}
		if got := read(b); got != wantB {
			t.Fatalf("round %d: client B reads %q, want %q", i, got, wantB)
		}
	}
	if _, err := a.Exec(ctx, "SET statement_timeout = '1min'"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Exec(ctx, "RESET statement_timeout"); err != nil {
		t.Fatal(err)
	}
	read(b)
	if got := read(a); got != wantA {
		t.Fatalf("after RESET client A reads %q, want %q", got, wantA)
	}

	// psql, with PGOPTIONS.
	psql := testenv.LookPath(t, "psql")
	host, port, _ := net.SplitHostPort(addr)
	cmd := exec.CommandContext(ctx, psql, "-X", "-At", "-c", "select current_setting('search_path'), current_setting('client_min_messages'), current_setting('statement_timeout')")
	cmd.Env = append(os.Environ(), "PGHOST="+host, "PGPORT="+port, "PGDATABASE="+f.db, "PGUSER="+f.user,
		"PGPASSWORD="+f.password, "PGSSLMODE=disable", "PGOPTIONS=-c search_path=s1 -c client_min_messages=error -c statement_timeout=3s")
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "s1|error|3s" {
		t.Fatalf("psql: %v: %q", err, out)
	}
	if got := read(b); got != wantB {
		t.Fatalf("after psql client B reads %q", got)
	}

	for _, tc := range []struct{ options, code string }{
		{"-c no_such_param=1", "42704"},
		{"-c statement_timeout=abc", "22023"},
		{"-c statement_timeout", codeSyntaxError},
	} {
		pc, _ := pgx.ParseConfig(f.connString(addr))
		pc.RuntimeParams["options"] = tc.options
		c, err := pgx.ConnectConfig(ctx, pc)
		if err == nil {
			c.Close(ctx)
			t.Fatalf("options %q accepted", tc.options)
		}
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != tc.code {
			t.Fatalf("options %q: %v, want SQLSTATE %s", tc.options, err, tc.code)
		}
	}
}

// TestActiveRecordTenants: 50 ActiveRecord threads over a pool of 5 in transaction
// mode, each with its own tenant set by SET myapp.tenant on its connection, read their
// own tenant in every query; a pinned client would make the others time out.
func TestActiveRecordTenants(t *testing.T) {
	ruby := testenv.LookPath(t, "ruby")
	if out, err := exec.Command(ruby, "-e", `require "active_record"; require "pg"`).CombinedOutput(); err != nil {
		if testenv.InCI() {
			t.Fatalf("ActiveRecord is not installed (Debian packages ruby-activerecord, ruby-pg; scripts/setup.sh): %s", out)
		}
		t.Skipf("ActiveRecord not installed: %s", out)
	}
	f := newFixture(t)
	cfg := f.config()
	cfg.DefaultPoolSize = 5
	cfg.QueryWaitTimeout = 5 * time.Second
	_, addr := startPooler(t, cfg)
	host, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(ruby, "testdata/rails/tenants.rb")
	cmd.Env = append(os.Environ(), "PGHOST="+host, "PGPORT="+port, "PGDATABASE="+f.db,
		"PGUSER="+f.user, "PGPASSWORD="+f.password, "PGSSLMODE=disable", "THREADS=50")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ActiveRecord tenants failed: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
