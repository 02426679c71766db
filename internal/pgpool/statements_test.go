package pgpool

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// TestUnnamedStatementPerClient: two pgx clients share a pool of one server
// connection in transaction mode, in each of pgx's query exec modes, running
// different queries (different result types) in an interleaved loop. In
// DescribeExec mode a client's unnamed statement is prepared in one batch and bound
// in the next; every result must still be the client's own.
func TestUnnamedStatementPerClient(t *testing.T) {
	modes := []struct {
		name string
		mode pgx.QueryExecMode
	}{
		{"CacheStatement", pgx.QueryExecModeCacheStatement},
		{"CacheDescribe", pgx.QueryExecModeCacheDescribe},
		{"DescribeExec", pgx.QueryExecModeDescribeExec},
		{"Exec", pgx.QueryExecModeExec},
		{"SimpleProtocol", pgx.QueryExecModeSimpleProtocol},
	}
	f := newFixture(t)
	cfg := f.config()
	cfg.DefaultPoolSize = 1
	_, addr := startPooler(t, cfg)
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ctx := preparedCtx(t, 60*time.Second)
			pc, err := pgx.ParseConfig(f.pgconnString(addr))
			if err != nil {
				t.Fatal(err)
			}
			pc.DefaultQueryExecMode = m.mode
			conns := make([]*pgx.Conn, 2)
			for i := range conns {
				if conns[i], err = pgx.ConnectConfig(ctx, pc); err != nil {
					t.Fatal(err)
				}
				defer conns[i].Close(context.Background())
			}
			const rounds = 300
			errs := make(chan error, 2)
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { // client 0: an integer
				defer wg.Done()
				errs <- func() error {
					for r := 0; r < rounds; r++ {
						var got int32
						if err := conns[0].QueryRow(ctx, "select $1::int4 + 1000", int32(r)).Scan(&got); err != nil {
							return fmt.Errorf("client 0 round %d: %w", r, err)
						}
						if got != int32(r)+1000 {
							return fmt.Errorf("client 0 round %d: got %d", r, got)
						}
					}
					return nil
				}()
			}()
			go func() { // client 1: text and a second column
				defer wg.Done()
				errs <- func() error {
					for r := 0; r < rounds; r++ {
						var got string
						var n int64
						if err := conns[1].QueryRow(ctx, "select 'b' || ($1::int4 * 2)::text, 7::int8", int32(r)).Scan(&got, &n); err != nil {
							return fmt.Errorf("client 1 round %d: %w", r, err)
						}
						if got != "b"+strconv.Itoa(r*2) || n != 7 {
							return fmt.Errorf("client 1 round %d: got %q %d", r, got, n)
						}
					}
					return nil
				}()
			}()
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestUnnamedStatementRules: a client's unnamed statement survives another client's
// unnamed Parse on the same server connection, is gone after the client's own simple
// Query (26000, as PostgreSQL answers), and after a Parse of it that failed.
func TestUnnamedStatementRules(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.DefaultPoolSize = 1
	_, addr := startPooler(t, cfg)
	ctx := preparedCtx(t, 30*time.Second)
	a := connect(t, f.pgconnString(addr)).PgConn()
	b := connect(t, f.pgconnString(addr)).PgConn()
	if _, err := a.Prepare(ctx, "", "select 'a'::text", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Prepare(ctx, "", "select 2::int4", nil); err != nil {
		t.Fatal(err)
	}
	if got, err := execPrepared(ctx, a, ""); err != nil || got != "a" {
		t.Fatalf("A's unnamed statement: %q, %v", got, err)
	}
	if got, err := execPrepared(ctx, b, ""); err != nil || got != "2" {
		t.Fatalf("B's unnamed statement: %q, %v", got, err)
	}
	if err := a.Exec(ctx, "select 1").Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := execPrepared(ctx, a, ""); sqlState(err) != CodeInvalidStatementName {
		t.Fatalf("A after its simple Query: want 26000, got %v", err)
	}
	if got, err := execPrepared(ctx, b, ""); err != nil || got != "2" {
		t.Fatalf("B's unnamed statement after A's Query: %q, %v", got, err)
	}
	if _, err := b.Prepare(ctx, "", "select * from nosuch_unnamed", nil); sqlState(err) != "42P01" {
		t.Fatalf("failing unnamed Parse: %v", err)
	}
	if _, err := execPrepared(ctx, b, ""); sqlState(err) != CodeInvalidStatementName {
		t.Fatalf("B after its failed Parse: want 26000, got %v", err)
	}
}

// TestPreparedAfterSchemaChange: after DDL passes through pgpool, a second client's
// fresh Parse of a query another client prepared before gets today's parameter types
// and result columns, over a pool of one server connection (where the first
// client's server-side statement still exists).
func TestPreparedAfterSchemaChange(t *testing.T) {
	cases := []struct {
		name, setup, query, ddl string
		check                   func(a *pgconn.PgConn, sd *pgconn.StatementDescription) error
	}{
		{
			name:  "alter column type",
			setup: "create table ddl_t1 (f int4)",
			query: "insert into ddl_t1 (f) values ($1)",
			ddl:   "alter table ddl_t1 alter column f type boolean using f <> 0",
			check: func(_ *pgconn.PgConn, sd *pgconn.StatementDescription) error {
				if len(sd.ParamOIDs) != 1 || sd.ParamOIDs[0] != 16 {
					return fmt.Errorf("parameter types %v, want [16] (boolean)", sd.ParamOIDs)
				}
				return nil
			},
		},
		{
			name:  "drop column",
			setup: "create table ddl_t2 (a int, b int)",
			query: "select * from ddl_t2",
			ddl:   "alter table ddl_t2 drop column b",
			check: func(_ *pgconn.PgConn, sd *pgconn.StatementDescription) error {
				if len(sd.Fields) != 1 {
					return fmt.Errorf("%d result columns, want 1", len(sd.Fields))
				}
				return nil
			},
		},
		{
			name:  "type dropped and created again",
			setup: "create type ddl_ty as enum ('a', 'b')",
			query: "select $1::ddl_ty",
			ddl:   "drop type ddl_ty; create type ddl_ty as enum ('x')",
			check: func(a *pgconn.PgConn, sd *pgconn.StatementDescription) error {
				rs, err := a.Exec(context.Background(), "select 'ddl_ty'::regtype::oid").ReadAll()
				if err != nil {
					return err
				}
				want, _ := strconv.ParseUint(string(rs[0].Rows[0][0]), 10, 32)
				if len(sd.ParamOIDs) != 1 || sd.ParamOIDs[0] != uint32(want) {
					return fmt.Errorf("parameter types %v, want [%d]", sd.ParamOIDs, want)
				}
				return nil
			},
		},
	}
	f := newFixture(t)
	cfg := f.config()
	cfg.DefaultPoolSize = 1
	_, addr := startPooler(t, cfg)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := preparedCtx(t, 30*time.Second)
			a := connect(t, f.pgconnString(addr)).PgConn()
			b := connect(t, f.pgconnString(addr)).PgConn()
			if err := a.Exec(ctx, tc.setup).Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := a.Prepare(ctx, "s", tc.query, nil); err != nil {
				t.Fatal(err)
			}
			if err := a.Exec(ctx, tc.ddl).Close(); err != nil {
				t.Fatal(err)
			}
			sd, err := b.Prepare(ctx, "s", tc.query, nil)
			if err != nil {
				t.Fatalf("fresh prepare after DDL: %v", err)
			}
			if err := tc.check(a, sd); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPreparedSchemaChangeInTransaction: a schema change made inside a transaction
// is seen by a fresh Parse made after it committed, even when the client prepared
// the same query on the same server connection while the transaction was open (then
// against the old schema).
func TestPreparedSchemaChangeInTransaction(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.DefaultPoolSize = 2
	_, addr := startPooler(t, cfg)
	ctx := preparedCtx(t, 30*time.Second)
	a := connect(t, f.pgconnString(addr)).PgConn()
	b := connect(t, f.pgconnString(addr)).PgConn()
	if err := a.Exec(ctx, "create function ddl_f(x int4) returns int4 language sql as 'select x'").Close(); err != nil {
		t.Fatal(err)
	}
	const q = "select ddl_f($1)"
	// B holds the other server connection throughout (a session advisory lock pins
	// it), so both its Parses run there.
	if err := b.Exec(ctx, "select pg_advisory_lock(1)").Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Exec(ctx, "begin; drop function ddl_f(int4); create function ddl_f(x int4) returns text language sql as 'select x::text'").Close(); err != nil {
		t.Fatal(err)
	}
	sd, err := b.Prepare(ctx, "s1", q, nil)
	if err != nil || sd.Fields[0].DataTypeOID != 23 {
		t.Fatalf("prepare while the change is uncommitted: %v %v, want an int4 result", sd, err)
	}
	if err := a.Exec(ctx, "commit").Close(); err != nil {
		t.Fatal(err)
	}
	sd, err = b.Prepare(ctx, "s2", q, nil)
	if err != nil || sd.Fields[0].DataTypeOID != 25 {
		t.Fatalf("prepare after commit: %v %v, want a text result", sd, err)
	}
}

// TestPrepareErrorAtParse: a Parse that fails gets PostgreSQL's ErrorResponse as
// the answer to the Parse, never a ParseComplete, whether the client holds a server
// connection or not, and also for a statement another client prepared before the
// table it names was dropped through pgpool.
func TestPrepareErrorAtParse(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.DefaultPoolSize = 1
	_, addr := startPooler(t, cfg)
	ctx := preparedCtx(t, 30*time.Second)
	c := connect(t, f.pgconnString(addr))
	bad := []struct{ sql, code string }{
		{"selec 1", "42601"},
		{"select * from prep_nosuch", "42P01"},
	}
	for _, b := range bad {
		if _, err := c.Prepare(ctx, "bad", b.sql); sqlState(err) != b.code {
			t.Fatalf("Prepare(%q): want %s, got %v", b.sql, b.code, err)
		}
		// Inside a transaction (the client holds a server connection).
		tx, err := c.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Prepare(ctx, "bad", b.sql); sqlState(err) != b.code {
			t.Fatalf("Prepare(%q) in a transaction: want %s, got %v", b.sql, b.code, err)
		}
		tx.Rollback(ctx)
	}
	// The name stays free: a good statement under it works.
	if _, err := c.Prepare(ctx, "bad", "select 1"); err != nil {
		t.Fatal(err)
	}

	// A statement known to prepare, whose table another client drops.
	other := connect(t, f.pgconnString(addr))
	if _, err := other.Exec(ctx, "create table prep_gone (a int)"); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Prepare(ctx, "g", "select a from prep_gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Exec(ctx, "drop table prep_gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Prepare(ctx, "g", "select a from prep_gone"); sqlState(err) != "42P01" {
		t.Fatalf("Prepare after DROP TABLE: want 42P01, got %v", err)
	}

	// At the protocol level: the answer to the Parse is the ErrorResponse itself.
	for _, b := range bad {
		for _, flush := range []bool{false, true} {
			got := rawParse(t, f, addr, b.sql, flush)
			if len(got) < 2 {
				t.Fatalf("%q: got %T", b.sql, got)
			}
			er, ok := got[0].(*pgproto3.ErrorResponse)
			if !ok || er.Code != b.code {
				t.Fatalf("%q (flush %v): first answer %#v, want ErrorResponse %s", b.sql, flush, got[0], b.code)
			}
			for _, m := range got {
				if _, pc := m.(*pgproto3.ParseComplete); pc {
					t.Fatalf("%q: ParseComplete sent for a failing Parse", b.sql)
				}
			}
			if _, ok := got[len(got)-1].(*pgproto3.ReadyForQuery); !ok {
				t.Fatalf("%q: last answer %#v", b.sql, got[len(got)-1])
			}
		}
	}
}

// rawParse sends a named Parse of sql on a fresh connection to pgpool, then Sync
// (with flush, Flush first, and Sync only after the first answer), and returns the
// backend messages up to ReadyForQuery.
func rawParse(t *testing.T, f *fixture, addr, sql string, flush bool) []pgproto3.BackendMessage {
	t.Helper()
	ctx := preparedCtx(t, 20*time.Second)
	pc, err := pgconn.Connect(ctx, f.pgconnString(addr))
	if err != nil {
		t.Fatal(err)
	}
	hc, err := pc.Hijack()
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Conn.Close()
	hc.Conn.SetDeadline(time.Now().Add(20 * time.Second))
	fe := hc.Frontend
	fe.Send(&pgproto3.Parse{Name: "raw", Query: sql})
	if flush {
		fe.Send(&pgproto3.Flush{})
	} else {
		fe.Send(&pgproto3.Sync{})
	}
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	var got []pgproto3.BackendMessage
	for {
		m, err := fe.Receive()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("no answer; so far %#v", got)
			}
			t.Fatal(err)
		}
		switch m := m.(type) {
		case *pgproto3.ParseComplete:
			got = append(got, &pgproto3.ParseComplete{})
		case *pgproto3.ErrorResponse:
			cp := *m
			got = append(got, &cp)
			if flush {
				fe.Send(&pgproto3.Sync{})
				if err := fe.Flush(); err != nil {
					t.Fatal(err)
				}
			}
		case *pgproto3.ReadyForQuery:
			got = append(got, &pgproto3.ReadyForQuery{TxStatus: m.TxStatus})
			return got
		}
	}
}

// TestLongUnnamedParsePins: a client's unnamed Parse longer than maxUnnamedCopy is not
// copied; the client is pinned to the server connection that has it instead (SHOW
// CLIENTS says why), a Bind of it in a later batch runs there, and the client is
// shared again once its unnamed statement is a short one.
func TestLongUnnamedParsePins(t *testing.T) {
	e := newAdminEnv(t, false)
	ctx := preparedCtx(t, 60*time.Second)
	adm := adminConnect(t, e.dsn(false, e.admin, e.adminPassword, "pgbouncer"))
	conn := connect(t, e.f.pgconnString(e.addr))
	a := conn.PgConn()
	n := maxUnnamedCopy + 1000
	long := "select length('" + strings.Repeat("x", n) + "')::text"
	if _, err := a.Prepare(ctx, "", long, nil); err != nil {
		t.Fatal(err)
	}
	if got := pinnedOf(t, adm, conn); got != "unnamed_parse" {
		t.Fatalf("after a long unnamed Parse: pinned %q, want unnamed_parse", got)
	}
	if got, err := execPrepared(ctx, a, ""); err != nil || got != strconv.Itoa(n) {
		t.Fatalf("Bind of the long unnamed statement: %q, %v", got, err)
	}
	if _, err := a.Prepare(ctx, "", "select 'short'::text", nil); err != nil {
		t.Fatal(err)
	}
	if got := pinnedOf(t, adm, conn); got != "" {
		t.Fatalf("after a short unnamed Parse: pinned %q", got)
	}
	if got, err := execPrepared(ctx, a, ""); err != nil || got != "short" {
		t.Fatalf("Bind of the short unnamed statement: %q, %v", got, err)
	}
}
