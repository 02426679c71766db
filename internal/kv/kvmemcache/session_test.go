package kvmemcache

import (
	"errors"
	"strings"
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
	// mn: answered locally; a failed multi-get gets one SERVER_ERROR and keeps the
	// connection.
	if r = parse("mn\r\n"); len(r.Frags) != 0 || string(r.Local) != "MN\r\n" {
		t.Fatalf("mn: %+v", r)
	}
	r = parse("get a0 a1\r\n")
	if len(r.Frags) != 2 {
		t.Fatalf("split: %d frags", len(r.Frags))
	}
	out := s.Merge(nil, r, [][]byte{[]byte("END\r\n"), c.AppendError(nil, &kv.ServerError{Err: kv.ErrTimeout})})
	if string(out) != "SERVER_ERROR Connection timed out\r\n" || r.CloseAfterReply {
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

// TestSessionReplicateFlags: writes (and reads that change the item) are replicated;
// replies carrying items may come from a replica; pure reads are not replicated.
func TestSessionReplicateFlags(t *testing.T) {
	c, err := New(&nutyml.Pool{}, memcache.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	bin := func(op byte, extras []byte, value string) string {
		return string(memcache.AppendBinaryRequest(nil, op, 7, 0, extras, []byte("k1"), []byte(value)))
	}
	cases := []struct {
		in                  string
		readOnly, replicate bool
	}{
		{"get a1\r\n", true, false},
		{"gets a1 b1\r\n", true, false},
		{"gat 10 a1\r\n", true, true},
		{"gats 10 a1 b1\r\n", true, true},
		{"set a1 0 0 1\r\nx\r\n", false, true},
		{"add a1 0 0 1 noreply\r\nx\r\n", false, true},
		{"cas a1 0 0 1 5\r\nx\r\n", false, true},
		{"delete a1\r\n", false, true},
		{"incr a1 1\r\n", false, true},
		{"touch a1 10\r\n", false, true},
		{"mg a1 v\r\n", true, false},
		{"mg a1 v T10\r\n", true, true},
		{"ms a1 1\r\nx\r\n", false, true},
		{"md a1 q\r\n", false, true},
		{"ma a1\r\n", false, true},
		{"version\r\n", true, false},
		{bin(memcache.OpGet, nil, ""), true, false},
		{bin(memcache.OpGAT, []byte{0, 0, 0, 10}, ""), true, true},
		{bin(memcache.OpSet, make([]byte, 8), "v"), false, true},
		{bin(memcache.OpDelete, nil, ""), false, true},
		{bin(memcache.OpTouch, []byte{0, 0, 0, 10}, ""), false, true},
	}
	for _, tc := range cases {
		s := c.NewSession()
		var r kv.Request
		n, err := s.Parse([]byte(tc.in), &r, lastByte(2))
		if err != nil || n != len(tc.in) || len(r.Frags) == 0 {
			t.Fatalf("parse %q: %d %v %d frags", tc.in, n, err, len(r.Frags))
		}
		for _, f := range r.Frags {
			if f.ReadOnly != tc.readOnly || f.Replicate != tc.replicate {
				t.Errorf("%q: ReadOnly %v Replicate %v, want %v %v", tc.in, f.ReadOnly, f.Replicate, tc.readOnly, tc.replicate)
			}
		}
	}
}

// TestSessionStateMoves: a session exported between requests resumes in the protocol
// it was detected to speak (a fresh one detects it from its next byte), and one
// exported while the bytes of an oversized value are still arriving skips the rest of
// them, then parses the next request; a state ExportState never makes is refused.
func TestSessionStateMoves(t *testing.T) {
	c, err := New(&nutyml.Pool{}, memcache.Limits{MaxValue: 10})
	if err != nil {
		t.Fatal(err)
	}
	parse := func(s kv.Session, in string) (*kv.Request, int, error) {
		var r kv.Request
		n, err := s.Parse([]byte(in), &r, lastByte(2))
		return &r, n, err
	}
	move := func(s kv.Session, want string) kv.Session {
		t.Helper()
		st := s.(kv.SessionExporter).ExportState()
		if string(st) != want {
			t.Fatalf("state %q, want %q", st, want)
		}
		moved, err := c.ImportSession(st)
		if err != nil {
			t.Fatalf("ImportSession(%q): %v", st, err)
		}
		return moved
	}
	binGet := string(memcache.AppendBinaryRequest(nil, memcache.OpGet, 9, 0, nil, []byte("k1"), nil))

	text := c.NewSession()
	parse(text, "get a1\r\n")
	text = move(text, "t")
	// A text session stays text: a binary packet is not a binary request for it.
	if r, n, err := parse(text, binGet); err == nil && n > 0 {
		t.Errorf("moved text session parsed a binary packet: %+v", r)
	}
	if r, n, err := parse(move(text, "t"), "get a1\r\n"); err != nil || n != 8 || len(r.Frags) != 1 || r.Frags[0].Class != ClassText {
		t.Errorf("moved text session's get: %d %v %+v", n, err, r)
	}

	bin := c.NewSession()
	parse(bin, binGet)
	bin = move(bin, "b")
	if r, n, err := parse(bin, binGet); err != nil || n != len(binGet) || len(r.Frags) != 1 || r.Frags[0].Class != ClassBinary {
		t.Errorf("moved binary session's get: %d %v %+v", n, err, r)
	}

	fresh := move(c.NewSession(), "?")
	if r, _, err := parse(fresh, binGet); err != nil || len(r.Frags) != 1 || r.Frags[0].Class != ClassBinary {
		t.Errorf("moved fresh session does not detect binary: %v %+v", err, r)
	}

	// An oversized set whose value is half sent: refused at once, the rest skipped
	// by the resumed session.
	big := c.NewSession()
	if r, n, err := parse(big, "set k 0 0 30\r\n"); err != nil || n != 14 || len(r.Frags) != 1 {
		t.Fatalf("oversized set: %d %v %+v", n, err, r)
	}
	if _, n, err := parse(big, strings.Repeat("v", 12)); err != nil || n != 12 {
		t.Fatalf("value bytes: %d %v", n, err)
	}
	big = move(big, "t:20")
	rest := strings.Repeat("v", 18) + "\r\n"
	if r, n, err := parse(big, rest+"get k\r\n"); err != nil || n != 20 || len(r.Frags) != 0 || len(r.Local) != 0 {
		t.Fatalf("skipped value bytes: %d %v %+v", n, err, r)
	}
	if r, n, err := parse(move(big, "t"), "get k\r\n"); err != nil || n != 7 || len(r.Frags) != 1 {
		t.Errorf("get after the skipped value: %d %v %+v", n, err, r)
	}
	// Without the bytes to skip, the rest of the value would be taken for a command.
	if _, _, err := parse(move(c.NewSession(), "?"), rest); err == nil {
		t.Error("the value's rest parses as a request in a new session")
	}

	for _, bad := range []string{"", "x", "tt", "t:", "t:0", "t:01", "?:5", "t:-1", "t:+1", "b:1x", "t:99999999999999999999", "t:4611686018427387907"} {
		if _, err := c.ImportSession([]byte(bad)); !errors.Is(err, ErrBadState) {
			t.Errorf("ImportSession(%q): %v, want ErrBadState", bad, err)
		}
	}
	if _, err := c.ImportSession([]byte("t:4611686018427387906")); err != nil {
		t.Errorf("the largest skip refused: %v", err)
	}
}
