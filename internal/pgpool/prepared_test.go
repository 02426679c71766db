package pgpool

import (
	"context"
	"errors"
	"fmt"
	"regexp"
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

// TestPreparedDuplicateNameLogged: a Parse under a name the client has in use gets
// PostgreSQL's 42P05 and leaves PgBouncer's log line, both when pgpool answers it
// without a server connection and inside a transaction, and the client goes on.
func TestPreparedDuplicateNameLogged(t *testing.T) {
	f := newFixture(t)
	_, addr, sink := startLoggedPooler(t, f.config())
	ctx := preparedCtx(t, 30*time.Second)
	c := connect(t, f.pgconnString(addr)).PgConn()
	if _, err := c.Prepare(ctx, "dup", "select 1", nil); err != nil {
		t.Fatal(err)
	}
	line := regexp.QuoteMeta("prepared statement 'dup' was already prepared")
	_, err := c.Prepare(ctx, "dup", "select 1", nil)
	if sqlState(err) != CodeDuplicatePreparedStatement {
		t.Fatalf("second Parse of dup: %v, want %s", err, CodeDuplicatePreparedStatement)
	}
	sink.wait(t, linePrefix+`ERROR `+clientPrefix(f.db, f.user)+line+`$`, 10*time.Second)
	if _, err := c.Exec(ctx, "begin").ReadAll(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Prepare(ctx, "dup2", "select 2", nil); err != nil {
		t.Fatal(err)
	}
	_, err = c.Prepare(ctx, "dup2", "select 2", nil)
	if sqlState(err) != CodeDuplicatePreparedStatement {
		t.Fatalf("second Parse of dup2 in a transaction: %v, want %s", err, CodeDuplicatePreparedStatement)
	}
	sink.wait(t, linePrefix+`ERROR `+clientPrefix(f.db, f.user)+regexp.QuoteMeta("prepared statement 'dup2' was already prepared")+`$`, 10*time.Second)
	if _, err := c.Exec(ctx, "rollback").ReadAll(); err != nil {
		t.Fatal(err)
	}
	if got, err := execPrepared(ctx, c, "dup"); err != nil || got != "1" {
		t.Fatalf("dup after the errors = %q, %v", got, err)
	}
}

// TestPreparedStatsCounts: SHOW STATS, STATS_TOTALS and TOTALS count the clients'
// named Parses, the Parses pgpool sends to server connections and the Binds of named
// statements, as PgBouncer 1.24 does; with max_prepared_statements = 0 nothing is
// tracked and all three stay 0.
func TestPreparedStatsCounts(t *testing.T) {
	e := newAdminEnv(t, false)
	ctx := preparedCtx(t, 60*time.Second)
	adm := adminConnect(t, e.dsn(false, e.admin, e.adminPassword, "pgbouncer"))
	stats := func() map[string]string {
		t.Helper()
		_, rows := adminQueryResult(t, adm, "SHOW STATS")
		for _, r := range rows {
			if r["database"] == e.f.db {
				return r
			}
		}
		t.Fatalf("SHOW STATS: no row for %s: %v", e.f.db, rows)
		return nil
	}
	check := func(when string, parse, srvParse, bind int) {
		t.Helper()
		r := stats()
		want := map[string]int{"total_client_parse_count": parse, "total_server_parse_count": srvParse, "total_bind_count": bind}
		for k, v := range want {
			if r[k] != strconv.Itoa(v) {
				t.Errorf("%s: SHOW STATS %s = %s, want %d", when, k, r[k], v)
			}
		}
	}

	// Two server connections: while c2 holds one in a transaction, c1 has the other.
	adminQueryResult(t, adm, "SET default_pool_size = 2")
	adminQueryResult(t, adm, "SET max_prepared_statements = 0")
	plain := connect(t, e.f.pgconnString(e.addr)).PgConn()
	// Untracked, the statement is the server connection's: one transaction keeps it.
	if _, err := plain.Exec(ctx, "begin").ReadAll(); err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Prepare(ctx, "untracked", "select 1", nil); err != nil {
		t.Fatal(err)
	}
	if got, err := execPrepared(ctx, plain, "untracked"); err != nil || got != "1" {
		t.Fatalf("untracked = %q, %v", got, err)
	}
	if _, err := plain.Exec(ctx, "commit").ReadAll(); err != nil {
		t.Fatal(err)
	}
	check("max_prepared_statements = 0", 0, 0, 0)
	plain.Close(ctx)

	adminQueryResult(t, adm, "SET max_prepared_statements = 10")
	c1 := connect(t, e.f.pgconnString(e.addr)).PgConn()
	c2 := connect(t, e.f.pgconnString(e.addr)).PgConn()
	// c2 holds a server connection in a transaction, so c1 prepares on another.
	if _, err := c2.Exec(ctx, "begin; select 2").ReadAll(); err != nil {
		t.Fatal(err)
	}
	if _, err := c1.Prepare(ctx, "s", "select 1", nil); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if got, err := execPrepared(ctx, c1, "s"); err != nil || got != "1" {
			t.Fatalf("c1 s = %q, %v", got, err)
		}
	}
	check("c1 prepared and ran s twice", 1, 1, 2)
	// The same statement by c2, on its own server connection, which lacks it.
	if _, err := c2.Prepare(ctx, "s", "select 1", nil); err != nil {
		t.Fatal(err)
	}
	if got, err := execPrepared(ctx, c2, "s"); err != nil || got != "1" {
		t.Fatalf("c2 s = %q, %v", got, err)
	}
	if _, err := c2.Exec(ctx, "commit").ReadAll(); err != nil {
		t.Fatal(err)
	}
	check("c2 prepared and ran s", 2, 2, 3)
	// Both server connections have it now: a Bind needs no Parse.
	if got, err := execPrepared(ctx, c1, "s"); err != nil || got != "1" {
		t.Fatalf("c1 s = %q, %v", got, err)
	}
	check("c1 ran s again", 2, 2, 4)

	_, totals := adminQueryResult(t, adm, "SHOW STATS_TOTALS")
	for _, r := range totals {
		if r["database"] == e.f.db && (r["client_parse_count"] != "2" || r["server_parse_count"] != "2" || r["bind_count"] != "4") {
			t.Errorf("SHOW STATS_TOTALS: %v", r)
		}
	}
	_, sums := adminQueryResult(t, adm, "SHOW TOTALS")
	found := 0
	for _, r := range sums {
		switch r["name"] {
		case "total_ps_client_parse_count", "total_ps_server_parse_count":
			found++
			if r["value"] != "2" {
				t.Errorf("SHOW TOTALS %s = %s, want 2", r["name"], r["value"])
			}
		case "total_ps_bind_count":
			found++
			if r["value"] != "4" {
				t.Errorf("SHOW TOTALS %s = %s, want 4", r["name"], r["value"])
			}
		}
	}
	if found != 3 {
		t.Errorf("SHOW TOTALS lacks the prepared statement rows: %v", sums)
	}
}
