package auth

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

// scramProbe is what a client learns from a SCRAM exchange it cannot finish: the
// server-first-message's salt and iteration count, and the final answer to a proof of
// zeros.
type scramProbe struct {
	salt       string
	iterations int
	final      *pgproto3.ErrorResponse
}

// probeSCRAM runs a SCRAM exchange as a client that does not know the password.
func probeSCRAM(conn net.Conn) (scramProbe, error) {
	r, w := wire.NewReader(conn), wire.NewWriter(conn)
	var p scramProbe
	next := func(m pgproto3.BackendMessage) error {
		typ, msg, err := r.Next()
		if err != nil {
			return err
		}
		if typ == 'E' {
			var er pgproto3.ErrorResponse
			er.Decode(wire.Body(msg))
			return fmt.Errorf("early error: %s", er.Message)
		}
		return m.Decode(wire.Body(msg))
	}
	var sasl pgproto3.AuthenticationSASL
	if err := next(&sasl); err != nil {
		return p, err
	}
	const clientNonce = "probe-nonce"
	w.Send(&pgproto3.SASLInitialResponse{AuthMechanism: scramMechanism, Data: []byte("n,,n=,r=" + clientNonce)})
	if err := w.Flush(); err != nil {
		return p, err
	}
	var cont pgproto3.AuthenticationSASLContinue
	if err := next(&cont); err != nil {
		return p, err
	}
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
	proof := base64.StdEncoding.EncodeToString(make([]byte, 32))
	w.Send(&pgproto3.SASLResponse{Data: []byte("c=biws,r=" + nonce + ",p=" + proof)})
	if err := w.Flush(); err != nil {
		return p, err
	}
	typ, msg, err := r.Next()
	if err != nil {
		return p, err
	}
	if typ != 'E' {
		return p, fmt.Errorf("final answer %q, want ErrorResponse", typ)
	}
	p.final = &pgproto3.ErrorResponse{}
	return p, p.final.Decode(wire.Body(msg))
}

// TestSCRAMUnknownUserIndistinguishable: an unknown user's SCRAM exchange shows the
// same thing as a plain-text user's: a salt that is stable across attempts, the same
// iteration count, and the same failure for a wrong proof.
func TestSCRAMUnknownUserIndistinguishable(t *testing.T) {
	for _, work := range []bool{true, false} {
		probe := func(user string, secret Secret) scramProbe {
			t.Helper()
			client, server := net.Pipe()
			defer client.Close()
			done := make(chan error, 1)
			go func() {
				defer server.Close()
				r, w := wire.NewReader(server), wire.NewWriter(server)
				_, err := AuthenticateWith(r, w, SCRAMSHA256, user, secret, Options{MockSCRAMWork: work})
				var ae *Error
				if errors.As(err, &ae) {
					w.Send(ae.ErrorResponse())
					w.Flush()
				}
				done <- err
			}()
			p, err := probeSCRAM(client)
			client.Close()
			if serr := <-done; errKind(serr) == nil {
				t.Fatalf("server: %v", serr)
			}
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		known1, known2 := probe("alice", NewPlainSecret("pw")), probe("alice", NewPlainSecret("pw"))
		unknown1, unknown2 := probe("bob", Secret{}), probe("bob", Secret{})
		md5 := probe("carol", NewMD5Secret("carol", "pw"))
		if known1.salt != known2.salt || unknown1.salt != unknown2.salt {
			t.Errorf("salts change between attempts: known %s/%s unknown %s/%s", known1.salt, known2.salt, unknown1.salt, unknown2.salt)
		}
		if known1.salt == unknown1.salt {
			t.Errorf("two users share salt %s", known1.salt)
		}
		for _, p := range []scramProbe{known1, unknown1, md5} {
			if p.iterations != DefaultSCRAMIterations {
				t.Errorf("iterations %d, want %d", p.iterations, DefaultSCRAMIterations)
			}
			if len(p.salt) != len(known1.salt) {
				t.Errorf("salt %q differs in length from %q", p.salt, known1.salt)
			}
			if p.final.Code != known1.final.Code || p.final.Message != known1.final.Message || p.final.Detail != "" {
				t.Errorf("failure %s %q %q, want %s %q", p.final.Code, p.final.Message, p.final.Detail, known1.final.Code, known1.final.Message)
			}
		}
		if known1.final.Code != "28P01" || known1.final.Message != "SASL authentication failed" {
			t.Errorf("wrong proof: %s %q", known1.final.Code, known1.final.Message)
		}
		// The salt of a user does not depend on whether the user exists.
		if got := probe("bob", NewPlainSecret("pw")); got.salt != unknown1.salt {
			t.Errorf("bob's salt as a real user %s, as an unknown one %s", got.salt, unknown1.salt)
		}
	}
}

// BenchmarkSCRAMUnknownVsKnown measures the server's side of a failed SCRAM exchange
// for a user with a plain-text secret, an unknown user (with and without the mock
// PBKDF2 work), and a user with a stored verifier. The first two should cost the same
// with MockSCRAMWork, the last two without it.
func BenchmarkSCRAMUnknownVsKnown(b *testing.B) {
	cases := []struct {
		name   string
		secret Secret
		work   bool
	}{
		{"known-plain", NewPlainSecret("correct horse"), true},
		{"unknown-work", Secret{}, true},
		{"known-scram", mustSCRAM(b, "correct horse"), false},
		{"unknown-nowork", Secret{}, false},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				client, server := net.Pipe()
				done := make(chan error, 1)
				go func() {
					defer server.Close()
					r, w := wire.NewReader(server), wire.NewWriter(server)
					_, err := AuthenticateWith(r, w, SCRAMSHA256, "alice", c.secret, Options{MockSCRAMWork: c.work})
					var ae *Error
					if errors.As(err, &ae) {
						w.Send(ae.ErrorResponse())
						w.Flush()
					}
					done <- err
				}()
				_, err := probeSCRAM(client)
				client.Close()
				<-done
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
