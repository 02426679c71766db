package kvmemcache

import (
	"errors"
	"syscall"
	"testing"

	"github.com/poolsuite/poolsuite/internal/config/nutyml"
	"github.com/poolsuite/poolsuite/internal/kv"
	"github.com/poolsuite/poolsuite/protocol/memcache"
)

type lastByte int

func (n lastByte) Shard(key []byte) int { return int(key[len(key)-1]) % int(n) }

func TestSessionPlans(t *testing.T) {
	c, err := New(&nutyml.Pool{}, memcache.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(&nutyml.Pool{Redis: true}, memcache.Limits{}); !errors.Is(err, ErrNotMemcached) {
		t.Fatalf("redis pool: %v", err)
	}
	s := c.NewSession()
	parse := func(in string) *kv.Request {
		t.Helper()
		var r kv.Request
		n, err := s.Parse([]byte(in), &r, lastByte(2))
		if err != nil || n != len(in) {
			t.Fatalf("parse %q: %d %v", in, n, err)
		}
		return &r
	}
	// A plain get: one text fragment, its reply passed through.
	r := parse("get a1\r\n")
	if len(r.Frags) != 1 || r.Frags[0].Shard != 1 || r.Frags[0].Class != ClassText || r.AlwaysMerge || string(r.Frags[0].Payload) != "get a1\r\n" {
		t.Fatalf("get: %+v %+v", r, r.Frags[0])
	}
	// noreply: sent without it, the reply dropped by Merge.
	r = parse("set a0 0 0 1 noreply\r\nx\r\n")
	if len(r.Frags) != 1 || !r.AlwaysMerge || string(r.Frags[0].Payload) != "set a0 0 0 1\r\nx\r\n" {
		t.Fatalf("noreply set: %+v %q", r, r.Frags[0].Payload)
	}
	if out := s.Merge(nil, r, [][]byte{[]byte("STORED\r\n")}); len(out) != 0 {
		t.Fatalf("noreply answer: %q", out)
	}
	// mn: answered locally; a failed multi-get closes after its reply.
	if r = parse("mn\r\n"); len(r.Frags) != 0 || string(r.Local) != "MN\r\n" {
		t.Fatalf("mn: %+v", r)
	}
	r = parse("get a0 a1\r\n")
	if len(r.Frags) != 2 {
		t.Fatalf("split: %d frags", len(r.Frags))
	}
	out := s.Merge(nil, r, [][]byte{[]byte("END\r\n"), c.AppendError(nil, &kv.ServerError{Err: kv.ErrTimeout})})
	if string(out) != "SERVER_ERROR Connection timed out\r\n" || !r.CloseAfterReply {
		t.Fatalf("failed split: %q close %v", out, r.CloseAfterReply)
	}
	// A binary connection's requests go on binary connections.
	b := c.NewSession()
	get := memcache.AppendBinaryRequest(nil, memcache.OpGet, 9, 0, nil, []byte("k1"), nil)
	var br kv.Request
	if n, err := b.Parse(get, &br, lastByte(2)); err != nil || n != len(get) || len(br.Frags) != 1 || br.Frags[0].Class != ClassBinary || !br.AlwaysMerge {
		t.Fatalf("binary get: %d %v %+v", n, err, br)
	}
	if c.Classes() != 2 {
		t.Fatal("classes")
	}
	if n, err := c.ClassReplyLen(ClassBinary, memcache.AppendBinaryResponse(nil, memcache.OpGet, 1, 9, 0, nil, nil, []byte("Not found"))); err != nil || n != 24+9 {
		t.Fatalf("binary reply len: %d %v", n, err)
	}
}

func TestErrorText(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&kv.ServerError{Err: kv.ErrTimeout}, "Connection timed out"},
		{&kv.ServerError{Err: kv.ErrServerUnavailable, Cause: syscall.ECONNREFUSED}, "Connection refused"},
		{kv.ErrNoServer, "Connection refused"},
		{&kv.ServerError{Err: kv.ErrServerClosed}, "unknown"},
		{&kv.ServerError{Err: kv.ErrServerClosed, Cause: syscall.ECONNRESET}, "Connection reset by peer"},
		{&kv.ServerError{Err: kv.ErrBadReply}, "Invalid argument"},
		{kv.ErrPrimaryDown, "primary down, writes unavailable"},
	} {
		if got := ErrorText(tc.err); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.err, got, tc.want)
		}
	}
}
