package pgpool

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

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

// TestCancelNeverHitsAnotherClient: over a pool of one or two server connections,
// several clients run short queries while cancels are fired in a tight loop for some
// of them. A cancel must only ever stop a query of the client it was sent for: the
// others never see 57014, while the cancelled clients do.
func TestCancelNeverHitsAnotherClient(t *testing.T) {
	f := newFixture(t)
	for _, size := range []int{1, 2} {
		t.Run(fmt.Sprintf("pool_size_%d", size), func(t *testing.T) {
			cfg := f.config()
			cfg.DefaultPoolSize = size
			cfg.QueryWaitTimeout = 60 * time.Second
			pl, addr := startPooler(t, cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			const victims, bystanders = 2, 3
			type outcome struct {
				victim   bool
				canceled int   // queries ended by 57014
				err      error // any other failure
			}
			results := make(chan outcome, victims+bystanders)
			for i := 0; i < victims+bystanders; i++ {
				conn := connect(t, f.connString(addr))
				victim := i < victims
				go func() {
					o := outcome{victim: victim}
					o.canceled, o.err = cancelRaceClient(ctx, pl, conn, victim)
					results <- o
				}()
			}
			for i := 0; i < victims+bystanders; i++ {
				o := <-results
				switch {
				case o.err != nil:
					t.Errorf("victim=%v: %v", o.victim, o.err)
				case o.victim && o.canceled == 0:
					t.Errorf("a cancelled client never got 57014")
				case !o.victim && o.canceled > 0:
					t.Errorf("a client nobody cancelled got 57014 %d times", o.canceled)
				}
			}
		})
	}
}

// cancelRaceClient runs the queries of one client of TestCancelNeverHitsAnotherClient;
// a victim, once pgpool has bound a server connection for its query, fires cancels
// from a few goroutines until the query ends (at most a bounded number each). It
// returns how many queries ended by 57014.
func cancelRaceClient(ctx context.Context, pl *Pooler, conn *pgx.Conn, victim bool) (int, error) {
	key := cancelKey(conn.PgConn().PID(), binary.BigEndian.Uint32(conn.PgConn().SecretKey()))
	bound := func() bool {
		pl.mu.Lock()
		c := pl.cancels[key]
		pl.mu.Unlock()
		return c != nil && c.getState() == clientActive
	}
	canceled := 0
	rounds, query := 40, "select pg_sleep(0.01)"
	if victim {
		rounds, query = 8, "select pg_sleep(1)"
	}
	for r := 0; r < rounds; r++ {
		done := make(chan struct{})
		var firing sync.WaitGroup
		if victim {
			firing.Add(1)
			go func() {
				defer firing.Done()
				tick := time.NewTicker(time.Millisecond)
				defer tick.Stop()
				for !bound() {
					select {
					case <-done:
						return
					case <-tick.C:
					}
				}
				fire(ctx, conn, done)
			}()
		}

		_, err := conn.Exec(ctx, query)
		close(done)
		firing.Wait()
		var pgErr *pgconn.PgError
		switch {
		case err == nil:
		case errors.As(err, &pgErr) && pgErr.Code == CodeQueryCanceled:
			canceled++
		default:
			return canceled, err
		}
	}
	return canceled, nil
}

// fire sends cancels for conn from four goroutines in a tight loop, at most 300 each,
// until done is closed.
func fire(ctx context.Context, conn *pgx.Conn, done <-chan struct{}) {
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 300; k++ {
				select {
				case <-done:
					return
				default:
				}
				conn.PgConn().CancelRequest(ctx)
			}
		}()
	}
	wg.Wait()
}
