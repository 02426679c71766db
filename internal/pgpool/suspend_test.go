package pgpool

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestSuspendResume: after SUSPEND no client's query reaches PostgreSQL and no new
// client logs in, while the console still answers; RESUME lets both through. The
// negative checks wait a bounded time for something that must not happen.
func TestSuspendResume(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.AdminUsers = []string{"adm"}
	cfg.Userlist["adm"] = "adm-secret"
	_, addr := startPooler(t, cfg)
	host, port, _ := net.SplitHostPort(addr)
	adm := adminConnect(t, fmt.Sprintf("postgres://adm:adm-secret@%s:%s/pgbouncer?sslmode=disable", host, port))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	su := connect(t, f.pg.SuperConnString(f.db))
	if _, err := su.Exec(ctx, "create table marks (n int); grant all on marks to "+pgx.Identifier{f.user}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	a := connect(t, f.connString(addr))
	if _, err := a.Exec(ctx, "insert into marks values (0)"); err != nil {
		t.Fatal(err)
	}
	adminExecOK(t, adm, "SUSPEND")
	inserted := make(chan error, 1)
	go func() {
		_, err := a.Exec(ctx, "insert into marks values (1)")
		inserted <- err
	}()
	type conn struct {
		c   *pgx.Conn
		err error
	}
	joined := make(chan conn, 1)
	go func() {
		c, err := pgx.Connect(ctx, f.connString(addr))
		joined <- conn{c, err}
	}()
	const quiet = 500 * time.Millisecond
	select {
	case err := <-inserted:
		t.Fatalf("query answered while suspended (err %v)", err)
	case j := <-joined:
		t.Fatalf("new client logged in while suspended (err %v)", j.err)
	case <-time.After(quiet):
	}
	var n int
	if err := su.QueryRow(ctx, "select count(*) from marks where n = 1").Scan(&n); err != nil || n != 0 {
		t.Fatalf("while suspended PostgreSQL got the insert: %d rows, %v", n, err)
	}
	// The console still works, shows the state, and refuses a second SUSPEND.
	rows, err := adm.PgConn().Exec(ctx, "SHOW STATE").ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	suspended := ""
	for _, r := range rows[0].Rows {
		if string(r[0]) == "suspended" {
			suspended = string(r[1])
		}
	}
	if suspended != "yes" {
		t.Errorf("SHOW STATE suspended = %q, want yes", suspended)
	}
	if _, err := adm.PgConn().Exec(ctx, "SUSPEND").ReadAll(); err == nil {
		t.Error("second SUSPEND accepted")
	}
	adminExecOK(t, adm, "RESUME")
	if err := <-inserted; err != nil {
		t.Fatalf("insert after RESUME: %v", err)
	}
	j := <-joined
	if j.err != nil {
		t.Fatalf("login after RESUME: %v", j.err)
	}
	defer j.c.Close(ctx)
	if err := j.c.QueryRow(ctx, "select count(*) from marks").Scan(&n); err != nil || n != 2 {
		t.Fatalf("after RESUME: %d rows, %v", n, err)
	}
}
