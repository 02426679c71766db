package memcache

import "bytes"

// Sharder maps a routing key to the shard that owns it: an index from 0, or a
// negative number when no server can take it. Implementations apply hash tags.
type Sharder interface {
	Shard(key []byte) int
}

// Part is the piece of a request bound for one shard.
type Part struct {
	Shard    int
	ReadOnly bool
	// Fetch reports a part whose reply carries items, as a get's does: every get
	// family request, including those that also change the item (gat, gats, mg with
	// T or N, binary gat), which are not ReadOnly. A replicating proxy sends such a
	// part to every copy of the data and may take its reply from any of them.
	Fetch bool
	// Payload is the bytes to send, owned by the split that built it and reused by
	// its next Build.
	Payload []byte
}

// TextSplit divides a multi-key get, gets, gat or gats into one sub-request per
// server ("get " + that server's keys in request order, "gat <exptime> " for gat and
// gats) and merges the sub-replies, as twemproxy does. A TextSplit is reused from
// request to request; it is not safe for concurrent use. The keys are copied into
// the payloads, so Merge does not need the client's buffer.
type TextSplit struct {
	Parts []Part

	keyPart   []int32 // per key: index in Parts
	keyOff    []int32 // per key: offset of the key in its part's payload
	keyLen    []int32
	shardPart []int32 // per shard + 1: index in Parts + 1, 0 when none
	blocks    []valueBlock
	cursor    []int32
	starts    []int32
}

type valueBlock struct {
	key, blk []byte
}

// Build splits req (a retrieval command; see TextRequest.Route) by sh.
func (s *TextSplit) Build(req *TextRequest, sh Sharder) {
	for i := range s.Parts {
		s.Parts[i].Payload = s.Parts[i].Payload[:0]
	}
	s.Parts = s.Parts[:0]
	s.keyPart, s.keyOff, s.keyLen = s.keyPart[:0], s.keyOff[:0], s.keyLen[:0]
	// The command name and, for gat/gats, the exptime token, as the client sent them.
	prefix := req.tokens[:1]
	if req.Cmd == CmdGat || req.Cmd == CmdGats {
		prefix = req.tokens[:2]
	}
	for _, k := range req.Keys {
		shard := sh.Shard(k)
		slot := max(shard+1, 0)
		for slot >= len(s.shardPart) {
			s.shardPart = append(s.shardPart, 0)
		}
		p := s.shardPart[slot] - 1
		if p < 0 {
			p = int32(len(s.Parts))
			s.shardPart[slot] = p + 1
			if len(s.Parts) < cap(s.Parts) {
				s.Parts = s.Parts[:p+1]
				s.Parts[p].Shard = shard
				s.Parts[p].Payload = s.Parts[p].Payload[:0]
			} else {
				s.Parts = append(s.Parts, Part{Shard: shard})
			}
			pt := &s.Parts[p]
			pt.ReadOnly, pt.Fetch = req.ReadOnly, req.Cmd.IsRetrieval()
			for i, t := range prefix {
				if i > 0 {
					pt.Payload = append(pt.Payload, ' ')
				}
				pt.Payload = append(pt.Payload, t...)
			}
		}
		pt := &s.Parts[p]
		pt.Payload = append(pt.Payload, ' ')
		s.keyPart = append(s.keyPart, p)
		s.keyOff = append(s.keyOff, int32(len(pt.Payload)))
		s.keyLen = append(s.keyLen, int32(len(k)))
		pt.Payload = append(pt.Payload, k...)
	}
	for i := range s.Parts {
		s.shardPart[max(s.Parts[i].Shard+1, 0)] = 0
		s.Parts[i].Payload = append(s.Parts[i].Payload, '\r', '\n')
	}
}

func (s *TextSplit) key(k int) []byte {
	off := s.keyOff[k]
	return s.Parts[s.keyPart[k]].Payload[off : off+s.keyLen[k]]
}

// Merge appends to dst the client's reply built from the parts' replies (replies[i]
// answers Parts[i], each a complete reply or a proxy error line). Each sub-reply has
// its END cut off; for each requested key in request order, the next VALUE block of
// that key's server is taken when it is that key's (so the merged reply is in request
// order even with misses, and duplicate keys get one block each, as memcached itself
// answers); then one END is appended.
//
// When a part's reply is not VALUE blocks and END (a proxy error, or anything else),
// the whole request fails as in twemproxy: the client gets that part's error line if it
// is ERROR, CLIENT_ERROR or SERVER_ERROR, else "SERVER_ERROR Invalid argument", and
// failed is true: twemproxy then closes the client connection (the caller decides).
func (s *TextSplit) Merge(dst []byte, replies [][]byte) (out []byte, failed bool) {
	if len(replies) != len(s.Parts) {
		return AppendServerError(dst, "Invalid argument"), true
	}
	s.blocks = s.blocks[:0]
	s.cursor = s.cursor[:0]
	starts := s.starts[:0]
	for _, r := range replies {
		starts = append(starts, int32(len(s.blocks)))
		var ok bool
		if s.blocks, ok = appendBlocks(s.blocks, r); !ok {
			if IsTextError(r) && bytes.IndexByte(r, '\n') == len(r)-1 {
				return append(dst, r...), true
			}
			return AppendServerError(dst, "Invalid argument"), true
		}
	}
	starts = append(starts, int32(len(s.blocks)))
	s.starts = starts
	for i := range s.Parts {
		s.cursor = append(s.cursor, starts[i])
	}
	mark := len(dst)
	for k, p := range s.keyPart {
		c := s.cursor[p]
		if c < starts[p+1] && bytes.Equal(s.blocks[c].key, s.key(k)) {
			dst = append(dst, s.blocks[c].blk...)
			s.cursor[p]++
		}
	}
	for i := range s.Parts {
		if s.cursor[i] != starts[i+1] {
			// A VALUE block for no requested key, or out of order: not memcached.
			return AppendServerError(dst[:mark], "Invalid argument"), true
		}
	}
	return append(dst, "END\r\n"...), false
}

// appendBlocks appends the VALUE blocks of a retrieval reply; ok is false when r is
// not VALUE blocks followed by END and nothing else.
func appendBlocks(dst []valueBlock, r []byte) ([]valueBlock, bool) {
	l := Limits{MaxLine: len(r) + 1, MaxReply: len(r) + 1}
	pos := 0
	for {
		line, next, err := replyLine(r, pos, l)
		if err != nil || next == 0 {
			return dst, false
		}
		if string(line) == "END" {
			return dst, next == len(r)
		}
		if !bytes.HasPrefix(line, []byte("VALUE ")) {
			return dst, false
		}
		key, size, ok := parseValueLine(line)
		if !ok {
			return dst, false
		}
		end, err := dataBlock(r, next, size, l)
		if err != nil || end == 0 {
			return dst, false
		}
		dst = append(dst, valueBlock{key: key, blk: r[pos:end:end]})
		pos = end
	}
}
