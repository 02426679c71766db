package pgpool

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/poolsuite/poolsuite/internal/testenv"
	"github.com/poolsuite/poolsuite/protocol/postgres/auth"
)

func queryInt(t *testing.T, dsn, sql string) int {
	t.Helper()
	c := connect(t, dsn)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var n int
	if err := c.QueryRow(ctx, sql).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestClientAuthMethods logs clients in with each auth_type and each kind of secret
// in the auth_file, and with auth_query.
func TestClientAuthMethods(t *testing.T) {
	f := newFixture(t)
	md5 := auth.NewMD5Secret(f.user, f.password).Text()
	scram, err := auth.NewSCRAMSecret(f.password)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		authType, secret string
	}{
		{"scram-sha-256", f.password},
		{"scram-sha-256", scram.Text()},
		{"md5", f.password},
		{"md5", md5},
		{"md5", scram.Text()}, // PgBouncer switches to SCRAM for SCRAM secrets
		{"plain", f.password},
		{"plain", md5},
		{"trust", f.password},
	}
	for _, tc := range cases {
		kind := auth.ParseSecret(tc.secret).Kind
		t.Run(fmt.Sprintf("%s/%s", tc.authType, kind), func(t *testing.T) {
			cfg := f.config()
			cfg.AuthType = tc.authType
			cfg.Userlist = map[string]string{f.user: tc.secret}
			// The pool logs in to PostgreSQL with the database entry's password.
			cfg.Databases[f.db].Password = f.password
			_, addr := startPooler(t, cfg)
			if n := queryInt(t, f.connString(addr), "select 1"); n != 1 {
				t.Fatal(n)
			}
			if tc.authType != "trust" {
				host, port, _ := net.SplitHostPort(addr)
				bad := fmt.Sprintf("postgres://%s:nope@%s:%s/%s?sslmode=disable", f.user, host, port, f.db)
				wantSQLState(t, tryConnect(bad), CodeInvalidPassword)
			}
		})
	}
}

// TestSCRAMPassThrough: the auth_file holds the same SCRAM verifier as PostgreSQL, and
// pgpool logs in to the server with the ClientKey from the client's own proof.
func TestSCRAMPassThrough(t *testing.T) {
	f := newFixture(t)
	su := f.pg.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var verifier string
	if err := su.QueryRow(ctx, "select rolpassword from pg_authid where rolname = $1", f.user).Scan(&verifier); err != nil {
		t.Fatal(err)
	}
	cfg := f.config()
	cfg.Userlist = map[string]string{f.user: verifier}
	_, addr := startPooler(t, cfg)
	if n := queryInt(t, f.connString(addr), "select 5"); n != 5 {
		t.Fatal(n)
	}
}

func TestAuthQuery(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.Userlist = map[string]string{f.pg.SuperUser: f.pg.SuperPassword}
	cfg.AuthUser = f.pg.SuperUser
	_, addr := startPooler(t, cfg)
	if n := queryInt(t, f.connString(addr), "select 3"); n != 3 {
		t.Fatal(n)
	}
	host, port, _ := net.SplitHostPort(addr)
	bad := fmt.Sprintf("postgres://%s:nope@%s:%s/%s?sslmode=disable", f.user, host, port, f.db)
	wantSQLState(t, tryConnect(bad), CodeInvalidPassword)
}

// TestServerAuthMethods: pgpool logs in to PostgreSQL servers that ask for
// SCRAM-SHA-256, md5, a cleartext password, or nothing.
func TestServerAuthMethods(t *testing.T) {
	for _, method := range []string{"scram-sha-256", "md5", "password", "trust"} {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			pg := testenv.StartPostgres(t, testenv.PostgresOptions{HBAMethod: method})
			f := &fixture{pg: pg, db: "appdb", user: "app", password: "secret-" + method}
			if method == "md5" {
				pg.CreateRoleMD5(t, f.user, f.password)
			} else {
				pg.CreateRole(t, f.user, f.password)
			}
			pg.CreateDatabase(t, f.db, f.user)
			_, addr := startPooler(t, f.config())
			if n := queryInt(t, f.connString(addr), "select 11"); n != 11 {
				t.Fatal(n)
			}
		})
	}
}

// TestClientTLS: libpq-style sslmode=require and verify-full through pgpool.
func TestClientTLS(t *testing.T) {
	f := newFixture(t)
	cert := testenv.SelfSignedCert(t, t.TempDir())
	cfg := f.config()
	cfg.ClientTLSMode = "require"
	cfg.ClientTLS = cert.TLSConfig()
	_, addr := startPooler(t, cfg)
	host, port, _ := net.SplitHostPort(addr)
	base := fmt.Sprintf("postgres://%s:%s@%s:%s/%s?default_query_exec_mode=exec", f.user, f.password, host, port, f.db)
	for _, mode := range []string{"sslmode=require", "sslmode=verify-full&sslrootcert=" + cert.CertFile} {
		t.Run(mode[:14], func(t *testing.T) {
			c := connect(t, base+"&"+mode)
			if c.PgConn().Conn() == nil {
				t.Fatal("no connection")
			}
			if _, ok := c.PgConn().Conn().(interface{ ConnectionState() any }); ok {
				t.Log("tls")
			}
			var n int
			if err := c.QueryRow(context.Background(), "select 9").Scan(&n); err != nil || n != 9 {
				t.Fatal(n, err)
			}
		})
	}
	// client_tls_sslmode=require refuses a client without TLS.
	wantSQLState(t, tryConnect(base+"&sslmode=disable"), CodeInvalidAuthorization)
}

// TestServerTLS: server_tls_sslmode=require makes pgpool's server connections use TLS.
func TestServerTLS(t *testing.T) {
	pg := testenv.StartPostgres(t, testenv.PostgresOptions{TLS: true})
	f := &fixture{pg: pg, db: "appdb", user: "app", password: "tls-secret"}
	pg.CreateRole(t, f.user, f.password)
	pg.CreateDatabase(t, f.db, f.user)
	cfg := f.config()
	cfg.ServerTLSMode = "require"
	_, addr := startPooler(t, cfg)
	if n := queryInt(t, f.connString(addr), "select count(*) from pg_stat_ssl where pid = pg_backend_pid() and ssl"); n != 1 {
		t.Fatalf("server connection without TLS")
	}
}
