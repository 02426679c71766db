package auth

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

// miniServer accepts one connection on 127.0.0.1:0, reads the StartupMessage,
// runs Authenticate, and answers AuthenticationOk and ReadyForQuery, or the error.
// It reports Authenticate's result on the returned channel.
func miniServer(t *testing.T, method Method, secret Secret) (addr string, result <-chan serverResult) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	done := make(chan serverResult, 1)
	go func() {
		res := serverResult{}
		defer func() { done <- res }()
		conn, err := ln.Accept()
		if err != nil {
			res.err = err
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(30 * time.Second))
		r, w := wire.NewReader(conn), wire.NewWriter(conn)
		startup, err := r.ReadStartup()
		if err != nil {
			res.err = err
			return
		}
		var sm pgproto3.StartupMessage
		if err := sm.Decode(startup[4:]); err != nil {
			res.err = err
			return
		}
		res.cred, res.err = Authenticate(r, w, method, sm.Parameters["user"], secret)
		var ae *Error
		switch {
		case res.err == nil:
			w.Send(&pgproto3.AuthenticationOk{})
			w.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
		case errors.As(res.err, &ae):
			w.Send(ae.ErrorResponse())
		}
		w.Flush()
		r.Next() // Terminate, or EOF
	}()
	return ln.Addr().String(), done
}

// TestPgxClient authenticates pgx, a real client, against Authenticate.
func TestPgxClient(t *testing.T) {
	const user, password = "dave", "pgx p@ss"
	tests := []struct {
		name   string
		method Method
		secret Secret
	}{
		{"scram/scram", SCRAMSHA256, mustSCRAM(t, password)},
		{"scram/plain", SCRAMSHA256, NewPlainSecret(password)},
		{"md5/md5", MD5, NewMD5Secret(user, password)},
		{"md5/plain", MD5, NewPlainSecret(password)},
		{"md5/scram", MD5, mustSCRAM(t, password)},
		{"plain/plain", Plain, NewPlainSecret(password)},
		{"plain/md5", Plain, NewMD5Secret(user, password)},
		{"plain/scram", Plain, mustSCRAM(t, password)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, pw := range []string{password, "wrong"} {
				addr, result := miniServer(t, tt.method, tt.secret)
				host, port, _ := net.SplitHostPort(addr)
				u := url.URL{Scheme: "postgres", User: url.UserPassword(user, pw), Host: net.JoinHostPort(host, port),
					Path: "/db", RawQuery: "sslmode=disable&connect_timeout=" + strconv.Itoa(20)}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				conn, err := pgconn.Connect(ctx, u.String())
				cancel()
				if pw == password {
					if err != nil {
						t.Fatalf("pgx: %v", err)
					}
					conn.Close(context.Background())
					if res := <-result; res.err != nil {
						t.Fatalf("Authenticate: %v", res.err)
					}
					continue
				}
				var pgErr *pgconn.PgError
				if !errors.As(err, &pgErr) || pgErr.Code != "28P01" {
					t.Fatalf("pgx with a wrong password: err = %v, want SQLSTATE 28P01", err)
				}
				if res := <-result; !errors.Is(res.err, ErrPasswordMismatch) {
					t.Fatalf("Authenticate with a wrong password: %v", res.err)
				}
			}
		})
	}
}
