package redis

import "bytes"

// DefaultMaxReply is the default limit on one server reply passed to ReplyLen: 512 MiB,
// the largest bulk string Redis itself stores.
const DefaultMaxReply = 512 << 20

// ReplyLen returns the length of the first complete reply in buf, nested arrays, maps,
// sets and pushes included (RESP2 and RESP3). n == 0 with a nil error means the reply is
// not complete yet. A reply longer than maxReply bytes (0 means DefaultMaxReply) is
// ErrReplyTooLarge. The scan is iterative, so nesting depth costs no stack.
func ReplyLen(buf []byte, maxReply int) (n int, err error) {
	if maxReply <= 0 {
		maxReply = DefaultMaxReply
	}
	pos := 0
	pending := int64(1) // values still to read
	for pending > 0 {
		if pos >= len(buf) {
			return tooLargeOrMore(pos, maxReply)
		}
		t := buf[pos]
		switch t {
		case '+', '-', ':', ',', '_', '#', '(':
			// Single-line types.
			nl := bytes.IndexByte(buf[pos:], '\n')
			if nl < 0 {
				return tooLargeOrMore(len(buf), maxReply)
			}
			if nl == 0 || buf[pos+nl-1] != '\r' {
				return 0, protoErr(ErrProtocol, pos, "line not terminated by CRLF")
			}
			pos += nl + 1
			pending--
		case '$', '!', '=':
			size, next, ok, err := parseLineInt(buf, pos+1, int64(maxReply))
			if err != nil {
				return 0, replyLimitErr(err, pos)
			}
			if !ok {
				return tooLargeOrMore(len(buf), maxReply)
			}
			pending--
			if size < 0 { // null bulk
				pos = next
				continue
			}
			end := next + int(size) + 2
			if end > maxReply {
				return 0, protoErr(ErrReplyTooLarge, pos, "")
			}
			if end > len(buf) {
				return 0, nil
			}
			if buf[end-2] != '\r' || buf[end-1] != '\n' {
				return 0, protoErr(ErrProtocol, end-2, "bulk string not terminated by CRLF")
			}
			pos = end
		case '*', '~', '>', '%', '|':
			size, next, ok, err := parseLineInt(buf, pos+1, int64(maxReply))
			if err != nil {
				return 0, replyLimitErr(err, pos)
			}
			if !ok {
				return tooLargeOrMore(len(buf), maxReply)
			}
			pos = next
			pending--
			if size > 0 {
				if t == '%' || t == '|' {
					size *= 2
				}
				pending += size
			}
			if t == '|' { // attributes precede the value they describe
				pending++
			}
		default:
			return 0, protoErr(ErrProtocol, pos, "unknown reply type")
		}
		if pos > maxReply {
			return 0, protoErr(ErrReplyTooLarge, 0, "")
		}
	}
	return pos, nil
}

func tooLargeOrMore(have, maxReply int) (int, error) {
	if have > maxReply {
		return 0, protoErr(ErrReplyTooLarge, 0, "")
	}
	return 0, nil
}

func replyLimitErr(err error, pos int) error {
	if pe, ok := err.(*ProtocolError); ok && pe.Err == ErrBulkTooLarge {
		return protoErr(ErrReplyTooLarge, pos, "")
	}
	return err
}

// IsError reports whether reply (one complete reply) is an error reply.
func IsError(reply []byte) bool { return len(reply) > 0 && reply[0] == '-' }

// ReplyInt returns the value of an integer reply (":n\r\n").
func ReplyInt(reply []byte) (int64, bool) {
	if len(reply) < 4 || reply[0] != ':' {
		return 0, false
	}
	v, next, ok, err := parseLineInt(reply, 1, maxInt)
	if err != nil || !ok || next != len(reply) {
		return 0, false
	}
	return v, true
}

// ArrayElements appends to dst the elements of an array reply (each a complete reply
// slicing into reply) and returns them. ok is false when reply is not an array.
func ArrayElements(dst [][]byte, reply []byte) (elems [][]byte, ok bool) {
	if len(reply) == 0 || reply[0] != '*' {
		return dst, false
	}
	n, pos, ok, err := parseLineInt(reply, 1, maxInt)
	if err != nil || !ok {
		return dst, false
	}
	for i := int64(0); i < n; i++ {
		l, err := ReplyLen(reply[pos:], len(reply))
		if err != nil || l == 0 {
			return dst, false
		}
		dst = append(dst, reply[pos:pos+l:pos+l])
		pos += l
	}
	return dst, true
}

// AuthError is what a server's error reply to AUTH says (see ClassifyAuthError).
type AuthError int

// Kinds of AUTH error replies.
const (
	// AuthErrOther is any other error (not one AUTH produces).
	AuthErrOther AuthError = iota
	// AuthErrRefused: the password (or user) is wrong, or the server wants one:
	// WRONGPASS (Redis 6 and later), "ERR invalid password" (earlier), NOAUTH.
	AuthErrRefused
	// AuthErrNoPassword: the server has no password, so AUTH is pointless and every
	// connection is let in: "ERR AUTH <password> called without any password configured
	// ..." (Redis 6 and later), "ERR Client sent AUTH, but no password is set" (earlier).
	AuthErrNoPassword
)

// ClassifyAuthError classifies the text of an error reply (without the leading '-'
// and the CRLF) to AUTH.
func ClassifyAuthError(text []byte) AuthError {
	switch {
	case bytes.HasPrefix(text, []byte("WRONGPASS")), bytes.HasPrefix(text, []byte("NOAUTH")),
		bytes.Equal(text, []byte("ERR invalid password")):
		return AuthErrRefused
	case bytes.Equal(text, []byte("ERR Client sent AUTH, but no password is set")),
		bytes.HasPrefix(text, []byte("ERR AUTH ")) && bytes.Contains(text, []byte(" called without any password configured")):
		return AuthErrNoPassword
	}
	return AuthErrOther
}
