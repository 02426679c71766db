package memcache

import "bytes"

// TextReplyLen returns the length of the first complete text reply in buf: a VALUE
// block sequence up to and including END, a VA line with its data block, a STAT
// sequence up to END, or one line (STORED, NOT_STORED, EXISTS, NOT_FOUND, DELETED,
// TOUCHED, OK, END, a number (trailing spaces allowed), VERSION, ERROR,
// CLIENT_ERROR, SERVER_ERROR; meta HD, EN, NS, EX, NF, MN, ME). Data blocks are
// framed by their length, never scanned. n == 0 with a nil error means the reply is
// not complete yet. A reply longer than l.MaxReply or a line longer than l.MaxLine is
// ErrReplyTooLarge; anything memcached does not send is ErrBadReply.
func TextReplyLen(buf []byte, l Limits) (int, error) {
	l = l.WithDefaults()
	line, next, err := replyLine(buf, 0, l)
	if err != nil || next == 0 {
		return 0, err
	}
	switch {
	case bytes.HasPrefix(line, []byte("VALUE ")):
		pos := 0
		for {
			line, next, err = replyLine(buf, pos, l)
			if err != nil || next == 0 {
				return 0, err
			}
			if string(line) == "END" {
				return next, nil
			}
			if !bytes.HasPrefix(line, []byte("VALUE ")) {
				return 0, protoErr(ErrBadReply, pos, "expected VALUE or END")
			}
			_, size, ok := parseValueLine(line)
			if !ok {
				return 0, protoErr(ErrBadReply, pos, "malformed VALUE line")
			}
			if pos, err = dataBlock(buf, next, size, l); err != nil || pos == 0 {
				return 0, err
			}
		}
	case bytes.HasPrefix(line, []byte("VA ")):
		var fa [maxReplyFields][]byte
		f := fields(fa[:0], line)
		size, ok := parseUint(f[1], uint64(l.MaxReply))
		if !ok {
			return 0, protoErr(ErrBadReply, 0, "malformed VA line")
		}
		return dataBlock(buf, next, int(size), l)
	case bytes.HasPrefix(line, []byte("STAT ")):
		pos := next
		for {
			line, next, err = replyLine(buf, pos, l)
			if err != nil || next == 0 {
				return 0, err
			}
			if string(line) == "END" {
				return next, nil
			}
			if !bytes.HasPrefix(line, []byte("STAT ")) {
				return 0, protoErr(ErrBadReply, pos, "expected STAT or END")
			}
			pos = next
		}
	}
	if !validLine(line) {
		return 0, protoErr(ErrBadReply, 0, "unknown reply "+printable(line))
	}
	return next, nil
}

// replyLine returns the line at buf[pos:] without CRLF and the position after it;
// next == 0 when the line is not complete.
func replyLine(buf []byte, pos int, l Limits) (line []byte, next int, err error) {
	if pos > l.MaxReply {
		return nil, 0, protoErr(ErrReplyTooLarge, 0, "")
	}
	rest := buf[pos:]
	lim := min(len(rest), l.MaxLine)
	nl := bytes.IndexByte(rest[:lim], '\n')
	if nl < 0 {
		if len(rest) >= l.MaxLine {
			return nil, 0, protoErr(ErrReplyTooLarge, pos, "reply line too long")
		}
		return nil, 0, nil
	}
	if nl == 0 || rest[nl-1] != '\r' {
		return nil, 0, protoErr(ErrBadReply, pos, "line not terminated by CRLF")
	}
	return rest[: nl-1 : nl-1], pos + nl + 1, nil
}

// dataBlock checks the size-byte block and its CRLF at buf[pos:] and returns the
// position after them, 0 when incomplete.
func dataBlock(buf []byte, pos, size int, l Limits) (int, error) {
	end := pos + size + 2
	if end > l.MaxReply || end < pos {
		return 0, protoErr(ErrReplyTooLarge, pos, "")
	}
	if end > len(buf) {
		return 0, nil
	}
	if buf[end-2] != '\r' || buf[end-1] != '\n' {
		return 0, protoErr(ErrBadReply, end-2, "data block not terminated by CRLF")
	}
	return end, nil
}

// parseValueLine parses "VALUE <key> <flags> <bytes> [<cas>]".
func parseValueLine(line []byte) (key []byte, size int, ok bool) {
	var fa [maxReplyFields][]byte
	f := fields(fa[:0], line)
	if len(f) != 4 && len(f) != 5 {
		return nil, 0, false
	}
	if _, ok := parseUint(f[2], 1<<32-1); !ok {
		return nil, 0, false
	}
	n, ok := parseUint(f[3], 1<<62)
	if !ok {
		return nil, 0, false
	}
	if len(f) == 5 {
		if _, ok := parseUint(f[4], ^uint64(0)); !ok {
			return nil, 0, false
		}
	}
	return f[1], int(n), true
}

// maxReplyFields is the room for the fields of a reply line on the stack: a VALUE
// line has at most 5 and a VA line is read for its first 2; more spill to the heap.
const maxReplyFields = 8

// fields appends the space-separated fields of line to out (at least two, nil for the
// missing ones). Given room on the caller's stack, it allocates nothing.
func fields(out [][]byte, line []byte) [][]byte {
	for i := 0; i < len(line); {
		if line[i] == ' ' {
			i++
			continue
		}
		j := i
		for j < len(line) && line[j] != ' ' {
			j++
		}
		out = append(out, line[i:j:j])
		i = j
	}
	for len(out) < 2 {
		out = append(out, nil) // callers index f[1]
	}
	return out
}

var singleLines = []string{
	"STORED", "NOT_STORED", "EXISTS", "NOT_FOUND", "DELETED", "TOUCHED", "OK", "END",
	"ERROR", "MN",
}

// linePrefixes: the meta codes among them (two letters) come alone or with flags; a
// miss (EN) carries the k and O flags back when they were asked for (memcached 1.6).
var linePrefixes = []string{"VERSION ", "CLIENT_ERROR", "SERVER_ERROR", "ERROR ", "HD", "NS", "EX", "NF", "EN", "ME "}

// validLine reports a single-line reply memcached sends.
func validLine(line []byte) bool {
	for _, s := range singleLines {
		if string(line) == s {
			return true
		}
	}
	for _, p := range linePrefixes {
		if bytes.HasPrefix(line, []byte(p)) {
			if len(p) == 2 { // meta codes: alone or followed by flags
				return len(line) == 2 || line[2] == ' '
			}
			return true
		}
	}
	// incr/decr: a decimal number, possibly with trailing spaces.
	digits := bytes.TrimRight(line, " ")
	_, ok := parseUint(digits, ^uint64(0))
	return ok
}

// IsTextError reports whether reply is ERROR, CLIENT_ERROR or SERVER_ERROR.
func IsTextError(reply []byte) bool {
	return bytes.HasPrefix(reply, []byte("ERROR")) || bytes.HasPrefix(reply, []byte("CLIENT_ERROR")) ||
		bytes.HasPrefix(reply, []byte("SERVER_ERROR"))
}

// AppendServerError appends "SERVER_ERROR msg\r\n", the line twemproxy answers proxy
// failures with (msg is strerror-like text: "Connection timed out", "unknown").
func AppendServerError(dst []byte, msg string) []byte {
	dst = append(dst, "SERVER_ERROR "...)
	dst = append(dst, msg...)
	return append(dst, '\r', '\n')
}

// TooLargeReply is memcached's reply to a storage command whose value is over the
// item size limit.
const TooLargeReply = "SERVER_ERROR object too large for cache\r\n"
