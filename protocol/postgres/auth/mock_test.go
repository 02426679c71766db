package auth

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

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

// firstRequest runs AuthenticateWith on a pipe and returns the first authentication
// request the client receives.
func firstRequest(t *testing.T, method Method, user string, secret Secret, opts Options) pgproto3.BackendMessage {
	t.Helper()
	client, server := net.Pipe()
	defer client.Close()
	done := make(chan error, 1)
	go func() {
		defer server.Close()
		_, err := AuthenticateWith(wire.NewReader(server), wire.NewWriter(server), method, user, secret, opts)
		done <- err
	}()
	fe := pgproto3.NewFrontend(client, client)
	m, err := fe.Receive()
	client.Close()
	<-done
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestMD5MockMethod: under MD5, a user without a secret is asked for SCRAM when
// Options.MockSCRAM says so, as a user with a stored verifier is, and for md5
// otherwise, with a fresh random salt at every attempt as a real md5 user gets.
func TestMD5MockMethod(t *testing.T) {
	verifier := mustSCRAM(t, "pw")
	for _, mockSCRAM := range []bool{false, true} {
		opts := Options{MockSCRAM: mockSCRAM}
		real := firstRequest(t, MD5, "alice", verifier, opts)
		unknown := firstRequest(t, MD5, "bob", Secret{}, opts)
		if _, ok := real.(*pgproto3.AuthenticationSASL); !ok {
			t.Fatalf("verifier under md5: %T", real)
		}
		if _, ok := unknown.(*pgproto3.AuthenticationSASL); ok != mockSCRAM {
			t.Errorf("MockSCRAM %t: unknown user asked %T", mockSCRAM, unknown)
		}
		// An md5 or plain-text secret is always asked for md5.
		for _, s := range []Secret{NewMD5Secret("carol", "pw"), NewPlainSecret("pw")} {
			if m, ok := firstRequest(t, MD5, "carol", s, opts).(*pgproto3.AuthenticationMD5Password); !ok {
				t.Errorf("%v under md5: %T", s, m)
			}
		}
	}
	salts := map[[4]byte]bool{}
	for range 8 {
		for _, s := range []Secret{{}, NewMD5Secret("carol", "pw")} {
			m, ok := firstRequest(t, MD5, "carol", s, Options{}).(*pgproto3.AuthenticationMD5Password)
			if !ok {
				t.Fatal(m)
			}
			salts[m.Salt] = true
		}
	}
	if len(salts) < 15 {
		t.Errorf("md5 salts repeat: %d distinct of 16", len(salts))
	}
}

// TestMockPrefersSCRAM: the keyed choice is the same for a name every time, follows the
// share it is given over many names, and is all or nothing at the ends.
func TestMockPrefersSCRAM(t *testing.T) {
	const names = 4000
	for _, c := range []struct{ scram, total int }{{0, 0}, {0, 5}, {1, 4}, {1, 2}, {3, 4}, {5, 5}, {7, 3}} {
		n := 0
		for i := range names {
			user := "user" + strconv.Itoa(i)
			got := MockPrefersSCRAM(user, c.scram, c.total)
			if got != MockPrefersSCRAM(user, c.scram, c.total) {
				t.Fatalf("%s: choice changes", user)
			}
			if got {
				n++
			}
		}
		want := 0.0
		if c.total > 0 {
			want = min(1, float64(c.scram)/float64(c.total))
		}
		if got := float64(n) / names; got < want-0.04 || got > want+0.04 {
			t.Errorf("%d of %d SCRAM: %.3f of names prefer SCRAM, want %.2f", c.scram, c.total, got, want)
		}
	}
	// Raising the share only turns names to SCRAM, so a reload moves few answers.
	for i := range names {
		user := "user" + strconv.Itoa(i)
		if MockPrefersSCRAM(user, 1, 4) && !MockPrefersSCRAM(user, 3, 4) {
			t.Fatalf("%s: SCRAM at 1/4 but not at 3/4", user)
		}
	}
}

// TestPlainMockFails: under Plain, a user without a secret fails as a wrong password
// does, whichever secret the mock imitates.
func TestPlainMockFails(t *testing.T) {
	for _, mockSCRAM := range []bool{false, true} {
		client, server := net.Pipe()
		done := make(chan error, 1)
		go func() {
			defer server.Close()
			_, err := AuthenticateWith(wire.NewReader(server), wire.NewWriter(server), Plain, "bob", Secret{}, Options{MockSCRAM: mockSCRAM})
			done <- err
		}()
		fe := pgproto3.NewFrontend(client, client)
		if m, err := fe.Receive(); err != nil {
			t.Fatal(err)
		} else if _, ok := m.(*pgproto3.AuthenticationCleartextPassword); !ok {
			t.Fatalf("%T", m)
		}
		fe.Send(&pgproto3.PasswordMessage{Password: "guess"})
		if err := fe.Flush(); err != nil {
			t.Fatal(err)
		}
		err := <-done
		client.Close()
		var ae *Error
		if !errors.As(err, &ae) || !ae.AuthFailed() || ae.ErrorResponse().Message != `password authentication failed for user "bob"` {
			t.Errorf("MockSCRAM %t: %v", mockSCRAM, err)
		}
	}
}

// plainCheckTime is the fastest of a few Plain exchanges for user with secret: from
// the client's password to the server's verdict.
func plainCheckTime(t *testing.T, user string, secret Secret, opts Options) time.Duration {
	t.Helper()
	best := time.Duration(1<<63 - 1)
	for range 5 {
		client, server := net.Pipe()
		done := make(chan error, 1)
		go func() {
			defer server.Close()
			_, err := AuthenticateWith(wire.NewReader(server), wire.NewWriter(server), Plain, user, secret, opts)
			done <- err
		}()
		fe := pgproto3.NewFrontend(client, client)
		if _, err := fe.Receive(); err != nil {
			t.Fatal(err)
		}
		fe.Send(&pgproto3.PasswordMessage{Password: "guess"})
		start := time.Now()
		if err := fe.Flush(); err != nil {
			t.Fatal(err)
		}
		err := <-done
		best = min(best, time.Since(start))
		client.Close()
		if errKind(err) == nil {
			t.Fatalf("%v: %v", secret, err)
		}
	}
	return best
}

// TestPlainMockWork: under Plain, an unknown user treated as having a SCRAM verifier
// costs about what a real SCRAM user's wrong password costs (PBKDF2), not nothing.
// Fastest runs are compared, so a loaded machine can only slow the real user down.
func TestPlainMockWork(t *testing.T) {
	real := plainCheckTime(t, "alice", mustSCRAM(t, "pw"), Options{})
	mock := plainCheckTime(t, "bob", Secret{}, Options{MockSCRAM: true})
	if mock < real/4 {
		t.Errorf("unknown user's check %v, a SCRAM user's %v", mock, real)
	}
}

// TestMockKeyHandedOver: MockKey and SetMockKey carry the per-process secret to
// another process: with the key set back, a user's derived salt and mock choices are
// the ones they were; with another key they differ; a key of the wrong size is refused.
func TestMockKeyHandedOver(t *testing.T) {
	old := MockKey()
	t.Cleanup(func() { SetMockKey(old) })
	if len(old) != MockKeySize {
		t.Fatalf("MockKey: %d bytes", len(old))
	}
	salt, pw := string(userSalt("nobody")), mockPassword("nobody")
	old[0] ^= 1 // a copy: changing it changes nothing
	if string(userSalt("nobody")) != salt {
		t.Fatal("changing MockKey's result changed the key")
	}
	old[0] ^= 1
	other := make([]byte, MockKeySize)
	if err := SetMockKey(other); err != nil {
		t.Fatal(err)
	}
	if string(userSalt("nobody")) == salt || mockPassword("nobody") == pw {
		t.Fatal("another key derives the same salt and mock password")
	}
	if err := SetMockKey(old); err != nil {
		t.Fatal(err)
	}
	if string(userSalt("nobody")) != salt || mockPassword("nobody") != pw {
		t.Fatal("the key set back derives another salt or mock password")
	}
	if err := SetMockKey(old[:16]); !errors.Is(err, ErrMockKeySize) {
		t.Fatalf("SetMockKey of 16 bytes: %v, want ErrMockKeySize", err)
	}
	if string(userSalt("nobody")) != salt {
		t.Fatal("a refused key replaced the key")
	}
}
