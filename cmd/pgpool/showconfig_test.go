package main

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/poolsuite/poolsuite/internal/testenv"
)

// configKeys returns SHOW CONFIG's rows by key: value and changeable.
func configKeys(t *testing.T, dsn string) map[string][2]string {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	c, err := pgx.ConnectConfig(ctxT(t, 20*time.Second), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	rs, err := c.PgConn().Exec(ctxT(t, 20*time.Second), "SHOW CONFIG").ReadAll()
	if err != nil || len(rs) != 1 {
		t.Fatalf("SHOW CONFIG: %v", err)
	}
	keys := map[string][2]string{}
	for _, row := range rs[0].Rows {
		keys[string(row[0])] = [2]string{string(row[1]), string(row[3])}
	}
	return keys
}

// TestShowConfigListsPgBouncersSettings: SHOW CONFIG lists every setting PgBouncer
// 1.18's does (those pgpool does not implement with the file's value, read-only), so
// tools that read a setting by name find it.
func TestShowConfigListsPgBouncersSettings(t *testing.T) {
	f := newFixture(t)
	f.writeConfig(t, "", "listen_backlog = 200", "tcp_keepidle = 45")
	f.startPgpool(t, filepath.Join(f.dir, "pgbouncer.ini"))
	ours := configKeys(t, fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/pgbouncer?sslmode=disable", f.user, f.password, f.port))
	bouncer := testenv.StartPgBouncer(t, testenv.PgBouncerOptions{
		Databases: map[string]string{f.db: f.pg.PgBouncerDB(f.db)},
		Settings:  map[string]string{"auth_type": "md5", "admin_users": f.user},
		Userlist:  fmt.Sprintf("%q %q\n", f.user, f.password),
	})
	theirs := configKeys(t, fmt.Sprintf("postgres://%s:%s@%s/pgbouncer?sslmode=disable", f.user, f.password, bouncer.Addr()))
	for k := range theirs {
		if _, ok := ours[k]; !ok {
			t.Errorf("SHOW CONFIG lacks PgBouncer's %s", k)
		}
	}
	if v := ours["listen_backlog"]; v != [2]string{"200", "no"} {
		t.Errorf("listen_backlog = %v, want the file's 200, not changeable", v)
	}
	if v := ours["tcp_keepidle"]; v[0] != "45" {
		t.Errorf("tcp_keepidle = %v", v)
	}
	if v := ours["default_pool_size"]; v[1] != "yes" {
		t.Errorf("default_pool_size = %v, want changeable", v)
	}
	t.Logf("pgpool lists %d settings, PgBouncer 1.18 %d", len(ours), len(theirs))
}
