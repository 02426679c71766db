package memcache

// MaxKeyLen is the longest key memcached accepts (KEY_MAX_LENGTH): 250 bytes. It is
// not configurable: a longer key could not be stored on any server.
const MaxKeyLen = 250

// Default limits, used where a Limits field is zero.
const (
	// DefaultMaxValue is the default limit on one value: 1 MiB, memcached's default
	// item size limit (-I 1m).
	DefaultMaxValue = 1 << 20
	// DefaultMaxLine is the default limit on a text command line, CRLF included:
	// 64 KiB, room for a multi-key get of some 250 keys of 250 bytes.
	DefaultMaxLine = 64 << 10
	// DefaultMaxGroup is the default limit on the quiet gets gathered into one binary
	// multi-get group (see BinaryGroup); a longer run is cut into several groups.
	DefaultMaxGroup = 1024
	// DefaultMaxReply is the default limit on one server reply given to the reply
	// scanners: 64 MiB (a multi-get of many large values).
	DefaultMaxReply = 64 << 20
)

// Limits bound what one request or reply may make the proxy hold in memory. The zero
// value means every default.
type Limits struct {
	// MaxValue is the largest value (data block, binary value) accepted, in bytes;
	// 0 means DefaultMaxValue. Set it to the servers' -I.
	MaxValue int
	// MaxLine is the longest text command line, CRLF included; 0 means DefaultMaxLine.
	MaxLine int
	// MaxGroup is the most quiet gets in one binary group; 0 means DefaultMaxGroup.
	MaxGroup int
	// MaxReply is the longest server reply; 0 means DefaultMaxReply.
	MaxReply int
}

// WithDefaults returns l with every zero (or negative) field set to its default.
func (l Limits) WithDefaults() Limits {
	if l.MaxValue <= 0 {
		l.MaxValue = DefaultMaxValue
	}
	if l.MaxLine <= 0 {
		l.MaxLine = DefaultMaxLine
	}
	if l.MaxGroup <= 0 {
		l.MaxGroup = DefaultMaxGroup
	}
	if l.MaxReply <= 0 {
		l.MaxReply = DefaultMaxReply
	}
	return l
}

// Protocol is the protocol a client connection speaks.
type Protocol uint8

// Protocols. ASCII and meta commands share a connection, so both are Text.
const (
	// Text is the ASCII protocol, meta commands included.
	Text Protocol = iota
	// Binary is the binary protocol.
	Binary
)

// String returns "text" or "binary".
func (p Protocol) String() string {
	if p == Binary {
		return "binary"
	}
	return "text"
}

// Detect tells from the first byte a client sends which protocol its connection
// speaks, as memcached does: 0x80 (the binary request magic) is Binary, anything else
// Text. The choice holds for the whole connection.
func Detect(first byte) Protocol {
	if first == MagicRequest {
		return Binary
	}
	return Text
}

// Expect is what the server sends back for a request, as the client sent it.
type Expect uint8

// Reply expectations.
const (
	// ExpectReply: exactly one reply.
	ExpectReply Expect = iota
	// ExpectNone: no reply at all (ASCII noreply; binary quitq; ASCII quit, after
	// which the server closes).
	ExpectNone
	// ExpectMaybe: a reply only when the outcome is not the nominal one (meta q: mg
	// hides EN, ms/md/ma hide HD; binary quiet opcodes: getq/getkq hide misses,
	// mutations hide success). Errors always come back. Only a later terminator's
	// reply (mn, binary noop) proves that no reply is coming.
	ExpectMaybe
)

// String names the expectation.
func (e Expect) String() string {
	switch e {
	case ExpectNone:
		return "none"
	case ExpectMaybe:
		return "maybe"
	}
	return "reply"
}
