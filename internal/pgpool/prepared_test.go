package pgpool

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func preparedCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestPreparedPgxDefaultMode: 200 pgx clients in pgx's default mode (a cache of named
// statements per connection) share a pool of 5 in transaction mode, preparing
// overlapping sets of statements; every result is right.
func TestPreparedPgxDefaultMode(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.DefaultPoolSize = 5
	cfg.MaxClientConn = 300
	_, addr := startPooler(t, cfg)
	ctx := preparedCtx(t, 120*time.Second)

	const clients, queries, rounds = 200, 12, 20
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs <- func() error {
				conn, err := pgx.Connect(ctx, f.pgconnString(addr))
				if err != nil {
					return err
				}
				defer conn.Close(context.Background())
				for r := 0; r < rounds; r++ {
					// Client i uses queries i%queries .. i%queries+3: overlapping sets.
					k := (i + r) % 4
					q := (i%queries + k) % queries
					var got int
					sql := fmt.Sprintf("select $1::int * %d + $2::int", q+1)
					if err := conn.QueryRow(ctx, sql, i, r).Scan(&got); err != nil {
						return fmt.Errorf("client %d round %d: %w", i, r, err)
					}
					if want := i*(q+1) + r; got != want {
						return fmt.Errorf("client %d round %d: %q gave %d, want %d", i, r, sql, got, want)
					}
					if r%5 == 0 {
						tx, err := conn.Begin(ctx)
						if err != nil {
							return err
						}
						var s string
						if err := tx.QueryRow(ctx, "select $1::text || '-' || $2::text", strconv.Itoa(i), "x").Scan(&s); err != nil {
							tx.Rollback(ctx)
							return err
						}
						if err := tx.Commit(ctx); err != nil {
							return err
						}
						if s != strconv.Itoa(i)+"-x" {
							return fmt.Errorf("client %d: got %q", i, s)
						}
					}
				}
				return nil
			}()
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// execPrepared runs a named statement with text parameters and returns the first
// column of the first row.
func execPrepared(ctx context.Context, c *pgconn.PgConn, name string, args ...string) (string, error) {
	params := make([][]byte, len(args))
	for i, a := range args {
		params[i] = []byte(a)
	}
	res := c.ExecPrepared(ctx, name, params, nil, nil).Read()
	if res.Err != nil {
		return "", res.Err
	}
	if len(res.Rows) == 0 {
		return "", errors.New("no rows")
	}
	return string(res.Rows[0][0]), nil
}

func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// TestPreparedCloseIsolation: one client's protocol Close, DEALLOCATE name,
// DEALLOCATE ALL and DISCARD ALL forget its own statements only; another client using
// the same query on the same server connection is unaffected.
func TestPreparedCloseIsolation(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.DefaultPoolSize = 1
	_, addr := startPooler(t, cfg)
	ctx := preparedCtx(t, 30*time.Second)
	a := connect(t, f.pgconnString(addr)).PgConn()
	b := connect(t, f.pgconnString(addr)).PgConn()
	const q = "select $1::int + 1"
	for _, c := range []*pgconn.PgConn{a, b} {
		if _, err := c.Prepare(ctx, "s1", q, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Both clients may use the same name for different things, too.
	if _, err := a.Prepare(ctx, "other", "select 'a'", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Prepare(ctx, "other", "select 'b'", nil); err != nil {
		t.Fatal(err)
	}
	check := func(c *pgconn.PgConn, name, arg, want string) {
		t.Helper()
		got, err := execPrepared(ctx, c, name, arg)
		if err != nil || got != want {
			t.Fatalf("%s(%s) = %q, %v; want %q", name, arg, got, err, want)
		}
	}
	check(a, "s1", "1", "2")
	check(b, "s1", "2", "3")
	if got, err := execPrepared(ctx, a, "other"); err != nil || got != "a" {
		t.Fatalf("a other = %q, %v", got, err)
	}
	if got, err := execPrepared(ctx, b, "other"); err != nil || got != "b" {
		t.Fatalf("b other = %q, %v", got, err)
	}
	// A second Parse under a name in use fails as in PostgreSQL.
	if _, err := a.Prepare(ctx, "s1", q, nil); sqlState(err) != CodeDuplicatePreparedStatement {
		t.Fatalf("duplicate prepare: %v", err)
	}

	steps := []struct {
		name string
		drop func() error
	}{
		{"protocol Close", func() error { return a.Deallocate(ctx, "s1") }},
		{"DEALLOCATE name", func() error { return a.Exec(ctx, "DEALLOCATE s1").Close() }},
		{"DEALLOCATE ALL", func() error { return a.Exec(ctx, "deallocate all").Close() }},
		{"DISCARD ALL", func() error { return a.Exec(ctx, "DISCARD ALL").Close() }},
	}
	for _, st := range steps {
		if err := st.drop(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if _, err := execPrepared(ctx, a, "s1", "1"); sqlState(err) != "26000" {
			t.Fatalf("after %s the client's own statement still runs: %v", st.name, err)
		}
		check(b, "s1", "5", "6")
		// The name is free again for this client.
		if _, err := a.Prepare(ctx, "s1", q, nil); err != nil {
			t.Fatalf("prepare after %s: %v", st.name, err)
		}
		check(a, "s1", "7", "8")
	}
	// Inside a transaction too, and DEALLOCATE of an unknown name is PostgreSQL's error.
	if err := a.Exec(ctx, "begin").Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Exec(ctx, "DEALLOCATE s1").Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Exec(ctx, "DEALLOCATE nosuch").Close(); sqlState(err) != "26000" {
		t.Fatalf("DEALLOCATE nosuch: %v", err)
	}
	if err := a.Exec(ctx, "rollback").Close(); err != nil {
		t.Fatal(err)
	}
	check(b, "s1", "9", "10")
}

// TestPreparedEviction: with max_prepared_statements 2, a client cycling through five
// statements gets right results, and the server connection never holds more than two.
func TestPreparedEviction(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.DefaultPoolSize = 1
	cfg.MaxPreparedStatements = 2
	_, addr := startPooler(t, cfg)
	ctx := preparedCtx(t, 30*time.Second)
	c := connect(t, f.pgconnString(addr)).PgConn()
	for i := 0; i < 5; i++ {
		if _, err := c.Prepare(ctx, fmt.Sprintf("e%d", i), fmt.Sprintf("select $1::int * %d", i+10), nil); err != nil {
			t.Fatal(err)
		}
	}
	for r := 0; r < 4; r++ {
		for i := 0; i < 5; i++ {
			got, err := execPrepared(ctx, c, fmt.Sprintf("e%d", i), strconv.Itoa(r))
			if want := strconv.Itoa(r * (i + 10)); err != nil || got != want {
				t.Fatalf("e%d(%d) = %q, %v; want %s", i, r, got, err, want)
			}
		}
	}
	// A batch that uses all five at once.
	batch := &pgconn.Batch{}
	for i := 0; i < 5; i++ {
		batch.ExecPrepared(fmt.Sprintf("e%d", i), [][]byte{[]byte("3")}, nil, nil)
	}
	res, err := c.ExecBatch(ctx, batch).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if want := strconv.Itoa(3 * (i + 10)); string(r.Rows[0][0]) != want {
			t.Fatalf("batch e%d = %s, want %s", i, r.Rows[0][0], want)
		}
	}
	r := c.Exec(ctx, "select count(*) from pg_prepared_statements")
	rs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := strconv.Atoi(string(rs[0].Rows[0][0])); n > 2 {
		t.Fatalf("server connection holds %d statements, limit 2", n)
	}
}

// TestPreparedPlanChange: after ALTER TABLE, the next use of a shared statement gets
// PostgreSQL's 0A000 error once; the client's next Parse of the query works.
func TestPreparedPlanChange(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.DefaultPoolSize = 1
	_, addr := startPooler(t, cfg)
	ctx := preparedCtx(t, 30*time.Second)
	c := connect(t, f.pgconnString(addr)).PgConn()
	if err := c.Exec(ctx, "create table pc (a int); insert into pc values (1)").Close(); err != nil {
		t.Fatal(err)
	}
	const q = "select * from pc"
	if _, err := c.Prepare(ctx, "p", q, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := execPrepared(ctx, c, "p"); err != nil || got != "1" {
		t.Fatalf("first use: %q, %v", got, err)
	}
	if err := c.Exec(ctx, "alter table pc add column b int default 7").Close(); err != nil {
		t.Fatal(err)
	}
	_, err := execPrepared(ctx, c, "p")
	if sqlState(err) != CodeFeatureNotSupported {
		t.Fatalf("second use: want 0A000, got %v", err)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Message != "cached plan must not change result type" {
		t.Fatalf("error not passed intact: %q", pe.Message)
	}
	if err := c.Deallocate(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	sd, err := c.Prepare(ctx, "p", q, nil)
	if err != nil {
		t.Fatalf("re-prepare: %v", err)
	}
	if len(sd.Fields) != 2 {
		t.Fatalf("re-prepared statement has %d columns", len(sd.Fields))
	}
	res := c.ExecPrepared(ctx, "p", nil, nil, nil).Read()
	if res.Err != nil || len(res.Rows) != 1 || string(res.Rows[0][1]) != "7" {
		t.Fatalf("after re-prepare: %v %q", res.Err, res.Rows)
	}
}

// TestPreparedPlanChangeOtherClient: a client that prepared the same query before the
// schema changed gets PostgreSQL's 0A000 for its own statement too, even after another
// client re-prepared the shared server-side statement, and never rows of a shape its
// statement's description did not announce.
func TestPreparedPlanChangeOtherClient(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.DefaultPoolSize = 1
	_, addr := startPooler(t, cfg)
	ctx := preparedCtx(t, 30*time.Second)
	a := connect(t, f.pgconnString(addr)).PgConn()
	b := connect(t, f.pgconnString(addr)).PgConn()
	if err := a.Exec(ctx, "create table pc2 (a int); insert into pc2 values (1)").Close(); err != nil {
		t.Fatal(err)
	}
	const q = "select * from pc2"
	for _, c := range []*pgconn.PgConn{a, b} {
		if _, err := c.Prepare(ctx, "p", q, nil); err != nil {
			t.Fatal(err)
		}
		if got, err := execPrepared(ctx, c, "p"); err != nil || got != "1" {
			t.Fatalf("first use: %q, %v", got, err)
		}
	}
	if err := a.Exec(ctx, "alter table pc2 add column b int default 7").Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := execPrepared(ctx, a, "p"); sqlState(err) != CodeFeatureNotSupported {
		t.Fatalf("A after ALTER: want 0A000, got %v", err)
	}
	if err := a.Deallocate(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Prepare(ctx, "p", q, nil); err != nil {
		t.Fatal(err)
	}
	if res := a.ExecPrepared(ctx, "p", nil, nil, nil).Read(); res.Err != nil || len(res.Rows[0]) != 2 {
		t.Fatalf("A after re-prepare: %v %q", res.Err, res.Rows)
	}
	// B's statement still describes one column: B must get the error, twice if it
	// insists, and a working statement once it prepares again.
	for i := 0; i < 2; i++ {
		if _, err := execPrepared(ctx, b, "p"); sqlState(err) != CodeFeatureNotSupported {
			t.Fatalf("B after ALTER (try %d): want 0A000, got %v", i, err)
		}
	}
	if err := b.Deallocate(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Prepare(ctx, "p", q, nil); err != nil {
		t.Fatal(err)
	}
	if res := b.ExecPrepared(ctx, "p", nil, nil, nil).Read(); res.Err != nil || len(res.Rows[0]) != 2 {
		t.Fatalf("B after re-prepare: %v %q", res.Err, res.Rows)
	}
}

// TestPreparedBoundFollowsReload: a change of max_prepared_statements applies to a
// client already connected: with 1, the server connection holds one of its statements;
// after a reload to 5, the same client's next five statements all stay prepared there.
func TestPreparedBoundFollowsReload(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.DefaultPoolSize = 1
	cfg.MaxPreparedStatements = 1
	pl, addr := startPooler(t, cfg)
	ctx := preparedCtx(t, 30*time.Second)
	c := connect(t, f.pgconnString(addr)).PgConn()
	held := func() int {
		t.Helper()
		rs, err := c.Exec(ctx, "select count(*) from pg_prepared_statements").ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(string(rs[0].Rows[0][0]))
		return n
	}
	prepare := func(from int) {
		t.Helper()
		for i := from; i < from+5; i++ {
			if _, err := c.Prepare(ctx, fmt.Sprintf("b%d", i), fmt.Sprintf("select $1::int + %d", i), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	prepare(0)
	if n := held(); n != 1 {
		t.Fatalf("max_prepared_statements 1: server connection holds %d statements", n)
	}
	next := *cfg
	next.MaxPreparedStatements = 5
	pl.Reload(&next)
	prepare(5)
	if n := held(); n != 5 {
		t.Fatalf("after a reload to 5: server connection holds %d statements, want 5", n)
	}
	for i := 0; i < 10; i++ {
		if got, err := execPrepared(ctx, c, fmt.Sprintf("b%d", i), "1"); err != nil || got != strconv.Itoa(1+i) {
			t.Fatalf("b%d(1) = %q, %v", i, got, err)
		}
	}
}
