package pgpool

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/poolsuite/poolsuite/internal/testenv"
)

// adminEnv is one database served by pgpool and by PgBouncer 1.18 side by side, with
// an admin user and a stats user on both.
type adminEnv struct {
	f             *fixture
	pl            *Pooler
	addr          string
	bouncer       *testenv.PgBouncer
	admin, stats  string
	adminPassword string
	statsPassword string
}

func newAdminEnv(t *testing.T, withBouncer bool) *adminEnv {
	t.Helper()
	f := newFixture(t)
	e := &adminEnv{f: f, admin: "adm_" + f.user, stats: "st_" + f.user, adminPassword: "apw", statsPassword: "spw"}
	cfg := f.config()
	cfg.AdminUsers = []string{e.admin}
	cfg.StatsUsers = []string{e.stats}
	cfg.Userlist[e.admin] = e.adminPassword
	cfg.Userlist[e.stats] = e.statsPassword
	e.pl, e.addr = startPooler(t, cfg)
	if withBouncer {
		e.bouncer = testenv.StartPgBouncer(t, testenv.PgBouncerOptions{
			Databases: map[string]string{f.db: f.pg.PgBouncerDB(f.db)},
			Settings: map[string]string{
				"auth_type":   "md5",
				"pool_mode":   "transaction",
				"admin_users": e.admin,
				"stats_users": e.stats,
			},
			Userlist: fmt.Sprintf("%q %q\n%q %q\n%q %q\n", f.user, f.password, e.admin, e.adminPassword, e.stats, e.statsPassword),
		})
	}
	return e
}

// dsn returns a connection string for pgpool (bouncer false) or PgBouncer.
func (e *adminEnv) dsn(bouncer bool, user, password, db string) string {
	addr := e.addr
	if bouncer {
		addr = e.bouncer.Addr()
	}
	host, port, _ := net.SplitHostPort(addr)
	return fmt.Sprintf("postgres://%s:%s@%s:%s/%s?sslmode=disable", user, password, host, port, db)
}

// adminConnect opens an admin console connection using the simple protocol.
func adminConnect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	c, err := adminTryConnect(dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func adminTryConnect(dsn string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return pgx.ConnectConfig(ctx, cfg)
}

// column is a column's name and type OID as a RowDescription gives them.
type adminColumn struct {
	Name string
	OID  uint32
	Size int16
}

// result runs a console statement and returns its columns and rows as text by column
// name.
func adminQueryResult(t *testing.T, c *pgx.Conn, q string) ([]adminColumn, []map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rs, err := c.PgConn().Exec(ctx, q).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if len(rs) != 1 {
		t.Fatalf("%s: %d results", q, len(rs))
	}
	var cols []adminColumn
	for _, fd := range rs[0].FieldDescriptions {
		cols = append(cols, adminColumn{fd.Name, fd.DataTypeOID, fd.DataTypeSize})
	}
	var rows []map[string]string
	for _, r := range rs[0].Rows {
		m := make(map[string]string)
		for i, v := range r {
			if v == nil {
				m[cols[i].Name] = "NULL"
			} else {
				m[cols[i].Name] = string(v)
			}
		}
		rows = append(rows, m)
	}
	return cols, rows
}

// execErr runs a statement that must fail and returns the server's error.
func adminExecErr(t *testing.T, c *pgx.Conn, q string) *pgconn.PgError {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := c.PgConn().Exec(ctx, q).ReadAll()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		t.Fatalf("%s: got %v, want a server error", q, err)
	}
	return pe
}

func adminExecOK(t *testing.T, c *pgx.Conn, q string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c.PgConn().Exec(ctx, q).ReadAll(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// poolRow returns SHOW POOLS' row for the fixture's pool, or nil.
func (e *adminEnv) poolRow(t *testing.T, c *pgx.Conn) map[string]string {
	_, rows := adminQueryResult(t, c, "SHOW POOLS")
	for _, r := range rows {
		if r["database"] == e.f.db && r["user"] == e.f.user {
			return r
		}
	}
	return nil
}

// waitFor polls cond until it holds or the test times out.
func adminWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pgpoolExtraColumns are the columns pgpool adds after PgBouncer's.
var pgpoolExtraColumns = map[string][]string{
	"SHOW CLIENTS": {"pinned"},
	"SHOW STATS":   {"pinned_clients"},
}

// laterPgBouncerColumns are the columns (rows of SHOW TOTALS) of newer PgBouncers
// that pgpool has where they put them and the PgBouncer the test runs (1.18) lacks:
// the prepared statement counts of 1.24.
var laterPgBouncerColumns = map[string]bool{
	"total_client_parse_count": true, "total_server_parse_count": true, "total_bind_count": true,
	"avg_client_parse_count": true, "avg_server_parse_count": true, "avg_bind_count": true,
	"client_parse_count": true, "server_parse_count": true, "bind_count": true,
	"total_ps_client_parse_count": true, "total_ps_server_parse_count": true, "total_ps_bind_count": true,
	"avg_ps_client_parse_count": true, "avg_ps_server_parse_count": true, "avg_ps_bind_count": true,
}

func TestAdminColumnsMatchPgBouncer(t *testing.T) {
	e := newAdminEnv(t, true)
	ctx := context.Background()
	for _, bouncer := range []bool{false, true} {
		// One client holding a server connection, so every list has a row.
		app := connect(t, e.dsn(bouncer, e.f.user, e.f.password, e.f.db))
		if _, err := app.Exec(ctx, "select 1"); err != nil {
			t.Fatal(err)
		}
	}
	ours := adminConnect(t, e.dsn(false, e.admin, e.adminPassword, "pgbouncer"))
	theirs := adminConnect(t, e.dsn(true, e.admin, e.adminPassword, "pgbouncer"))
	for _, q := range []string{
		"SHOW POOLS", "SHOW STATS", "SHOW STATS_TOTALS", "SHOW STATS_AVERAGES", "SHOW TOTALS",
		"SHOW DATABASES", "SHOW CLIENTS", "SHOW SERVERS", "SHOW LISTS", "SHOW USERS",
		"SHOW CONFIG", "SHOW VERSION", "SHOW MEM", "SHOW DNS_HOSTS", "SHOW DNS_ZONES",
		"show pools;", "SHOW client_encoding", "SHOW SOCKETS",
	} {
		gotCols, gotRows := adminQueryResult(t, ours, q)
		wantCols, wantRows := adminQueryResult(t, theirs, q)
		if strings.Contains(q, "STATS") {
			gotCols = slices.DeleteFunc(gotCols, func(c adminColumn) bool { return laterPgBouncerColumns[c.Name] })
		}
		if q == "SHOW TOTALS" {
			gotRows = slices.DeleteFunc(gotRows, func(r map[string]string) bool { return laterPgBouncerColumns[r["name"]] })
		}
		// pgpool adds columns only at the end, and only these, so tools that read
		// PgBouncer's columns by name or position read pgpool unchanged.
		if extra := pgpoolExtraColumns[q]; len(extra) > 0 && len(gotCols) == len(wantCols)+len(extra) {
			for i, name := range extra {
				if gotCols[len(wantCols)+i].Name != name {
					t.Errorf("%s: extra column %d is %v, want %s", q, i, gotCols[len(wantCols)+i], name)
				}
			}
			gotCols = gotCols[:len(wantCols)]
		}
		if fmt.Sprint(gotCols) != fmt.Sprint(wantCols) {
			t.Errorf("%s columns:\n got  %v\n want %v", q, gotCols, wantCols)
		}
		if len(gotRows) == 0 && len(wantRows) > 0 {
			t.Errorf("%s: no rows, PgBouncer has %d", q, len(wantRows))
		}
		// Lists keyed by name must have the same keys.
		switch q {
		case "SHOW LISTS", "SHOW TOTALS", "SHOW MEM":
			key := map[string]string{"SHOW LISTS": "list", "SHOW TOTALS": "name", "SHOW MEM": "name"}[q]
			if g, w := adminRowKeys(gotRows, key), adminRowKeys(wantRows, key); g != w {
				t.Errorf("%s %s:\n got  %s\n want %s", q, key, g, w)
			}
		}
	}
	// The ParameterStatus values clients see at login.
	for _, name := range []string{"server_version", "client_encoding", "server_encoding", "DateStyle", "TimeZone", "standard_conforming_strings", "is_superuser"} {
		if g, w := ours.PgConn().ParameterStatus(name), theirs.PgConn().ParameterStatus(name); g != w {
			t.Errorf("ParameterStatus %s = %q, PgBouncer %q", name, g, w)
		}
	}
}

func adminRowKeys(rows []map[string]string, key string) string {
	var ks []string
	for _, r := range rows {
		ks = append(ks, r[key])
	}
	return strings.Join(ks, ",")
}

func TestAdminErrorsMatchPgBouncer(t *testing.T) {
	e := newAdminEnv(t, true)
	ours := adminConnect(t, e.dsn(false, e.admin, e.adminPassword, "pgbouncer"))
	theirs := adminConnect(t, e.dsn(true, e.admin, e.adminPassword, "pgbouncer"))
	for _, q := range []string{
		"FOO", "SHOW FOO", "SHOW", "SELECT 1", "show pools; show lists",
		"RESUME", "RESUME " + e.f.db, "PAUSE nosuch", "KILL", "DISABLE", "ENABLE",
		"PAUSE pgbouncer", "KILL pgbouncer", "RECONNECT pgbouncer", "WAIT_CLOSE pgbouncer",
		"SET foo = 1", "RELOAD x", "KILL " + strings.Repeat("d", 70),
	} {
		got, want := adminExecErr(t, ours, q), adminExecErr(t, theirs, q)
		if got.Severity != want.Severity || got.Code != want.Code || got.Message != want.Message {
			t.Errorf("%s:\n got  %s %s %q\n want %s %s %q", q, got.Severity, got.Code, got.Message, want.Severity, want.Code, want.Message)
		}
	}
	// The connection is still usable after errors.
	adminQueryResult(t, ours, "SHOW VERSION")
}

func TestAdminExtendedProtocolRefused(t *testing.T) {
	e := newAdminEnv(t, false)
	c := adminConnect(t, e.dsn(false, e.admin, e.adminPassword, "pgbouncer"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.PgConn().ExecParams(ctx, "SHOW POOLS", nil, nil, nil, nil).Close()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Message != "extended query protocol not supported by admin console" {
		t.Fatalf("extended protocol: got %v", err)
	}
}

func TestAdminAccess(t *testing.T) {
	e := newAdminEnv(t, true)
	for _, bouncer := range []bool{false, true} {
		name := map[bool]string{false: "pgpool", true: "pgbouncer"}[bouncer]
		t.Run(name, func(t *testing.T) {
			// A stats user may SHOW but not change anything.
			st := adminConnect(t, e.dsn(bouncer, e.stats, e.statsPassword, "pgbouncer"))
			adminQueryResult(t, st, "SHOW POOLS")
			adminQueryResult(t, st, "SHOW STATS")
			for _, q := range []string{"PAUSE", "RESUME", "KILL " + e.f.db, "RELOAD", "SHUTDOWN", "SET default_pool_size = 5", "SHOW FDS"} {
				pe := adminExecErr(t, st, q)
				if pe.Code != "08P01" || pe.Message != "admin access needed" {
					t.Errorf("stats user %s: %s %q", q, pe.Code, pe.Message)
				}
			}
			// A user in neither list is refused at login.
			_, err := adminTryConnect(e.dsn(bouncer, e.f.user, e.f.password, "pgbouncer"))
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Severity != "FATAL" || pe.Message != "not allowed" {
				t.Errorf("non-admin user: got %v", err)
			}
		})
	}
	// A wrong password fails like any login.
	_, err := adminTryConnect(e.dsn(false, e.admin, "wrong", "pgbouncer"))
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "28P01" {
		t.Errorf("wrong password: got %v", err)
	}
	// The "pgpool" name serves the same console.
	c := adminConnect(t, e.dsn(false, e.admin, e.adminPassword, "pgpool"))
	adminQueryResult(t, c, "SHOW VERSION")
}

func TestAdminPoolsReflectTransaction(t *testing.T) {
	e := newAdminEnv(t, false)
	ctx := context.Background()
	adm := adminConnect(t, e.dsn(false, e.admin, e.adminPassword, "pgbouncer"))
	app := connect(t, e.f.connString(e.addr))
	tx, err := app.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	r := e.poolRow(t, adm)
	if r == nil || r["cl_active"] != "1" || r["sv_active"] != "1" || r["cl_waiting"] != "0" || r["sv_idle"] != "0" || r["pool_mode"] != "transaction" {
		t.Fatalf("SHOW POOLS during a transaction: %v", r)
	}
	_, clients := adminQueryResult(t, adm, "SHOW CLIENTS")
	_, servers := adminQueryResult(t, adm, "SHOW SERVERS")
	var cl, sv map[string]string
	for _, row := range clients {
		if row["user"] == e.f.user {
			cl = row
		}
	}
	for _, row := range servers {
		if row["database"] == e.f.db {
			sv = row
		}
	}
	if cl == nil || sv == nil || cl["state"] != "active" || sv["state"] != "active" || cl["link"] != sv["ptr"] || sv["link"] != cl["ptr"] {
		t.Fatalf("SHOW CLIENTS %v / SHOW SERVERS %v: want linked active rows", cl, sv)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	adminWaitFor(t, "server released", func() bool {
		r := e.poolRow(t, adm)
		return r["cl_active"] == "1" && r["sv_active"] == "0" && r["sv_idle"] == "1"
	})
	_, stats := adminQueryResult(t, adm, "SHOW STATS")
	for _, row := range stats {
		if row["database"] == e.f.db && (row["total_xact_count"] == "0" || row["total_query_count"] == "0" || row["total_received"] == "0" ||
			row["total_xact_time"] == "0" || row["total_query_time"] == "0") {
			t.Errorf("SHOW STATS after a transaction: %v", row)
		}
	}
	_, dbs := adminQueryResult(t, adm, "SHOW DATABASES")
	found := false
	for _, row := range dbs {
		if row["name"] == e.f.db {
			found = row["current_connections"] == "1" && row["pool_size"] == "20" && row["paused"] == "0"
		}
	}
	if !found {
		t.Errorf("SHOW DATABASES: %v", dbs)
	}
}

func TestAdminPauseResume(t *testing.T) {
	e := newAdminEnv(t, false)
	ctx := context.Background()
	adm := adminConnect(t, e.dsn(false, e.admin, e.adminPassword, "pgbouncer"))
	app := connect(t, e.f.connString(e.addr))
	tx, err := app.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	paused := make(chan error, 1)
	go func() {
		_, err := adm.PgConn().Exec(context.Background(), "PAUSE "+e.f.db).ReadAll()
		paused <- err
	}()
	select {
	case err := <-paused:
		t.Fatalf("PAUSE returned while a transaction held a server connection: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-paused:
		if err != nil {
			t.Fatalf("PAUSE: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("PAUSE did not return after the transaction ended")
	}
	adm2 := adminConnect(t, e.dsn(false, e.admin, e.adminPassword, "pgbouncer"))
	if r := e.poolRow(t, adm2); r["sv_active"] != "0" || r["sv_idle"] != "0" {
		t.Errorf("after PAUSE: %v", r)
	}
	_, state := adminQueryResult(t, adm2, "SHOW STATE")
	if state[1]["key"] != "paused" || state[1]["value"] != "no" {
		t.Errorf("SHOW STATE after PAUSE of one database: %v", state)
	}
	// A query while paused waits; RESUME lets it run.
	done := make(chan error, 1)
	go func() {
		_, err := app.Exec(context.Background(), "select 2")
		done <- err
	}()
	adminWaitFor(t, "client waiting", func() bool { return e.poolRow(t, adm2)["cl_waiting"] == "1" })
	adminExecOK(t, adm2, "RESUME "+e.f.db)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("query after RESUME: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("query did not run after RESUME")
	}
	// Pausing everything and resuming.
	adminExecOK(t, adm2, "PAUSE")
	if pe := adminExecErr(t, adm2, "PAUSE"); pe.Message != "already suspended/paused" {
		t.Errorf("second PAUSE: %q", pe.Message)
	}
	adminExecOK(t, adm2, "RESUME")
	if _, err := app.Exec(ctx, "select 3"); err != nil {
		t.Fatal(err)
	}
}

func TestAdminKillClosesClients(t *testing.T) {
	e := newAdminEnv(t, false)
	ctx := context.Background()
	adm := adminConnect(t, e.dsn(false, e.admin, e.adminPassword, "pgbouncer"))
	app := connect(t, e.f.connString(e.addr))
	if _, err := app.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	adminExecOK(t, adm, "KILL "+e.f.db)
	_, err := app.Exec(ctx, "select 1")
	if err == nil {
		t.Fatal("query on a killed database's client succeeded")
	}
	if r := e.poolRow(t, adm); r != nil && (r["cl_active"] != "0" || r["sv_active"] != "0" || r["sv_idle"] != "0") {
		t.Errorf("after KILL: %v", r)
	}
	_, dbs := adminQueryResult(t, adm, "SHOW DATABASES")
	for _, row := range dbs {
		if row["name"] == e.f.db && row["paused"] != "1" {
			t.Errorf("database not paused after KILL: %v", row)
		}
	}
	adminExecOK(t, adm, "RESUME "+e.f.db)
	app2 := connect(t, e.f.connString(e.addr))
	if _, err := app2.Exec(ctx, "select 1"); err != nil {
		t.Fatalf("after RESUME: %v", err)
	}
	// The admin connection survived.
	adminQueryResult(t, adm, "SHOW POOLS")
}

func TestAdminDisableEnable(t *testing.T) {
	e := newAdminEnv(t, false)
	adm := adminConnect(t, e.dsn(false, e.admin, e.adminPassword, "pgbouncer"))
	adminExecOK(t, adm, "DISABLE "+e.f.db)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := pgx.Connect(ctx, e.f.connString(e.addr))
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || !strings.Contains(pe.Message, "is disabled") {
		t.Fatalf("connect to a disabled database: %v", err)
	}
	adminExecOK(t, adm, "ENABLE "+e.f.db)
	connect(t, e.f.connString(e.addr))
}

func TestAdminReconnectWaitClose(t *testing.T) {
	e := newAdminEnv(t, false)
	ctx := context.Background()
	adm := adminConnect(t, e.dsn(false, e.admin, e.adminPassword, "pgbouncer"))
	app := connect(t, e.f.connString(e.addr))
	tx, err := app.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	var pid int
	if err := tx.QueryRow(ctx, "select pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	adminExecOK(t, adm, "RECONNECT "+e.f.db)
	_, servers := adminQueryResult(t, adm, "SHOW SERVERS")
	if len(servers) != 1 || servers[0]["close_needed"] != "1" {
		t.Errorf("SHOW SERVERS after RECONNECT: %v", servers)
	}
	waited := make(chan error, 1)
	go func() {
		_, err := adm.PgConn().Exec(context.Background(), "WAIT_CLOSE "+e.f.db).ReadAll()
		waited <- err
	}()
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-waited:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WAIT_CLOSE did not return")
	}
	var pid2 int
	if err := app.QueryRow(ctx, "select pg_backend_pid()").Scan(&pid2); err != nil {
		t.Fatal(err)
	}
	if pid2 == pid {
		t.Errorf("same server connection (pid %d) after RECONNECT", pid)
	}
}

func TestAdminSetReloadShutdown(t *testing.T) {
	e := newAdminEnv(t, false)
	adm := adminConnect(t, e.dsn(false, e.admin, e.adminPassword, "pgbouncer"))
	adminExecOK(t, adm, "SET default_pool_size = 7")
	if got := e.pl.settings().DefaultPoolSize; got != 7 {
		t.Errorf("default_pool_size after SET = %d", got)
	}
	_, cfg := adminQueryResult(t, adm, "SHOW CONFIG")
	for _, row := range cfg {
		if row["key"] == "default_pool_size" && (row["value"] != "7" || row["default"] != "20" || row["changeable"] != "yes") {
			t.Errorf("SHOW CONFIG: %v", row)
		}
	}
	if pe := adminExecErr(t, adm, "SET default_pool_size = '-1'"); pe.Message != "SET failed" {
		t.Errorf("bad SET: %q", pe.Message)
	}
	adminExecOK(t, adm, "SET client_encoding = 'UTF8'") // acknowledged and ignored

	if pe := adminExecErr(t, adm, "RELOAD"); pe.Code != "08P01" {
		t.Errorf("RELOAD without a reload function: %s %q", pe.Code, pe.Message)
	}
	reloaded := make(chan struct{}, 1)
	e.pl.SetReloadFunc(func() error { reloaded <- struct{}{}; return nil })
	adminExecOK(t, adm, "RELOAD")
	select {
	case <-reloaded:
	default:
		t.Error("RELOAD did not call the reload function")
	}
	adminExecOK(t, adm, "SUSPEND")
	adminExecOK(t, adm, "RESUME")

	shut := make(chan struct{})
	e.pl.SetShutdownFunc(func() { close(shut) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	adm.PgConn().Exec(ctx, "SHUTDOWN").ReadAll()
	select {
	case <-shut:
	case <-ctx.Done():
		t.Fatal("SHUTDOWN did not call the shutdown function")
	}
}

func TestAdminShutdownDefault(t *testing.T) {
	e := newAdminEnv(t, false)
	adm := adminConnect(t, e.dsn(false, e.admin, e.adminPassword, "pgbouncer"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	adm.PgConn().Exec(ctx, "SHUTDOWN").ReadAll()
	select {
	case <-e.pl.done:
	case <-ctx.Done():
		t.Fatal("SHUTDOWN did not shut the pooler down")
	}
}

// TestAdminPsql runs psql against both consoles and compares the header lines.
func TestAdminPsql(t *testing.T) {
	psql := testenv.LookPath(t, "psql")
	e := newAdminEnv(t, true)
	for _, q := range []string{"SHOW POOLS", "SHOW STATS", "SHOW DATABASES", "SHOW CLIENTS", "SHOW SERVERS", "SHOW LISTS"} {
		var headers [2]string
		for i, bouncer := range []bool{false, true} {
			cmd := exec.Command(psql, "-X", "-A", "-c", q, e.dsn(bouncer, e.admin, e.adminPassword, "pgbouncer"))
			cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=10")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("psql %s (bouncer %v): %v\n%s", q, bouncer, err, out)
			}
			headers[i], _, _ = strings.Cut(string(out), "\n")
		}
		cols := strings.Split(headers[0], "|")
		headers[0] = strings.Join(slices.DeleteFunc(cols, func(c string) bool { return laterPgBouncerColumns[c] }), "|")
		want := headers[1]
		for _, extra := range pgpoolExtraColumns[q] {
			want += "|" + extra
		}
		if headers[0] != want {
			t.Errorf("psql %s header:\n got  %s\n want %s", q, headers[0], want)
		}
	}
}
