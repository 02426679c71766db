package memcache

import (
	"errors"
	"strconv"
)

// Sentinel errors of the parsers. The request parsers and the reply scanners return a
// *ProtocolError wrapping one of them; test with errors.Is. After any of them the
// connection cannot be resynchronised (the length of what follows is unknown), so the
// caller closes it.
var (
	// ErrProtocol reports bytes that are not a well-formed request or reply: a missing
	// CRLF, a bad number, a wrong argument count, a data block not followed by CRLF.
	ErrProtocol = errors.New("memcache: protocol error")
	// ErrUnknownCommand reports a text command name that is not memcached's (names are
	// lower case and case-sensitive, so "GET" is unknown too).
	ErrUnknownCommand = errors.New("memcache: unknown command")
	// ErrBadKey reports a key that is empty, longer than MaxKeyLen bytes, or (text
	// protocols) holds a control character; or a meta b key that is not base64.
	ErrBadKey = errors.New("memcache: bad key")
	// ErrBadFlag reports a meta flag the command does not take, or a malformed one.
	ErrBadFlag = errors.New("memcache: bad meta flag")
	// ErrLineTooLong reports a text command or reply line longer than Limits.MaxLine.
	ErrLineTooLong = errors.New("memcache: line too long")
	// ErrBadMagic reports a binary packet whose first byte is not the expected magic
	// (0x80 for requests, 0x81 for replies).
	ErrBadMagic = errors.New("memcache: bad binary magic")
	// ErrBadPacket reports a binary packet whose lengths do not fit its opcode (extras,
	// key or value present where the opcode forbids them, or missing where required).
	ErrBadPacket = errors.New("memcache: malformed binary packet")
	// ErrReplyTooLarge reports a server reply longer than the caller's limit.
	ErrReplyTooLarge = errors.New("memcache: reply too large")
	// ErrBadReply reports a server reply that is not one memcached sends.
	ErrBadReply = errors.New("memcache: invalid reply")
)

// ErrValueTooLarge is not returned as an error: a storage request whose value exceeds
// Limits.MaxValue is parsed (its line or header only) with TooLarge set, so that the
// caller can answer it as memcached does and skip the data. It is exported so that
// callers may use it as the cause in their own logs.
var ErrValueTooLarge = errors.New("memcache: value too large")

// ProtocolError is a malformed or over-limit request or reply. Offset is the byte
// offset in the parsed buffer where the problem was found.
type ProtocolError struct {
	Err    error // one of the sentinel errors above
	Offset int
	Detail string
}

// Error implements error.
func (e *ProtocolError) Error() string {
	s := e.Err.Error() + " at byte " + strconv.Itoa(e.Offset)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Unwrap returns the sentinel error.
func (e *ProtocolError) Unwrap() error { return e.Err }

func protoErr(sentinel error, off int, detail string) error {
	return &ProtocolError{Err: sentinel, Offset: off, Detail: detail}
}
