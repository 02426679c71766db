package kvmemcache

import (
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
