package memcache

// Conn is the protocol state of one client connection: which protocol it speaks
// (detected from its first byte), the request parsers, and the count of bytes still to
// skip after an oversized value. Parse turns each client request into a Plan (what to
// send where, or what to answer); Reply turns the servers' replies into the client's.
// It is used by one goroutine.
type Conn struct {
	lim      Limits
	proto    Protocol
	detected bool
	discard  int
	text     TextRequest
	bin      BinaryRequest
}

// NewConn returns the state of a new client connection with limits l (zero fields
// take their defaults).
func NewConn(l Limits) *Conn { return &Conn{lim: l.WithDefaults()} }

// Protocol returns the connection's protocol; ok is false before its first byte.
func (c *Conn) Protocol() (p Protocol, ok bool) { return c.proto, c.detected }

type planKind uint8

const (
	planLocal    planKind = iota // no parts: Local is the whole answer
	planText                     // one text part, filtered by the text rule
	planSplit                    // text multi-get
	planBinary                   // one binary part, rewritten by the binary rule
	planGroup                    // binary multi-get
	planTooLarge                 // a delete standing for an oversized set: fixed answer
)

// Plan is what the proxy does with one client request. A Plan is reused from request
// to request (it keeps the splitters' buffers); it holds everything Reply needs, so
// the client's buffer may change between Parse and Reply.
type Plan struct {
	// Parts are the sub-requests to send, each to its shard. None when the proxy
	// answers alone (Local).
	Parts []Part
	// Local is the proxy's own answer when there are no Parts (possibly empty: a
	// noreply request refused, bytes of an oversized value skipped).
	Local []byte
	// Close asks for the connection to be closed after the answer (quit, and the
	// commands twemproxy refuses).
	Close bool
	// Expect is what the client expects back, as it sent the request.
	Expect Expect
	// Terminator reports mn or a binary noop (alone or ending a group): the answer
	// follows every earlier answer to this client.
	Terminator bool
	// Rewrite reports that Reply must see the reply even when there is one part: it
	// drops or rewrites it (noreply, quiet, binary opaques). When false, a single
	// part's reply is the client's answer unchanged.
	Rewrite bool

	kind   planKind
	text   TextReplyRule
	bin    BinaryReplyRule
	tooBig []byte // planTooLarge: the answer
	one    [1]Part
	split  TextSplit
	group  BinaryGroup
}

func (p *Plan) reset() {
	p.Parts = p.Parts[:0]
	p.Local = p.Local[:0]
	p.Close, p.Terminator, p.Rewrite = false, false, false
	p.Expect = ExpectReply
	p.kind = planLocal
}

func (p *Plan) single(shard int, readOnly bool) *Part {
	pt := &p.one[0]
	pt.Shard, pt.ReadOnly, pt.Fetch, pt.Payload = shard, readOnly, false, pt.Payload[:0]
	p.Parts = p.one[:]
	return pt
}

// Parse parses the first request in buf into p, routing by sh. It returns the bytes
// consumed; 0 with a nil error means buf holds no complete request yet. An error is a
// *ProtocolError: the client broke the protocol and the connection should be closed
// (twemproxy closes it without a reply). Bytes of an oversized value are consumed as
// they come, in Plans with no parts and an empty Local.
func (c *Conn) Parse(buf []byte, p *Plan, sh Sharder) (int, error) {
	p.reset()
	if len(buf) == 0 {
		return 0, nil
	}
	if c.discard > 0 {
		n := min(c.discard, len(buf))
		c.discard -= n
		p.Expect = ExpectNone
		return n, nil
	}
	if !c.detected {
		c.proto, c.detected = Detect(buf[0]), true
	}
	if c.proto == Binary {
		return c.parseBinary(buf, p, sh)
	}
	return c.parseText(buf, p, sh)
}

func (c *Conn) parseText(buf []byte, p *Plan, sh Sharder) (int, error) {
	r := &c.text
	n, err := ParseText(buf, r, c.lim)
	if err != nil || n == 0 {
		return n, err
	}
	p.Expect, p.Terminator = r.Expect, r.Terminator
	switch {
	case r.TooLarge:
		c.discard = r.Discard
		answer := ""
		if !r.NoReply {
			answer = TooLargeReply
		}
		if r.Cmd == CmdSet {
			// memcached also unlinks the item stored under the key.
			pt := p.single(sh.Shard(r.Keys[0]), false)
			pt.Payload = append(pt.Payload, "delete "...)
			pt.Payload = append(pt.Payload, r.Keys[0]...)
			pt.Payload = append(pt.Payload, "\r\n"...)
			p.kind, p.Rewrite = planTooLarge, true
			p.tooBig = append(p.tooBig[:0], answer...)
			return n, nil
		}
		p.Local = append(p.Local, answer...)
	case r.Route == RouteLocal:
		if r.Cmd == CmdMetaNoop {
			p.Local = append(p.Local, "MN\r\n"...)
		}
		p.Close = r.Close
	case r.Route == RouteRefused:
		p.Close = true
	case r.Route == RouteAny:
		pt := p.single(sh.Shard([]byte(VersionRouteKey)), true)
		pt.Payload = append(pt.Payload, r.Raw...)
		p.kind = planText
	case r.Route == RouteKeys && len(r.Keys) > 1:
		p.split.Build(r, sh)
		if len(p.split.Parts) > 1 {
			p.Parts = p.split.Parts
			p.kind = planSplit
			return n, nil
		}
		pt := p.single(p.split.Parts[0].Shard, r.ReadOnly)
		pt.Fetch = r.Cmd.IsRetrieval()
		pt.Payload = append(pt.Payload, r.Raw...)
		p.kind = planText
	default:
		pt := p.single(sh.Shard(r.Keys[0]), r.ReadOnly)
		pt.Fetch = r.Cmd.IsRetrieval() || r.Cmd == CmdMetaGet
		pt.Payload = AppendServerForm(pt.Payload, r)
		p.kind = planText
		p.text = r.Rule()
		p.Rewrite = r.NoReply || r.Quiet
	}
	return n, nil
}

func (c *Conn) parseBinary(buf []byte, p *Plan, sh Sharder) (int, error) {
	if len(buf) >= 2 && buf[0] == MagicRequest && (buf[1] == OpGetQ || buf[1] == OpGetKQ) {
		n, err := p.group.Build(buf, c.lim, sh)
		if err != nil || n == 0 {
			return n, err
		}
		p.Parts = p.group.Parts
		p.kind, p.Rewrite = planGroup, true
		p.Expect, p.Terminator = ExpectMaybe, p.group.term == termNoop
		if p.group.term != termNone {
			p.Expect = ExpectReply
		}
		return n, nil
	}
	r := &c.bin
	n, err := ParseBinary(buf, r, c.lim)
	if err != nil || n == 0 {
		return n, err
	}
	p.Expect, p.Terminator = r.Expect, r.Terminator
	switch {
	case r.TooLarge:
		c.discard = r.Discard
		// The key lies in the skipped body, so the unlink memcached does for an
		// oversized set is not mirrored here: only the answer is given.
		p.Local = AppendBinaryResponse(p.Local, r.Opcode, StatusTooLarge, r.Opaque, 0, nil, nil, []byte("Too large."))
	case r.Unsupported:
		p.Local = AppendBinaryResponse(p.Local, r.Opcode, StatusUnknownCommand, r.Opaque, 0, nil, nil, []byte("Unknown command"))
	case r.Opcode == OpNoop:
		p.Local = AppendBinaryResponse(p.Local, OpNoop, StatusOK, r.Opaque, 0, nil, nil, nil)
	case r.Opcode == OpQuit:
		p.Local = AppendBinaryResponse(p.Local, OpQuit, StatusOK, r.Opaque, 0, nil, nil, nil)
		p.Close = true
	case r.Opcode == OpQuitQ:
		p.Close = true
	default:
		key := r.Key
		if r.Opcode == OpVersion {
			key = []byte(VersionRouteKey)
		}
		pt := p.single(sh.Shard(key), r.ReadOnly)
		switch r.Opcode {
		case OpGet, OpGetQ, OpGetK, OpGetKQ, OpGAT, OpGATQ, OpGATK, OpGATKQ:
			pt.Fetch = true
		}
		pt.Payload = AppendBinaryServerForm(pt.Payload, r)
		p.kind, p.Rewrite = planBinary, true
		p.bin = r.Rule()
	}
	return n, nil
}

// Reply appends to dst the client's answer to p from replies (replies[i] answers
// p.Parts[i]: a complete server reply as the reply scanners frame it, or a proxy error
// line such as AppendServerError's, in either protocol). It may append nothing: a
// noreply or quiet request's nominal reply, a group's misses. failed reports a
// multi-get that failed as a whole (see TextSplit.Merge), after which twemproxy closes
// the client connection (kvproxy keeps it: the stream is still in step).
func (c *Conn) Reply(dst []byte, p *Plan, replies [][]byte) (out []byte, failed bool) {
	if len(replies) != len(p.Parts) {
		return dst, true
	}
	switch p.kind {
	case planLocal:
		return append(dst, p.Local...), false
	case planText:
		if p.text.Deliver(replies[0]) {
			dst = append(dst, replies[0]...)
		}
		return dst, false
	case planSplit:
		return p.split.Merge(dst, replies)
	case planBinary:
		return p.bin.AppendClient(dst, replies[0]), false
	case planGroup:
		return p.group.Merge(dst, replies), false
	case planTooLarge:
		return append(dst, p.tooBig...), false
	}
	return dst, true
}
