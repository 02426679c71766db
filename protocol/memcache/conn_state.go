package memcache

import "errors"

// ConnState is what a Conn carries from one request to the next: whether its protocol
// was detected and which, and how many bytes of an oversized value are still to be
// skipped. Nothing else of a Conn outlives a request: the parsers start afresh on each
// one, and a binary group of quiet gets is taken whole or not at all, so between two
// requests (nothing left unparsed) a Conn resumed from its State parses the rest of
// the client's stream as the original would have.
type ConnState struct {
	// Detected reports that the first byte was seen; Protocol is meaningful only then.
	Detected bool
	Protocol Protocol
	// Discard is the number of value bytes of an oversized request still to skip
	// (0 for none).
	Discard int
}

// MaxDiscard is the largest Discard a ConnState may hold: the largest value length a
// text request may declare, with its CRLF.
const MaxDiscard = 1<<62 + 2

// ErrBadConnState is returned by ResumeConn for a ConnState no Conn can be in.
var ErrBadConnState = errors.New("memcache: invalid connection state")

// State returns the connection's state, for ResumeConn.
func (c *Conn) State() ConnState {
	return ConnState{Detected: c.detected, Protocol: c.proto, Discard: c.discard}
}

// ResumeConn returns a Conn in state s with limits l (zero fields take their
// defaults): a client connection that moves to another process between requests goes
// on there as it was. A state no Conn can be in (an unknown protocol, bytes to skip
// before the first byte was seen, a negative or oversized Discard) is
// ErrBadConnState.
func ResumeConn(l Limits, s ConnState) (*Conn, error) {
	switch {
	case s.Protocol != Text && s.Protocol != Binary,
		!s.Detected && (s.Protocol != Text || s.Discard != 0),
		s.Discard < 0 || s.Discard > MaxDiscard:
		return nil, ErrBadConnState
	}
	c := NewConn(l)
	c.detected, c.proto, c.discard = s.Detected, s.Protocol, s.Discard
	return c, nil
}
