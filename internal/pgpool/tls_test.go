package pgpool

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/poolsuite/poolsuite/internal/testenv"
	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

// serveUnix makes pl also listen on a unix socket, dir/.s.PGSQL.5432, as
// unix_socket_dir does, and returns dir.
func serveUnix(t *testing.T, pl *Pooler) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgpool-sock-") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ln, err := net.Listen("unix", filepath.Join(dir, ".s.PGSQL.5432"))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		pl.Serve(ln) // ends when ln closes
		close(served)
	}()
	t.Cleanup(func() {
		ln.Close()
		<-served
	})
	return dir
}

// tlsFixtureConfig is f.config() with client_tls_sslmode = mode and the client_tls_*
// files of cert, built as the configuration file's would be.
func tlsFixtureConfig(t *testing.T, f *fixture, mode string, cert *testenv.Cert, caFile string) *Config {
	t.Helper()
	cfg := f.config()
	cfg.ClientTLSMode = mode
	cfg.ClientTLSFiles.KeyFile = cert.KeyFile
	cfg.ClientTLSFiles.CertFile = cert.CertFile
	cfg.ClientTLSFiles.CAFile = caFile
	tc, err := BuildClientTLS(mode, cfg.ClientTLSFiles)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ClientTLS = tc
	return cfg
}

// TestUnixSocketWithoutTLS: with client_tls_sslmode = require, a client on the unix
// socket logs in without TLS and its SSLRequest is answered 'N', as PgBouncer does;
// over TCP a client without TLS is still refused.
func TestUnixSocketWithoutTLS(t *testing.T) {
	f := newFixture(t)
	cert := testenv.SelfSignedCert(t, t.TempDir())
	cfg := tlsFixtureConfig(t, f, "require", cert, "")
	pl, addr := startPooler(t, cfg)
	dir := serveUnix(t, pl)

	unixDSN := fmt.Sprintf("host=%s port=5432 user=%s password=%s dbname=%s sslmode=disable default_query_exec_mode=exec",
		dir, f.user, f.password, f.db)
	if n := queryInt(t, unixDSN, "select 6 * 7"); n != 42 {
		t.Fatalf("unix socket: got %d", n)
	}
	psql := testenv.LookPath(t, "psql")
	cmd := exec.Command(psql, "-X", "-At", "-h", dir, "-p", "5432", "-U", f.user, "-d", f.db, "-c", "select 40 + 2")
	cmd.Env = append(os.Environ(), "PGPASSWORD="+f.password, "PGSSLMODE=prefer", "PGCONNECT_TIMEOUT=10")
	if out, err := cmd.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "42" {
		t.Fatalf("psql over the unix socket: %v\n%s", err, out)
	}

	// A raw SSLRequest on the unix socket: 'N', then a plain login works on.
	conn, err := net.DialTimeout("unix", filepath.Join(dir, ".s.PGSQL.5432"), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	var req [8]byte
	binary.BigEndian.PutUint32(req[:], 8)
	binary.BigEndian.PutUint32(req[4:], wire.SSLRequestCode)
	if _, err := conn.Write(req[:]); err != nil {
		t.Fatal(err)
	}
	var ans [1]byte
	if _, err := io.ReadFull(conn, ans[:]); err != nil || ans[0] != 'N' {
		t.Fatalf("SSLRequest on the unix socket: %q, %v; want 'N'", ans[:], err)
	}

	// TCP without TLS: refused.
	host, port, _ := net.SplitHostPort(addr)
	tcp := fmt.Sprintf("postgres://%s:%s@%s:%s/%s?sslmode=disable", f.user, f.password, host, port, f.db)
	wantSQLState(t, tryConnect(tcp), CodeInvalidAuthorization)
}

// peerCert returns the certificate the pooler presented to c.
func peerCert(t *testing.T, c *pgx.Conn) *x509.Certificate {
	t.Helper()
	tc, ok := c.PgConn().Conn().(*tls.Conn)
	if !ok {
		t.Fatalf("connection is %T, not TLS", c.PgConn().Conn())
	}
	cs := tc.ConnectionState()
	if len(cs.PeerCertificates) == 0 {
		t.Fatal("no peer certificate")
	}
	return cs.PeerCertificates[0]
}

func sameCert(a *x509.Certificate, b *testenv.Cert) bool { return bytes.Equal(a.Raw, b.Leaf.Raw) }

// checkAlive runs a query on c.
func checkAlive(t *testing.T, c *pgx.Conn, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var n int
	if err := c.QueryRow(ctx, "select 7").Scan(&n); err != nil || n != 7 {
		t.Fatalf("%s: %d, %v", what, n, err)
	}
}

// TestSetClientTLSCert changes client_tls_key_file and client_tls_cert_file in the
// admin console, key first as PgBouncer's own tests do: the half-changed pair is
// stored with a notice and the old certificate stays in use; once the pair matches,
// new clients get the new certificate while a client connected before keeps its
// connection. A SET naming an unreadable file or a file without a key fails and
// changes nothing.
func TestSetClientTLSCert(t *testing.T) {
	e := newAdminEnv(t, false)
	f := e.f
	certA := testenv.SelfSignedCert(t, t.TempDir())
	certB := testenv.SelfSignedCert(t, t.TempDir())
	cfg := *e.pl.settings()
	tc := tlsFixtureConfig(t, f, "require", certA, "")
	cfg.ClientTLSMode, cfg.ClientTLSFiles, cfg.ClientTLS = tc.ClientTLSMode, tc.ClientTLSFiles, tc.ClientTLS
	e.pl.Reload(&cfg)
	host, port, _ := net.SplitHostPort(e.addr)
	dsn := fmt.Sprintf("postgres://%s:%s@%s:%s/%s?sslmode=require&default_query_exec_mode=exec", f.user, f.password, host, port, f.db)
	adminDSN := fmt.Sprintf("postgres://%s:%s@%s:%s/pgbouncer?sslmode=require", e.admin, e.adminPassword, host, port)

	old := connect(t, dsn)
	if !sameCert(peerCert(t, old), certA) {
		t.Fatal("first client did not get certificate A")
	}
	var notices []*pgconn.Notice
	admCfg, err := pgx.ParseConfig(adminDSN)
	if err != nil {
		t.Fatal(err)
	}
	admCfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	admCfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { notices = append(notices, n) }
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm, err := pgx.ConnectConfig(ctx, admCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close(context.Background())

	// Unreadable file, a certificate as key, a key as certificate: SET fails.
	for _, q := range []string{
		"SET client_tls_cert_file = '/nonexistent/b.crt'",
		"SET client_tls_key_file = '" + certB.CertFile + "'",
		"SET client_tls_cert_file = '" + certB.KeyFile + "'",
		"SET client_tls_sslmode = 'sometimes'",
	} {
		pe := adminExecErr(t, adm, q)
		if pe.Message != "SET failed" {
			t.Errorf("%s: %q, want SET failed", q, pe.Message)
		}
	}
	_, rows := adminQueryResult(t, adm, "SHOW CONFIG")
	for _, r := range rows {
		switch r["key"] {
		case "client_tls_cert_file":
			if r["value"] != certA.CertFile || r["changeable"] != "yes" {
				t.Errorf("after failed SETs: %v", r)
			}
		case "client_tls_key_file":
			if r["value"] != certA.KeyFile {
				t.Errorf("after failed SETs: %v", r)
			}
		case "client_tls_sslmode":
			if r["value"] != "require" {
				t.Errorf("after failed SETs: %v", r)
			}
		}
	}
	if c := connect(t, dsn); !sameCert(peerCert(t, c), certA) {
		t.Fatal("a failed SET changed the certificate")
	}

	// Key B with certificate A: stored, with PgBouncer's notice; A stays in use.
	adminExecOK(t, adm, "SET client_tls_key_file = '"+certB.KeyFile+"'")
	if len(notices) != 1 || notices[0].Message != "TLS settings could not be applied, still using old configuration" {
		t.Fatalf("notices after a mismatched key: %+v", notices)
	}
	if c := connect(t, dsn); !sameCert(peerCert(t, c), certA) {
		t.Fatal("a mismatched key changed the certificate")
	}
	adminExecOK(t, adm, "SET client_tls_cert_file = '"+certB.CertFile+"'")
	if len(notices) != 1 {
		t.Fatalf("notice on a matching pair: %+v", notices[1:])
	}
	nc := connect(t, dsn)
	if !sameCert(peerCert(t, nc), certB) {
		t.Fatal("a new client did not get certificate B after SET")
	}
	checkAlive(t, nc, "new client")
	checkAlive(t, old, "client connected before the SET")
	if !sameCert(peerCert(t, old), certA) {
		t.Fatal("old client's certificate changed")
	}

	// sslmode: disable lets plain TCP in; require without a key file fails.
	adminExecOK(t, adm, "SET client_tls_sslmode = disable")
	plain := strings.Replace(dsn, "sslmode=require", "sslmode=disable", 1)
	checkAlive(t, connect(t, plain), "plain client after sslmode=disable")
}

// TestReloadClientTLSCert: a Reload with another certificate serves it to new
// clients; a client connected before keeps working.
func TestReloadClientTLSCert(t *testing.T) {
	f := newFixture(t)
	certA := testenv.SelfSignedCert(t, t.TempDir())
	certB := testenv.SelfSignedCert(t, t.TempDir())
	pl, addr := startPooler(t, tlsFixtureConfig(t, f, "require", certA, ""))
	host, port, _ := net.SplitHostPort(addr)
	dsn := fmt.Sprintf("postgres://%s:%s@%s:%s/%s?sslmode=require&default_query_exec_mode=exec", f.user, f.password, host, port, f.db)
	old := connect(t, dsn)
	if !sameCert(peerCert(t, old), certA) {
		t.Fatal("first client did not get certificate A")
	}
	pl.Reload(tlsFixtureConfig(t, f, "require", certB, ""))
	nc := connect(t, dsn)
	if !sameCert(peerCert(t, nc), certB) {
		t.Fatal("a new client did not get certificate B after Reload")
	}
	checkAlive(t, nc, "new client")
	checkAlive(t, old, "client connected before the reload")
}

// TestCertAuth: auth_type = cert logs in a client whose certificate, signed by
// client_tls_ca_file, names the user; a certificate of another user, a client without
// certificate and a client without TLS are refused with 28000 and PgBouncer's words.
func TestCertAuth(t *testing.T) {
	f := newFixture(t)
	ca := testenv.SelfSignedCert(t, t.TempDir())
	certDir := t.TempDir()
	mine := ca.IssueClientCert(t, certDir, f.user)
	other := ca.IssueClientCert(t, certDir, "someone_else")
	stranger := testenv.SelfSignedCert(t, t.TempDir()) // not signed by the CA
	for _, mode := range []string{"verify-full", "require"} {
		t.Run(mode, func(t *testing.T) {
			cfg := tlsFixtureConfig(t, f, mode, ca, ca.CertFile)
			cfg.AuthType = "cert"
			cfg.AdminUsers = []string{f.user}
			_, addr := startPooler(t, cfg)
			host, port, _ := net.SplitHostPort(addr)
			base := fmt.Sprintf("postgres://%s@%s:%s/%s?default_query_exec_mode=exec&sslmode=require", f.user, host, port, f.db)
			withCert := func(c *testenv.Cert) string {
				return base + "&sslcert=" + c.CertFile + "&sslkey=" + c.KeyFile
			}
			// The right certificate: no password needed.
			if n := queryInt(t, withCert(mine), "select 5"); n != 5 {
				t.Fatalf("got %d", n)
			}
			pe := wantSQLState(t, tryConnect(withCert(other)), CodeInvalidAuthorization)
			if pe.Message != "certificate authentication failed" {
				t.Errorf("other user's certificate: %q", pe.Message)
			}
			// Without TLS: refused (SSL required by the mode, before authentication).
			wantSQLState(t, tryConnect(strings.Replace(base, "sslmode=require", "sslmode=disable", 1)), CodeInvalidAuthorization)
			// No client certificate, or one the CA did not sign.
			noCert := tryConnect(base)
			badCA := tryConnect(withCert(stranger))
			if mode == "require" {
				pe := wantSQLState(t, noCert, CodeInvalidAuthorization)
				if pe.Message != "certificate authentication failed" {
					t.Errorf("no certificate: %q", pe.Message)
				}
			} else if noCert == nil {
				t.Error("verify-full: a client without certificate logged in")
			}
			if badCA == nil {
				t.Error("a certificate of another CA logged in")
			}
			// The console, logged in with the admin's certificate, cannot loosen
			// who may log in.
			adm := adminConnect(t, fmt.Sprintf("postgres://%s@%s:%s/pgbouncer?sslmode=require&sslcert=%s&sslkey=%s",
				f.user, host, port, mine.CertFile, mine.KeyFile))
			for _, q := range []string{"SET client_tls_ca_file = '" + stranger.CertFile + "'", "SET client_tls_sslmode = disable"} {
				if pe := adminExecErr(t, adm, q); pe.Message != "SET failed" {
					t.Errorf("%s: %q", q, pe.Message)
				}
			}
		})
	}

	// Over a unix socket there is no TLS, hence no certificate: refused.
	cfg := tlsFixtureConfig(t, f, "verify-full", ca, ca.CertFile)
	cfg.AuthType = "cert"
	pl, _ := startPooler(t, cfg)
	dir := serveUnix(t, pl)
	err := tryConnect(fmt.Sprintf("host=%s port=5432 user=%s dbname=%s sslmode=disable", dir, f.user, f.db))
	if pe := wantSQLState(t, err, CodeInvalidAuthorization); pe.Message != "certificate authentication failed" {
		t.Errorf("unix socket: %q", pe.Message)
	}
}

// TestBuildTLSErrors: the classes of TLS settings that cannot be applied.
func TestBuildTLSErrors(t *testing.T) {
	a := testenv.SelfSignedCert(t, t.TempDir())
	b := testenv.SelfSignedCert(t, t.TempDir())
	for _, tc := range []struct {
		name    string
		mode    string
		files   TLSFiles
		want    error
		setting string
	}{
		{"unknown mode", "sometimes", TLSFiles{}, ErrTLSValue, "client_tls_sslmode"},
		{"no files", "require", TLSFiles{}, ErrTLSIncomplete, "client_tls_sslmode"},
		{"missing cert", "require", TLSFiles{KeyFile: a.KeyFile, CertFile: "/nonexistent.crt"}, ErrTLSFile, "client_tls_cert_file"},
		{"key is a cert", "require", TLSFiles{KeyFile: a.CertFile, CertFile: a.CertFile}, ErrTLSFile, "client_tls_key_file"},
		{"mismatch", "require", TLSFiles{KeyFile: b.KeyFile, CertFile: a.CertFile}, ErrTLSIncomplete, "client_tls_key_file"},
		{"verify-ca without CA", "verify-ca", TLSFiles{KeyFile: a.KeyFile, CertFile: a.CertFile}, ErrTLSIncomplete, "client_tls_sslmode"},
		{"bad protocol", "require", TLSFiles{KeyFile: a.KeyFile, CertFile: a.CertFile, Protocols: "sslv3"}, ErrTLSValue, "client_tls_protocols"},
		{"CA is a key", "require", TLSFiles{KeyFile: a.KeyFile, CertFile: a.CertFile, CAFile: a.KeyFile}, ErrTLSFile, "client_tls_ca_file"},
	} {
		_, err := BuildClientTLS(tc.mode, tc.files)
		var te *TLSError
		if !errors.Is(err, tc.want) || !errors.As(err, &te) || te.Setting != tc.setting {
			t.Errorf("%s: got %v, want %v on %s", tc.name, err, tc.want, tc.setting)
		}
	}
	if cfg, err := BuildClientTLS("disable", TLSFiles{KeyFile: "/nonexistent"}); cfg != nil || err != nil {
		t.Errorf("disable: %v, %v", cfg, err)
	}
	if cfg, err := BuildClientTLS("verify-full", TLSFiles{KeyFile: a.KeyFile, CertFile: a.CertFile, CAFile: b.CertFile}); err != nil || cfg.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Errorf("verify-full: %v", err)
	}
	if _, err := BuildServerTLS("require", TLSFiles{CertFile: a.CertFile}); !errors.Is(err, ErrTLSIncomplete) {
		t.Errorf("server cert without key: %v", err)
	}
}

// FuzzTLSVersions: any *_tls_protocols value either fails with ErrTLSValue or gives
// a version range within TLS 1.0 ... 1.3.
func FuzzTLSVersions(f *testing.F) {
	for _, s := range []string{"secure", "all", "legacy", "default", "tlsv1.2,tlsv1.3", "+tlsv1.0:tlsv1.1", "sslv3", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		var cfg tls.Config
		err := tlsVersions(&cfg, "client_tls_protocols", v)
		if err != nil {
			if !errors.Is(err, ErrTLSValue) {
				t.Fatalf("%q: %v", v, err)
			}
			return
		}
		if cfg.MinVersion < tls.VersionTLS10 || cfg.MaxVersion > tls.VersionTLS13 || cfg.MinVersion > cfg.MaxVersion {
			t.Fatalf("%q: range %x-%x", v, cfg.MinVersion, cfg.MaxVersion)
		}
	})
}
