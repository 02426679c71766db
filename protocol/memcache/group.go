package memcache

import "encoding/binary"

// groupOpaque is the opaque of the noop the proxy adds to each server's part of a
// group; member i of a group is sent with opaque i, a get/getk terminator with the
// member count.
const groupOpaque = 0xffffffff

// Group terminators.
const (
	termNone = iota // the run ended with another command (or was cut at MaxGroup)
	termNoop        // the client's noop: answered by the proxy after every hit
	termGet         // the client's get or getk: sent last to its key's server
)

type groupMember struct {
	opcode byte
	opaque uint32
	part   int32
}

// BinaryGroup is a binary multi-get: a run of getq/getkq requests, and the request
// that ends it when that is a noop, get or getk (libmemcached and dalli send n getkq
// then a noop per server). Build gathers the run from the client's buffer and splits
// it per server: each server's part is its keys' quiet gets, in the client's order,
// with the proxy's own opaques, then a noop (or, on the terminating get's server, that
// get). So each part draws exactly one reply as BinaryReplyLen frames it. Merge
// rebuilds the client's sequence of replies in its order with its opaques: the hits,
// then the terminator's reply. A BinaryGroup is reused; it is not safe for concurrent
// use.
type BinaryGroup struct {
	Parts []Part

	members   []groupMember
	term      int
	termOp    byte
	termOpq   uint32
	termPart  int32
	shardPart []int32
	hits      [][]byte // per member, then the terminator: the server's packet
	req       BinaryRequest
}

// Members returns the number of quiet gets in the group.
func (g *BinaryGroup) Members() int { return len(g.members) }

// Build parses the run of getq/getkq at the start of buf (buf[0] must start one) and
// splits it by sh. It returns the bytes taken; 0 with a nil error means the run's end
// is not in buf yet (the client sends the terminator later, or the packet is
// incomplete). The run is cut after l.MaxGroup members. A malformed packet inside the
// run is an error; one after it is left for the next parse.
func (g *BinaryGroup) Build(buf []byte, l Limits, sh Sharder) (int, error) {
	maxGroup := l.MaxGroup
	if maxGroup <= 0 {
		maxGroup = DefaultMaxGroup
	}
	for i := range g.Parts {
		g.Parts[i].Payload = g.Parts[i].Payload[:0]
	}
	g.Parts = g.Parts[:0]
	clear(g.shardPart) // an earlier Build may have stopped halfway (incomplete run)
	g.members = g.members[:0]
	g.term, g.termPart = termNone, -1
	pos := 0
	for {
		if len(g.members) == maxGroup {
			break
		}
		n, err := ParseBinary(buf[pos:], &g.req, l)
		if err != nil {
			if len(g.members) == 0 {
				return 0, err
			}
			break // the run ends here; the error surfaces with the next request
		}
		if n == 0 {
			return 0, nil
		}
		r := &g.req
		if r.TooLarge {
			break
		}
		if r.Opcode != OpGetQ && r.Opcode != OpGetKQ {
			if len(g.members) == 0 {
				return 0, protoErr(ErrBadPacket, pos, "a group starts with getq or getkq")
			}
			switch r.Opcode {
			case OpNoop:
				g.term, g.termOp, g.termOpq = termNoop, r.Opcode, r.Opaque
				pos += n
			case OpGet, OpGetK:
				g.term, g.termOp, g.termOpq = termGet, r.Opcode, r.Opaque
				p := g.part(sh.Shard(r.Key))
				g.termPart = p
				g.Parts[p].Payload = appendWithOpaque(g.Parts[p].Payload, r.Raw, uint32(len(g.members)))
				pos += n
			}
			break
		}
		p := g.part(sh.Shard(r.Key))
		g.Parts[p].Payload = appendWithOpaque(g.Parts[p].Payload, r.Raw, uint32(len(g.members)))
		g.members = append(g.members, groupMember{opcode: r.Opcode, opaque: r.Opaque, part: p})
		pos += n
	}
	for i := range g.Parts {
		g.shardPart[max(g.Parts[i].Shard+1, 0)] = 0
		if int32(i) != g.termPart {
			g.Parts[i].Payload = AppendBinaryRequest(g.Parts[i].Payload, OpNoop, groupOpaque, 0, nil, nil, nil)
		}
	}
	return pos, nil
}

func (g *BinaryGroup) part(shard int) int32 {
	slot := max(shard+1, 0)
	for slot >= len(g.shardPart) {
		g.shardPart = append(g.shardPart, 0)
	}
	p := g.shardPart[slot] - 1
	if p >= 0 {
		return p
	}
	p = int32(len(g.Parts))
	g.shardPart[slot] = p + 1
	if len(g.Parts) < cap(g.Parts) {
		g.Parts = g.Parts[:p+1]
		g.Parts[p].Shard = shard
		g.Parts[p].Payload = g.Parts[p].Payload[:0]
	} else {
		g.Parts = append(g.Parts, Part{Shard: shard})
	}
	g.Parts[p].ReadOnly, g.Parts[p].Fetch = true, true
	return p
}

func appendWithOpaque(dst, pkt []byte, opaque uint32) []byte {
	start := len(dst)
	dst = append(dst, pkt...)
	binary.BigEndian.PutUint32(dst[start+12:], opaque)
	return dst
}

// Merge appends to dst the client's replies (replies[i] answers Parts[i]: the hits,
// then the noop or terminating get's reply; or a proxy error). The hits come in the
// client's order with its opcodes and opaques; a miss sends nothing, as memcached.
// When a part failed (its reply is a proxy error or not what was sent for), each of
// its keys gets an error response (the failed part's status, or StatusInternalError,
// with its message), since a silent miss would hide the failure; clients reading a
// multi-get skip error statuses. Last comes the terminator's reply: for a noop, a noop
// response with the client's opaque, written after every hit.
func (g *BinaryGroup) Merge(dst []byte, replies [][]byte) []byte {
	n := len(g.members)
	g.hits = g.hits[:0]
	for i := 0; i <= n; i++ {
		g.hits = append(g.hits, nil)
	}
	failed := make([][]byte, len(g.Parts)) // per part: an error packet, or nil
	for p := range g.Parts {
		var r []byte
		if p < len(replies) {
			r = replies[p]
		}
		if !g.scan(int32(p), r) {
			failed[p] = errorPacket(r)
		}
	}
	for i, m := range g.members {
		if f := failed[m.part]; f != nil {
			dst = (BinaryReplyRule{Opcode: m.opcode, Opaque: m.opaque}).AppendClient(dst, f)
			continue
		}
		if h := g.hits[i]; h != nil {
			dst = (BinaryReplyRule{Opcode: m.opcode, Opaque: m.opaque}).AppendClient(dst, h)
		}
	}
	switch g.term {
	case termNoop:
		dst = AppendBinaryResponse(dst, OpNoop, StatusOK, g.termOpq, 0, nil, nil, nil)
	case termGet:
		rule := BinaryReplyRule{Opcode: g.termOp, Opaque: g.termOpq}
		if f := failed[g.termPart]; f != nil {
			dst = rule.AppendClient(dst, f)
		} else {
			dst = rule.AppendClient(dst, g.hits[n])
		}
	}
	return dst
}

// scan records the packets of part p's reply r; false when r is not the reply to
// what was sent (quiet hits of p's members, then its noop or terminator).
func (g *BinaryGroup) scan(p int32, r []byte) bool {
	n := uint32(len(g.members))
	for pos := 0; pos < len(r); {
		l, err := BinaryPacketLen(r[pos:], MagicResponse)
		if err != nil || l == 0 {
			return false
		}
		pkt := r[pos : pos+l : pos+l]
		pos += l
		op, opq := pkt[1], binary.BigEndian.Uint32(pkt[12:])
		last := pos == len(r)
		switch {
		case opq < n && !last && g.members[opq].part == p && (op == OpGetQ || op == OpGetKQ):
			g.hits[opq] = pkt
		case last && p == g.termPart && opq == n && (op == OpGet || op == OpGetK):
			g.hits[n] = pkt
			return true
		case last && p != g.termPart && op == OpNoop && opq == groupOpaque:
			return true
		default:
			return false
		}
	}
	return false
}

// errorPacket returns the packet a failed part's keys are answered with: the
// server's own error response when r is one, else r itself (a proxy error line, or
// garbage, which AppendClient turns into StatusInternalError).
func errorPacket(r []byte) []byte {
	if n, err := BinaryPacketLen(r, MagicResponse); err == nil && n == len(r) && n >= HeaderLen && (r[6] != 0 || r[7] != 0) {
		return r
	}
	if len(r) > 0 && r[0] == MagicResponse {
		return []byte("SERVER_ERROR Invalid argument\r\n")
	}
	return r
}
