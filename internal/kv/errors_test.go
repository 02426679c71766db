package kv_test

import (
	"net"
	"syscall"
	"testing"

	"github.com/poolsuite/poolsuite/internal/kv"
)

// TestErrorText: each proxy error has twemproxy's strerror text, whatever wraps it.
func TestErrorText(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&kv.ServerError{Err: kv.ErrTimeout}, "Connection timed out"},
		{&kv.ServerError{Err: kv.ErrServerUnavailable, Cause: syscall.ECONNREFUSED}, "Connection refused"},
		{&kv.ServerError{Err: kv.ErrServerUnavailable, Cause: &net.OpError{Op: "dial", Err: syscall.ECONNRESET}}, "Connection reset by peer"},
		{&kv.ServerError{Err: kv.ErrServerUnavailable, Cause: &net.DNSError{Err: "no such host", Name: "x"}}, "Host is down"},
		{kv.ErrNoServer, "Connection refused"},
		{&kv.ServerError{Err: kv.ErrServerClosed}, "unknown"},
		{&kv.ServerError{Err: kv.ErrServerClosed, Cause: syscall.ECONNRESET}, "Connection reset by peer"},
		{&kv.ServerError{Err: kv.ErrBadReply}, "Invalid argument"},
		{kv.ErrServerRemoved, "server removed"},
		{kv.ErrPrimaryDown, "primary down, writes unavailable"},
		{kv.ErrNoReplica, "no replica available"},
		{kv.ErrClosed, "unknown"},
	} {
		if got := kv.ErrorText(tc.err); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.err, got, tc.want)
		}
	}
}
