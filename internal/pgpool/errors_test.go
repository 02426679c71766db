package pgpool

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/poolsuite/poolsuite/internal/testenv"
)

// wantSQLState fails unless err is a PostgreSQL error with the given SQLSTATE.
func wantSQLState(t *testing.T, err error, code string) *pgconn.PgError {
	t.Helper()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		t.Fatalf("want SQLSTATE %s, got %v", code, err)
	}
	if pgErr.Code != code {
		t.Fatalf("SQLSTATE %s (%s), want %s", pgErr.Code, pgErr.Message, code)
	}
	return pgErr
}

func tryConnect(dsn string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err == nil {
		c.Close(ctx)
	}
	return err
}

func TestQueryWaitTimeout(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.DefaultPoolSize = 1
	cfg.QueryWaitTimeout = 300 * time.Millisecond
	_, addr := startPooler(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := connect(t, f.connString(addr))
	b := connect(t, f.connString(addr))
	tx, err := a.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = b.Exec(ctx, "select 1")
	pgErr := wantSQLState(t, err, CodeProtocolViolation)
	if pgErr.Message != "query_wait_timeout" {
		t.Fatalf("message %q", pgErr.Message)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("gave up after %v, before query_wait_timeout", d)
	}
	// The client holding the transaction is unaffected.
	if _, err := tx.Exec(ctx, "select 2"); err != nil {
		t.Fatal(err)
	}
}

func TestMaxClientConn(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.MaxClientConn = 2
	_, addr := startPooler(t, cfg)
	connect(t, f.connString(addr))
	connect(t, f.connString(addr))
	wantSQLState(t, tryConnect(f.connString(addr)), CodeTooManyConnections)
}

func TestUnknownDatabase(t *testing.T) {
	f := newFixture(t)
	_, addr := startPooler(t, f.config())
	host, port, _ := net.SplitHostPort(addr)
	dsn := fmt.Sprintf("postgres://%s:%s@%s:%s/nosuchdb?sslmode=disable", f.user, f.password, host, port)
	pgErr := wantSQLState(t, tryConnect(dsn), CodeInvalidCatalogName)
	t.Logf("unknown database: %s", pgErr.Message)

	// A database the config routes ("*") but PostgreSQL lacks: PostgreSQL's own 3D000.
	cfg := f.config()
	cfg.Databases["*"] = &Database{Host: f.pg.Host, Port: f.pg.Port, ReservePool: -1}
	_, addr2 := startPooler(t, cfg)
	host, port, _ = net.SplitHostPort(addr2)
	dsn = fmt.Sprintf("postgres://%s:%s@%s:%s/nosuchdb?sslmode=disable", f.user, f.password, host, port)
	wantSQLState(t, tryConnect(dsn), CodeInvalidCatalogName)
}

func TestWrongPassword(t *testing.T) {
	f := newFixture(t)
	_, addr := startPooler(t, f.config())
	host, port, _ := net.SplitHostPort(addr)
	for _, user := range []string{f.user, "nosuchuser"} {
		dsn := fmt.Sprintf("postgres://%s:wrong@%s:%s/%s?sslmode=disable", user, host, port, f.db)
		wantSQLState(t, tryConnect(dsn), CodeInvalidPassword)
	}
}

// TestServerUnreachable: while the server cannot be reached, a client waits for a
// connection as PgBouncer's do; when query_wait_timeout runs out it gets 08P01
// query_wait_timeout with the connect failure in the detail, also when the failure is
// one remembered from before (server_login_retry has not passed).
func TestServerUnreachable(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	deadPort := testenv.FreePort(t) // nothing listens there
	cfg.Databases[f.db] = &Database{Host: "127.0.0.1", Port: deadPort, ReservePool: -1}
	cfg.ServerLoginRetry = time.Hour
	cfg.QueryWaitTimeout = time.Second
	_, addr := startPooler(t, cfg)
	for i := 0; i < 2; i++ {
		pgErr := wantSQLState(t, tryConnect(f.connString(addr)), CodeProtocolViolation)
		if pgErr.Message != "query_wait_timeout" || !strings.Contains(pgErr.Detail, "server connection failed") {
			t.Fatalf("attempt %d: message %q, detail %q: want query_wait_timeout naming the connect failure", i, pgErr.Message, pgErr.Detail)
		}
		t.Logf("attempt %d: %s: %s", i, pgErr.Message, pgErr.Detail)
	}
}

// TestBadPacketsHarmNobody sends malformed and oversized input on some connections
// while a well-behaved client keeps working.
func TestBadPacketsHarmNobody(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.MaxPacketSize = 1 << 20
	_, addr := startPooler(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	good := connect(t, f.connString(addr))

	closed := func(name string, payload []byte) {
		t.Helper()
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.Write(payload)
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = io.Copy(io.Discard, conn)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("%s: connection not closed", name)
		}
	}
	huge := make([]byte, 8)
	binary.BigEndian.PutUint32(huge, 1<<30)
	closed("oversized startup packet", huge)
	tiny := []byte{0, 0, 0, 2}
	closed("startup length below minimum", tiny)
	garbage := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	closed("http request", garbage)
	badVersion := make([]byte, 8)
	binary.BigEndian.PutUint32(badVersion, 8)
	binary.BigEndian.PutUint32(badVersion[4:], 2<<16)
	closed("protocol 2", badVersion)

	// After login: a message larger than max_packet_size, and one with a bad length.
	for _, msg := range [][]byte{
		{'Q', 0x7f, 0xff, 0xff, 0xff},
		{'Q', 0, 0, 0, 1},
	} {
		pc, err := pgconn.Connect(ctx, f.pgconnString(addr))
		if err != nil {
			t.Fatal(err)
		}
		conn := pc.Conn()
		conn.Write(msg)
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = io.Copy(io.Discard, conn)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("message %x: connection not closed", msg[:5])
		}
		conn.Close()
	}

	var n int
	if err := good.QueryRow(ctx, "select 7").Scan(&n); err != nil || n != 7 {
		t.Fatalf("well-behaved client: %d, %v", n, err)
	}
}

// TestClientThatNeverReads: a client that asks for a large result and stops reading
// is closed after write_timeout, and its server connection serves others again,
// instead of being held for ever.
func TestClientThatNeverReads(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.DefaultPoolSize = 1
	cfg.WriteTimeout = 500 * time.Millisecond
	cfg.QueryWaitTimeout = 20 * time.Second
	_, addr := startPooler(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pc, err := pgconn.Connect(ctx, f.pgconnString(addr))
	if err != nil {
		t.Fatal(err)
	}
	stuck := pc.Conn()
	defer stuck.Close()
	q, _ := (&pgproto3.Query{String: "select repeat('x', 100000) from generate_series(1, 5000)"}).Encode(nil)
	if _, err := stuck.Write(q); err != nil {
		t.Fatal(err)
	}
	// The first byte of the result shows the stuck client holds the only server
	// connection; from then on it reads nothing. Until then another client's query
	// could take the connection first, and the stuck client would then be reading
	// its result, not stuck.
	stuck.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.ReadFull(stuck, make([]byte, 1)); err != nil {
		t.Fatalf("the stuck client's result: %v", err)
	}
	// Another client gets the server connection once pgpool gives up on the stuck one.
	other := connect(t, f.connString(addr))
	start := time.Now()
	var n int
	if err := other.QueryRow(ctx, "select 1").Scan(&n); err != nil {
		t.Fatalf("another client: %v", err)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("the server connection was freed only after %v", d)
	}
	// pgpool closed the stuck client's connection: reading what is buffered ends.
	stuck.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, stuck); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("the stuck client's connection is still open")
		}
	}
}

// TestQueryTimeoutEndsWait: as in PgBouncer, query_timeout also bounds a client's wait
// for a server connection, logging in included, when it is shorter than
// query_wait_timeout; the client is told query_timeout.
func TestQueryTimeoutEndsWait(t *testing.T) {
	t.Run("waiting for a busy pool", func(t *testing.T) {
		f := newFixture(t)
		cfg := f.config()
		cfg.DefaultPoolSize = 1
		cfg.QueryWaitTimeout = time.Minute
		cfg.QueryTimeout = 500 * time.Millisecond
		_, addr := startPooler(t, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		a := connect(t, f.connString(addr))
		b := connect(t, f.connString(addr))
		tx, err := a.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, "select 1"); err != nil {
			t.Fatal(err)
		}
		_, err = b.Exec(ctx, "select 1")
		if pgErr := wantSQLState(t, err, CodeProtocolViolation); pgErr.Message != "query_timeout" {
			t.Fatalf("message %q, want query_timeout", pgErr.Message)
		}
	})
	t.Run("logging in while the server is unreachable", func(t *testing.T) {
		f := newFixture(t)
		cfg := f.config()
		cfg.Databases[f.db] = &Database{Host: "127.0.0.1", Port: testenv.FreePort(t), ReservePool: -1}
		cfg.ServerLoginRetry = time.Hour
		cfg.QueryWaitTimeout = time.Minute
		cfg.QueryTimeout = 500 * time.Millisecond
		_, addr := startPooler(t, cfg)
		pgErr := wantSQLState(t, tryConnect(f.connString(addr)), CodeProtocolViolation)
		if pgErr.Message != "query_timeout" || !strings.Contains(pgErr.Detail, "server connection failed") {
			t.Fatalf("message %q, detail %q: want query_timeout naming the connect failure", pgErr.Message, pgErr.Detail)
		}
	})
}
