package kvmemcache

import (
	"github.com/poolsuite/poolsuite/internal/kv"
	"github.com/poolsuite/poolsuite/protocol/memcache"
)

// session is one client connection's protocol state.
type session struct {
	conn *memcache.Conn
}

// Parse implements kv.Session: one request, as protocol/memcache plans it. The Plan
// lives in the kv.Request's Scratch, so that each pending request keeps its own until
// Merge.
func (s *session) Parse(buf []byte, kr *kv.Request, rt kv.Router) (int, error) {
	pl, _ := kr.Scratch.(*memcache.Plan)
	if pl == nil {
		pl = &memcache.Plan{}
		kr.Scratch = pl
	}
	n, err := s.conn.Parse(buf, pl, rt)
	if err != nil || n == 0 {
		return n, err
	}
	class := uint8(ClassText)
	if p, _ := s.conn.Protocol(); p == memcache.Binary {
		class = ClassBinary
	}
	for i := range pl.Parts {
		pt := &pl.Parts[i]
		// Writes (and reads that change the item, such as gat) reach the primary and
		// its replicas; a reply carrying items may come from a replica.
		f := kr.AddFrag(pt.Shard, pt.ReadOnly || pt.Fetch)
		f.Replicate = !pt.ReadOnly
		f.Class = class
		f.Payload = append(f.Payload, pt.Payload...)
	}
	if len(pl.Parts) == 0 {
		kr.Local = append(kr.Local, pl.Local...)
	}
	kr.Close = pl.Close
	kr.AlwaysMerge = pl.Rewrite
	return n, nil
}

// Merge implements kv.Session. memcache.Conn.Reply reads only the Plan, which belongs
// to this request, so it is safe on the writer goroutine while Parse goes on.
func (s *session) Merge(dst []byte, kr *kv.Request, replies [][]byte) []byte {
	pl, _ := kr.Scratch.(*memcache.Plan)
	if pl == nil {
		return memcache.AppendServerError(dst, "unknown")
	}
	out, failed := s.conn.Reply(dst, pl, replies)
	if failed {
		kr.CloseAfterReply = true
	}
	return out
}
