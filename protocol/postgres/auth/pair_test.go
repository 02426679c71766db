package auth

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

// TestLoginAgainstAuthenticate runs every method against every kind of secret, with
// the right and a wrong password, Login on one end of a pipe and Authenticate on the
// other.
func TestLoginAgainstAuthenticate(t *testing.T) {
	const user, password = "alice", "correct horse"
	secrets := map[string]Secret{
		"none":  {},
		"plain": NewPlainSecret(password),
		"md5":   NewMD5Secret(user, password),
		"scram": mustSCRAM(t, password),
	}
	tests := []struct {
		method Method
		secret string
		want   error // server side error for the right password; nil: success
		wrong  error // server side error for a wrong password
	}{
		{Trust, "none", nil, nil},
		{Trust, "plain", nil, nil},
		{Trust, "md5", nil, nil},
		{Trust, "scram", nil, nil},
		{Plain, "none", ErrNoPassword, ErrNoPassword},
		{Plain, "plain", nil, ErrPasswordMismatch},
		{Plain, "md5", nil, ErrPasswordMismatch},
		{Plain, "scram", nil, ErrPasswordMismatch},
		{MD5, "none", ErrNoPassword, ErrNoPassword},
		{MD5, "plain", nil, ErrPasswordMismatch},
		{MD5, "md5", nil, ErrPasswordMismatch},
		{MD5, "scram", nil, ErrPasswordMismatch}, // runs SCRAM
		{SCRAMSHA256, "none", ErrNoPassword, ErrNoPassword},
		{SCRAMSHA256, "plain", nil, ErrPasswordMismatch},
		{SCRAMSHA256, "md5", ErrUnsupportedSecret, ErrUnsupportedSecret},
		{SCRAMSHA256, "scram", nil, ErrPasswordMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.method.String()+"/"+tt.secret, func(t *testing.T) {
			secret := secrets[tt.secret]
			for _, pw := range []string{password, "wrong"} {
				want := tt.want
				if pw != password {
					want = tt.wrong
				}
				res, err := loginPipe(t, tt.method, user, secret, &Credentials{Password: pw})
				if want == nil {
					if res.err != nil || err != nil {
						t.Fatalf("password %q: server error %v, client error %v", pw, res.err, err)
					}
					checkCredentials(t, tt.method, secret, res.cred, password)
					continue
				}
				if !errors.Is(res.err, want) {
					t.Fatalf("password %q: server error = %v, want %v", pw, res.err, want)
				}
				var se *Error
				if !errors.As(err, &se) || se.Kind != ErrServer || se.Server.Code != "28P01" {
					t.Fatalf("password %q: client error = %v, want ErrServer with 28P01", pw, err)
				}
				msg := `password authentication failed for user "alice"`
				if tt.method == SCRAMSHA256 {
					msg = "SASL authentication failed" // as PgBouncer words it
				}
				if se.Server.Message != msg {
					t.Errorf("client got message %q, want %q", se.Server.Message, msg)
				}
			}
		})
	}
}

// checkCredentials checks that Authenticate returned what the pooler needs to log in.
func checkCredentials(t *testing.T, method Method, secret Secret, c *Credentials, password string) {
	t.Helper()
	if c == nil {
		t.Fatal("nil Credentials")
	}
	usedSCRAM := method == SCRAMSHA256 || method == MD5 && secret.Kind == SecretSCRAM
	switch {
	case method == Plain || secret.Kind == SecretPlain:
		if c.Password != password {
			t.Errorf("Credentials.Password = %q, want the password", c.Password)
		}
	case method == MD5 && secret.Kind == SecretMD5:
		if c.MD5 != secret.MD5 {
			t.Errorf("Credentials.MD5 = %q, want %q", c.MD5, secret.MD5)
		}
	case usedSCRAM:
		if c.SCRAM == nil || len(c.ClientKey) != sha256.Size || sha256.Sum256(c.ClientKey) != c.SCRAM.StoredKey {
			t.Errorf("Credentials lack a ClientKey matching the verifier: %v", c)
		}
	}
}

// TestRecoveredClientKey logs in with nothing but the ClientKey recovered by
// Authenticate, to a server with the same verifier, then to one with another salt.
func TestRecoveredClientKey(t *testing.T) {
	const user, password = "bob", "s3cret"
	secret := mustSCRAM(t, password)
	res, err := loginPipe(t, SCRAMSHA256, user, secret, &Credentials{Password: password})
	if err != nil || res.err != nil {
		t.Fatalf("first login: server %v, client %v", res.err, err)
	}
	keyOnly := &Credentials{SCRAM: res.cred.SCRAM, ClientKey: res.cred.ClientKey}

	res2, err := loginPipe(t, SCRAMSHA256, user, secret, keyOnly)
	if err != nil || res2.err != nil {
		t.Fatalf("login with the ClientKey: server %v, client %v", res2.err, err)
	}
	if string(res2.cred.ClientKey) != string(keyOnly.ClientKey) {
		t.Error("second exchange recovered another ClientKey")
	}

	// md5 on the server with a SCRAM secret runs SCRAM, so the key works there too.
	if res, err := loginPipe(t, MD5, user, secret, keyOnly); err != nil || res.err != nil {
		t.Fatalf("login with the ClientKey to md5+SCRAM: server %v, client %v", res.err, err)
	}

	other := mustSCRAM(t, password) // another salt
	if _, err := loginPipe(t, SCRAMSHA256, user, other, keyOnly); !errors.Is(err, ErrVerifierMismatch) {
		t.Fatalf("other salt: client error = %v, want ErrVerifierMismatch", err)
	}

	// A server that knows StoredKey but not ServerKey accepts the proof, but its
	// signature gives it away.
	forged := secret
	forged.SCRAM.ServerKey[0] ^= 1
	if _, err := loginPipe(t, SCRAMSHA256, user, forged, keyOnly); !errors.Is(err, ErrServerSignature) {
		t.Fatalf("forged ServerKey: client error = %v, want ErrServerSignature", err)
	}

	// A key alone cannot answer cleartext or md5 requests.
	for _, m := range []Method{Plain, MD5} {
		if _, err := loginPipe(t, m, user, NewPlainSecret(password), keyOnly); !errors.Is(err, ErrNoCredentials) {
			t.Errorf("%v with a ClientKey only: client error = %v, want ErrNoCredentials", m, err)
		}
	}
	bad := &Credentials{SCRAM: res.cred.SCRAM, ClientKey: make([]byte, 32)}
	if _, err := loginPipe(t, SCRAMSHA256, user, secret, bad); !errors.Is(err, ErrNoCredentials) {
		t.Errorf("ClientKey of another verifier: client error = %v, want ErrNoCredentials", err)
	}
}

// TestLoginWithMD5SecretOnly answers md5 with only the md5 secret.
func TestLoginWithMD5SecretOnly(t *testing.T) {
	const user, password = "carol", "pw"
	cred := &Credentials{MD5: NewMD5Secret(user, password).MD5}
	for _, secret := range []Secret{NewPlainSecret(password), NewMD5Secret(user, password)} {
		res, err := loginPipe(t, MD5, user, secret, cred)
		if err != nil || res.err != nil {
			t.Fatalf("%v: server %v, client %v", secret, res.err, err)
		}
	}
	wrong := &Credentials{MD5: NewMD5Secret(user, "other").MD5}
	if res, _ := loginPipe(t, MD5, user, NewMD5Secret(user, password), wrong); !errors.Is(res.err, ErrPasswordMismatch) {
		t.Errorf("wrong md5 secret: server error = %v", res.err)
	}
	for _, m := range []Method{Plain, SCRAMSHA256} {
		if _, err := loginPipe(t, m, user, NewPlainSecret(password), cred); !errors.Is(err, ErrNoCredentials) {
			t.Errorf("%v with an md5 secret only: client error = %v, want ErrNoCredentials", m, err)
		}
	}
}

func TestAuthenticateInvalidMethod(t *testing.T) {
	_, err := Authenticate(nil, nil, 0, "u", NewPlainSecret("x"))
	if !errors.Is(err, ErrInvalidMethod) {
		t.Fatalf("err = %v, want ErrInvalidMethod", err)
	}
}

// clientScript runs Authenticate against a scripted client.
func clientScript(t *testing.T, method Method, secret Secret, script func(r *wire.Reader, w *wire.Writer) error) error {
	t.Helper()
	conn, done := servePipe(t, method, "u", secret)
	r, w := wire.NewReader(conn), wire.NewWriter(conn)
	if err := script(r, w); err != nil {
		t.Fatalf("client script: %v", err)
	}
	conn.Close()
	return (<-done).err
}

// expectAuth reads one Authentication message.
func expectAuth(r *wire.Reader) error {
	typ, _, err := r.Next()
	if err == nil && typ != wire.Authentication {
		err = errors.New("not an authentication request")
	}
	return err
}

func TestAuthenticateProtocolErrors(t *testing.T) {
	scram := mustSCRAM(t, "pw")
	tests := []struct {
		name   string
		method Method
		send   []interface{ Encode([]byte) ([]byte, error) }
		want   error
	}{
		{"query instead of password", Plain, msgs(&pgproto3.Query{String: "select 1"}), ErrProtocol},
		{"wrong mechanism", SCRAMSHA256, msgs(&pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256-PLUS", Data: []byte("p=tls-server-end-point,,n=,r=abc")}), ErrProtocol},
		{"channel binding", SCRAMSHA256, msgs(&pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: []byte("p=tls-server-end-point,,n=,r=abc")}), ErrProtocol},
		{"no initial response", SCRAMSHA256, msgs(rawMessage(wire.AppendMessage(nil, 'p', []byte("SCRAM-SHA-256\x00\xff\xff\xff\xff")))), ErrProtocol},
		{"short length", SCRAMSHA256, msgs(rawMessage(wire.AppendMessage(nil, 'p', []byte("SCRAM-SHA-256\x00\x00\x00\x00\x01abc")))), ErrProtocol},
		{"bad final", SCRAMSHA256, msgs(
			&pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: []byte("n,,n=,r=abc")},
			&pgproto3.SASLResponse{Data: []byte("c=biws,r=abc,p=" + zeroProof)}), ErrProtocol},
		{"malformed frame", MD5, msgs(rawMessage{'p', 0, 0, 0, 1}), ErrProtocol},
		{"terminate", MD5, msgs(&pgproto3.Terminate{}), io.EOF},
		{"hang up", SCRAMSHA256, nil, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := clientScript(t, tt.method, scram, func(r *wire.Reader, w *wire.Writer) error {
				for _, m := range tt.send {
					if err := expectAuth(r); err != nil {
						return err
					}
					w.Send(m)
					if err := w.Flush(); err != nil {
						return err
					}
				}
				if len(tt.send) == 0 {
					return expectAuth(r)
				}
				return nil
			})
			if !errors.Is(err, tt.want) {
				t.Fatalf("Authenticate error = %v, want %v", err, tt.want)
			}
			var ae *Error
			if errors.As(err, &ae) && ae.Kind == ErrProtocol {
				if er := ae.ErrorResponse(); er.Code != "08P01" || er.Severity != "FATAL" {
					t.Errorf("ErrorResponse = %+v, want FATAL 08P01", er)
				}
			}
		})
	}
}

// TestSCRAMGS2Y accepts "y,," (the client supports channel binding, the server did not
// offer it), as libpq sends over TLS.
func TestSCRAMGS2Y(t *testing.T) {
	secret := mustSCRAM(t, "pw")
	err := clientScript(t, SCRAMSHA256, secret, func(r *wire.Reader, w *wire.Writer) error {
		if err := expectAuth(r); err != nil {
			return err
		}
		c := &scramClient{gs2: "y,,"}
		w.Send(&pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: []byte(c.clientFirst("", "nonce"))})
		w.Flush()
		_, msg, err := r.Next()
		if err != nil {
			return err
		}
		var cont pgproto3.AuthenticationSASLContinue
		if err := cont.Decode(wire.Body(msg)); err != nil {
			return fmt.Errorf("SASLContinue %q: %w", msg, err)
		}
		final, err := c.serverFirst(string(cont.Data), func(salt []byte, it int) ([]byte, []byte, error) {
			k, err := deriveSCRAMKeys("pw", salt, it)
			return k.client[:], k.server[:], err
		})
		if err != nil {
			return err
		}
		if !strings.HasPrefix(final, "c=eSws,") { // base64("y,,")
			return fmt.Errorf("client-final-message %q", final)
		}
		w.Send(&pgproto3.SASLResponse{Data: []byte(final)})
		w.Flush()
		_, msg, err = r.Next()
		if err != nil {
			return err
		}
		var fin pgproto3.AuthenticationSASLFinal
		if err := fin.Decode(wire.Body(msg)); err != nil {
			return fmt.Errorf("SASLFinal %q: %w", msg, err)
		}
		if err := c.serverFinal(string(fin.Data)); err != nil {
			return err
		}
		return expectAuth(r) // AuthenticationOk sent by servePipe
	})
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
}

func TestLoginServerMessages(t *testing.T) {
	tests := []struct {
		name   string
		script []interface{ Encode([]byte) ([]byte, error) }
		want   error
	}{
		{"trust", msgs(&pgproto3.NoticeResponse{Message: "hi"}, &pgproto3.AuthenticationOk{}), nil},
		{"error", msgs(&pgproto3.ErrorResponse{Severity: "FATAL", Code: "3D000", Message: `database "x" does not exist`}), ErrServer},
		{"gss", msgs(&pgproto3.AuthenticationGSS{}), ErrUnsupportedMethod},
		{"sspi", msgs(rawMessage(wire.AppendMessage(nil, 'R', []byte{0, 0, 0, 9}))), ErrUnsupportedMethod},
		{"kerberos", msgs(rawMessage(wire.AppendMessage(nil, 'R', []byte{0, 0, 0, 2}))), ErrUnsupportedMethod},
		{"scram plus only", msgs(&pgproto3.AuthenticationSASL{AuthMechanisms: []string{"SCRAM-SHA-256-PLUS"}}), ErrUnsupportedMethod},
		{"sasl continue first", msgs(&pgproto3.AuthenticationSASLContinue{Data: []byte("r=x")}), ErrProtocol},
		{"ready first", msgs(&pgproto3.ReadyForQuery{TxStatus: 'I'}), ErrProtocol},
		{"short auth", msgs(rawMessage(wire.AppendMessage(nil, 'R', []byte{0}))), ErrProtocol},
		{"hang up", nil, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, wait := fakeServer(t, func(r *wire.Reader, w *wire.Writer) error {
				for _, m := range tt.script {
					w.Send(m)
				}
				return w.Flush()
			})
			err := Login(wire.NewReader(conn), wire.NewWriter(conn), "u", &Credentials{Password: "pw"})
			conn.Close()
			if werr := wait(); werr != nil {
				t.Fatalf("server script: %v", werr)
			}
			if tt.want == nil && err != nil || !errors.Is(err, tt.want) {
				t.Fatalf("Login error = %v, want %v", err, tt.want)
			}
			var ae *Error
			if errors.Is(err, ErrServer) && (!errors.As(err, &ae) || ae.Server.Code != "3D000" || ae.SQLState() != "3D000") {
				t.Errorf("ErrServer does not carry the server's ErrorResponse: %v", err)
			}
		})
	}
}

// TestLoginSCRAMOkBeforeFinal rejects a server that skips AuthenticationSASLFinal.
func TestLoginSCRAMOkBeforeFinal(t *testing.T) {
	conn, wait := fakeServer(t, func(r *wire.Reader, w *wire.Writer) error {
		w.Send(&pgproto3.AuthenticationSASL{AuthMechanisms: []string{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}})
		w.Flush()
		_, msg, err := r.Next()
		if err != nil {
			return err
		}
		var first pgproto3.SASLInitialResponse
		if err := first.Decode(wire.Body(msg)); err != nil {
			return err
		}
		nonce := string(first.Data[len("n,,n=,r="):])
		w.Send(&pgproto3.AuthenticationSASLContinue{Data: []byte("r=" + nonce + "srv,s=c2FsdA==,i=1")})
		w.Flush()
		if _, _, err := r.Next(); err != nil {
			return err
		}
		w.Send(&pgproto3.AuthenticationOk{})
		return w.Flush()
	})
	err := Login(wire.NewReader(conn), wire.NewWriter(conn), "u", &Credentials{Password: "pw"})
	conn.Close()
	if werr := wait(); werr != nil {
		t.Fatalf("server script: %v", werr)
	}
	if !errors.Is(err, ErrProtocol) {
		t.Fatalf("Login error = %v, want ErrProtocol", err)
	}
}

func TestErrorResponse(t *testing.T) {
	e := &Error{Kind: ErrPasswordMismatch, User: "x", Detail: "SCRAM proof does not match"}
	er := e.ErrorResponse()
	if er.Code != "28P01" || er.Message != `password authentication failed for user "x"` || er.Detail != "" {
		t.Errorf("ErrorResponse = %+v", er)
	}
	for _, k := range []error{ErrNoPassword, ErrUnsupportedSecret} {
		if got := (&Error{Kind: k, User: "x"}).ErrorResponse(); got.Message != er.Message || got.Code != "28P01" {
			t.Errorf("%v: ErrorResponse = %+v, want the same as a wrong password", k, got)
		}
	}
	if got := (&Error{Kind: ErrNoCredentials, User: "x"}).SQLState(); got != "28000" {
		t.Errorf("ErrNoCredentials SQLState = %s", got)
	}
	if got := (&Error{Kind: ErrNoCredentials, User: "x"}).ErrorResponse().Message; got != "server login failed: wrong password type" {
		t.Errorf("ErrNoCredentials message = %q", got)
	}
	for _, k := range []error{ErrPasswordMismatch, ErrNoPassword, ErrUnsupportedSecret} {
		got := (&Error{Kind: k, User: "x", SASL: true, Detail: "SCRAM proof does not match"}).ErrorResponse()
		if got.Message != "SASL authentication failed" || got.Code != "28P01" || got.Detail != "" {
			t.Errorf("SCRAM %v: ErrorResponse = %+v", k, got)
		}
	}
}

type rawMessage []byte

func (m rawMessage) Encode(dst []byte) ([]byte, error) { return append(dst, m...), nil }

func msgs(m ...interface{ Encode([]byte) ([]byte, error) }) []interface{ Encode([]byte) ([]byte, error) } {
	return m
}
