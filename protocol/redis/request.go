package redis

import "bytes"

// Default limits, used where a Limits field is zero.
const (
	// DefaultMaxArgs is the default limit on arguments per request, command name
	// included (Redis itself accepts up to 2^31; 1 Mi keys in one MGET is plenty).
	DefaultMaxArgs = 1 << 20
	// DefaultMaxBulk is the default limit on one bulk string: 32 MiB (Redis allows
	// 512 MiB; values that large do not belong behind a sharding proxy).
	DefaultMaxBulk = 32 << 20
	// DefaultMaxInline is the default limit on an inline command line: 64 KiB, as
	// Redis (PROTO_INLINE_MAX_SIZE).
	DefaultMaxInline = 64 << 10
	// DefaultMaxRequest is the default limit on one whole request: 64 MiB.
	DefaultMaxRequest = 64 << 20
)

// Limits bound what one request may make the proxy hold in memory. The zero value
// means every default.
type Limits struct {
	MaxArgs    int // arguments per request, command name included; 0 means DefaultMaxArgs
	MaxBulk    int // bytes per bulk string; 0 means DefaultMaxBulk
	MaxInline  int // bytes per inline command line; 0 means DefaultMaxInline
	MaxRequest int // bytes per request; 0 means DefaultMaxRequest
}

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	if l.MaxArgs <= 0 {
		l.MaxArgs = DefaultMaxArgs
	}
	if l.MaxBulk <= 0 {
		l.MaxBulk = DefaultMaxBulk
	}
	if l.MaxInline <= 0 {
		l.MaxInline = DefaultMaxInline
	}
	if l.MaxRequest <= 0 {
		l.MaxRequest = DefaultMaxRequest
	}
	return l
}

// Request is one parsed client request. Args and Raw point into the buffer given to
// ParseRequest and stay valid until that buffer is changed. A Request is meant to be
// reused: ParseRequest overwrites it.
type Request struct {
	// Args are the command name and its arguments. Empty for a request that carries
	// no command (an empty inline line or "*0"): skip it.
	Args [][]byte
	// Raw is the whole request as received.
	Raw []byte
	// Inline reports an inline (space-separated) request rather than a multi-bulk one.
	Inline bool
}

// ParseRequest parses the first request in buf into req, within the limits l (call
// l.WithDefaults() once beforehand; zero fields here are taken as defaults too). It
// returns the number of bytes the request takes. n == 0 with a nil error means buf does
// not yet hold a whole request: read more and call again with the longer buffer. An
// error is a *ProtocolError; the connection cannot be resynchronised after one.
//
// The parser is our own rather than redcon's Reader because it measurably beats it:
// on a pipeline of 1,000 SET commands (BenchmarkParseRequest vs BenchmarkRedconReader
// in request_test.go, go1.26, 2-core Xeon) it takes 39 µs and 0 allocations where
// redcon's Reader takes 396 µs, 644 KB and 2 allocations per command. It also never grows a buffer itself: the
// caller owns the buffer and its bound.
func ParseRequest(buf []byte, req *Request, l Limits) (n int, err error) {
	req.Args = req.Args[:0]
	req.Raw = nil
	req.Inline = false
	if len(buf) == 0 {
		return 0, nil
	}
	if buf[0] != '*' {
		return parseInline(buf, req, l)
	}
	maxArgs, maxBulk, maxReq := l.MaxArgs, l.MaxBulk, l.MaxRequest
	if maxArgs <= 0 {
		maxArgs = DefaultMaxArgs
	}
	if maxBulk <= 0 {
		maxBulk = DefaultMaxBulk
	}
	if maxReq <= 0 {
		maxReq = DefaultMaxRequest
	}
	count, pos, ok, err := parseLineInt(buf, 1, maxInt)
	if err != nil || !ok {
		return 0, err
	}
	if count > int64(maxArgs) {
		return 0, protoErr(ErrTooManyArgs, 1, "")
	}
	for i := int64(0); i < count; i++ {
		if pos >= len(buf) {
			return incomplete(len(buf), maxReq)
		}
		if buf[pos] != '$' {
			return 0, protoErr(ErrProtocol, pos, "expected '$'")
		}
		size, next, ok, err := parseLineInt(buf, pos+1, int64(maxBulk))
		if err != nil {
			return 0, err
		}
		if !ok {
			return incomplete(len(buf), maxReq)
		}
		if size < 0 {
			return 0, protoErr(ErrProtocol, pos, "negative bulk length")
		}
		end := next + int(size)
		if end+2 > len(buf) {
			if end+2 > maxReq {
				return 0, protoErr(ErrRequestTooLarge, pos, "")
			}
			return 0, nil
		}
		if buf[end] != '\r' || buf[end+1] != '\n' {
			return 0, protoErr(ErrProtocol, end, "bulk string not terminated by CRLF")
		}
		req.Args = append(req.Args, buf[next:end:end])
		pos = end + 2
	}
	if pos > maxReq {
		return 0, protoErr(ErrRequestTooLarge, 0, "")
	}
	if count <= 0 {
		req.Args = req.Args[:0]
	}
	req.Raw = buf[:pos:pos]
	return pos, nil
}

const maxInt = int64(^uint(0) >> 1)

func incomplete(have, maxReq int) (int, error) {
	if have > maxReq {
		return 0, protoErr(ErrRequestTooLarge, 0, "")
	}
	return 0, nil
}

// parseLineInt parses a decimal integer starting at buf[pos] and ending with CRLF.
// It returns the value and the position after the CRLF; ok is false when the line is
// not complete yet. A value above limit is ErrBulkTooLarge (or ErrTooManyArgs when the
// caller checks afterwards).
func parseLineInt(buf []byte, pos int, limit int64) (v int64, next int, ok bool, err error) {
	start := pos
	neg := false
	if pos < len(buf) && buf[pos] == '-' {
		neg = true
		pos++
	}
	digits := 0
	for ; pos < len(buf); pos++ {
		c := buf[pos]
		if c >= '0' && c <= '9' {
			if digits >= 18 {
				return 0, 0, false, protoErr(ErrProtocol, start, "number too long")
			}
			v = v*10 + int64(c-'0')
			digits++
			if !neg && v > limit {
				return 0, 0, false, protoErr(ErrBulkTooLarge, start, "")
			}
			continue
		}
		if c != '\r' {
			return 0, 0, false, protoErr(ErrProtocol, pos, "invalid character in number")
		}
		if pos+1 >= len(buf) {
			return 0, 0, false, nil
		}
		if buf[pos+1] != '\n' || digits == 0 {
			return 0, 0, false, protoErr(ErrProtocol, pos, "malformed number line")
		}
		if neg {
			v = -v
		}
		return v, pos + 2, true, nil
	}
	return 0, 0, false, nil
}

// parseInline parses a space-separated command line ending in LF or CRLF. Quotes
// around an argument are removed ("a b" is one argument); escapes inside quotes are not
// interpreted.
func parseInline(buf []byte, req *Request, l Limits) (int, error) {
	maxInline, maxArgs := l.MaxInline, l.MaxArgs
	if maxInline <= 0 {
		maxInline = DefaultMaxInline
	}
	if maxArgs <= 0 {
		maxArgs = DefaultMaxArgs
	}
	nl := bytes.IndexByte(buf, '\n')
	if nl < 0 {
		if len(buf) > maxInline {
			return 0, protoErr(ErrInlineTooLong, 0, "")
		}
		return 0, nil
	}
	if nl > maxInline {
		return 0, protoErr(ErrInlineTooLong, 0, "")
	}
	line := buf[:nl]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	req.Inline = true
	for i := 0; i < len(line); {
		c := line[i]
		if c == ' ' || c == '\t' {
			i++
			continue
		}
		var arg []byte
		if c == '"' || c == '\'' {
			end := bytes.IndexByte(line[i+1:], c)
			if end < 0 {
				return 0, protoErr(ErrProtocol, i, "unbalanced quotes in inline request")
			}
			arg = line[i+1 : i+1+end : i+1+end]
			i += end + 2
			if i < len(line) && line[i] != ' ' && line[i] != '\t' {
				return 0, protoErr(ErrProtocol, i, "closing quote must be followed by a space")
			}
		} else {
			j := i
			for j < len(line) && line[j] != ' ' && line[j] != '\t' {
				j++
			}
			arg = line[i:j:j]
			i = j
		}
		if len(req.Args) >= maxArgs {
			return 0, protoErr(ErrTooManyArgs, i, "")
		}
		req.Args = append(req.Args, arg)
	}
	req.Raw = buf[: nl+1 : nl+1]
	return nl + 1, nil
}
