package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestMapDatabaseFeatures: host lists, load_balance_hosts, per-database auth_user and
// connect_query, server_fast_close and verbose reach the pooler, without warnings.
func TestMapDatabaseFeatures(t *testing.T) {
	dir := t.TempDir()
	ini := filepath.Join(dir, "pgbouncer.ini")
	os.WriteFile(ini, []byte(`[databases]
app = host=db1,db2,/run/pg port=5433 auth_user=lookup connect_query='set search_path = app' load_balance_hosts=disable
rr = host=db1,db2

[pgbouncer]
auth_type = md5
server_fast_close = 1
verbose = 2
`), 0o644)
	rc, warnings, err := loadConfig(ini)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings: %v", warnings)
	}
	pc := rc.Pooler
	app := pc.Databases["app"]
	if app.Host != "db1,db2,/run/pg" || app.Port != 5433 || app.AuthUser != "lookup" ||
		app.ConnectQuery != "set search_path = app" || !app.LoadBalanceDisable {
		t.Errorf("app: %+v", app)
	}
	if rr := pc.Databases["rr"]; rr.LoadBalanceDisable || rr.Host != "db1,db2" {
		t.Errorf("rr: %+v", rr)
	}
	if !pc.ServerFastClose || pc.Verbose != 2 {
		t.Errorf("server_fast_close %v, verbose %d", pc.ServerFastClose, pc.Verbose)
	}

	os.WriteFile(ini, []byte("[databases]\nx = host=,\n[pgbouncer]\n"), 0o644)
	if _, _, err := loadConfig(ini); err == nil {
		t.Error("a host list without hosts was accepted")
	}
}

// TestSetVerboseChangesLogLevel: the admin console's SET verbose = 1 turns debug
// logging on in a running pgpool.
func TestSetVerboseChangesLogLevel(t *testing.T) {
	f := newFixture(t)
	ini := f.writeConfig(t, "")
	f.startPgpool(t, ini)
	if strings.Contains(f.logText(), "] DEBUG ") {
		t.Fatalf("debug lines without verbose:\n%s", f.logText())
	}
	ctx := ctxT(t, 30*time.Second)
	cfg, err := pgx.ParseConfig(fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/pgbouncer?sslmode=disable", f.user, f.password, f.port))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	adm, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close(context.Background())
	if _, err := adm.Exec(ctx, "SET verbose = 1"); err != nil {
		t.Fatalf("SET verbose = 1: %v", err)
	}
	eventually(t, 10*time.Second, "the level change in the log", func() bool {
		return strings.Contains(f.logText(), "log level changed by the admin console")
	})
	// A cancel request for a client with nothing running is logged at debug level.
	app, err := pgx.Connect(ctx, f.connString())
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close(context.Background())
	if err := app.PgConn().CancelRequest(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "a debug line in the log", func() bool {
		return strings.Contains(f.logText(), "] DEBUG ")
	})
}
