package pgpool

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sync/errgroup"

	"github.com/poolsuite/poolsuite/internal/testenv"
)

// serverConnCount returns how many backends the fixture's role has open, not counting
// the backend with pid except.
func (f *fixture) serverConnCount(ctx context.Context, su *pgx.Conn, except uint32) (int, error) {
	var n int
	err := su.QueryRow(ctx, "select count(*) from pg_stat_activity where usename = $1 and backend_type = 'client backend' and pid <> $2", f.user, except).Scan(&n)
	return n, err
}

// TestTransactionPoolingIsolation runs 500 concurrent clients over a pool of 10: every
// transaction stays on one backend, sees its own uncommitted rows and loses them on
// ROLLBACK, and PostgreSQL never sees more than 10 connections from pgpool.
func TestTransactionPoolingIsolation(t *testing.T) {
	const clients, poolSize, txPerClient = 500, 10, 4
	f := newFixture(t)
	setup := connect(t, f.pg.ConnString(f.user, f.password, f.db))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := setup.Exec(ctx, "create table items (client int, n int)"); err != nil {
		t.Fatal(err)
	}
	cfg := f.config()
	cfg.AuthType = "md5" // 500 SCRAM logins cost seconds of PBKDF2 under -race
	cfg.DefaultPoolSize = poolSize
	cfg.MaxClientConn = clients + 10
	_, addr := startPooler(t, cfg)

	su := f.pg.Connect(t)
	var maxSeen atomic.Int64
	stop := make(chan struct{})
	monitorDone := make(chan error, 1)
	go func() {
		for {
			n, err := f.serverConnCount(ctx, su, setup.PgConn().PID())
			if err != nil {
				monitorDone <- err
				return
			}
			if int64(n) > maxSeen.Load() {
				maxSeen.Store(int64(n))
			}
			select {
			case <-stop:
				monitorDone <- nil
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()

	g, gctx := errgroup.WithContext(ctx)
	for i := 0; i < clients; i++ {
		g.Go(func() error {
			conn, err := pgx.Connect(gctx, f.connString(addr))
			if err != nil {
				return fmt.Errorf("client %d connect: %w", i, err)
			}
			defer conn.Close(context.Background())
			for k := 0; k < txPerClient; k++ {
				if err := isolatedTx(gctx, conn, i, k); err != nil {
					return fmt.Errorf("client %d tx %d: %w", i, k, err)
				}
			}
			return nil
		})
	}
	err := g.Wait()
	close(stop)
	if merr := <-monitorDone; merr != nil {
		t.Fatalf("monitor: %v", merr)
	}
	if err != nil {
		t.Fatal(err)
	}
	if m := maxSeen.Load(); m > poolSize {
		t.Fatalf("pg_stat_activity showed %d server connections, pool size is %d", m, poolSize)
	}
	var rows int
	if err := setup.QueryRow(ctx, "select count(*) from items").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if want := clients * txPerClient; rows != want {
		t.Fatalf("committed rows = %d, want %d", rows, want)
	}
}

// isolatedTx runs one committed and one rolled-back transaction and checks isolation.
func isolatedTx(ctx context.Context, conn *pgx.Conn, client, k int) error {
	for _, commit := range []bool{false, true} {
		tx, err := conn.Begin(ctx)
		if err != nil {
			return err
		}
		var pid1, pid2, mine int
		if err := tx.QueryRow(ctx, "select pg_backend_pid()").Scan(&pid1); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "insert into items values ($1, $2)", client, k); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, "select count(*) from items where client = $1 and n = $2", client, k).Scan(&mine); err != nil {
			return err
		}
		if mine != 1 {
			return fmt.Errorf("own uncommitted row: saw %d rows, want 1", mine)
		}
		if err := tx.QueryRow(ctx, "select pg_backend_pid()").Scan(&pid2); err != nil {
			return err
		}
		if pid1 != pid2 {
			return fmt.Errorf("backend changed inside a transaction: %d then %d", pid1, pid2)
		}
		if commit {
			err = tx.Commit(ctx)
		} else {
			err = tx.Rollback(ctx)
			if err == nil {
				if err := conn.QueryRow(ctx, "select count(*) from items where client = $1 and n = $2", client, k).Scan(&mine); err != nil {
					return err
				}
				if mine != 0 {
					return fmt.Errorf("rolled-back row still visible")
				}
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// TestPipelinedSyncs sends several extended-protocol batches, each with its own Sync,
// before reading any result, from many clients at once over a small pool.
func TestPipelinedSyncs(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.DefaultPoolSize = 3
	_, addr := startPooler(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	for i := 0; i < 30; i++ {
		g.Go(func() error {
			conn, err := pgconn.Connect(gctx, f.pgconnString(addr))
			if err != nil {
				return err
			}
			defer conn.Close(context.Background())
			for round := 0; round < 5; round++ {
				p := conn.StartPipeline(gctx)
				const batches = 5
				for b := 0; b < batches; b++ {
					p.SendQueryParams("select $1::int * 10 + $2::int, pg_backend_pid()", [][]byte{[]byte(fmt.Sprint(i)), []byte(fmt.Sprint(b))}, nil, nil, nil)
					p.SendPipelineSync()
				}
				if err := p.Flush(); err != nil {
					return err
				}
				for b := 0; b < batches; b++ {
					res, err := p.GetResults()
					if err != nil {
						return err
					}
					rr, ok := res.(*pgconn.ResultReader)
					if !ok {
						return fmt.Errorf("result %d: got %T", b, res)
					}
					r := rr.Read()
					if r.Err != nil {
						return r.Err
					}
					if got, want := string(r.Rows[0][0]), fmt.Sprint(i*10+b); got != want {
						return fmt.Errorf("client %d batch %d: got %s, want %s", i, b, got, want)
					}
					res, err = p.GetResults()
					if err != nil {
						return err
					}
					if _, ok := res.(*pgconn.PipelineSync); !ok {
						return fmt.Errorf("want PipelineSync, got %T", res)
					}
				}
				if err := p.Close(); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestBatchesUnderConcurrency uses pgx batches (many statements, one round trip).
func TestBatchesUnderConcurrency(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.DefaultPoolSize = 4
	_, addr := startPooler(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	for i := 0; i < 40; i++ {
		g.Go(func() error {
			conn, err := pgx.Connect(gctx, f.connString(addr))
			if err != nil {
				return err
			}
			defer conn.Close(context.Background())
			for round := 0; round < 10; round++ {
				b := &pgx.Batch{}
				for q := 0; q < 10; q++ {
					b.Queue("select $1::int + $2::int", i*1000, q)
				}
				br := conn.SendBatch(gctx, b)
				for q := 0; q < 10; q++ {
					var n int
					if err := br.QueryRow().Scan(&n); err != nil {
						return err
					}
					if n != i*1000+q {
						return fmt.Errorf("client %d: got %d want %d", i, n, i*1000+q)
					}
				}
				if err := br.Close(); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestServerTerminatedMidTransaction kills the backend serving a client inside a
// transaction: that client gets an error, never a replay elsewhere, and its next
// transaction works on a new server connection.
func TestServerTerminatedMidTransaction(t *testing.T) {
	f := newFixture(t)
	_, addr := startPooler(t, f.config())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := connect(t, f.connString(addr))
	if _, err := c.Exec(ctx, "create table k (v int)"); err != nil {
		t.Fatal(err)
	}
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	if err := tx.QueryRow(ctx, "select pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "insert into k values (1)"); err != nil {
		t.Fatal(err)
	}
	su := f.pg.Connect(t)
	if _, err := su.Exec(ctx, "select pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	// Let pgpool see the connection end while the client sits idle in its transaction,
	// so the next statement cannot simply fail on the dead socket.
	waitFor(t, "backend to exit", 10*time.Second, func() bool {
		var n int
		su.QueryRow(ctx, "select count(*) from pg_stat_activity where pid = $1", pid).Scan(&n)
		return n == 0
	})
	_, err = tx.Exec(ctx, "insert into k values (2)")
	if err == nil {
		t.Fatal("statement on a terminated backend succeeded")
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		t.Fatalf("want a PostgreSQL error, got %v", err)
	}
	if pgErr.Code != "57P01" && pgErr.Code != CodeConnectionFailure {
		t.Fatalf("SQLSTATE %s (%s), want 57P01 or 08006", pgErr.Code, pgErr.Message)
	}
	// Still inside the lost transaction: nothing may run elsewhere.
	if _, err := tx.Exec(ctx, "insert into k values (3)"); err == nil {
		t.Fatal("a statement of the lost transaction ran on another connection")
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatalf("ROLLBACK of the lost transaction: %v", err)
	}
	var newPid, n int
	if err := c.QueryRow(ctx, "select pg_backend_pid()").Scan(&newPid); err != nil {
		t.Fatalf("next transaction failed: %v", err)
	}
	if newPid == pid {
		t.Fatal("served by the terminated backend")
	}
	if err := c.QueryRow(ctx, "select count(*) from k").Scan(&n); err != nil || n != 0 {
		t.Fatalf("rows = %d (%v), want 0: the transaction must not be replayed", n, err)
	}
}

// TestCopyBothDirections streams COPY FROM STDIN and COPY TO STDOUT through the pooler.
func TestCopyBothDirections(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.DefaultPoolSize = 2
	_, addr := startPooler(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := connect(t, f.connString(addr))
	if _, err := c.Exec(ctx, "create table cp (id int, name text)"); err != nil {
		t.Fatal(err)
	}
	const rows = 20000
	src := make([][]any, rows)
	for i := range src {
		src[i] = []any{i, fmt.Sprintf("name-%d", i)}
	}
	n, err := c.CopyFrom(ctx, pgx.Identifier{"cp"}, []string{"id", "name"}, pgx.CopyFromRows(src))
	if err != nil || n != rows {
		t.Fatalf("CopyFrom: %d, %v", n, err)
	}
	var out countingWriter
	tag, err := c.PgConn().CopyTo(ctx, &out, "copy cp to stdout")
	if err != nil {
		t.Fatal(err)
	}
	if tag.RowsAffected() != rows || out.lines != rows {
		t.Fatalf("CopyTo: %d rows, %d lines", tag.RowsAffected(), out.lines)
	}
	// The connection is usable afterwards, by this client and another.
	var cnt int
	if err := c.QueryRow(ctx, "select count(*) from cp").Scan(&cnt); err != nil || cnt != rows {
		t.Fatalf("count = %d, %v", cnt, err)
	}
}

type countingWriter struct{ lines int }

func (w *countingWriter) Write(p []byte) (int, error) {
	for _, b := range p {
		if b == '\n' {
			w.lines++
		}
	}
	return len(p), nil
}

// TestExtendedProtocolCopy: COPY FROM STDIN started with the extended protocol
// (libpq's PQexecParams, here through ruby-pg) sends a Sync that PostgreSQL ignores
// during COPY; the server connection must still go back to the pool afterwards.
func TestExtendedProtocolCopy(t *testing.T) {
	ruby := testenv.LookPath(t, "ruby")
	if out, err := exec.Command(ruby, "-e", `require "pg"`).CombinedOutput(); err != nil {
		if testenv.InCI() {
			t.Fatalf("ruby-pg is not installed (scripts/setup.sh): %s", out)
		}
		t.Skipf("ruby-pg not installed: %s", out)
	}
	f := newFixture(t)
	cfg := f.config()
	cfg.DefaultPoolSize = 1
	cfg.QueryWaitTimeout = 2 * time.Second
	_, addr := startPooler(t, cfg)
	host, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(ruby, "-e", extendedCopyScript)
	cmd.Env = append(os.Environ(), "H="+host, "P="+port, "D="+f.db, "U="+f.user, "W="+f.password)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "copied\n" {
		t.Fatalf("extended-protocol COPY: %q %v\n%s", line, err, stderr.String())
	}
	// The COPY client is still connected and idle: the only server connection must be
	// free for another client.
	c := connect(t, f.connString(addr))
	var n int
	if err := c.QueryRow(context.Background(), "select count(*) from ec").Scan(&n); err != nil || n != 100 {
		t.Fatalf("count = %d, %v", n, err)
	}
}

const extendedCopyScript = `
require "pg"
c = PG.connect(host: ENV["H"], port: ENV["P"], dbname: ENV["D"], user: ENV["U"], password: ENV["W"], sslmode: "disable")
c.exec("create table ec (v int)")
c.exec_params("COPY ec FROM STDIN", [])
100.times { |i| c.put_copy_data("#{i}\n") }
c.put_copy_end
r = c.get_result
raise "copy failed: #{r.error_message}" if r.result_status != PG::PGRES_COMMAND_OK
c.get_result
n = c.exec_params("select count(*) from ec", []).getvalue(0, 0).to_i
raise "count #{n}" unless n == 100
STDOUT.puts "copied"
STDOUT.flush
STDIN.gets
`
