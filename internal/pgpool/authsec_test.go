package pgpool

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/poolsuite/poolsuite/internal/testenv"
)

// dsnFor is a DSN for the pooler at addr with any user, password and database.
func dsnFor(addr, user, password, db string) string {
	host, port, _ := net.SplitHostPort(addr)
	return fmt.Sprintf("postgres://%s:%s@%s:%s/%s?sslmode=disable", user, password, host, port, db)
}

// TestTrustRequiresKnownUser: with auth_type = trust a user must still be in the
// auth_file (or found by auth_query), as PgBouncer requires; others are refused with
// `"trust" authentication failed`, whatever the database.
func TestTrustRequiresKnownUser(t *testing.T) {
	f := newFixture(t)
	for _, withAuthQuery := range []bool{false, true} {
		t.Run(fmt.Sprintf("auth_query=%t", withAuthQuery), func(t *testing.T) {
			cfg := f.config()
			cfg.AuthType = "trust"
			cfg.Databases[f.db].Password = f.password
			if withAuthQuery {
				// f.user is found by auth_query only.
				cfg.Userlist = map[string]string{f.pg.SuperUser: f.pg.SuperPassword}
				cfg.AuthUser = f.pg.SuperUser
			}
			_, addr := startPooler(t, cfg)
			if n := queryInt(t, dsnFor(addr, f.user, "anything", f.db), "select 1"); n != 1 {
				t.Fatal(n)
			}
			for _, db := range []string{f.db, "nosuchdb"} {
				pe := wantSQLState(t, tryConnect(dsnFor(addr, "nosuchuser", "anything", db)), CodeInvalidAuthorization)
				if pe.Message != `"trust" authentication failed` {
					t.Errorf("unknown user, database %s: %q", db, pe.Message)
				}
			}
			// A user of the auth_file learns that a database is missing; auth_query does
			// not run for a database that does not exist, as in PgBouncer.
			code := CodeInvalidCatalogName
			if withAuthQuery {
				code = CodeInvalidAuthorization
			}
			wantSQLState(t, tryConnect(dsnFor(addr, f.user, "anything", "nosuchdb")), code)
		})
	}
}

// TestUnknownDatabaseNeedsPassword: "no such database" goes only to a client whose
// password is right; a wrong password or an unknown user fail as any wrong password
// does, as in PgBouncer 1.18, which this compares with.
func TestUnknownDatabaseNeedsPassword(t *testing.T) {
	f := newFixture(t)
	bouncer := testenv.StartPgBouncer(t, testenv.PgBouncerOptions{
		Databases: map[string]string{f.db: f.pg.PgBouncerDB(f.db)},
		Settings:  map[string]string{"auth_type": "scram-sha-256"},
		Userlist:  fmt.Sprintf("%q %q\n", f.user, f.password),
	})
	for _, authType := range []string{"scram-sha-256", "md5", "plain"} {
		t.Run(authType, func(t *testing.T) {
			cfg := f.config()
			cfg.AuthType = authType
			_, addr := startPooler(t, cfg)
			wrong := wantSQLState(t, tryConnect(dsnFor(addr, f.user, "wrong", f.db)), CodeInvalidPassword)
			for _, tc := range []struct{ user, password string }{
				{f.user, "wrong"}, {"nosuchuser", "wrong"}, {"nosuchuser", f.password},
			} {
				pe := wantSQLState(t, tryConnect(dsnFor(addr, tc.user, tc.password, "nosuchdb")), CodeInvalidPassword)
				want := strings.ReplaceAll(wrong.Message, f.user, tc.user)
				if pe.Message != want || strings.Contains(pe.Message, "database") {
					t.Errorf("user %s password %s, unknown database: %q, want %q", tc.user, tc.password, pe.Message, want)
				}
				// The unknown user fails as the known one does on a real database.
				pe = wantSQLState(t, tryConnect(dsnFor(addr, tc.user, tc.password, f.db)), CodeInvalidPassword)
				if pe.Message != want {
					t.Errorf("user %s password %s: %q, want %q", tc.user, tc.password, pe.Message, want)
				}
			}
			pe := wantSQLState(t, tryConnect(dsnFor(addr, f.user, f.password, "nosuchdb")), CodeInvalidCatalogName)
			if pe.Message != "no such database: nosuchdb" {
				t.Errorf("right password, unknown database: %q", pe.Message)
			}
		})
	}
	// PgBouncer reveals the missing database only to the right password too.
	for _, tc := range []struct {
		user, password string
		reveals        bool
	}{{f.user, "wrong", false}, {"nosuchuser", "wrong", false}, {f.user, f.password, true}} {
		err := tryConnect(dsnFor(bouncer.Addr(), tc.user, tc.password, "nosuchdb"))
		if err == nil || strings.Contains(err.Error(), "no such database") != tc.reveals {
			t.Errorf("PgBouncer, user %s password %s: %v", tc.user, tc.password, err)
		}
	}
}

// scramProbe is what a client that does not know the password learns from a SCRAM
// exchange: the salt, the iteration count, and the answer to a wrong proof.
type scramProbe struct {
	salt       string
	iterations int
	code, msg  string
}

// probeSCRAM logs in to addr as user by hand and answers the server-first-message
// with a proof of zeros.
func probeSCRAM(t *testing.T, addr, user, db string) scramProbe {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	fe := pgproto3.NewFrontend(conn, conn)
	send := func(m pgproto3.FrontendMessage) {
		t.Helper()
		fe.Send(m)
		if err := fe.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	receive := func() pgproto3.BackendMessage {
		t.Helper()
		m, err := fe.Receive()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"user": user, "database": db}})
	if m, ok := receive().(*pgproto3.AuthenticationSASL); !ok || len(m.AuthMechanisms) != 1 || m.AuthMechanisms[0] != "SCRAM-SHA-256" {
		t.Fatalf("%s: want AuthenticationSASL SCRAM-SHA-256, got %#v", user, m)
	}
	const clientNonce = "0123456789abcdefghijkl"
	send(&pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: []byte("n,,n=,r=" + clientNonce)})
	cont, ok := receive().(*pgproto3.AuthenticationSASLContinue)
	if !ok {
		t.Fatalf("%s: want AuthenticationSASLContinue", user)
	}
	var p scramProbe
	var nonce string
	for _, a := range strings.Split(string(cont.Data), ",") {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case "r":
			nonce = v
		case "s":
			p.salt = v
		case "i":
			p.iterations, _ = strconv.Atoi(v)
		}
	}
	if !strings.HasPrefix(nonce, clientNonce) || p.salt == "" {
		t.Fatalf("%s: server-first-message %q", user, cont.Data)
	}
	proof := base64.StdEncoding.EncodeToString(make([]byte, 32))
	send(&pgproto3.SASLResponse{Data: []byte("c=biws,r=" + nonce + ",p=" + proof)})
	er, ok := receive().(*pgproto3.ErrorResponse)
	if !ok {
		t.Fatalf("%s: wrong proof accepted", user)
	}
	p.code, p.msg = er.Code, er.Message
	return p
}

// TestSCRAMUnknownUserLooksReal: a caller cannot tell a real user whose auth_file
// secret is plain text from an unknown one by the SCRAM exchange: both salts stay the
// same across attempts, the iteration counts are equal, and a wrong proof fails alike.
func TestSCRAMUnknownUserLooksReal(t *testing.T) {
	f := newFixture(t)
	_, addr := startPooler(t, f.config())
	real1, real2 := probeSCRAM(t, addr, f.user, f.db), probeSCRAM(t, addr, f.user, f.db)
	unknown1, unknown2 := probeSCRAM(t, addr, "nosuchuser", f.db), probeSCRAM(t, addr, "nosuchuser", f.db)
	if real1.salt != real2.salt {
		t.Errorf("real user's salt changes: %s, %s", real1.salt, real2.salt)
	}
	if unknown1.salt != unknown2.salt {
		t.Errorf("unknown user's salt changes: %s, %s", unknown1.salt, unknown2.salt)
	}
	if len(real1.salt) != len(unknown1.salt) || real1.salt == unknown1.salt {
		t.Errorf("salts: real %s, unknown %s", real1.salt, unknown1.salt)
	}
	if real1.iterations != 4096 || unknown1.iterations != real1.iterations {
		t.Errorf("iterations: real %d, unknown %d", real1.iterations, unknown1.iterations)
	}
	for _, p := range []scramProbe{real1, real2, unknown1, unknown2} {
		if p.code != CodeInvalidPassword || p.msg != "SASL authentication failed" {
			t.Errorf("wrong proof: %s %q", p.code, p.msg)
		}
	}
	// The unknown database fails the same way before saying anything about it.
	if p := probeSCRAM(t, addr, f.user, "nosuchdb"); p != real1 {
		t.Errorf("unknown database: %+v, want %+v", p, real1)
	}
}

// TestAdminCannotWeakenAuth: SET refuses the settings that decide who may log in, and
// SHOW CONFIG lists them as not changeable.
func TestAdminCannotWeakenAuth(t *testing.T) {
	e := newAdminEnv(t, false)
	adm := adminConnect(t, e.dsn(false, e.admin, e.adminPassword, "pgbouncer"))
	for _, q := range []string{
		"SET auth_type = 'trust'", "SET auth_file = '/tmp/x'", "SET auth_query = 'select 1'",
		"SET auth_user = 'postgres'", "SET auth_hba_file = '/tmp/x'", "SET admin_users = 'x'",
		"SET stats_users = 'x'",
	} {
		pe := adminExecErr(t, adm, q)
		if pe.Message != "SET failed" || !strings.Contains(pe.Detail, "configuration file") {
			t.Errorf("%s: %s %q %q", q, pe.Code, pe.Message, pe.Detail)
		}
	}
	if g := e.pl.settings(); g.AuthType != "scram-sha-256" || len(g.AdminUsers) != 1 {
		t.Errorf("settings changed: auth_type %q admin_users %v", g.AuthType, g.AdminUsers)
	}
	wantSQLState(t, tryConnect(dsnFor(e.addr, e.f.user, "wrong", e.f.db)), CodeInvalidPassword)
	_, rows := adminQueryResult(t, adm, "SHOW CONFIG")
	seen := 0
	for _, row := range rows {
		switch row["key"] {
		case "auth_type", "auth_query", "auth_user", "admin_users", "stats_users":
			seen++
			if row["changeable"] != "no" {
				t.Errorf("SHOW CONFIG: %v", row)
			}
		}
	}
	if seen != 5 {
		t.Errorf("SHOW CONFIG lists %d of the 5 authentication settings", seen)
	}
}

// TestAdminOwnOSUserOverUnixSocket: as in PgBouncer, user "pgbouncer" logs in to the
// admin console without a password over the unix socket when the peer is pgpool's own
// OS user (the test runs both), even with admin_users empty; over TCP it must
// authenticate like anyone.
func TestAdminOwnOSUserOverUnixSocket(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.AdminUsers, cfg.StatsUsers = nil, nil
	pl, tcpAddr := startPooler(t, cfg)
	dir, err := os.MkdirTemp("", "pgpool")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ln, err := net.Listen("unix", filepath.Join(dir, ".s.PGSQL.5432"))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- pl.Serve(ln) }()
	t.Cleanup(func() { ln.Close(); <-served })

	c := adminConnect(t, fmt.Sprintf("host=%s port=5432 user=pgbouncer dbname=pgbouncer sslmode=disable", dir))
	adminQueryResult(t, c, "SHOW VERSION")
	adminExecOK(t, c, "SET default_pool_size = 9") // an admin command
	if got := pl.settings().DefaultPoolSize; got != 9 {
		t.Errorf("default_pool_size = %d", got)
	}
	_, err = adminTryConnect(dsnFor(tcpAddr, "pgbouncer", "x", "pgbouncer"))
	wantSQLState(t, err, CodeInvalidPassword)
	// Other user names go through authentication on the unix socket too.
	_, err = adminTryConnect(fmt.Sprintf("host=%s port=5432 user=someone password=x dbname=pgbouncer sslmode=disable", dir))
	wantSQLState(t, err, CodeInvalidPassword)

	// pgpool's own OS user may change authentication from the console (it could edit
	// the file and RELOAD anyway), as PgBouncer's own test suite does.
	_, rows := adminQueryResult(t, c, "SHOW CONFIG")
	for _, row := range rows {
		if row["key"] == "auth_type" && row["changeable"] != "yes" {
			t.Errorf("auth_type changeable = %q for pgpool's own OS user", row["changeable"])
		}
	}
	if pe := adminExecErr(t, c, "SET auth_type = 'nosuch'"); pe.Message != "SET failed" {
		t.Errorf("bad auth_type: %v", pe)
	}
	adminExecOK(t, c, "SET auth_type = 'trust'")
	if got := pl.settings().AuthType; got != "trust" {
		t.Fatalf("auth_type = %q", got)
	}
	u, err := adminTryConnect(dsnFor(tcpAddr, f.user, "not-the-password", f.db))
	if err != nil {
		t.Fatalf("trust set by the own OS user: %v", err)
	}
	u.Close(context.Background())
	adminExecOK(t, c, "SET auth_type = 'scram-sha-256'")
	_, err = adminTryConnect(dsnFor(tcpAddr, f.user, "not-the-password", f.db))
	wantSQLState(t, err, CodeInvalidPassword)
}
