package kvredis

import (
	"errors"
	"syscall"
	"testing"

	"github.com/poolsuite/poolsuite/internal/config/nutyml"
	"github.com/poolsuite/poolsuite/internal/kv"
	"github.com/poolsuite/poolsuite/protocol/redis"
)

type lastByte int

func (n lastByte) Shard(key []byte) int {
	if len(key) == 0 {
		return 0
	}
	return int(key[len(key)-1]) % int(n)
}

func parse(t *testing.T, s kv.Session, in string) *kv.Request {
	t.Helper()
	var req kv.Request
	n, err := s.Parse([]byte(in), &req, lastByte(2))
	if err != nil || n != len(in) {
		t.Fatalf("parse %q: n=%d err=%v", in, n, err)
	}
	return &req
}

func TestSessionLocalAndAuth(t *testing.T) {
	c, err := New(&nutyml.Pool{Redis: true, RedisAuth: "pw"}, redis.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	s := c.NewSession()
	for _, tc := range []struct{ in, want string }{
		{"GET a\r\n", "-NOAUTH Authentication required\r\n"},
		{"PING\r\n", "-NOAUTH Authentication required\r\n"},
		{"AUTH nope\r\n", "-ERR invalid password\r\n"},
		{"AUTH default pw\r\n", "+OK\r\n"},
		{"PING\r\n", "+PONG\r\n"},
		{"PING x\r\n", "$1\r\nx\r\n"},
		{"ECHO hi\r\n", "$2\r\nhi\r\n"},
		{"SELECT 0\r\n", "+OK\r\n"},
		{"KEYS *\r\n", "-ERR unsupported command 'KEYS'\r\n"},
		{"GET\r\n", "-ERR wrong number of arguments for 'get' command\r\n"},
		{"EVAL s 2 a0 a1\r\n", "-ERR EVAL keys live on different servers: the proxy needs every key of a script on one server (use a hash tag)\r\n"},
	} {
		req := parse(t, s, tc.in)
		if string(req.Local) != tc.want || len(req.Frags) != 0 {
			t.Errorf("%q: local %q frags %d, want %q", tc.in, req.Local, len(req.Frags), tc.want)
		}
	}
	req := parse(t, s, "QUIT\r\n")
	if !req.Close || string(req.Local) != "+OK\r\n" {
		t.Fatalf("quit: %+v", req)
	}
	// Inline requests go to servers re-encoded.
	req = parse(t, s, "GET a1\r\n")
	if len(req.Frags) != 1 || req.Frags[0].Shard != 1 || string(req.Frags[0].Payload) != "*2\r\n$3\r\nGET\r\n$2\r\na1\r\n" || !req.Frags[0].ReadOnly {
		t.Fatalf("get: %+v", req.Frags[0])
	}
	// Split.
	req = parse(t, s, "*4\r\n$3\r\nDEL\r\n$2\r\na0\r\n$2\r\na1\r\n$2\r\nb0\r\n")
	if len(req.Frags) != 2 {
		t.Fatalf("del frags = %d", len(req.Frags))
	}
	if got := string(s.Merge(nil, req, [][]byte{[]byte(":2\r\n"), []byte(":1\r\n")})); got != ":3\r\n" {
		t.Fatalf("merge = %q", got)
	}
	// A split MGET whose fragment failed: the fragment's proxy error alone, and the
	// connection is kept (no CloseAfterReply).
	req = parse(t, s, "MGET a0 a1 b0\r\n")
	failed := c.AppendError(nil, &kv.ServerError{Server: "s1", Err: kv.ErrServerUnavailable, Cause: syscall.ECONNREFUSED})
	if got := string(s.Merge(nil, req, [][]byte{[]byte("*2\r\n$1\r\nx\r\n$-1\r\n"), failed})); got != "-ERR Connection refused\r\n" || req.CloseAfterReply {
		t.Fatalf("mget with a failed fragment = %q, close %v", got, req.CloseAfterReply)
	}
	// Malformed input is an error.
	var r kv.Request
	if _, err := s.Parse([]byte("*1\r\n+x\r\n"), &r, lastByte(2)); !errors.Is(err, redis.ErrProtocol) {
		t.Fatalf("malformed: %v", err)
	}
}

func TestNoPasswordAndErrors(t *testing.T) {
	c, _ := New(&nutyml.Pool{Redis: true}, redis.Limits{})
	s := c.NewSession()
	if req := parse(t, s, "AUTH x\r\n"); string(req.Local) != "-ERR Client sent AUTH, but no password is set\r\n" {
		t.Fatalf("auth without password: %q", req.Local)
	}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&kv.ServerError{Server: "s", Err: kv.ErrTimeout}, "-ERR Connection timed out\r\n"},
		{&kv.ServerError{Server: "s", Err: kv.ErrServerUnavailable, Cause: syscall.ECONNREFUSED}, "-ERR Connection refused\r\n"},
		{&kv.ServerError{Server: "s", Err: kv.ErrServerClosed}, "-ERR unknown\r\n"},
		{kv.ErrNoServer, "-ERR Connection refused\r\n"},
		{kv.ErrPrimaryDown, "-ERR primary down, writes unavailable\r\n"},
		{&kv.ServerError{Server: "s", Err: kv.ErrHandshake, Cause: c.CheckHandshake([]byte("-WRONGPASS invalid username-password pair or user is disabled.\r\n"))}, "-NOAUTH Authentication required.\r\n"},
		{&kv.ServerError{Server: "s", Err: kv.ErrHandshake, Cause: c.CheckHandshake([]byte("-ERR DB index is out of range\r\n"))}, "-ERR server refused the proxy's connection setup\r\n"},
	} {
		if got := string(c.AppendError(nil, tc.err)); got != tc.want {
			t.Errorf("%v: reply %q, want %q", tc.err, got, tc.want)
		}
	}
	if _, err := New(&nutyml.Pool{}, redis.Limits{}); !errors.Is(err, ErrNotRedis) {
		t.Fatalf("memcached pool: %v", err)
	}
	hs, n := c.Handshake(nil, kv.ServerInfo{Password: "p", DB: 2})
	if n != 2 || string(hs) != "*2\r\n$4\r\nAUTH\r\n$1\r\np\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n" {
		t.Fatalf("handshake %q %d", hs, n)
	}
	var he *HandshakeError
	if err := c.CheckHandshake([]byte("-WRONGPASS bad\r\n")); !errors.As(err, &he) || he.Reply != "WRONGPASS bad" || !he.Auth {
		t.Fatalf("check handshake: %v", err)
	}
	if err := c.CheckHandshake([]byte("-ERR DB index is out of range\r\n")); !errors.As(err, &he) || he.Auth {
		t.Fatalf("check handshake of SELECT: %v", err)
	}
	// A server without a password lets every connection in: its error to AUTH is none.
	if err := c.CheckHandshake([]byte("-ERR Client sent AUTH, but no password is set\r\n")); err != nil {
		t.Fatalf("check handshake, server without password: %v", err)
	}
}

// BenchmarkSessionParse parses and routes GETs and a split MGET: no allocation per
// request once the request's buffers have grown.
func BenchmarkSessionParse(b *testing.B) {
	c, _ := New(&nutyml.Pool{Redis: true}, redis.Limits{})
	s := c.NewSession()
	get := redis.AppendCommandStrings(nil, "GET", "key:0001")
	mget := redis.AppendCommandStrings(nil, "MGET", "a0", "a1", "a2", "a3", "a4", "a5")
	var req kv.Request
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		for _, in := range [][]byte{get, mget} {
			req.Frags, req.Local = req.Frags[:0], req.Local[:0]
			if n, err := s.Parse(in, &req, lastByte(4)); err != nil || n != len(in) {
				b.Fatal(err)
			}
		}
	}
}

// TestSessionStateMoves: a session exported between requests resumes with its AUTH
// (and without, if it had none); a pool without redis_auth is always authenticated;
// a state ExportState never makes is refused.
func TestSessionStateMoves(t *testing.T) {
	c, err := New(&nutyml.Pool{Redis: true, RedisAuth: "pw"}, redis.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	authed := c.NewSession()
	parse(t, authed, "AUTH pw\r\n")
	fresh := c.NewSession()
	for _, tc := range []struct {
		s    kv.Session
		want string
	}{{authed, "$-1\r\n"}, {fresh, "-NOAUTH Authentication required\r\n"}} {
		moved, err := c.ImportSession(tc.s.(kv.SessionExporter).ExportState())
		if err != nil {
			t.Fatal(err)
		}
		req := parse(t, moved, "GET a\r\n")
		got := string(req.Local)
		if len(req.Frags) == 1 {
			got = "$-1\r\n" // routed to a server: authenticated
		}
		if got != tc.want {
			t.Errorf("moved session's GET: %q, want %q", got, tc.want)
		}
	}
	open, _ := New(&nutyml.Pool{Redis: true}, redis.Limits{})
	moved, err := open.ImportSession([]byte{stateNotAuthed})
	if err != nil || len(parse(t, moved, "GET a\r\n").Frags) != 1 {
		t.Errorf("pool without redis_auth: a moved session is not served (%v)", err)
	}
	for _, bad := range [][]byte{nil, {}, []byte("2"), []byte("11")} {
		if _, err := c.ImportSession(bad); !errors.Is(err, ErrBadState) {
			t.Errorf("ImportSession(%q): %v, want ErrBadState", bad, err)
		}
	}
}
