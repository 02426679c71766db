package auth

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/poolsuite/poolsuite/internal/testenv"
	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// serverResult is what the server side of a pipe exchange produced.
type serverResult struct {
	cred *Credentials
	err  error
}

// servePipe runs Authenticate on one end of a net.Pipe and returns the other end for
// the client, and a channel with the server's result. On success the server sends
// AuthenticationOk; on an *Error it sends the error's ErrorResponse; then it closes.
func servePipe(t *testing.T, method Method, user string, secret Secret) (net.Conn, <-chan serverResult) {
	t.Helper()
	client, server := net.Pipe()
	deadline := time.Now().Add(30 * time.Second)
	client.SetDeadline(deadline)
	server.SetDeadline(deadline)
	t.Cleanup(func() { client.Close() })
	done := make(chan serverResult, 1)
	go func() {
		defer server.Close()
		r, w := wire.NewReader(server), wire.NewWriter(server)
		cred, err := Authenticate(r, w, method, user, secret)
		var ae *Error
		switch {
		case err == nil:
			w.Send(&pgproto3.AuthenticationOk{})
		case errors.As(err, &ae):
			w.Send(ae.ErrorResponse())
		}
		w.Flush()
		done <- serverResult{cred, err}
	}()
	return client, done
}

// loginPipe runs Login against Authenticate over a net.Pipe.
func loginPipe(t *testing.T, method Method, user string, secret Secret, cred *Credentials) (serverResult, error) {
	t.Helper()
	conn, done := servePipe(t, method, user, secret)
	err := Login(wire.NewReader(conn), wire.NewWriter(conn), user, cred)
	conn.Close()
	return <-done, err
}

// fakeServer runs script on the server end of a pipe, and returns the client end.
// script's error is reported by the returned wait function.
func fakeServer(t *testing.T, script func(r *wire.Reader, w *wire.Writer) error) (net.Conn, func() error) {
	t.Helper()
	client, server := net.Pipe()
	deadline := time.Now().Add(30 * time.Second)
	client.SetDeadline(deadline)
	server.SetDeadline(deadline)
	t.Cleanup(func() { client.Close() })
	done := make(chan error, 1)
	go func() {
		defer server.Close()
		done <- script(wire.NewReader(server), wire.NewWriter(server))
	}()
	return client, func() error { return <-done }
}

func mustSCRAM(t testing.TB, password string) Secret {
	t.Helper()
	s, err := NewSCRAMSecret(password)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func errKind(err error) error {
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Kind
	}
	return nil
}
