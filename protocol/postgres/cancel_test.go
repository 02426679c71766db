package postgres

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/poolsuite/poolsuite/internal/testenv"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for backoff := time.Millisecond; !cond(); backoff = min(backoff*2, 100*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(backoff)
	}
}

// TestPsqlCtrlCCancels: Ctrl-C in psql on a long query through pgpool cancels it.
func TestPsqlCtrlCCancels(t *testing.T) {
	psql := testenv.LookPath(t, "psql")
	f := newFixture(t)
	_, addr := startPooler(t, f.config())
	host, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(psql, "-X", "-h", host, "-p", port, "-U", f.user, "-d", f.db, "-c", "select pg_sleep(30)")
	cmd.Env = append(os.Environ(), "PGPASSWORD="+f.password, "PGSSLMODE=disable")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	su := f.pg.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitFor(t, "pg_sleep to run", 20*time.Second, func() bool {
		var n int
		su.QueryRow(ctx, "select count(*) from pg_stat_activity where query = 'select pg_sleep(30)' and state = 'active'").Scan(&n)
		return n == 1
	})
	start := time.Now()
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("psql did not finish after Ctrl-C")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("cancel took %v", d)
	}
	if !strings.Contains(stderr.String(), "canceling statement due to user request") {
		t.Fatalf("psql said: %s", stderr.String())
	}
}

// TestCancelForIdleClientIsDropped: a cancel request for a client that is not running
// anything must not touch the server connection another client is using.
func TestCancelForIdleClientIsDropped(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.DefaultPoolSize = 1
	_, addr := startPooler(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	idle := connect(t, f.connString(addr))
	busy := connect(t, f.connString(addr))
	res := make(chan error, 1)
	go func() {
		_, err := busy.Exec(ctx, "select pg_sleep(0.5)")
		res <- err
	}()
	// Cancel the idle client's (nonexistent) query while busy's runs on the only server.
	if err := idle.PgConn().CancelRequest(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-res; err != nil {
		t.Fatalf("busy client's query was affected: %v", err)
	}
}
