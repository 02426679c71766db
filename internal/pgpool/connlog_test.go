package pgpool

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/poolsuite/poolsuite/internal/testenv"
)

// TestConnectTimeoutLogged: a PostgreSQL that accepts but does not answer (stopped
// with SIGSTOP) makes server_connect_timeout end the login, logged as PgBouncer logs
// it, and the waiting client is ended by query_timeout.
func TestConnectTimeoutLogged(t *testing.T) {
	pg := testenv.StartPostgres(t, testenv.PostgresOptions{})
	f := &fixture{pg: pg, db: "appdb", user: "app", password: "frozen-secret"}
	pg.CreateRole(t, f.user, f.password)
	pg.CreateDatabase(t, f.db, f.user)
	cfg := f.config()
	cfg.ServerConnectTimeout = 500 * time.Millisecond
	cfg.QueryTimeout = 2 * time.Second
	cfg.LogDisconnections = true
	_, addr, log := startPoolerLog(t, cfg)
	pg.Freeze()
	t.Cleanup(pg.Thaw)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, f.connString(addr))
	if err == nil {
		c.Close(ctx)
		t.Fatal("logged in through a stopped PostgreSQL")
	}
	if !strings.Contains(err.Error(), "query_timeout") {
		t.Errorf("client error %v, want query_timeout", err)
	}
	if !strings.Contains(log.String(), "closing because: connect timeout") {
		t.Errorf("no \"closing because: connect timeout\" in the log:\n%s", log.String())
	}
}

// TestConnectFailedLogged: a server address nobody listens on is logged as
// PgBouncer's "closing because: connect failed".
func TestConnectFailedLogged(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.Databases[f.db].Port = testenv.FreePort(t)
	cfg.QueryTimeout = time.Second
	cfg.LogDisconnections = true
	_, addr, log := startPoolerLog(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if c, err := pgx.Connect(ctx, f.connString(addr)); err == nil {
		c.Close(ctx)
		t.Fatal("logged in with no server listening")
	}
	if !strings.Contains(log.String(), "closing because: connect failed") {
		t.Errorf("no \"closing because: connect failed\" in the log:\n%s", log.String())
	}
}
