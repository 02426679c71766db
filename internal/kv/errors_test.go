package kv_test

import (
	"errors"
	"net"
	"syscall"
	"testing"

	"github.com/poolsuite/poolsuite/internal/config/nutyml"
	"github.com/poolsuite/poolsuite/internal/kv"
	"github.com/poolsuite/poolsuite/internal/kv/kvredis"
	"github.com/poolsuite/poolsuite/protocol/redis"
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

// TestCodecFunc: a constructor's codec is returned as it is, and its error as a nil
// Codec, not a nil pointer inside the interface.
func TestCodecFunc(t *testing.T) {
	want := errors.New("refused")
	c, err := kv.CodecFunc(func(p *nutyml.Pool, limit int) (*kvredis.Codec, error) {
		if limit == 0 {
			return nil, want
		}
		return kvredis.New(p, redis.Limits{})
	}, 0)(&nutyml.Pool{Redis: true})
	if c != nil || !errors.Is(err, want) {
		t.Fatalf("failing constructor: %#v, %v", c, err)
	}
	c, err = kv.CodecFunc(kvredis.New, redis.Limits{})(&nutyml.Pool{Redis: true})
	if _, ok := c.(*kvredis.Codec); !ok || err != nil {
		t.Fatalf("codec: %#v, %v", c, err)
	}
}
