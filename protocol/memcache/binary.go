package memcache

import "encoding/binary"

// Binary protocol constants.
const (
	// MagicRequest is the first byte of every binary request.
	MagicRequest = 0x80
	// MagicResponse is the first byte of every binary response.
	MagicResponse = 0x81
	// HeaderLen is the length of a binary packet header.
	HeaderLen = 24
)

// Binary opcodes.
const (
	OpGet       = 0x00
	OpSet       = 0x01
	OpAdd       = 0x02
	OpReplace   = 0x03
	OpDelete    = 0x04
	OpIncrement = 0x05
	OpDecrement = 0x06
	OpQuit      = 0x07
	OpFlush     = 0x08
	OpGetQ      = 0x09
	OpNoop      = 0x0a
	OpVersion   = 0x0b
	OpGetK      = 0x0c
	OpGetKQ     = 0x0d
	OpAppend    = 0x0e
	OpPrepend   = 0x0f
	OpStat      = 0x10
	OpSetQ      = 0x11
	OpAddQ      = 0x12
	OpReplaceQ  = 0x13
	OpDeleteQ   = 0x14
	OpIncrQ     = 0x15
	OpDecrQ     = 0x16
	OpQuitQ     = 0x17
	OpFlushQ    = 0x18
	OpAppendQ   = 0x19
	OpPrependQ  = 0x1a
	OpTouch     = 0x1c
	OpGAT       = 0x1d
	OpGATQ      = 0x1e
	OpGATK      = 0x23
	OpGATKQ     = 0x24
)

// Binary response statuses.
const (
	StatusOK             = 0x00
	StatusNotFound       = 0x01
	StatusExists         = 0x02
	StatusTooLarge       = 0x03
	StatusInvalidArgs    = 0x04
	StatusNotStored      = 0x05
	StatusNonNumeric     = 0x06
	StatusUnknownCommand = 0x81
	StatusOutOfMemory    = 0x82
	// StatusInternalError is memcached's EINTERNAL (0x84), which the proxy uses for
	// its own failures (timeout, server down).
	StatusInternalError = 0x84
)

// Header is a binary packet header. Multi-byte fields are big-endian on the wire.
type Header struct {
	Magic     byte
	Opcode    byte
	KeyLen    uint16
	ExtrasLen byte
	DataType  byte
	// Status is the response status; in a request the same two bytes are reserved
	// (the vbucket id).
	Status  uint16
	BodyLen uint32
	Opaque  uint32
	CAS     uint64
}

// DecodeHeader decodes the header at the start of b, which must hold HeaderLen bytes.
func DecodeHeader(b []byte) Header {
	_ = b[HeaderLen-1]
	return Header{
		Magic: b[0], Opcode: b[1], KeyLen: binary.BigEndian.Uint16(b[2:]),
		ExtrasLen: b[4], DataType: b[5], Status: binary.BigEndian.Uint16(b[6:]),
		BodyLen: binary.BigEndian.Uint32(b[8:]), Opaque: binary.BigEndian.Uint32(b[12:]),
		CAS: binary.BigEndian.Uint64(b[16:]),
	}
}

// Append appends the encoded header to dst.
func (h *Header) Append(dst []byte) []byte {
	dst = append(dst, h.Magic, h.Opcode)
	dst = binary.BigEndian.AppendUint16(dst, h.KeyLen)
	dst = append(dst, h.ExtrasLen, h.DataType)
	dst = binary.BigEndian.AppendUint16(dst, h.Status)
	dst = binary.BigEndian.AppendUint32(dst, h.BodyLen)
	dst = binary.BigEndian.AppendUint32(dst, h.Opaque)
	return binary.BigEndian.AppendUint64(dst, h.CAS)
}

type opInfo struct {
	known    bool
	extras   int  // required extras length; -1: 0 or 4 (flush)
	key      bool // key required (else forbidden)
	value    bool // value allowed
	quiet    bool
	loud     byte // the non-quiet counterpart of a quiet opcode
	readOnly bool
	local    bool // answered by the proxy (noop, quit, quitq)
	refused  bool // flush, stat: answered "unknown command" by the proxy
}

var opTable [256]opInfo

func init() {
	keyed := func(extras int, value, quiet, ro bool, loud byte, ops ...byte) {
		for _, op := range ops {
			opTable[op] = opInfo{known: true, extras: extras, key: true, value: value, quiet: quiet, loud: loud, readOnly: ro}
		}
	}
	keyed(0, false, false, true, 0, OpGet, OpGetK)
	keyed(0, false, true, true, OpGet, OpGetQ)
	keyed(0, false, true, true, OpGetK, OpGetKQ)
	keyed(8, true, false, false, 0, OpSet, OpAdd, OpReplace)
	keyed(8, true, true, false, OpSet, OpSetQ)
	keyed(8, true, true, false, OpAdd, OpAddQ)
	keyed(8, true, true, false, OpReplace, OpReplaceQ)
	keyed(0, true, false, false, 0, OpAppend, OpPrepend)
	keyed(0, true, true, false, OpAppend, OpAppendQ)
	keyed(0, true, true, false, OpPrepend, OpPrependQ)
	keyed(0, false, false, false, 0, OpDelete)
	keyed(0, false, true, false, OpDelete, OpDeleteQ)
	keyed(20, false, false, false, 0, OpIncrement, OpDecrement)
	keyed(20, false, true, false, OpIncrement, OpIncrQ)
	keyed(20, false, true, false, OpDecrement, OpDecrQ)
	keyed(4, false, false, false, 0, OpTouch, OpGAT, OpGATK)
	keyed(4, false, true, false, OpGAT, OpGATQ)
	keyed(4, false, true, false, OpGATK, OpGATKQ)
	opTable[OpNoop] = opInfo{known: true, local: true}
	opTable[OpQuit] = opInfo{known: true, local: true}
	opTable[OpQuitQ] = opInfo{known: true, local: true, quiet: true}
	opTable[OpVersion] = opInfo{known: true, readOnly: true}
	opTable[OpFlush] = opInfo{known: true, extras: -1, refused: true}
	opTable[OpFlushQ] = opInfo{known: true, extras: -1, refused: true, quiet: true}
	opTable[OpStat] = opInfo{known: true, refused: true, value: false}
}

// IsQuietOpcode reports whether op is a quiet opcode (getq, getkq, setq, ..., gatkq).
func IsQuietOpcode(op byte) bool { return opTable[op].quiet }

// BinaryRequest is one parsed binary request. Byte slices point into the buffer given
// to ParseBinary.
type BinaryRequest struct {
	Header
	// Raw is the whole packet (the header only when TooLarge).
	Raw                []byte
	Extras, Key, Value []byte
	// Expect is what the server sends back for the packet as sent.
	Expect Expect
	// Quiet reports a quiet opcode.
	Quiet bool
	// ReadOnly reports get, getq, getk, getkq and version.
	ReadOnly bool
	// Terminator reports noop: its reply follows every earlier reply.
	Terminator bool
	// Local reports noop, quit and quitq, which the proxy answers itself.
	Local bool
	// Unsupported reports an opcode the proxy does not forward (flush, stat, SASL,
	// unknown): memcached answers unknown ones with status 0x81 and the connection
	// goes on, which is what the proxy does for all of them.
	Unsupported bool
	// TooLarge reports a request whose value exceeds Limits.MaxValue: Raw is the
	// header only and Discard body bytes follow that the caller must skip. memcached
	// answers status 0x03 (even for quiet opcodes, since it is a failure).
	TooLarge bool
	// Discard is the number of bytes to skip after Raw when TooLarge.
	Discard int
}

// ParseBinary parses the first binary request in buf into req within l. It returns
// the bytes the packet takes; 0 with a nil error means buf does not hold it yet. Bad
// magic, lengths that do not fit the opcode, or a key over MaxKeyLen are errors
// (*ProtocolError); binary keys may hold any byte.
func ParseBinary(buf []byte, req *BinaryRequest, l Limits) (int, error) {
	*req = BinaryRequest{}
	if len(buf) == 0 {
		return 0, nil
	}
	if buf[0] != MagicRequest {
		return 0, protoErr(ErrBadMagic, 0, "")
	}
	if len(buf) < HeaderLen {
		return 0, nil
	}
	h := DecodeHeader(buf)
	req.Header = h
	body := int64(h.BodyLen)
	ext, klen := int64(h.ExtrasLen), int64(h.KeyLen)
	if ext+klen > body {
		return 0, protoErr(ErrBadPacket, 0, "extras and key longer than the body")
	}
	vlen := body - ext - klen
	info := opTable[h.Opcode]
	req.Quiet, req.ReadOnly, req.Local = info.quiet, info.readOnly, info.local
	req.Terminator = h.Opcode == OpNoop
	switch {
	case info.key && (klen == 0 || klen > MaxKeyLen):
		return 0, protoErr(ErrBadKey, 2, "key length must be 1 to 250 bytes")
	case !info.known || info.refused:
		req.Unsupported = true
	case !info.key && klen != 0:
		return 0, protoErr(ErrBadPacket, 2, "opcode takes no key")
	case info.extras >= 0 && ext != int64(info.extras), info.extras < 0 && ext != 0 && ext != 4:
		return 0, protoErr(ErrBadPacket, 4, "wrong extras length")
	case !info.value && vlen != 0:
		return 0, protoErr(ErrBadPacket, 8, "opcode takes no value")
	}
	maxValue := int64(l.MaxValue)
	if maxValue <= 0 {
		maxValue = DefaultMaxValue
	}
	if vlen > maxValue || (req.Unsupported && body > int64(MaxKeyLen+maxValue)) {
		req.TooLarge = true
		req.Discard = int(body)
		req.Raw = buf[:HeaderLen:HeaderLen]
		return HeaderLen, nil
	}
	end := HeaderLen + int(body)
	if end > len(buf) {
		return 0, nil
	}
	e := HeaderLen + int(ext)
	k := e + int(klen)
	req.Extras = buf[HeaderLen:e:e]
	req.Key = buf[e:k:k]
	req.Value = buf[k:end:end]
	req.Raw = buf[:end:end]
	switch {
	case h.Opcode == OpQuitQ:
		req.Expect = ExpectNone
	case req.Quiet:
		req.Expect = ExpectMaybe
	}
	return end, nil
}

// AppendBinaryServerForm appends req as the proxy sends it so that the server answers
// it exactly once: a quiet opcode is replaced by its non-quiet counterpart (the proxy
// drops the nominal reply itself: see BinaryReplyRule); opaque and CAS are unchanged.
func AppendBinaryServerForm(dst []byte, req *BinaryRequest) []byte {
	start := len(dst)
	dst = append(dst, req.Raw...)
	if loud := opTable[req.Opcode].loud; req.Quiet && loud != 0 || req.Quiet && req.Opcode == OpGetQ {
		dst[start+1] = loud
	}
	return dst
}

// BinaryReplyRule says which replies to a request sent in server form reach the
// client, and restores what the client sent: its opcode and opaque.
type BinaryReplyRule struct {
	Opcode byte
	Opaque uint32
	Quiet  bool
}

// Rule returns the reply rule of req.
func (r *BinaryRequest) Rule() BinaryReplyRule {
	return BinaryReplyRule{Opcode: r.Opcode, Opaque: r.Opaque, Quiet: r.Quiet}
}

// AppendClient appends to dst the client's reply from the server's reply to the
// request in server form: nothing for a quiet request's nominal outcome (a get miss,
// a mutation's success), else the packet with the client's opcode and opaque. A reply
// that is not a binary response (a text line from the proxy's own error path, such as
// "SERVER_ERROR Connection timed out\r\n") becomes a response with
// StatusInternalError and that text as its body.
func (r BinaryReplyRule) AppendClient(dst, reply []byte) []byte {
	if len(reply) < HeaderLen || reply[0] != MagicResponse {
		return AppendBinaryResponse(dst, r.Opcode, StatusInternalError, r.Opaque, 0, nil, nil, textErrorBody(reply))
	}
	status := uint16(reply[6])<<8 | uint16(reply[7])
	if r.Quiet {
		nominal := status == StatusOK
		if r.Opcode == OpGetQ || r.Opcode == OpGetKQ || r.Opcode == OpGATQ || r.Opcode == OpGATKQ {
			nominal = status == StatusNotFound
		}
		if nominal {
			return dst
		}
	}
	start := len(dst)
	dst = append(dst, reply...)
	dst[start+1] = r.Opcode
	binary.BigEndian.PutUint32(dst[start+12:], r.Opaque)
	return dst
}

// textErrorBody returns the message of a text error line ("SERVER_ERROR msg\r\n"
// gives "msg").
func textErrorBody(line []byte) []byte {
	for _, p := range []string{"SERVER_ERROR ", "CLIENT_ERROR "} {
		if len(line) >= len(p) && string(line[:len(p)]) == p {
			line = line[len(p):]
			break
		}
	}
	for len(line) > 0 && (line[len(line)-1] == '\n' || line[len(line)-1] == '\r') {
		line = line[:len(line)-1]
	}
	if len(line) == 0 {
		return []byte("proxy error")
	}
	return line
}

// AppendBinaryResponse appends a response packet.
func AppendBinaryResponse(dst []byte, opcode byte, status uint16, opaque uint32, cas uint64, extras, key, value []byte) []byte {
	h := Header{
		Magic: MagicResponse, Opcode: opcode, KeyLen: uint16(len(key)), ExtrasLen: byte(len(extras)),
		Status: status, BodyLen: uint32(len(extras) + len(key) + len(value)), Opaque: opaque, CAS: cas,
	}
	dst = h.Append(dst)
	dst = append(dst, extras...)
	dst = append(dst, key...)
	return append(dst, value...)
}

// AppendBinaryRequest appends a request packet.
func AppendBinaryRequest(dst []byte, opcode byte, opaque uint32, cas uint64, extras, key, value []byte) []byte {
	h := Header{
		Magic: MagicRequest, Opcode: opcode, KeyLen: uint16(len(key)), ExtrasLen: byte(len(extras)),
		BodyLen: uint32(len(extras) + len(key) + len(value)), Opaque: opaque, CAS: cas,
	}
	dst = h.Append(dst)
	dst = append(dst, extras...)
	dst = append(dst, key...)
	return append(dst, value...)
}

// BinaryReplyLen returns the length of the first complete reply in buf: a run of
// responses with quiet opcodes (the hits of getq/getkq, in any number) followed by one
// response with a non-quiet opcode, which ends it. With requests in server form and
// multi-gets as BinaryGroup sends them, that is exactly one request's reply. n == 0
// with a nil error means more bytes are needed. A reply over l.MaxReply bytes is
// ErrReplyTooLarge; a packet not starting with 0x81 is ErrBadMagic.
func BinaryReplyLen(buf []byte, l Limits) (int, error) {
	maxReply := l.MaxReply
	if maxReply <= 0 {
		maxReply = DefaultMaxReply
	}
	pos := 0
	for {
		n, err := BinaryPacketLen(buf[pos:], MagicResponse)
		if err != nil {
			return 0, &ProtocolError{Err: err.(*ProtocolError).Err, Offset: pos, Detail: err.(*ProtocolError).Detail}
		}
		if n == 0 {
			if len(buf)-pos >= HeaderLen && pos+HeaderLen+int(binary.BigEndian.Uint32(buf[pos+8:])) > maxReply {
				return 0, protoErr(ErrReplyTooLarge, pos, "")
			}
			return 0, nil
		}
		if pos+n > maxReply {
			return 0, protoErr(ErrReplyTooLarge, pos, "")
		}
		op := buf[pos+1]
		pos += n
		if !opTable[op].quiet {
			return pos, nil
		}
	}
}

// BinaryPacketLen returns the length of the first complete packet in buf, whose magic
// must be magic; 0 when incomplete.
func BinaryPacketLen(buf []byte, magic byte) (int, error) {
	if len(buf) == 0 {
		return 0, nil
	}
	if buf[0] != magic {
		return 0, protoErr(ErrBadMagic, 0, "")
	}
	if len(buf) < HeaderLen {
		return 0, nil
	}
	h := DecodeHeader(buf)
	if int64(h.ExtrasLen)+int64(h.KeyLen) > int64(h.BodyLen) {
		return 0, protoErr(ErrBadPacket, 0, "extras and key longer than the body")
	}
	end := int64(HeaderLen) + int64(h.BodyLen)
	if end > int64(len(buf)) {
		return 0, nil
	}
	return int(end), nil
}
