package pgpool

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

func TestTransientConnectError(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{connFailed(errors.New("connection refused")), true},
		{fmt.Errorf("open: %w", connFailed(errors.New("reset"))), true},
		{&ServerError{Response: &pgproto3.ErrorResponse{Severity: "FATAL", Code: CodeCannotConnectNow, Message: "the database system is starting up"}}, true},
		{&ServerError{Response: &pgproto3.ErrorResponse{Severity: "FATAL", Code: CodeInvalidPassword}}, false},
		{&ServerError{Response: &pgproto3.ErrorResponse{Severity: "FATAL", Code: CodeInvalidCatalogName}}, false},
		{fatalf(CodeInvalidAuthorization, "unsupported authentication"), false},
		{ErrPoolClosed, false},
	} {
		if got := transientConnectError(c.err); got != c.want {
			t.Errorf("%v: transient %v, want %v", c.err, got, c.want)
		}
	}
}

func TestQueryWaitTimeoutErrorNamesCause(t *testing.T) {
	e := queryWaitTimeoutError(waitTimeout(connFailed(errors.New("connection refused"))))
	if e.Code != CodeProtocolViolation || e.Message != "query_wait_timeout" || e.Detail == "" {
		t.Fatalf("got %+v", e)
	}
	if !errors.Is(waitTimeout(connFailed(errors.New("x"))), ErrQueryWaitTimeout) {
		t.Fatal("a wait that ran out with a cause is not ErrQueryWaitTimeout")
	}
	if e := queryWaitTimeoutError(ErrQueryWaitTimeout); e.Detail != "" {
		t.Fatalf("detail %q without a cause", e.Detail)
	}
}

func TestLimiterFitsAfter(t *testing.T) {
	var a, b limiter
	a.max.Store(2)
	a.n.Store(2)
	if a.fitsAfter() || a.fitsAfter(&b) {
		t.Fatal("a full limiter fits one more")
	}
	if !a.fitsAfter(&a) || !a.fitsAfter(&b, &a) {
		t.Fatal("a full limiter has no room after one of its connections closed")
	}
	if !b.fitsAfter() || !(*limiter)(nil).fitsAfter() {
		t.Fatal("no limit, yet no room")
	}
}

// FuzzTransientConnectError: whether a connect failure lets clients wait depends only
// on its kind and SQLSTATE, not on wrapping or on the rest of the message.
func FuzzTransientConnectError(f *testing.F) {
	f.Add(uint8(0), CodeCannotConnectNow, "the database system is starting up")
	f.Add(uint8(1), CodeConnectionFailure, "connection refused")
	f.Add(uint8(0), CodeInvalidPassword, "password authentication failed")
	f.Add(uint8(2), "", "")
	f.Fuzz(func(t *testing.T, kind uint8, code, msg string) {
		var err error
		want := false
		switch kind % 3 {
		case 0:
			err = &ServerError{Response: &pgproto3.ErrorResponse{Severity: "FATAL", Code: code, Message: msg}}
			want = code == CodeCannotConnectNow
		case 1:
			err = &Error{Severity: "FATAL", Code: code, Message: msg}
			want = code == CodeConnectionFailure
		default:
			err = errors.New(msg)
		}
		if got := transientConnectError(err); got != want {
			t.Fatalf("%v: transient %v, want %v", err, got, want)
		}
		if got := transientConnectError(fmt.Errorf("wrapped: %w", err)); got != want {
			t.Fatalf("wrapped %v: transient %v, want %v", err, got, want)
		}
	})
}
