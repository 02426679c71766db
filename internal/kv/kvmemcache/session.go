package kvmemcache

import (
	"errors"
	"strconv"

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
// to this request, so it is safe on the writer goroutine while Parse goes on. A
// multi-get that failed as a whole is answered with twemproxy's one SERVER_ERROR, but
// the connection stays open (twemproxy closes it): every part's reply was read, so
// the client's later requests are answered in order. A failure that produced no reply
// at all (a Plan that does not fit the replies) closes it, so that the client never
// waits for an answer that will not come.
func (s *session) Merge(dst []byte, kr *kv.Request, replies [][]byte) []byte {
	pl, _ := kr.Scratch.(*memcache.Plan)
	if pl == nil {
		return memcache.AppendServerError(dst, "unknown")
	}
	out, failed := s.conn.Reply(dst, pl, replies)
	if failed && len(out) == len(dst) {
		kr.CloseAfterReply = true
	}
	return out
}

// ExportState implements kv.SessionExporter. Between requests a memcached client
// carries only what memcache.ConnState holds: the protocol detected from its first
// byte, and the bytes still to skip of an oversized value it is sending. It is
// encoded as one byte, stateUnknown, stateText or stateBinary, followed for bytes to
// skip by ':' and their count in decimal (no leading zero): "t", "b:1048578".
func (s *session) ExportState() []byte {
	st := s.conn.State()
	b := []byte{stateUnknown}
	if st.Detected {
		b[0] = stateText
		if st.Protocol == memcache.Binary {
			b[0] = stateBinary
		}
	}
	if st.Discard > 0 {
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(st.Discard), 10)
	}
	return b
}

// Session states, as ExportState encodes them.
const (
	stateUnknown = '?' // no byte received yet
	stateText    = 't'
	stateBinary  = 'b'
)

// ErrBadState is returned by ImportSession for a state ExportState does not produce.
var ErrBadState = errors.New("kvmemcache: invalid session state")

// decodeState parses a state made by ExportState.
func decodeState(b []byte) (memcache.ConnState, error) {
	var st memcache.ConnState
	if len(b) == 0 {
		return st, ErrBadState
	}
	switch b[0] {
	case stateUnknown:
	case stateText:
		st.Detected = true
	case stateBinary:
		st.Detected, st.Protocol = true, memcache.Binary
	default:
		return st, ErrBadState
	}
	if len(b) == 1 {
		return st, nil
	}
	digits := b[2:]
	if b[1] != ':' || len(digits) == 0 || digits[0] == '0' {
		return st, ErrBadState
	}
	for _, d := range digits {
		if d < '0' || d > '9' {
			return st, ErrBadState
		}
	}
	n, err := strconv.ParseInt(string(digits), 10, 64)
	if err != nil || n > memcache.MaxDiscard {
		return st, ErrBadState
	}
	st.Discard = int(n)
	return st, nil
}
