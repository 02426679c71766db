package auth

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/poolsuite/poolsuite/internal/testenv"
	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

// loginPostgres connects to p over TCP, sends a StartupMessage for user and db, and
// runs Login. After a successful Login it reads up to ReadyForQuery, to show the
// server really admitted the session.
func loginPostgres(t *testing.T, p *testenv.Postgres, user, db string, cred *Credentials) error {
	t.Helper()
	conn, err := net.DialTimeout("tcp", p.Addr(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	r, w := wire.NewReader(conn), wire.NewWriter(conn)
	w.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
		Parameters: map[string]string{"user": user, "database": db}})
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := Login(r, w, user, cred); err != nil {
		return err
	}
	for {
		typ, msg, err := r.Next()
		if err != nil {
			t.Fatalf("after AuthenticationOk: %v", err)
		}
		switch typ {
		case wire.ErrorResponse: // after AuthenticationOk: a missing database, say
			var er pgproto3.ErrorResponse
			if err := er.Decode(wire.Body(msg)); err != nil {
				t.Fatal(err)
			}
			return &afterOkError{&er}
		case wire.ParameterStatus, wire.BackendKeyData, wire.NoticeResponse:
		case wire.ReadyForQuery:
			w.Send(&pgproto3.Terminate{})
			w.Flush()
			return nil
		default:
			t.Fatalf("after AuthenticationOk: unexpected message %q", typ)
		}
	}
}

// rolpassword returns the role's stored secret from pg_authid.
func rolpassword(t *testing.T, p *testenv.Postgres, role string) Secret {
	t.Helper()
	var s string
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Connect(t).QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = $1", role).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return ParseSecret(s)
}

// recoverClientKey runs SCRAM between Login (with the password) and Authenticate
// (with secret) and returns the Credentials Authenticate recovered, without the
// password.
func recoverClientKey(t *testing.T, user, password string, secret Secret) *Credentials {
	t.Helper()
	res, err := loginPipe(t, SCRAMSHA256, user, secret, &Credentials{Password: password})
	if err != nil || res.err != nil {
		t.Fatalf("recovering the ClientKey: server %v, client %v", res.err, err)
	}
	if res.cred.Password != "" || res.cred.ClientKey == nil {
		t.Fatalf("recovered credentials: %v", res.cred)
	}
	return res.cred
}

// afterOkError is an ErrorResponse the server sent after AuthenticationOk.
type afterOkError struct{ *pgproto3.ErrorResponse }

func (e *afterOkError) Error() string { return "after AuthenticationOk: " + e.Code + " " + e.Message }

// wantServerError checks that Login failed with the server's ErrorResponse code.
func wantServerError(t *testing.T, err error, code string) {
	t.Helper()
	var ae *Error
	if !errors.As(err, &ae) || ae.Kind != ErrServer || ae.Server.Code != code {
		t.Fatalf("Login error = %v, want the server's SQLSTATE %s", err, code)
	}
}

// checkVerifier checks that NewSCRAMVerifier computes PostgreSQL's verifier.
func checkVerifier(t *testing.T, password string, pg Secret) {
	t.Helper()
	v, err := NewSCRAMVerifier(password, pg.SCRAM.Salt, pg.SCRAM.Iterations)
	if err != nil {
		t.Fatal(err)
	}
	if v.StoredKey != pg.SCRAM.StoredKey || v.ServerKey != pg.SCRAM.ServerKey {
		t.Fatalf("SCRAM verifier of %q differs from PostgreSQL's for the same salt", password)
	}
}

// TestPostgresSASLPrep compares verifiers of passwords that SASLprep changes, or
// rejects (then the password is used as it is), with PostgreSQL's.
func TestPostgresSASLPrep(t *testing.T) {
	p := testenv.StartPostgres(t, testenv.PostgresOptions{})
	passwords := []string{
		"I\u00adX",         // soft hyphen mapped to nothing
		"\u2168\u00aa",     // NFKC
		"a\u00a0b\u3000c",  // non-ASCII spaces
		"x\u0007y",         // prohibited: used as is
		"\u0627\u0031",     // bidi rule broken: used as is
		"caf\u0065\u0301",  // combining accent composed
		"\U0001F600 smile", // unassigned in Unicode 3.2: used as is
	}
	for i, pw := range passwords {
		password, err := strconv.Unquote(`"` + pw + `"`)
		if err != nil {
			t.Fatal(err)
		}
		role := "prep_" + strconv.Itoa(i)
		p.CreateRole(t, role, password)
		checkVerifier(t, password, rolpassword(t, p, role))
		if err := loginPostgres(t, p, role, "postgres", &Credentials{Password: password}); err != nil {
			t.Errorf("login with %q: %v", pw, err)
		}
	}
}

// TestPostgres logs in to a real PostgreSQL 15 under each pg_hba method, with the
// password, with only the md5 secret, and with only a recovered ClientKey.
func TestPostgres(t *testing.T) {
	const (
		scramRole = "scram_user"
		md5Role   = "md5_user"
		password  = "real pässword" // not ASCII: SASLprep must agree with the server
	)
	for _, hba := range []string{"scram-sha-256", "md5", "password", "trust"} {
		t.Run(hba, func(t *testing.T) {
			p := testenv.StartPostgres(t, testenv.PostgresOptions{HBAMethod: hba})
			p.CreateRole(t, scramRole, password)
			p.CreateRoleMD5(t, md5Role, password)
			scramSecret := rolpassword(t, p, scramRole)
			md5Secret := rolpassword(t, p, md5Role)
			if scramSecret.Kind != SecretSCRAM || md5Secret.Kind != SecretMD5 {
				t.Fatalf("pg_authid secrets parsed as %v and %v", scramSecret.Kind, md5Secret.Kind)
			}
			if md5Secret.MD5 != NewMD5Secret(md5Role, password).MD5 {
				t.Fatalf("md5 secret differs from PostgreSQL's")
			}
			checkVerifier(t, password, scramSecret)

			for _, role := range []string{scramRole, md5Role} {
				err := loginPostgres(t, p, role, "postgres", &Credentials{Password: password})
				if hba == "scram-sha-256" && role == md5Role {
					// PostgreSQL cannot run SCRAM against an md5-stored password.
					wantServerError(t, err, "28P01")
				} else if err != nil {
					t.Errorf("%s with the password: %v", role, err)
				}
				err = loginPostgres(t, p, role, "postgres", &Credentials{Password: "wrong"})
				if hba == "trust" {
					if err != nil {
						t.Errorf("%s under trust: %v", role, err)
					}
				} else {
					wantServerError(t, err, "28P01")
				}
			}

			keyOnly := recoverClientKey(t, scramRole, password, scramSecret)
			err := loginPostgres(t, p, scramRole, "postgres", keyOnly)
			switch hba {
			case "password":
				if !errors.Is(err, ErrNoCredentials) {
					t.Errorf("ClientKey under password: %v, want ErrNoCredentials", err)
				}
			default: // md5 with a SCRAM-stored role runs SCRAM
				if err != nil {
					t.Errorf("with the recovered ClientKey: %v", err)
				}
			}
			if hba == "scram-sha-256" || hba == "md5" {
				other := recoverClientKey(t, scramRole, password, mustSCRAM(t, password))
				if err := loginPostgres(t, p, scramRole, "postgres", other); !errors.Is(err, ErrVerifierMismatch) {
					t.Errorf("ClientKey of another verifier: %v, want ErrVerifierMismatch", err)
				}
			}

			md5Only := &Credentials{MD5: md5Secret.MD5}
			err = loginPostgres(t, p, md5Role, "postgres", md5Only)
			switch hba {
			case "md5", "trust":
				if err != nil {
					t.Errorf("with the md5 secret only: %v", err)
				}
			default:
				if !errors.Is(err, ErrNoCredentials) {
					t.Errorf("md5 secret under %s: %v, want ErrNoCredentials", hba, err)
				}
			}

			// A missing database is reported after AuthenticationOk, which is where
			// Login stops.
			var after *afterOkError
			if err := loginPostgres(t, p, scramRole, "no_such_db", &Credentials{Password: password}); !errors.As(err, &after) || after.Code != "3D000" {
				t.Errorf("missing database: %v, want 3D000 after AuthenticationOk", err)
			}
		})
	}
}
