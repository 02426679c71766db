package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresOptions configures StartPostgres. The zero value is a plain server with
// SCRAM-SHA-256 authentication over TCP and no TLS.
type PostgresOptions struct {
	// MaxConnections is max_connections; 0 means 200.
	MaxConnections int

	// HBAMethod is the pg_hba.conf method for TCP connections from 127.0.0.1 and ::1:
	// "scram-sha-256", "md5", "password" or "trust". Empty means "scram-sha-256".
	// Connections over the unix socket are always trusted.
	HBAMethod string

	// TLS turns ssl on with a freshly generated self-signed certificate (Postgres.Cert).
	// TCP connections may then use TLS or not; pg_hba.conf accepts both.
	TLS bool

	// Conf holds extra postgresql.conf settings, name -> value; values are quoted for
	// the file. They override the defaults written by StartPostgres. The port is given
	// on the command line and cannot be changed here.
	Conf map[string]string
}

// Postgres is a running PostgreSQL 15 server listening on 127.0.0.1 and on a unix socket
// in SocketDir. Its fields must not be changed.
//
// It runs for speed, not durability: fsync, full_page_writes and synchronous_commit are
// off, so after Kill (a crash) the commits of the last few hundred milliseconds are lost
// on Restart unless PostgresOptions.Conf sets synchronous_commit to on.
type Postgres struct {
	Host      string // "127.0.0.1"
	Port      int
	Dir       string // the data directory (PGDATA)
	SocketDir string // holds the unix socket .s.PGSQL.<Port>; also the parent of Dir

	SuperUser     string // "postgres"
	SuperPassword string // generated, stored as SCRAM-SHA-256

	// Cert is the server's certificate when PostgresOptions.TLS is set, else nil.
	Cert *Cert

	// Process is the postmaster; Kill and Freeze act on all the server's processes.
	*Process

	stopOnce sync.Once
}

const postgresLog = "postgres.log"

// StartPostgres initialises a new cluster in a temporary directory and starts PostgreSQL
// on a free port. It is stopped and its files removed in t.Cleanup. It skips (or fails
// under CI=true) if PostgreSQL 15 is not installed.
func StartPostgres(t testing.TB, opts PostgresOptions) *Postgres {
	t.Helper()
	LookPath(t, "initdb")
	LookPath(t, "postgres")
	p, err := startPostgres(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

var sharedPostgres struct {
	once sync.Once
	pg   *Postgres
	err  error
}

// SharedPostgres returns the default PostgreSQL server of this test binary, starting it
// on first use. It is stopped by Main, which TestMain must call. Tests that share it must
// not change its settings, and should create roles and databases with names of their own.
func SharedPostgres(t testing.TB) *Postgres {
	t.Helper()
	LookPath(t, "initdb")
	LookPath(t, "postgres")
	shared.mu.Lock()
	inMain := shared.main
	shared.mu.Unlock()
	if !inMain {
		t.Fatal("testenv: SharedPostgres needs TestMain to call testenv.Main(m)")
	}
	sharedPostgres.once.Do(func() {
		pg, err := startPostgres(PostgresOptions{})
		if err == nil {
			err = registerShared(pg.Stop)
			if err != nil {
				pg.Stop()
			}
		}
		sharedPostgres.pg, sharedPostgres.err = pg, err
	})
	if sharedPostgres.err != nil {
		t.Fatal(sharedPostgres.err)
	}
	return sharedPostgres.pg
}

func startPostgres(opts PostgresOptions) (*Postgres, error) {
	if opts.MaxConnections == 0 {
		opts.MaxConnections = 200
	}
	if opts.HBAMethod == "" {
		opts.HBAMethod = "scram-sha-256"
	}
	switch opts.HBAMethod {
	case "scram-sha-256", "md5", "password", "trust":
	default:
		return nil, fmt.Errorf("testenv: PostgresOptions.HBAMethod %q: want scram-sha-256, md5, password or trust", opts.HBAMethod)
	}
	initdb, err := findBinary("initdb")
	if err != nil {
		return nil, err
	}
	postgres, err := findBinary("postgres")
	if err != nil {
		return nil, err
	}
	o, err := unprivileged()
	if err != nil {
		return nil, err
	}
	base, err := serverDir("pgpool-test-", o)
	if err != nil {
		return nil, err
	}
	p := &Postgres{
		Host:          "127.0.0.1",
		Dir:           filepath.Join(base, "data"),
		SocketDir:     base,
		SuperUser:     "postgres",
		SuperPassword: randomHex(12),
	}
	p.Process = &Process{
		name:    "postgres",
		path:    postgres,
		dir:     base,
		logFile: filepath.Join(base, postgresLog),
		owner:   o,
		env:     []string{"LC_ALL=C", "LANG=C"},
	}
	if err := p.initCluster(initdb, opts, o); err != nil {
		os.RemoveAll(base)
		return nil, err
	}
	err = startWithRetry(func() (bool, error) {
		port, err := freePort()
		if err != nil {
			return false, err
		}
		p.Port = port
		p.Process.args = []string{"-D", p.Dir, "-p", itoa(port)}
		if err := p.Process.start(); err != nil {
			return false, err
		}
		if err := p.waitReady(); err != nil {
			retry := portInUse(p.Process, err)
			p.Process.Kill()
			return retry, startError(p.Process, err)
		}
		return false, nil
	})
	if err != nil {
		os.RemoveAll(base)
		return nil, err
	}
	return p, nil
}

// initCluster runs initdb, then writes pg_hba.conf and the settings.
func (p *Postgres) initCluster(initdb string, opts PostgresOptions, o *owner) error {
	pwfile := filepath.Join(p.SocketDir, "pwfile")
	if err := writeFile(pwfile, []byte(p.SuperPassword+"\n"), 0o600, o); err != nil {
		return err
	}
	defer os.Remove(pwfile)
	ctx, cancel := context.WithTimeout(context.Background(), 2*StartTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, initdb,
		"-D", p.Dir, "-A", "trust", "--auth-local=trust", "-U", p.SuperUser,
		"--pwfile", pwfile, "--no-sync", "--no-instructions", "-E", "UTF8", "--locale=C")
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C")
	cmd.Dir = p.SocketDir
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Credential: o.credential()}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("testenv: initdb: %w\n%s", err, out)
	}

	hba := "# written by testenv\n" +
		"local all all trust\n" +
		"host all all 127.0.0.1/32 " + opts.HBAMethod + "\n" +
		"host all all ::1/128 " + opts.HBAMethod + "\n"
	if err := writeFile(filepath.Join(p.Dir, "pg_hba.conf"), []byte(hba), 0o600, o); err != nil {
		return err
	}

	conf := map[string]string{
		"listen_addresses":        "127.0.0.1",
		"unix_socket_directories": p.SocketDir,
		"max_connections":         itoa(opts.MaxConnections),
		"shared_buffers":          "32MB",
		"huge_pages":              "off",
		"fsync":                   "off",
		"synchronous_commit":      "off",
		"full_page_writes":        "off",
		"logging_collector":       "off", // stderr goes to Process.LogFile
		"log_line_prefix":         "%m [%p] %q%u@%d ",
		"password_encryption":     "scram-sha-256",
	}
	if opts.TLS {
		c, err := newCert(p.SocketDir, o)
		if err != nil {
			return err
		}
		p.Cert = c
		conf["ssl"] = "on"
		conf["ssl_cert_file"] = c.CertFile
		conf["ssl_key_file"] = c.KeyFile
	}
	for k, v := range opts.Conf {
		conf[k] = v
	}
	var b strings.Builder
	b.WriteString("\n# written by testenv\n")
	for _, k := range sortedKeys(conf) {
		fmt.Fprintf(&b, "%s = %s\n", k, quoteLiteral(conf[k]))
	}
	f, err := os.OpenFile(filepath.Join(p.Dir, "postgresql.conf"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("testenv: %w", err)
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return fmt.Errorf("testenv: %w", err)
	}
	return f.Close()
}

// waitReady polls until the server answers a query over TCP.
func (p *Postgres) waitReady() error {
	cs := p.ConnString(p.SuperUser, p.SuperPassword, "postgres") + "&connect_timeout=2"
	return poll(StartTimeout, p.Process, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, cs)
		if err != nil {
			return err
		}
		defer c.Close(ctx)
		var one int
		return c.QueryRow(ctx, "select 1").Scan(&one)
	})
}

// Addr returns "127.0.0.1:<port>".
func (p *Postgres) Addr() string { return net.JoinHostPort(p.Host, itoa(p.Port)) }

// ConnString returns a URL for connecting over TCP without TLS:
// "postgres://user:password@127.0.0.1:port/db?sslmode=disable". An empty password is
// left out.
func (p *Postgres) ConnString(user, password, db string) string {
	return p.ConnStringSSL(user, password, db, "disable")
}

// ConnStringSSL is ConnString with the given sslmode ("disable", "require",
// "verify-full", ...). For the verifying modes it adds sslrootcert=Cert.CertFile.
func (p *Postgres) ConnStringSSL(user, password, db, sslmode string) string {
	u := url.URL{Scheme: "postgres", Host: p.Addr(), Path: "/" + db}
	if password != "" {
		u.User = url.UserPassword(user, password)
	} else {
		u.User = url.User(user)
	}
	q := url.Values{"sslmode": {sslmode}}
	if p.Cert != nil && strings.HasPrefix(sslmode, "verify-") {
		q.Set("sslrootcert", p.Cert.CertFile)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// SuperConnString returns ConnString for the superuser and database db.
func (p *Postgres) SuperConnString(db string) string {
	return p.ConnString(p.SuperUser, p.SuperPassword, db)
}

// Connect opens a pgx connection as the superuser to database "postgres"; it is closed
// in t.Cleanup.
func (p *Postgres) Connect(t testing.TB) *pgx.Conn {
	t.Helper()
	return Connect(t, p.SuperConnString("postgres"))
}

// Connect opens a pgx connection with connString, failing the test on error; the
// connection is closed in t.Cleanup. Connecting gives up after StartTimeout.
func Connect(t testing.TB, connString string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	c, err := pgx.Connect(ctx, connString)
	if err != nil {
		t.Fatalf("testenv: connect %s: %v", redact(connString), err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), StopTimeout)
		defer cancel()
		_ = c.Close(ctx)
	})
	return c
}

// Exec runs sql with args as the superuser in database "postgres" on a new connection,
// failing the test on error. Without args several statements may be given at once.
func (p *Postgres) Exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	if err := p.exec(sql, args...); err != nil {
		t.Fatalf("testenv: %s: %v", sql, err)
	}
}

func (p *Postgres) exec(sql string, args ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	c, err := pgx.Connect(ctx, p.SuperConnString("postgres"))
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, sql, args...)
	return err
}

// CreateRole creates a LOGIN role with password stored as SCRAM-SHA-256 (the server's
// default). An empty password creates a role without one.
func (p *Postgres) CreateRole(t testing.TB, name, password string) {
	t.Helper()
	p.createRole(t, name, password, "scram-sha-256")
}

// CreateRoleMD5 creates a LOGIN role with password stored as an MD5 hash, for testing
// md5 authentication (a SCRAM-stored password cannot be used with md5).
func (p *Postgres) CreateRoleMD5(t testing.TB, name, password string) {
	t.Helper()
	p.createRole(t, name, password, "md5")
}

func (p *Postgres) createRole(t testing.TB, name, password, encryption string) {
	t.Helper()
	sql := "SET password_encryption = " + quoteLiteral(encryption) + "; CREATE ROLE " + quoteIdent(name) + " LOGIN"
	if password != "" {
		sql += " PASSWORD " + quoteLiteral(password)
	}
	if err := p.exec(sql); err != nil {
		t.Fatalf("testenv: create role %s: %v", name, err)
	}
}

// CreateDatabase creates database name owned by owner (the superuser if owner is empty).
func (p *Postgres) CreateDatabase(t testing.TB, name, owner string) {
	t.Helper()
	sql := "CREATE DATABASE " + quoteIdent(name)
	if owner != "" {
		sql += " OWNER " + quoteIdent(owner)
	}
	if err := p.exec(sql); err != nil {
		t.Fatalf("testenv: create database %s: %v", name, err)
	}
}

// Restart starts the server again after Kill (PostgreSQL runs crash recovery) or after
// a stop by other means, and waits until it answers. A running server is killed first.
func (p *Postgres) Restart(t testing.TB) {
	t.Helper()
	if p.Running() {
		p.Kill()
	}
	if err := p.Process.start(); err != nil {
		t.Fatal(err)
	}
	if err := p.waitReady(); err != nil {
		t.Fatal(startError(p.Process, err))
	}
}

// Stop shuts the server down (fast shutdown: SIGINT), kills it if it has not exited
// within StopTimeout, and removes its files. The server cannot be restarted afterwards.
func (p *Postgres) Stop() {
	p.stopOnce.Do(func() {
		p.Process.stop(syscall.SIGINT)
		os.RemoveAll(p.SocketDir)
	})
}

// quoteIdent quotes an SQL identifier.
func quoteIdent(s string) string { return pgx.Identifier{s}.Sanitize() }

// quoteLiteral quotes an SQL string literal (standard_conforming_strings is on), also
// valid as a postgresql.conf value.
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// redact hides the password in a connection URL for messages.
func redact(connString string) string {
	u, err := url.Parse(connString)
	if err != nil || u.User == nil {
		return connString
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
