package pgpool

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/poolsuite/poolsuite/protocol/postgres/auth"
)

// authRequest is the first authentication request pgpool sends a client: the
// method's name and, for md5, the salt.
type authRequest struct {
	method string
	salt   [4]byte
}

// firstAuthRequest starts a login to addr as user on db with a raw protocol client
// and returns the authentication request it gets, then hangs up.
func firstAuthRequest(t *testing.T, addr, user, db string) authRequest {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	fe := pgproto3.NewFrontend(conn, conn)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"user": user, "database": db}})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	m, err := fe.Receive()
	if err != nil {
		t.Fatal(err)
	}
	switch m := m.(type) {
	case *pgproto3.AuthenticationSASL:
		if len(m.AuthMechanisms) != 1 || m.AuthMechanisms[0] != "SCRAM-SHA-256" {
			t.Fatalf("%s: SASL mechanisms %v", user, m.AuthMechanisms)
		}
		return authRequest{method: "scram-sha-256"}
	case *pgproto3.AuthenticationMD5Password:
		return authRequest{method: "md5", salt: m.Salt}
	case *pgproto3.AuthenticationCleartextPassword:
		return authRequest{method: "password"}
	case *pgproto3.ErrorResponse:
		t.Fatalf("%s: %s %s", user, m.Code, m.Message)
	}
	t.Fatalf("%s: %T", user, m)
	return authRequest{}
}

// unknownNames are user names nobody has.
func unknownNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("nosuchuser%d", i)
	}
	return names
}

// roleVerifier is the SCRAM verifier PostgreSQL stores for role.
func roleVerifier(t *testing.T, f *fixture, role string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var v string
	if err := f.pg.Connect(t).QueryRow(ctx, "select rolpassword from pg_authid where rolname = $1", role).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestMD5UnknownUserAskedLikeAuthFile: with auth_type = md5, a user of the auth_file is
// asked for SCRAM when the file holds a SCRAM verifier for it and for md5 otherwise;
// an unknown user is asked as a real one is: SCRAM when the file's secrets are SCRAM
// verifiers, md5 when they are md5 secrets, and with a mix, per name, as often as the
// mix says and the same way every time. An md5 challenge has a fresh salt each time,
// for unknown users as for real ones, and a wrong password fails alike.
func TestMD5UnknownUserAskedLikeAuthFile(t *testing.T) {
	f := newFixture(t)
	verifier := roleVerifier(t, f, f.user)
	scram2, _ := auth.NewSCRAMSecret("pw2")
	scram3, _ := auth.NewSCRAMSecret("pw3")
	md5Of := func(user string) string { return auth.NewMD5Secret(user, "pw").Text() }
	for _, tc := range []struct {
		name     string
		userlist map[string]string
		want     string  // f.user's method, and the unknown users' if share is 0 or 1
		share    float64 // the share of unknown names asked SCRAM
	}{
		{"scram", map[string]string{f.user: verifier, "other2": scram2.Text(), "other3": scram3.Text()}, "scram-sha-256", 1},
		{"md5", map[string]string{f.user: md5Of(f.user), "other2": md5Of("other2"), "other3": "plain"}, "md5", 0},
		{"mixed", map[string]string{f.user: verifier, "other2": scram2.Text(), "other3": scram3.Text(), "other4": md5Of("other4")}, "scram-sha-256", 0.75},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := f.config()
			cfg.AuthType = "md5"
			cfg.Userlist = tc.userlist
			_, addr := startPooler(t, cfg)
			real := firstAuthRequest(t, addr, f.user, f.db)
			if real.method != tc.want {
				t.Fatalf("real user asked %s, want %s", real.method, tc.want)
			}
			names := unknownNames(200)
			scram := 0
			for _, u := range names {
				got := firstAuthRequest(t, addr, u, f.db)
				if again := firstAuthRequest(t, addr, u, f.db); again.method != got.method {
					t.Fatalf("%s asked %s, then %s", u, got.method, again.method)
				}
				// A database that does not exist asks the same.
				if other := firstAuthRequest(t, addr, u, "nosuchdb"); other.method != got.method {
					t.Fatalf("%s asked %s on a real database, %s on a missing one", u, got.method, other.method)
				}
				if got.method == "scram-sha-256" {
					scram++
				} else if got.method != "md5" {
					t.Fatalf("%s asked %s", u, got.method)
				}
			}
			if s := float64(scram) / float64(len(names)); s < tc.share-0.12 || s > tc.share+0.12 {
				t.Errorf("%.2f of unknown users asked SCRAM, want %.2f", s, tc.share)
			}
			// The wrong password fails the same way for the real user and for an unknown
			// one asked the same method.
			want := wantSQLState(t, tryConnect(dsnFor(addr, f.user, "wrong", f.db)), CodeInvalidPassword)
			for _, u := range names[:20] {
				if firstAuthRequest(t, addr, u, f.db).method != tc.want {
					continue
				}
				pe := wantSQLState(t, tryConnect(dsnFor(addr, u, "wrong", f.db)), CodeInvalidPassword)
				if w := replaceUser(want.Message, f.user, u); pe.Message != w {
					t.Errorf("%s: %q, want %q", u, pe.Message, w)
				}
			}
		})
	}
	t.Run("md5 salt", func(t *testing.T) {
		cfg := f.config()
		cfg.AuthType = "md5"
		cfg.Userlist = map[string]string{f.user: md5Of(f.user)}
		_, addr := startPooler(t, cfg)
		for _, u := range []string{f.user, "nosuchuser"} {
			salts := map[[4]byte]bool{}
			for range 10 {
				r := firstAuthRequest(t, addr, u, f.db)
				if r.method != "md5" {
					t.Fatalf("%s asked %s", u, r.method)
				}
				salts[r.salt] = true
			}
			if len(salts) < 9 {
				t.Errorf("%s: %d distinct md5 salts in 10 attempts", u, len(salts))
			}
		}
	})
}

// replaceUser puts user u in place of user in an error message.
func replaceUser(msg, user, u string) string {
	quoted := fmt.Sprintf("%q", user)
	for i := 0; i+len(quoted) <= len(msg); i++ {
		if msg[i:i+len(quoted)] == quoted {
			return msg[:i] + fmt.Sprintf("%q", u) + msg[i+len(quoted):]
		}
	}
	return msg
}

// TestMD5UnknownUserAskedLikeAuthQuery: with auth_type = md5 and auth_query, a role
// auth_query finds is asked for the method its PostgreSQL password needs, and a user
// found nowhere is asked what PostgreSQL itself would ask: SCRAM where the database's
// password_encryption is scram-sha-256, as for a role with a SCRAM password, and md5
// where it is md5, as for a role with an md5 password. A reload asks again.
func TestMD5UnknownUserAskedLikeAuthQuery(t *testing.T) {
	f := newFixture(t) // f.user has a SCRAM password
	md5db := newFixture(t)
	md5role := md5db.user + "_md5"
	md5db.pg.CreateRoleMD5(t, md5role, "pw")
	md5db.pg.Exec(t, fmt.Sprintf("ALTER DATABASE %s SET password_encryption = 'md5'", md5db.db))
	cfg := f.config()
	cfg.AuthType = "md5"
	cfg.Userlist = map[string]string{f.pg.SuperUser: f.pg.SuperPassword}
	cfg.AuthUser = f.pg.SuperUser
	cfg.Databases[md5db.db] = &Database{Host: f.pg.Host, Port: f.pg.Port, ReservePool: -1}
	pl, addr := startPooler(t, cfg)
	for _, tc := range []struct{ db, role, want string }{
		{f.db, f.user, "scram-sha-256"},
		{md5db.db, md5role, "md5"},
	} {
		if got := firstAuthRequest(t, addr, tc.role, tc.db).method; got != tc.want {
			t.Fatalf("role %s on %s asked %s, want %s", tc.role, tc.db, got, tc.want)
		}
		for _, u := range unknownNames(10) {
			if got := firstAuthRequest(t, addr, u, tc.db).method; got != tc.want {
				t.Errorf("unknown user %s on %s asked %s, want %s as role %s", u, tc.db, got, tc.want, tc.role)
			}
		}
	}
	// The SCRAM role logs in (the test server's pg_hba.conf takes SCRAM only, so the
	// md5 role could not log in to it past the pooler).
	if n := queryInt(t, f.connString(addr), "select 1"); n != 1 {
		t.Fatal(n)
	}
	// password_encryption changes; after a reload the pooler asks PostgreSQL again.
	md5db.pg.Exec(t, fmt.Sprintf("ALTER DATABASE %s SET password_encryption = 'scram-sha-256'", md5db.db))
	if got := firstAuthRequest(t, addr, "nosuchuser", md5db.db).method; got != "md5" {
		t.Errorf("before the reload: %s", got)
	}
	next := *cfg
	pl.Reload(&next)
	if got := firstAuthRequest(t, addr, "nosuchuser", md5db.db).method; got != "scram-sha-256" {
		t.Errorf("after the reload: unknown user asked %s, want scram-sha-256", got)
	}
}

// TestMockSCRAMIterations: when the auth_file's SCRAM verifiers have another
// iteration count than PostgreSQL's default, an unknown user's mock SCRAM exchange, and
// that of a user whose md5 secret cannot answer SCRAM, show the same count as a real
// user's, under scram-sha-256 and under md5.
func TestMockSCRAMIterations(t *testing.T) {
	f := newFixture(t)
	verifier := func(password string) string {
		v, err := auth.NewSCRAMVerifier(password, []byte("0123456789abcdef"), 10000)
		if err != nil {
			t.Fatal(err)
		}
		return auth.Secret{Kind: auth.SecretSCRAM, SCRAM: v}.Text()
	}
	for _, authType := range []string{"scram-sha-256", "md5"} {
		t.Run(authType, func(t *testing.T) {
			cfg := f.config()
			cfg.AuthType = authType
			cfg.Userlist = map[string]string{f.user: verifier(f.password), "other2": verifier("pw2")}
			probes := []string{"nosuchuser"}
			if authType == "scram-sha-256" {
				// Under md5 this user would be asked md5, and unknown users sometimes too.
				cfg.Userlist["md5user"] = auth.NewMD5Secret("md5user", "pw").Text()
				probes = append(probes, "md5user")
			}
			_, addr := startPooler(t, cfg)
			real := probeSCRAM(t, addr, f.user, f.db)
			if real.iterations != 10000 {
				t.Fatalf("real user: %d iterations", real.iterations)
			}
			for _, u := range probes {
				p := probeSCRAM(t, addr, u, f.db)
				// The message names the user (under md5, PostgreSQL's words).
				if p.iterations != real.iterations || p.code != real.code || p.msg != strings.ReplaceAll(real.msg, f.user, u) {
					t.Errorf("%s: %d iterations, %s %q; real user %d, %s %q", u, p.iterations, p.code, p.msg, real.iterations, real.code, real.msg)
				}
			}
		})
	}
}

// TestNewMockChoice: the auth_file's share of SCRAM verifiers counts users with a
// secret only, and the mock iteration count is the most common one real users show
// (plain-text users show the default under scram-sha-256 only), the default on a tie.
func TestNewMockChoice(t *testing.T) {
	v := func(iterations int) string {
		sv, err := auth.NewSCRAMVerifier("pw", []byte("salt"), iterations)
		if err != nil {
			t.Fatal(err)
		}
		return auth.Secret{Kind: auth.SecretSCRAM, SCRAM: sv}.Text()
	}
	for _, tc := range []struct {
		authType            string
		userlist            map[string]string
		scram, total, iters int
	}{
		{"md5", map[string]string{}, 0, 0, 4096},
		{"md5", map[string]string{"a": v(10000), "b": v(10000), "c": "plain", "d": ""}, 2, 3, 10000},
		{"scram-sha-256", map[string]string{"a": v(10000), "b": "plain", "c": "plain"}, 1, 3, 4096},
		{"md5", map[string]string{"a": v(10000), "b": v(4096)}, 2, 2, 4096},
		{"md5", map[string]string{"a": v(10000), "b": v(8192)}, 2, 2, 8192},
		{"md5", map[string]string{"a": v(10000), "b": auth.NewMD5Secret("b", "pw").Text()}, 1, 2, 10000},
	} {
		g := &Config{AuthType: tc.authType, Userlist: tc.userlist}
		mc := newMockChoice(g)
		if mc.scram != tc.scram || mc.total != tc.total || mc.iterations != tc.iters {
			t.Errorf("%s %v: scram %d of %d, %d iterations; want %d of %d, %d", tc.authType, tc.userlist, mc.scram, mc.total, mc.iterations, tc.scram, tc.total, tc.iters)
		}
	}
}
