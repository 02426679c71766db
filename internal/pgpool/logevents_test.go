package pgpool

import (
	"context"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/poolsuite/poolsuite/internal/pglog"
)

// logSink collects the pooler's log lines; waiters are woken at every write.
type logSink struct {
	mu      sync.Mutex
	b       strings.Builder
	changed chan struct{}
}

func newLogSink() *logSink { return &logSink{changed: make(chan struct{})} }

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Write(p)
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// wait returns the first log line matching re, failing the test after timeout.
func (l *logSink) wait(t *testing.T, re string, timeout time.Duration) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		text, ch := l.b.String(), l.changed
		l.mu.Unlock()
		for _, line := range strings.Split(text, "\n") {
			if rx.MatchString(line) {
				return line
			}
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("no log line matching %q after %v; log:\n%s", re, timeout, text)
		}
	}
}

// startLoggedPooler is startPooler with the pooler's log in PgBouncer's format.
func startLoggedPooler(t *testing.T, cfg *Config) (*Pooler, string, *logSink) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sink := newLogSink()
	pl := New(cfg, slog.New(pglog.New(sink, nil)))
	served := make(chan error, 1)
	go func() { served <- pl.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		pl.Shutdown(ctx)
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if t.Failed() || testing.Verbose() {
			t.Logf("pooler log:\n%s", sink.String())
		}
	})
	return pl, ln.Addr().String(), sink
}

// linePrefix is the start of every line: time, zone, pid, level.
const linePrefix = `^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \S+ \[\d+\] `

func clientPrefix(db, user string) string {
	return `C-0x[0-9a-f]+: ` + regexp.QuoteMeta(db+"/"+user) + `@127\.0\.0\.1:\d+ `
}

// TestLogLoginAndClose: a login and a client's Terminate give PgBouncer's
// log_connections and log_disconnections lines, with the client's prefix; the server
// connection opened for it gives "new connection to server (from ...)" with the
// server's prefix, and its idle timeout "closing because: server idle timeout".
func TestLogLoginAndClose(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cfg := f.config()
	cfg.ServerIdleTimeout = 50 * time.Millisecond
	_, addr, sink := startLoggedPooler(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, f.connString(addr))
	if err != nil {
		t.Fatal(err)
	}
	sink.wait(t, linePrefix+`LOG `+clientPrefix(f.db, f.user)+regexp.QuoteMeta("login attempt: db="+f.db+" user="+f.user+" tls=no")+`$`, 5*time.Second)
	if _, err := c.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	serverPrefix := `S-0x[0-9a-f]+: ` + regexp.QuoteMeta(f.db+"/"+f.user+"@"+net.JoinHostPort(f.pg.Host, strconv.Itoa(f.pg.Port))) + ` `
	sink.wait(t, linePrefix+`LOG `+serverPrefix+`new connection to server \(from 127\.0\.0\.1:\d+\)$`, 5*time.Second)
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	sink.wait(t, linePrefix+`LOG `+clientPrefix(f.db, f.user)+`closing because: client close request \(age=\d+s\)$`, 5*time.Second)
	sink.wait(t, linePrefix+`LOG `+serverPrefix+`closing because: server idle timeout \(age=\d+s\)$`, 10*time.Second)
}

// TestLogLoginFailures: a wrong password and an unknown database are logged as
// PgBouncer logs them: the error sent ("pooler error: ...", WARNING) and the close
// ("closing because: ...").
func TestLogLoginFailures(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, tt := range []struct {
		authType, db, password, reason string
	}{
		{"md5", f.db, "wrong", `password authentication failed`},
		{"scram-sha-256", f.db, "wrong", `SASL authentication failed`},
		{"scram-sha-256", "nosuchdb", f.password, `no such database: nosuchdb`},
	} {
		t.Run(tt.authType+"/"+tt.db, func(t *testing.T) {
			cfg := f.config()
			cfg.AuthType = tt.authType
			_, addr, sink := startLoggedPooler(t, cfg)
			host, port, _ := net.SplitHostPort(addr)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			dsn := "postgres://" + f.user + ":" + tt.password + "@" + host + ":" + port + "/" + tt.db + "?sslmode=disable"
			if c, err := pgx.Connect(ctx, dsn); err == nil {
				c.Close(ctx)
				t.Fatal("login succeeded")
			}
			sink.wait(t, linePrefix+`WARNING `+clientPrefix(tt.db, f.user)+`pooler error: `+tt.reason, 5*time.Second)
			sink.wait(t, linePrefix+`LOG `+clientPrefix(tt.db, f.user)+`closing because: `+tt.reason+`.* \(age=\d+s\)$`, 5*time.Second)
			if tt.db == "nosuchdb" {
				sink.wait(t, clientPrefix(tt.db, f.user)+`login failed: db=nosuchdb user=`+f.user+`$`, 5*time.Second)
			}
		})
	}
}

// TestLogSettingsOff: with log_connections, log_disconnections and
// log_pooler_errors off, none of their lines is written.
func TestLogSettingsOff(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cfg := f.config()
	cfg.LogConnections, cfg.LogDisconnections, cfg.LogPoolerErrors = false, false, false
	cfg.Databases["marker"] = &Database{Host: "/nonexistent", ReservePool: -1}
	_, addr, sink := startLoggedPooler(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := connect(t, f.connString(addr))
	if _, err := c.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
	host, port, _ := net.SplitHostPort(addr)
	if c, err := pgx.Connect(ctx, "postgres://"+f.user+":wrong@"+host+":"+port+"/"+f.db+"?sslmode=disable"); err == nil {
		c.Close(ctx)
		t.Fatal("login with a wrong password succeeded")
	}
	// A line that is always written marks the point after the events above.
	m, err := pgx.Connect(ctx, "postgres://"+f.user+":"+f.password+"@"+host+":"+port+"/marker?sslmode=disable&connect_timeout=5")
	if err == nil {
		m.Exec(ctx, "select 1")
		m.Close(ctx)
	}
	sink.wait(t, `server connect failed`, 10*time.Second)
	for _, phrase := range []string{"login attempt", "closing because", "pooler error", "new connection to server"} {
		if strings.Contains(sink.String(), phrase) {
			t.Errorf("%q logged with its setting off", phrase)
		}
	}
}

// TestLogReservePool: a client served from the reserve pool is logged as by
// PgBouncer, with its prefix.
func TestLogReservePool(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cfg := f.config()
	cfg.DefaultPoolSize = 1
	cfg.ReservePoolSize = 1
	cfg.ReservePoolTimeout = 100 * time.Millisecond
	_, addr, sink := startLoggedPooler(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a := connect(t, f.connString(addr))
	b := connect(t, f.connString(addr))
	txA, err := a.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer txA.Rollback(ctx)
	if strings.Contains(sink.String(), "reserve_pool") {
		t.Fatal("reserve pool logged before it was used")
	}
	if _, err := b.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	sink.wait(t, linePrefix+`WARNING `+clientPrefix(f.db, f.user)+`taking connection from reserve_pool$`, 5*time.Second)
}

// TestLogAutoDatabase: the first client of a database that only the "*" entry covers
// is logged as registering it, once.
func TestLogAutoDatabase(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cfg := f.config()
	delete(cfg.Databases, f.db)
	cfg.Databases["*"] = &Database{Host: f.pg.Host, Port: f.pg.Port, ReservePool: -1}
	_, addr, sink := startLoggedPooler(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := 0; i < 2; i++ {
		c := connect(t, f.connString(addr))
		if _, err := c.Exec(ctx, "select 1"); err != nil {
			t.Fatal(err)
		}
		c.Close(ctx)
	}
	sink.wait(t, linePrefix+`LOG `+clientPrefix(f.db, f.user)+`registered new auto-database: db=`+regexp.QuoteMeta(f.db)+`$`, 5*time.Second)
	sink.wait(t, `closing because: client close request`, 5*time.Second)
	if n := strings.Count(sink.String(), "registered new auto-database"); n != 1 {
		t.Errorf("auto-database registered %d times, want 1", n)
	}
}

// TestLogServerLoginFailed: PostgreSQL refusing the pool's login is logged as
// "server login failed: FATAL <message>".
func TestLogServerLoginFailed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cfg := f.config()
	cfg.Databases[f.db].User = f.user
	cfg.Databases[f.db].Password = "wrong"
	_, addr, sink := startLoggedPooler(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if c, err := pgx.Connect(ctx, f.connString(addr)); err == nil {
		c.Exec(ctx, "select 1")
		c.Close(ctx)
	}
	sink.wait(t, linePrefix+`WARNING server login failed: FATAL password authentication failed for user`, 10*time.Second)
}

// TestLogStatsLine: with a short stats_period the stats line comes every period,
// with the queries run meanwhile counted.
func TestLogStatsLine(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cfg := f.config()
	cfg.StatsPeriod = 200 * time.Millisecond
	_, addr, sink := startLoggedPooler(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sink.wait(t, linePrefix+`LOG stats: 0 xacts/s, 0 queries/s, in 0 B/s, out 0 B/s, xact 0 us, query 0 us, wait 0 us$`, 5*time.Second)
	c := connect(t, f.connString(addr))
	for i := 0; i < 5; i++ {
		if _, err := c.Exec(ctx, "select 1"); err != nil {
			t.Fatal(err)
		}
	}
	sink.wait(t, linePrefix+`LOG stats: [1-9]\d* xacts/s, [1-9]\d* queries/s, in [1-9]\d* B/s, out [1-9]\d* B/s, xact \d+ us, query \d+ us, wait \d+ us$`, 5*time.Second)
}

// TestStatsLine: the averages of the stats line, as PgBouncer computes them.
func TestStatsLine(t *testing.T) {
	old := logTotals{xacts: 10, queries: 20, received: 1000, sent: 2000, xactUS: 100, queryUS: 100, waitUS: 0}
	cur := logTotals{xacts: 30, queries: 60, received: 5000, sent: 10000, xactUS: 2100, queryUS: 4100, waitUS: 500}
	got := statsLine(cur, old, 2*time.Second)
	want := "stats: 10 xacts/s, 20 queries/s, in 2000 B/s, out 4000 B/s, xact 100 us, query 100 us, wait 250 us"
	if got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if got := statsLine(old, old, 0); got != "stats: 0 xacts/s, 0 queries/s, in 0 B/s, out 0 B/s, xact 0 us, query 0 us, wait 0 us" {
		t.Errorf("no activity: %q", got)
	}
}

// TestLogUnixClientPrefix: a client on the unix socket shows as "@unix" in the
// prefix, as in PgBouncer.
func TestLogUnixClientPrefix(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	pl, _, sink := startLoggedPooler(t, f.config())
	dir := serveUnix(t, pl)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, "host="+dir+" port=5432 user="+f.user+" password="+f.password+" dbname="+f.db+" sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
	sink.wait(t, linePrefix+`LOG C-0x[0-9a-f]+: `+regexp.QuoteMeta(f.db+"/"+f.user)+`@unix login attempt: `, 5*time.Second)
}

// TestAdminSetLogSettings: the log settings change from the console, as in PgBouncer,
// and take effect for the next event.
func TestAdminSetLogSettings(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.AdminUsers = []string{f.user}
	_, addr, sink := startLoggedPooler(t, cfg)
	admin := adminConnect(t, (&adminEnv{f: f, addr: addr}).dsn(false, f.user, f.password, "pgbouncer"))
	adminExecOK(t, admin, "SET log_connections = 0")
	before := strings.Count(sink.String(), "login attempt")
	c := connect(t, f.connString(addr))
	c.Close(context.Background())
	if n := strings.Count(sink.String(), "login attempt"); n != before {
		t.Fatalf("log_connections = 0 still logged %d login attempts", n-before)
	}
	adminExecOK(t, admin, "SET log_connections = 1")
	c = connect(t, f.connString(addr))
	c.Close(context.Background())
	sink.wait(t, `login attempt: db=`+f.db, 10*time.Second)
	for _, q := range []string{"SET log_disconnections = 0", "SET log_pooler_errors = 0", "SET log_stats = 0", "SET stats_period = 30"} {
		adminExecOK(t, admin, q)
	}
	_, rows := adminQueryResult(t, admin, "SHOW CONFIG")
	got := map[string]string{}
	for _, r := range rows {
		got[r["key"]] = r["value"] + "/" + r["changeable"]
	}
	for k, want := range map[string]string{"log_disconnections": "0/yes", "log_pooler_errors": "0/yes", "log_stats": "0/yes", "stats_period": "30/yes", "log_connections": "1/yes"} {
		if got[k] != want {
			t.Errorf("SHOW CONFIG %s = %q, want %q", k, got[k], want)
		}
	}
}

// heldLog is a log writer that holds the first "closing because" line until released.
type heldLog struct {
	held    chan struct{} // closed when the line is being written
	release chan struct{}
	once    sync.Once
}

func (h *heldLog) Write(b []byte) (int, error) {
	if strings.Contains(string(b), "closing because") {
		first := false
		h.once.Do(func() { first = true })
		if first {
			close(h.held)
			<-h.release
		}
	}
	return len(b), nil
}

// TestLogClosingBeforeError: a refused client's "closing because" line is written
// before the client hears its error, as PgBouncer does, so that a reader of the log
// who has the client's error finds the line. While the line's write is held, the
// client must not have its error; the negative check waits a bounded time.
func TestLogClosingBeforeError(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	h := &heldLog{held: make(chan struct{}), release: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pl := New(cfg, slog.New(pglog.New(h, nil)))
	served := make(chan error, 1)
	go func() { served <- pl.Serve(ln) }()
	released := false
	t.Cleanup(func() {
		if !released {
			close(h.release)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		pl.Shutdown(ctx)
		<-served
	})
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	refused := make(chan error, 1)
	go func() {
		c, err := pgx.Connect(ctx, "postgres://"+f.user+":wrong@"+host+":"+port+"/"+f.db+"?sslmode=disable")
		if err == nil {
			c.Close(ctx)
		}
		refused <- err
	}()
	select {
	case <-h.held:
	case <-ctx.Done():
		t.Fatal("no closing line logged")
	}
	select {
	case err := <-refused:
		t.Fatalf("the client had its error (%v) before the closing line was written", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(h.release)
	released = true
	if err := <-refused; err == nil {
		t.Fatal("login with a wrong password succeeded")
	}
}

// TestLogAuthQueryNoSuchUser: a user auth_query does not find fails as a wrong
// password does (same SQLSTATE and message, but for the user name), so the caller
// cannot tell it from an existing user; only the log says which it was, in
// PgBouncer's words: "closing because: no such user", where a wrong password of a
// user auth_query found is "closing because: <the error sent>".
func TestLogAuthQueryNoSuchUser(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// For md5 the user's secret in PostgreSQL is an md5 one: with a SCRAM verifier the
	// exchange is SCRAM's whatever auth_type says. The database's password_encryption
	// is md5 too, which the mock exchange of an unknown user follows, as PostgreSQL's.
	md5User := f.user + "_md5"
	f.pg.CreateRoleMD5(t, md5User, f.password)
	for _, authType := range []string{"md5", "scram-sha-256"} {
		t.Run(authType, func(t *testing.T) {
			user := f.user
			if authType == "md5" {
				user = md5User
				f.pg.Exec(t, "ALTER DATABASE "+f.db+" SET password_encryption = 'md5'")
				defer f.pg.Exec(t, "ALTER DATABASE "+f.db+" RESET password_encryption")
			}
			cfg := f.config()
			cfg.AuthType = authType
			cfg.Userlist = map[string]string{f.pg.SuperUser: f.pg.SuperPassword}
			cfg.AuthUser = f.pg.SuperUser // user is found by auth_query only
			_, addr, sink := startLoggedPooler(t, cfg)
			host, port, _ := net.SplitHostPort(addr)
			login := func(user, password string) *pgconn.PgError {
				t.Helper()
				err := tryConnect("postgres://" + user + ":" + password + "@" + host + ":" + port + "/" + f.db + "?sslmode=disable")
				return wantSQLState(t, err, CodeInvalidPassword)
			}
			wrong := login(user, "wrong")
			sink.wait(t, linePrefix+`LOG `+clientPrefix(f.db, user)+`closing because: `+regexp.QuoteMeta(wrong.Message)+` \(age=\d+s\)$`, 5*time.Second)
			ghost := user + "_ghost"
			unknown := login(ghost, "wrong")
			if want := strings.ReplaceAll(wrong.Message, user, ghost); unknown.Message != want || unknown.Severity != wrong.Severity {
				t.Errorf("unknown user told %s %q, a wrong password %s %q", unknown.Severity, unknown.Message, wrong.Severity, wrong.Message)
			}
			// The line is written before the client hears its error.
			line := `LOG ` + clientPrefix(f.db, ghost) + `closing because: no such user \(age=\d+s\)$`
			if !regexp.MustCompile(`(?m)` + line).MatchString(sink.String()) {
				t.Errorf("no %q line in the log", line)
			}
			if strings.Contains(sink.String(), clientPrefix(f.db, user)+"closing because: no such user") {
				t.Errorf("a user auth_query found is logged as no such user")
			}
		})
	}
}
