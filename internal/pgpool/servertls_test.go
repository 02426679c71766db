package pgpool

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/poolsuite/poolsuite/internal/testenv"
)

// serverTLSFixture is a fixture on a PostgreSQL of its own with ssl on (pg_hba takes
// TCP with and without TLS), a pooler with an admin user, and its log.
func serverTLSFixture(t *testing.T, poolMode PoolMode, mode string, retry time.Duration) (*fixture, string, *syncBuffer, *pgx.Conn) {
	t.Helper()
	pg := testenv.StartPostgres(t, testenv.PostgresOptions{TLS: true})
	f := &fixture{pg: pg, db: "appdb", user: "app", password: "tls-secret"}
	pg.CreateRole(t, f.user, f.password)
	pg.CreateDatabase(t, f.db, f.user)
	cfg := f.config()
	cfg.PoolMode = poolMode
	cfg.ServerTLSMode = mode
	cfg.ServerLoginRetry = retry
	cfg.AdminUsers = []string{"adm"}
	cfg.Userlist["adm"] = "adm-secret"
	_, addr, log := startPoolerLog(t, cfg)
	host, port, _ := net.SplitHostPort(addr)
	adm := adminConnect(t, fmt.Sprintf("postgres://adm:adm-secret@%s:%s/pgbouncer?sslmode=disable", host, port))
	return f, addr, log, adm
}

// backendTLS returns the pid of c's server connection and whether it uses TLS.
func backendTLS(t *testing.T, c *pgx.Conn) (uint32, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var pid uint32
	var ssl bool
	if err := c.QueryRow(ctx, "select pid, ssl from pg_stat_ssl where pid = pg_backend_pid()").Scan(&pid, &ssl); err != nil {
		t.Fatal(err)
	}
	return pid, ssl
}

// TestSetServerTLSMode: the console's SET server_tls_sslmode applies to the next
// server connection; an idle server connection opened under the old mode is closed at
// once, one a client uses inside a transaction when that transaction ends, and the
// client carries on over TLS (transaction pooling).
func TestSetServerTLSMode(t *testing.T) {
	f, addr, log, adm := serverTLSFixture(t, PoolTransaction, "disable", time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	su := connect(t, f.pg.SuperConnString(f.db))
	busy := connect(t, f.connString(addr))
	if _, err := busy.Exec(ctx, "begin"); err != nil {
		t.Fatal(err)
	}
	busyPid, ssl := backendTLS(t, busy)
	if ssl {
		t.Fatal("server_tls_sslmode=disable: server connection uses TLS")
	}
	// Another client's query leaves a second server connection idle in the pool.
	other := connect(t, f.connString(addr))
	idlePid, _ := backendTLS(t, other)
	if idlePid == busyPid {
		t.Fatal("two clients on one server connection")
	}
	adminExecOK(t, adm, "SET server_tls_sslmode = require")
	waitFor(t, "the idle plain server connection to close", 10*time.Second, func() bool { return !backendAlive(ctx, t, su, idlePid) })
	if !strings.Contains(log.String(), "closing because: "+reasonConfigChanged) {
		t.Errorf("no %q line in the log:\n%s", reasonConfigChanged, log.String())
	}
	// Inside its transaction the busy client keeps its server connection.
	if pid, ssl := backendTLS(t, busy); pid != busyPid || ssl {
		t.Fatalf("in a transaction: pid %d ssl %v, want %d without TLS", pid, ssl, busyPid)
	}
	if _, err := busy.Exec(ctx, "commit"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the used plain server connection to close after its transaction", 10*time.Second, func() bool { return !backendAlive(ctx, t, su, busyPid) })
	if _, ssl := backendTLS(t, busy); !ssl {
		t.Fatal("after SET server_tls_sslmode = require: server connection without TLS")
	}
	adminExecOK(t, adm, "SET server_tls_sslmode = disable")
	if _, ssl := backendTLS(t, other); ssl {
		t.Fatal("after SET server_tls_sslmode = disable: server connection uses TLS")
	}
}

// TestSetServerTLSVerify: with verify-full and a CA that did not sign PostgreSQL's
// certificate, server connects fail with "certificate verify failed" in the log while
// the client waits; setting the right CA lets the waiting client in at once, without
// waiting out server_login_retry.
func TestSetServerTLSVerify(t *testing.T) {
	f, addr, log, adm := serverTLSFixture(t, PoolSession, "disable", time.Minute)
	stranger := testenv.SelfSignedCert(t, t.TempDir())
	adminExecOK(t, adm, "SET server_tls_sslmode = 'verify-full'")
	adminExecOK(t, adm, "SET server_tls_ca_file = '"+stranger.CertFile+"'")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A client waits for a server connection that cannot be verified.
	type result struct {
		c   *pgx.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := pgx.Connect(ctx, f.connString(addr)+"&connect_timeout=20")
		done <- result{c, err}
	}()
	waitFor(t, "the certificate verify failure in the log", 10*time.Second, func() bool {
		return strings.Contains(log.String(), "certificate verify failed")
	})
	// server_login_retry is a minute: the client only gets in within the test's time
	// because the new settings start a fresh attempt.
	adminExecOK(t, adm, "SET server_tls_ca_file = '"+f.pg.Cert.CertFile+"'")
	var r result
	select {
	case r = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the waiting client was not served after the CA was corrected")
	}
	if r.err != nil {
		t.Fatalf("connect after the CA was corrected: %v\n%s", r.err, log.String())
	}
	defer r.c.Close(ctx)
	if _, ssl := backendTLS(t, r.c); !ssl {
		t.Fatal("verify-full: server connection without TLS")
	}
}

// TestSetServerTLSClientCert: a key set before its certificate is kept until the
// certificate completes the pair; PostgreSQL then sees the client certificate.
func TestSetServerTLSClientCert(t *testing.T) {
	f, addr, _, adm := serverTLSFixture(t, PoolSession, "disable", time.Second)
	client := f.pg.Cert.IssueClientCert(t, t.TempDir(), "bouncer")
	// PostgreSQL asks for client certificates once it has a CA to check them with.
	f.pg.Exec(t, "alter system set ssl_ca_file = '"+f.pg.Cert.CertFile+"'")
	f.pg.Exec(t, "select pg_reload_conf()")
	waitFor(t, "PostgreSQL to load ssl_ca_file", 10*time.Second, func() bool {
		return queryString(t, f.pg.SuperConnString(f.db), "show ssl_ca_file") == f.pg.Cert.CertFile
	})
	adminExecOK(t, adm, "SET server_tls_sslmode = 'verify-full'")
	adminExecOK(t, adm, "SET server_tls_ca_file = '"+f.pg.Cert.CertFile+"'")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// The key alone is stored (a warning), not applied.
	_, _ = adm.PgConn().Exec(ctx, "SET server_tls_key_file = '"+client.KeyFile+"'").ReadAll()
	adminExecOK(t, adm, "SET server_tls_cert_file = '"+client.CertFile+"'")
	c := connect(t, f.connString(addr))
	var cn string
	if err := c.QueryRow(ctx, "select coalesce(client_dn, '') from pg_stat_ssl where pid = pg_backend_pid()").Scan(&cn); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cn, "CN=bouncer") {
		t.Fatalf("PostgreSQL saw client certificate %q, want CN=bouncer", cn)
	}
}

// queryString runs sql on a new connection to dsn and returns its text result.
func queryString(t *testing.T, dsn, sql string) string {
	t.Helper()
	c := connect(t, dsn)
	defer c.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var v string
	if err := c.QueryRow(ctx, sql).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// cnOnlyCert is a certificate naming its host only in the Common Name.
func cnOnlyCert(t *testing.T, cn string, dns ...string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, DNSNames: dns,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestVerifyHostname: verify-full accepts a certificate naming its host only in the
// Common Name, as libpq does, and checks subjectAltNames alone when there are some.
func TestVerifyHostname(t *testing.T) {
	for _, tc := range []struct {
		cn   string
		dns  []string
		host string
		ok   bool
	}{
		{"localhost", nil, "localhost", true},
		{"LocalHost", nil, "localhost", true},
		{"localhost", nil, "otherhost", false},
		{"*.example.com", nil, "db.example.com", true},
		{"*.example.com", nil, "a.db.example.com", false},
		{"*.example.com", nil, "example.com", false},
		{"", nil, "localhost", false},
		{"localhost", []string{"db.example.com"}, "localhost", false},
		{"other", []string{"localhost"}, "localhost", true},
	} {
		err := verifyHostname(cnOnlyCert(t, tc.cn, tc.dns...), tc.host)
		if (err == nil) != tc.ok {
			t.Errorf("cn %q dns %v host %q: err %v, want ok=%v", tc.cn, tc.dns, tc.host, err, tc.ok)
		}
		if err != nil && len(tc.dns) == 0 && !errors.Is(err, errHostMismatch) {
			t.Errorf("cn %q host %q: %v is not errHostMismatch", tc.cn, tc.host, err)
		}
	}
}

// FuzzCNMatches: the Common Name matcher never panics, and a name always matches
// itself.
func FuzzCNMatches(f *testing.F) {
	for _, s := range [][2]string{{"localhost", "localhost"}, {"*.example.com", "db.example.com"}, {"*.", "a."}, {"*", ""}, {".", "."}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, cn, host string) {
		cnMatches(cn, host)
		h := strings.ToLower(strings.TrimSuffix(host, "."))
		if h != "" && !strings.HasPrefix(h, "*.") && !cnMatches(host, host) {
			t.Errorf("%q does not match itself", host)
		}
	})
}
