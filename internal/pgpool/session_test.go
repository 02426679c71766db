package pgpool

import (
	"context"
	"testing"
	"time"
)

// TestDisconnectInsideTransaction: a client that leaves inside a transaction leaves a
// server connection that is rolled back before anyone else gets it.
func TestDisconnectInsideTransaction(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.DefaultPoolSize = 1
	_, addr := startPooler(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := connect(t, f.connString(addr))
	if _, err := a.Exec(ctx, "create table d (v int)"); err != nil {
		t.Fatal(err)
	}
	tx, err := a.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "insert into d values (1)"); err != nil {
		t.Fatal(err)
	}
	var pidA int
	tx.QueryRow(ctx, "select pg_backend_pid()").Scan(&pidA)
	a.Close(ctx) // Terminate inside the transaction

	b := connect(t, f.connString(addr))
	var n, pidB int
	var status string
	if err := b.QueryRow(ctx, "select count(*), pg_backend_pid(), (select state from pg_stat_activity where pid = pg_backend_pid()) from d").Scan(&n, &pidB, &status); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("uncommitted row of a departed client visible: %d", n)
	}
	// The next client must not be inside the old transaction either.
	if _, err := b.Exec(ctx, "begin; insert into d values (2); commit"); err != nil {
		t.Fatal(err)
	}
	if err := b.QueryRow(ctx, "select count(*) from d").Scan(&n); err != nil || n != 1 {
		t.Fatalf("count = %d, %v", n, err)
	}
}

// TestSessionModeReset: in session mode a server connection keeps the client's session
// state while it is connected, and server_reset_query clears it before reuse.
func TestSessionModeReset(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.PoolMode = PoolSession
	cfg.DefaultPoolSize = 1
	pl, addr := startPooler(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := connect(t, f.connString(addr))
	if _, err := a.Exec(ctx, "create temp table tmp (v int)"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Exec(ctx, "insert into tmp values (1)"); err != nil {
		t.Fatal(err)
	}
	var pid1, pid2 int
	a.QueryRow(ctx, "select pg_backend_pid()").Scan(&pid1)
	a.QueryRow(ctx, "select pg_backend_pid()").Scan(&pid2)
	if pid1 != pid2 {
		t.Fatal("session mode changed the server connection")
	}
	a.Close(ctx)
	b := connect(t, f.connString(addr))
	var pid3, n int
	if err := b.QueryRow(ctx, "select pg_backend_pid(), (select count(*) from pg_class where relname = 'tmp' and relpersistence = 't')").Scan(&pid3, &n); err != nil {
		t.Fatal(err)
	}
	if pid3 != pid1 {
		t.Fatalf("expected the same server connection to be reused (%d, %d)", pid1, pid3)
	}
	if n != 0 {
		t.Fatal("temp table survived server_reset_query")
	}
	_ = pl
}
