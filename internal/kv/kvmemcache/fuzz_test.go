package kvmemcache

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/poolsuite/poolsuite/internal/config/nutyml"
	"github.com/poolsuite/poolsuite/internal/kv"
	"github.com/poolsuite/poolsuite/protocol/memcache"
)

// FuzzSession parses a client stream request by request and merges each request with
// replies (a miss, or a proxy error): it never panics, consumes what it parses, and
// gives every fragment a class of the codec.
func FuzzSession(f *testing.F) {
	for _, s := range []string{
		"get a0 a1 a2\r\nset k 0 0 1 noreply\r\nx\r\nmn\r\n",
		"mg a0 v q\r\nms a1 2 q\r\nhi\r\nmn\r\n",
		string(memcache.AppendBinaryRequest(nil, memcache.OpGetKQ, 1, 0, nil, []byte("a0"), nil)) +
			string(memcache.AppendBinaryRequest(nil, memcache.OpGetKQ, 2, 0, nil, []byte("a1"), nil)) +
			string(memcache.AppendBinaryRequest(nil, memcache.OpNoop, 3, 0, nil, nil, nil)),
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	c, _ := New(&nutyml.Pool{}, memcache.Limits{MaxValue: 4096})
	f.Fuzz(func(t *testing.T, in []byte, fail bool) {
		s := c.NewSession()
		var r kv.Request
		for len(in) > 0 {
			r.Frags, r.Local, r.Close, r.AlwaysMerge, r.CloseAfterReply = r.Frags[:0], r.Local[:0], false, false, false
			n, err := s.Parse(in, &r, lastByte(3))
			if err != nil || n == 0 {
				return
			}
			if n > len(in) {
				t.Fatalf("consumed %d of %d", n, len(in))
			}
			in = in[n:]
			replies := make([][]byte, len(r.Frags))
			for i, fr := range r.Frags {
				if fr.Class > ClassBinary {
					t.Fatalf("class %d", fr.Class)
				}
				switch {
				case fail:
					replies[i] = c.AppendError(nil, kv.ErrTimeout)
				case fr.Class == ClassBinary:
					replies[i] = memcache.AppendBinaryResponse(nil, memcache.OpNoop, 0, 0xffffffff, 0, nil, nil, nil)
				default:
					replies[i] = []byte("END\r\n")
				}
			}
			if len(r.Frags) > 1 || r.AlwaysMerge {
				s.Merge(nil, &r, replies)
			}
			if r.Close {
				return
			}
		}
	})
}

// FuzzImportSession: a state ImportSession accepts is one ExportState makes (the
// resumed session exports it unchanged), anything else is ErrBadState, and a resumed
// session parses a stream without panicking.
func FuzzImportSession(f *testing.F) {
	for _, s := range []string{"?", "t", "b", "t:72", "b:1048600", "?:1", "t:0", "t:01", "x", "", "t:-1", "t:99999999999999999999"} {
		f.Add([]byte(s), []byte("get a0\r\n"))
	}
	c, _ := New(&nutyml.Pool{}, memcache.Limits{MaxValue: 4096})
	f.Fuzz(func(t *testing.T, state, in []byte) {
		s, err := c.ImportSession(state)
		if err != nil {
			if !errors.Is(err, ErrBadState) {
				t.Fatalf("ImportSession(%q): %v, want ErrBadState", state, err)
			}
			return
		}
		if got := s.(kv.SessionExporter).ExportState(); !bytes.Equal(got, state) {
			t.Fatalf("ImportSession(%q) exports %q", state, got)
		}
		var r kv.Request
		for len(in) > 0 {
			r.Frags, r.Local = r.Frags[:0], r.Local[:0]
			n, err := s.Parse(in, &r, lastByte(3))
			if err != nil || n == 0 {
				return
			}
			in = in[n:]
		}
	})
}

// FuzzSessionMoves: a session exported after any request of a stream and resumed by
// another codec's ImportSession parses the rest of the stream into the same requests
// (fragments, payloads, classes, local answers) as the session that never moved.
func FuzzSessionMoves(f *testing.F) {
	big := "set big 0 0 5000\r\n" + strings.Repeat("v", 5000) + "\r\n"
	for _, s := range []string{
		"get a0 a1 a2\r\nset k 0 0 1 noreply\r\nx\r\nmn\r\n",
		"mg a0 v q\r\nms a1 2 q\r\nhi\r\nmn\r\n",
		big + "get big\r\n",
		string(memcache.AppendBinaryRequest(nil, memcache.OpGetKQ, 1, 0, nil, []byte("a0"), nil)) +
			string(memcache.AppendBinaryRequest(nil, memcache.OpNoop, 3, 0, nil, nil, nil)) +
			string(memcache.AppendBinaryRequest(nil, memcache.OpSet, 4, 0, make([]byte, 8), []byte("a1"), make([]byte, 5000))) +
			string(memcache.AppendBinaryRequest(nil, memcache.OpGet, 5, 0, nil, []byte("a1"), nil)),
	} {
		for _, cut := range []uint16{0, 1, 2, 3, 100, 2000} {
			f.Add([]byte(s), cut, uint16(700))
		}
	}
	c, _ := New(&nutyml.Pool{}, memcache.Limits{MaxValue: 4096})
	f.Fuzz(func(t *testing.T, in []byte, cut, chunk uint16) {
		// The client sends in chunks of chunk bytes (at least 1); the session moves
		// after cut requests, when the engine would hand it over: nothing unparsed.
		step := max(int(chunk), 1)
		run := func(move bool) []string {
			s := c.NewSession()
			var out []string
			var r kv.Request
			buf, sent, parsed := []byte(nil), 0, 0
			for sent < len(in) || len(buf) > 0 {
				if move && parsed == int(cut) && len(buf) == 0 {
					moved, err := c.ImportSession(s.(kv.SessionExporter).ExportState())
					if err != nil {
						t.Fatalf("ImportSession(%q): %v", s.(kv.SessionExporter).ExportState(), err)
					}
					s = moved
				}
				r.Frags, r.Local, r.Close = r.Frags[:0], r.Local[:0], false
				n, err := s.Parse(buf, &r, lastByte(3))
				if err != nil {
					return append(out, "error")
				}
				if n == 0 {
					if sent == len(in) {
						return append(out, "incomplete")
					}
					k := min(step, len(in)-sent)
					buf = append(buf, in[sent:sent+k]...)
					sent += k
					continue
				}
				buf = buf[n:]
				parsed++
				d := fmt.Sprintf("n=%d local=%q close=%v", n, r.Local, r.Close)
				for _, fr := range r.Frags {
					d += fmt.Sprintf(" [%d %d %q]", fr.Shard, fr.Class, fr.Payload)
				}
				out = append(out, d)
				if r.Close {
					return out
				}
			}
			return out
		}
		want, got := run(false), run(true)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("moved after %d requests:\n got %q\nwant %q", cut, got, want)
		}
	})
}
