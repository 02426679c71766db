package testenv_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/poolsuite/poolsuite/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestLookPath(t *testing.T) {
	t.Parallel()
	p := testenv.LookPath(t, "postgres")
	if filepath.Dir(p) != testenv.PostgresBinDir {
		t.Errorf("LookPath(postgres) = %s, want it in %s", p, testenv.PostgresBinDir)
	}
	if p := testenv.LookPath(t, "pgbouncer"); !filepath.IsAbs(p) {
		t.Errorf("LookPath(pgbouncer) = %q, want an absolute path", p)
	}
}

func TestFreePortAndWaitTCP(t *testing.T) {
	t.Parallel()
	port := testenv.FreePort(t)
	if port <= 0 || port > 65535 {
		t.Fatalf("FreePort = %d", port)
	}
	// Below the ephemeral range, where no connection's local port can take it.
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if low, _ := strconv.Atoi(f[0]); low > 11000 && port >= low {
				t.Fatalf("FreePort = %d, inside the ephemeral range from %d", port, low)
			}
		}
	}
	for range 50 { // distinct within the process
		if p := testenv.FreePort(t); p == port {
			t.Fatalf("FreePort returned %d twice", p)
		}
	}
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("port %d from FreePort is not free: %v", port, err)
	}
	defer l.Close()
	testenv.WaitTCP(t, l.Addr().String(), 5*time.Second)
}

func queryInt(t *testing.T, connString, sql string) int {
	t.Helper()
	c := testenv.Connect(t, connString)
	var n int
	if err := c.QueryRow(ctx(t), sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func TestSharedPostgresSCRAM(t *testing.T) {
	t.Parallel()
	pg := testenv.SharedPostgres(t)
	if again := testenv.SharedPostgres(t); again != pg {
		t.Fatal("SharedPostgres returned a second instance")
	}
	user, db := testenv.UniqueName("scram_user"), testenv.UniqueName("scram_db")
	pg.CreateRole(t, user, "s3cret'pw")
	pg.CreateDatabase(t, db, user)

	if n := queryInt(t, pg.ConnString(user, "s3cret'pw", db), "select 1"); n != 1 {
		t.Fatalf("select 1 = %d", n)
	}
	c := pg.Connect(t)
	var stored string
	if err := c.QueryRow(ctx(t), "select rolpassword from pg_authid where rolname = $1", user).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stored, "SCRAM-SHA-256$") {
		t.Errorf("stored password %q, want SCRAM-SHA-256", stored)
	}
	_, err := pgx.Connect(ctx(t), pg.ConnString(user, "wrong", db))
	if err == nil {
		t.Fatal("connected with a wrong password")
	}
}

func TestPostgresMD5(t *testing.T) {
	t.Parallel()
	pg := testenv.StartPostgres(t, testenv.PostgresOptions{
		HBAMethod:      "md5",
		MaxConnections: 20,
		// With the default synchronous_commit=off a crash loses the last commits.
		Conf: map[string]string{"synchronous_commit": "on"},
	})
	pg.CreateRoleMD5(t, "md5_user", "pw")
	pg.Exec(t, "create table t (n int); insert into t values (7)")
	pg.Exec(t, "grant select on t to md5_user")
	cs := pg.ConnString("md5_user", "pw", "postgres")
	if n := queryInt(t, cs, "select n from t"); n != 7 {
		t.Fatalf("select n = %d", n)
	}
	if n := queryInt(t, pg.SuperConnString("postgres"), "select count(*) from pg_authid where rolname = 'md5_user' and rolpassword like 'md5%'"); n != 1 {
		t.Errorf("md5_user's password is not stored as md5")
	}
	if n := queryInt(t, pg.SuperConnString("postgres"), "select setting::int from pg_settings where name = 'max_connections'"); n != 20 {
		t.Errorf("max_connections = %d, want 20", n)
	}

	// Crash and restart: the table survives crash recovery.
	pid := pg.PID()
	pg.Kill()
	if pg.Running() {
		t.Fatal("running after Kill")
	}
	if _, err := pgx.Connect(ctx(t), cs+"&connect_timeout=2"); err == nil {
		t.Fatal("connected after Kill")
	}
	pg.Restart(t)
	if pg.PID() == pid {
		t.Error("same pid after Restart")
	}
	if n := queryInt(t, cs, "select n from t"); n != 7 {
		t.Fatalf("after restart: select n = %d", n)
	}
}

func TestPostgresTLS(t *testing.T) {
	t.Parallel()
	pg := testenv.StartPostgres(t, testenv.PostgresOptions{TLS: true, Conf: map[string]string{"application_name": "x"}})
	if pg.Cert == nil {
		t.Fatal("no Cert with TLS on")
	}
	cs := pg.ConnStringSSL(pg.SuperUser, pg.SuperPassword, "postgres", "verify-full")
	c := testenv.Connect(t, cs)
	var ssl bool
	if err := c.QueryRow(ctx(t), "select ssl from pg_stat_ssl where pid = pg_backend_pid()").Scan(&ssl); err != nil {
		t.Fatal(err)
	}
	if !ssl {
		t.Fatal("connection is not using TLS")
	}
	if n := queryInt(t, pg.ConnString(pg.SuperUser, pg.SuperPassword, "postgres"), "select 1"); n != 1 {
		t.Fatal("plain connection failed")
	}
	// The unix socket works too (trusted).
	sock := filepath.Join(pg.SocketDir, fmt.Sprintf(".s.PGSQL.%d", pg.Port))
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("socket: %v", err)
	}
	if n := queryInt(t, fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres", pg.SocketDir, pg.Port), "select 1"); n != 1 {
		t.Fatal("unix socket connection failed")
	}
}

func TestPgBouncer(t *testing.T) {
	t.Parallel()
	pg := testenv.SharedPostgres(t)
	user, db := testenv.UniqueName("bouncer_user"), testenv.UniqueName("bouncer_db")
	pg.CreateRole(t, user, "bpw")
	pg.CreateDatabase(t, db, user)
	b := testenv.StartPgBouncer(t, testenv.PgBouncerOptions{
		Databases: map[string]string{"app": pg.PgBouncerDB(db)},
		Settings: map[string]string{
			"pool_mode":         "transaction",
			"auth_type":         "scram-sha-256",
			"default_pool_size": "2",
		},
		Userlist: fmt.Sprintf("%q %q\n", user, "bpw"),
		TLS:      true,
	})
	c := testenv.Connect(t, b.ConnString(user, "bpw", "app"))
	var gotDB, gotUser string
	if err := c.QueryRow(ctx(t), "select current_database(), current_user").Scan(&gotDB, &gotUser); err != nil {
		t.Fatal(err)
	}
	if gotDB != db || gotUser != user {
		t.Fatalf("through pgbouncer: db %q user %q, want %q %q", gotDB, gotUser, db, user)
	}
	tlsURL := strings.Replace(b.ConnString(user, "bpw", "app"), "sslmode=disable", "sslmode=verify-full&sslrootcert="+b.Cert.CertFile, 1)
	if n := queryInt(t, tlsURL, "select 1"); n != 1 {
		t.Fatal("select 1 over TLS through pgbouncer failed")
	}
	if _, err := pgx.Connect(ctx(t), b.ConnString(user, "nope", "app")); err == nil {
		t.Fatal("pgbouncer accepted a wrong password")
	}
}

// resp sends a RESP command on c and returns the first reply line.
func resp(t *testing.T, c net.Conn, r *bufio.Reader, args ...string) (string, error) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	line, err := r.ReadString('\n')
	return strings.TrimRight(line, "\r\n"), err
}

func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

func TestRedisFaults(t *testing.T) {
	t.Parallel()
	rs := testenv.StartRedis(t, testenv.RedisOptions{Args: []string{"--requirepass", "pw"}})
	c, r := dial(t, rs.Addr())
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if line, err := resp(t, c, r, "PING"); err != nil || !strings.HasPrefix(line, "-NOAUTH") {
		t.Fatalf("PING before AUTH = %q, %v", line, err)
	}
	if line, err := resp(t, c, r, "AUTH", "pw"); err != nil || line != "+OK" {
		t.Fatalf("AUTH = %q, %v", line, err)
	}

	rs.Freeze()
	c.SetDeadline(time.Now().Add(200 * time.Millisecond))
	_, err := resp(t, c, r, "PING")
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("PING to a frozen redis: %v, want a timeout", err)
	}
	rs.Thaw()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if line, err := r.ReadString('\n'); err != nil || line != "+PONG\r\n" {
		t.Fatalf("reply after Thaw = %q, %v", line, err)
	}

	rs.Kill()
	if _, err := resp(t, c, r, "PING"); err == nil {
		t.Fatal("PING answered after Kill")
	}
	rs.Restart(t)
	c2, r2 := dial(t, rs.Addr())
	c2.SetDeadline(time.Now().Add(5 * time.Second))
	if line, err := resp(t, c2, r2, "AUTH", "pw"); err != nil || line != "+OK" {
		t.Fatalf("AUTH after Restart = %q, %v", line, err)
	}
}

func TestMemcached(t *testing.T) {
	t.Parallel()
	m := testenv.StartMemcached(t, "-m", "16")
	c, r := dial(t, m.Addr())
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "version\r\n")
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "VERSION 1.") {
		t.Fatalf("version = %q, %v", line, err)
	}
	m.Freeze()
	c.SetDeadline(time.Now().Add(200 * time.Millisecond))
	fmt.Fprintf(c, "version\r\n")
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatal("frozen memcached answered")
	}
	m.Thaw()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "VERSION ") {
		t.Fatalf("after Thaw = %q, %v", line, err)
	}
	m.Kill()
	m.Restart(t)
	c2, r2 := dial(t, m.Addr())
	c2.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c2, "version\r\n")
	if line, err := r2.ReadString('\n'); err != nil || !strings.HasPrefix(line, "VERSION ") {
		t.Fatalf("after Restart = %q, %v", line, err)
	}
}

func TestNutcracker(t *testing.T) {
	t.Parallel()
	rs := testenv.StartRedis(t, testenv.RedisOptions{})
	listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	yml := fmt.Sprintf(`alpha:
  listen: %s
  hash: fnv1a_64
  distribution: ketama
  redis: true
  server_retry_timeout: 2000
  server_failure_limit: 1
  servers:
   - %s:1
`, listen, rs.Addr())
	n := testenv.StartNutcracker(t, yml, listen)

	c, r := dial(t, listen)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if line, err := resp(t, c, r, "SET", "k", "hello"); err != nil || line != "+OK" {
		t.Fatalf("SET = %q, %v", line, err)
	}
	if line, err := resp(t, c, r, "GET", "k"); err != nil || line != "$5" {
		t.Fatalf("GET = %q, %v", line, err)
	}
	if line, _ := r.ReadString('\n'); line != "hello\r\n" {
		t.Fatalf("GET value = %q", line)
	}
	// The value really is in the redis behind nutcracker.
	c2, r2 := dial(t, rs.Addr())
	c2.SetDeadline(time.Now().Add(5 * time.Second))
	if line, err := resp(t, c2, r2, "STRLEN", "k"); err != nil || line != ":5" {
		t.Fatalf("STRLEN on redis = %q, %v", line, err)
	}
	if s := n.Stats(t); s["service"] != "nutcracker" || s["alpha"] == nil {
		t.Fatalf("stats = %v", s)
	}
}

func TestSelfSignedCert(t *testing.T) {
	t.Parallel()
	cert := testenv.SelfSignedCert(t, t.TempDir())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = tls.Server(c, cert.TLSConfig()).Handshake()
	}()
	c, err := tls.Dial("tcp", l.Addr().String(), cert.ClientTLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// fakeTB records Skip and Fatal and ends the goroutine as testing does.
type fakeTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skip(args ...any) {
	f.skipped, f.msg = true, fmt.Sprint(args...)
	runtime.Goexit()
}
func (f *fakeTB) Fatal(args ...any) {
	f.failed, f.msg = true, fmt.Sprint(args...)
	runtime.Goexit()
}

func TestLookPathMissing(t *testing.T) {
	for _, ci := range []string{"", "true"} {
		t.Run("CI="+ci, func(t *testing.T) {
			t.Setenv("CI", ci)
			f := &fakeTB{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				testenv.LookPath(f, "redis-server-missing")
			}()
			<-done
			if f.failed != (ci == "true") || f.skipped == (ci == "true") {
				t.Fatalf("CI=%q: failed=%v skipped=%v", ci, f.failed, f.skipped)
			}
			if !strings.Contains(f.msg, "scripts/setup.sh") {
				t.Errorf("message %q does not mention scripts/setup.sh", f.msg)
			}
		})
	}
}
