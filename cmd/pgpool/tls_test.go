package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/poolsuite/poolsuite/internal/pgpool"
	"github.com/poolsuite/poolsuite/internal/testenv"
)

// TestMapTLSAndCertAuth: auth_type = cert and the client_tls_* files map onto the
// pooler's configuration; a key that is not the certificate's is an error at
// client_tls_key_file.
func TestMapTLSAndCertAuth(t *testing.T) {
	dir := t.TempDir()
	ca := testenv.SelfSignedCert(t, t.TempDir())
	other := testenv.SelfSignedCert(t, t.TempDir())
	ini := filepath.Join(dir, "p.ini")
	body := func(key string) string {
		return fmt.Sprintf("[databases]\n* = host=127.0.0.1\n[pgbouncer]\nauth_type = cert\n"+
			"client_tls_sslmode = verify-full\nclient_tls_key_file = %s\nclient_tls_cert_file = %s\n"+
			"client_tls_ca_file = %s\nclient_tls_protocols = tlsv1.3\n", key, ca.CertFile, ca.CertFile)
	}
	os.WriteFile(ini, []byte(body(ca.KeyFile)), 0o644)
	rc, _, err := loadConfig(ini)
	if err != nil {
		t.Fatal(err)
	}
	pc := rc.Pooler
	want := pgpool.TLSFiles{KeyFile: ca.KeyFile, CertFile: ca.CertFile, CAFile: ca.CertFile, Protocols: "tlsv1.3", Ciphers: "fast"}
	if pc.AuthType != "cert" || pc.ClientTLSMode != "verify-full" || pc.ClientTLSFiles != want {
		t.Errorf("got %q %q %+v", pc.AuthType, pc.ClientTLSMode, pc.ClientTLSFiles)
	}
	if pc.ClientTLS == nil || pc.ClientTLS.ClientAuth != tls.RequireAndVerifyClientCert || pc.ClientTLS.MinVersion != tls.VersionTLS13 {
		t.Errorf("client TLS: %+v", pc.ClientTLS)
	}
	os.WriteFile(ini, []byte(body(other.KeyFile)), 0o644)
	_, _, err = loadConfig(ini)
	var se *SettingError
	if !errors.Is(err, ErrTLS) || !errors.As(err, &se) || se.Key != "client_tls_key_file" || !strings.Contains(se.Pos, "p.ini:6") {
		t.Errorf("mismatched key: %v", err)
	}
}

// tlsDSN is a pgx DSN over TLS to pgpool.
func (f *fixture) tlsDSN() string {
	return fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=require", f.user, f.password, f.port, f.db)
}

// servedCert connects over TLS and returns the certificate pgpool presented; the
// connection stays open until the test ends.
func servedCert(t *testing.T, dsn string) (*pgx.Conn, []byte) {
	t.Helper()
	c := testenv.Connect(t, dsn)
	tc, ok := c.PgConn().Conn().(*tls.Conn)
	if !ok || len(tc.ConnectionState().PeerCertificates) == 0 {
		t.Fatalf("connection is %T without a peer certificate", c.PgConn().Conn())
	}
	return c, tc.ConnectionState().PeerCertificates[0].Raw
}

// TestReloadClientTLSCert changes client_tls_key_file and client_tls_cert_file in
// pgbouncer.ini, then SIGHUP, then the console's RELOAD: new clients get the new
// certificate each time, a client connected before keeps working.
func TestReloadClientTLSCert(t *testing.T) {
	f := newFixture(t)
	certA := testenv.SelfSignedCert(t, t.TempDir())
	certB := testenv.SelfSignedCert(t, t.TempDir())
	tlsLines := func(c *testenv.Cert) []string {
		return []string{"client_tls_sslmode = require", "client_tls_key_file = " + c.KeyFile, "client_tls_cert_file = " + c.CertFile}
	}
	ini := f.writeConfig(t, "", tlsLines(certA)...)
	p := f.startPgpool(t, ini)
	old, raw := servedCert(t, f.tlsDSN())
	if !bytes.Equal(raw, certA.Leaf.Raw) {
		t.Fatal("first client did not get certificate A")
	}

	f.writeConfig(t, "", tlsLines(certB)...)
	p.cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, 10*time.Second, "the reload in the log", func() bool {
		return strings.Contains(f.logText(), "configuration reloaded")
	})
	if _, raw := servedCert(t, f.tlsDSN()); !bytes.Equal(raw, certB.Leaf.Raw) {
		t.Fatal("a new client did not get certificate B after SIGHUP")
	}

	f.writeConfig(t, "", tlsLines(certA)...)
	acfg, err := pgx.ParseConfig(fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/pgbouncer?sslmode=require", f.user, f.password, f.port))
	if err != nil {
		t.Fatal(err)
	}
	acfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	ctx := ctxT(t, 30*time.Second)
	adm, err := pgx.ConnectConfig(ctx, acfg)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close(context.Background())
	if _, err := adm.Exec(ctx, "RELOAD"); err != nil {
		t.Fatal(err)
	}
	if _, raw := servedCert(t, f.tlsDSN()); !bytes.Equal(raw, certA.Leaf.Raw) {
		t.Fatal("a new client did not get certificate A after RELOAD")
	}
	var n int
	if err := old.QueryRow(ctx, "select 8").Scan(&n); err != nil || n != 8 {
		t.Fatalf("client connected before the reloads: %d, %v", n, err)
	}
}

// TestCertAuthPsql runs pgpool with auth_type = cert and client_tls_sslmode =
// verify-full: psql with a certificate naming the user logs in without a password;
// with another user's certificate it is refused in PgBouncer's words.
func TestCertAuthPsql(t *testing.T) {
	f := newFixture(t)
	ca := testenv.SelfSignedCert(t, t.TempDir())
	certDir := t.TempDir()
	mine := ca.IssueClientCert(t, certDir, f.user)
	other := ca.IssueClientCert(t, certDir, "not_"+f.user)
	ini := f.writeConfig(t, "", "auth_type = cert", "client_tls_sslmode = verify-full",
		"client_tls_key_file = "+ca.KeyFile, "client_tls_cert_file = "+ca.CertFile, "client_tls_ca_file = "+ca.CertFile)
	f.startPgpool(t, ini)
	psql := testenv.LookPath(t, "psql")
	run := func(c *testenv.Cert) (string, error) {
		conn := fmt.Sprintf("host=localhost port=%d user=%s dbname=%s sslmode=verify-full sslrootcert=%s sslcert=%s sslkey=%s",
			f.port, f.user, f.db, ca.CertFile, c.CertFile, c.KeyFile)
		cmd := exec.Command(psql, "-X", "-At", "-w", "-d", conn, "-c", "select current_user, 6 * 7")
		cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=10", "PGPASSWORD=")
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	if out, err := run(mine); err != nil || out != f.user+"|42" {
		t.Fatalf("own certificate: %v\n%s", err, out)
	}
	out, err := run(other)
	if err == nil || !strings.Contains(out, "certificate authentication failed") {
		t.Fatalf("another user's certificate: %v\n%s", err, out)
	}
}
