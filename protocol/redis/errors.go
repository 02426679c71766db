package redis

import (
	"errors"
	"strconv"
)

// Sentinel errors of the parsers. Errors returned by ParseRequest and ReplyLen wrap
// one of them in a *ProtocolError; test with errors.Is.
var (
	// ErrProtocol reports bytes that are not valid RESP.
	ErrProtocol = errors.New("redis: protocol error")
	// ErrTooManyArgs reports a request with more arguments than Limits.MaxArgs.
	ErrTooManyArgs = errors.New("redis: too many arguments")
	// ErrBulkTooLarge reports a bulk string longer than Limits.MaxBulk.
	ErrBulkTooLarge = errors.New("redis: bulk string too large")
	// ErrInlineTooLong reports an inline command line longer than Limits.MaxInline.
	ErrInlineTooLong = errors.New("redis: inline command too long")
	// ErrRequestTooLarge reports a request longer than Limits.MaxRequest bytes.
	ErrRequestTooLarge = errors.New("redis: request too large")
	// ErrReplyTooLarge reports a server reply longer than the caller's limit.
	ErrReplyTooLarge = errors.New("redis: reply too large")
)

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
