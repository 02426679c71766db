package pgpool

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/poolsuite/poolsuite/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var roleSeq atomic.Int64

// fixture is a PostgreSQL server with a database and a role of the test's own.
type fixture struct {
	pg       *testenv.Postgres
	db, user string
	password string
}

// newFixture creates a fresh role and database on the shared server.
func newFixture(t testing.TB) *fixture {
	t.Helper()
	pg := testenv.SharedPostgres(t)
	n := roleSeq.Add(1)
	f := &fixture{pg: pg, db: fmt.Sprintf("db%d_%d", os.Getpid(), n), user: fmt.Sprintf("u%d_%d", os.Getpid(), n), password: "pw" + strconv.FormatInt(n, 10)}
	pg.CreateRole(t, f.user, f.password)
	pg.CreateDatabase(t, f.db, f.user)
	return f
}

// config returns a pooler config with one database entry pointing at the fixture, in
// transaction mode (the mode most tests exercise; Defaults gives PgBouncer's session).
func (f *fixture) config() *Config {
	cfg := Defaults()
	cfg.PoolMode = PoolTransaction
	cfg.AuthType = "scram-sha-256"
	cfg.Userlist = map[string]string{f.user: f.password}
	cfg.Databases[f.db] = &Database{Host: f.pg.Host, Port: f.pg.Port, ReservePool: -1}
	cfg.ServerTLSMode = "disable"
	return cfg
}

// testLogger writes pooler logs to the test log when -v is given.
func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startPooler runs a Pooler on a free loopback port until the test ends.
func startPooler(t testing.TB, cfg *Config) (*Pooler, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pl := New(cfg, testLogger(t))
	served := make(chan error, 1)
	go func() { served <- pl.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		pl.Shutdown(ctx)
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return pl, ln.Addr().String()
}

// connString is a pgx DSN for the pooler at addr. pgx runs every query as an unnamed
// statement (exec mode), which transaction pooling supports without statement tracking.
func (f *fixture) connString(addr string) string {
	return f.pgconnString(addr) + "&default_query_exec_mode=exec"
}

// pgconnString is a libpq-style DSN for the pooler at addr.
func (f *fixture) pgconnString(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	return fmt.Sprintf("postgres://%s:%s@%s:%s/%s?sslmode=disable", f.user, f.password, host, port, f.db)
}

func connect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}
