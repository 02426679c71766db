package memcache

import (
	"bytes"
)

// Route says how a text request is routed.
type Route uint8

// Routes.
const (
	// RouteKey: to the server owning Keys[0].
	RouteKey Route = iota
	// RouteKeys: get/gets/gat/gats; with more than one key, split per server
	// (TextSplit).
	RouteKeys
	// RouteAny: version, which twemproxy routes like a key named VersionRouteKey
	// and which that one server answers.
	RouteAny
	// RouteLocal: answered by the proxy (mn: "MN"; quit: the connection closes).
	RouteLocal
	// RouteRefused: verbosity, flush_all, stats. twemproxy takes them for parse
	// errors: no reply, the client connection is closed. They are parsed fully so the
	// caller can do the same (or answer otherwise) knowing exactly what was sent.
	RouteRefused
)

// VersionRouteKey is the key twemproxy routes "version" by.
const VersionRouteKey = "placeholder"

// TextRequest is one parsed text request (ASCII or meta). Byte slices point into the
// buffer given to ParseText (Keys of a meta b request point into the TextRequest's own
// buffer) and stay valid until that buffer changes or the TextRequest is reused.
type TextRequest struct {
	Cmd   Command
	Route Route
	// Raw is the whole request as received: the line, and the data block with its
	// CRLF for storage commands and ms.
	Raw []byte
	// Line is the command line without its line ending.
	Line []byte
	// Keys are the routing keys in request order (a meta b key decoded from base64).
	Keys [][]byte
	// Data is the data block without its CRLF (storage commands and ms).
	Data []byte
	// HasData reports a command that carries a data block.
	HasData bool
	// ClientFlags, Exptime, Bytes, CasUnique and Delta are the classic commands'
	// numeric arguments where they have them (Exptime also for touch, gat, gats).
	ClientFlags uint32
	Exptime     int64
	Bytes       int
	CasUnique   uint64
	Delta       uint64
	// MetaFlags are a meta command's flag tokens in order ("v", "O123", "T30").
	MetaFlags [][]byte
	// NoReply reports a classic command ending in noreply.
	NoReply bool
	// Quiet reports a meta command with the q flag.
	Quiet bool
	// Base64 reports a meta command with the b flag.
	Base64 bool
	// Expect is what the server sends back for the request as sent.
	Expect Expect
	// ReadOnly reports a request that changes nothing (get, gets, mg without N or T,
	// me, version): it may be served by a replica.
	ReadOnly bool
	// Terminator reports mn: its reply follows every earlier reply on the connection.
	Terminator bool
	// Close reports quit: the server closes the connection without a reply.
	Close bool
	// TooLarge reports a storage command (or ms) whose value exceeds
	// Limits.MaxValue. Raw then holds the line only, and Discard bytes (the data block
	// and its CRLF) follow it that the caller must skip unparsed. memcached answers
	// "SERVER_ERROR object too large for cache" (none with noreply) and, for set,
	// removes any item already stored under the key.
	TooLarge bool
	// Discard is the number of bytes to skip after Raw when TooLarge.
	Discard int

	tokens  [][]byte
	keyBuf  []byte
	keyOne  [1][]byte
	noreply int // index in tokens of "noreply" or the q flag; -1 when none
}

func (r *TextRequest) reset() {
	*r = TextRequest{tokens: r.tokens[:0], keyBuf: r.keyBuf[:0], Keys: r.Keys[:0], MetaFlags: r.MetaFlags[:0], noreply: -1}
}

// Flag returns the argument of the meta flag c (the token after the letter) and
// whether the request carries it.
func (r *TextRequest) Flag(c byte) ([]byte, bool) {
	for _, f := range r.MetaFlags {
		if f[0] == c {
			return f[1:], true
		}
	}
	return nil, false
}

// ParseText parses the first text request in buf into req, within l (zero fields take
// their defaults). It returns the number of bytes the request takes; n == 0 with a nil
// error means buf does not hold a whole request yet. A line may end in CRLF or, as
// memcached accepts, a bare LF; a data block must be followed by CRLF. An error is a
// *ProtocolError: the connection cannot be resynchronised after it.
//
// Parsing is memcached's, with twemproxy's limits where they are stricter only in
// what makes a request unroutable: keys are 1 to MaxKeyLen bytes of no control
// character (twemproxy lets tabs through, memcached does not); "delete <key> 0" is
// accepted as memcached 1.6 does (twemproxy refuses it); upper-case names are unknown.
func ParseText(buf []byte, req *TextRequest, l Limits) (int, error) {
	req.reset()
	maxLine := l.MaxLine
	if maxLine <= 0 {
		maxLine = DefaultMaxLine
	}
	maxValue := l.MaxValue
	if maxValue <= 0 {
		maxValue = DefaultMaxValue
	}
	lim := min(len(buf), maxLine)
	nl := bytes.IndexByte(buf[:lim], '\n')
	if nl < 0 {
		if len(buf) >= maxLine {
			return 0, protoErr(ErrLineTooLong, 0, "")
		}
		return 0, nil
	}
	line := buf[:nl]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	req.Line = line
	lineEnd := nl + 1
	req.Raw = buf[:lineEnd:lineEnd]
	for i := 0; i < len(line); {
		if line[i] == ' ' {
			i++
			continue
		}
		j := i
		for j < len(line) && line[j] != ' ' {
			j++
		}
		req.tokens = append(req.tokens, line[i:j:j])
		i = j
	}
	if len(req.tokens) == 0 {
		return 0, protoErr(ErrProtocol, 0, "empty command line")
	}
	req.Cmd = lookupCommand(req.tokens[0])
	args := req.tokens[1:]
	var err error
	switch c := req.Cmd; {
	case c == CmdUnknown:
		return 0, protoErr(ErrUnknownCommand, 0, printable(req.tokens[0]))
	case c.IsRetrieval():
		err = req.parseRetrieval(args)
	case c.IsStorage():
		err = req.parseStorage(args)
	case c == CmdDelete:
		err = req.parseDelete(args)
	case c == CmdIncr || c == CmdDecr:
		err = req.parseArith(args)
	case c == CmdTouch:
		err = req.parseTouch(args)
	case c == CmdVersion || c == CmdQuit:
		if len(args) != 0 {
			return 0, protoErr(ErrProtocol, 0, c.String()+" takes no arguments")
		}
		if c == CmdQuit {
			req.Route, req.Expect, req.Close = RouteLocal, ExpectNone, true
		} else {
			req.Route, req.ReadOnly = RouteAny, true
		}
	case c == CmdVerbosity || c == CmdFlushAll || c == CmdStats:
		err = req.parseAdmin(args)
	default:
		err = req.parseMeta(args, maxValue)
	}
	if err != nil {
		return 0, err
	}
	if req.NoReply {
		req.Expect = ExpectNone
	}
	if !req.HasData {
		return lineEnd, nil
	}
	if req.Bytes > maxValue {
		req.TooLarge = true
		req.Discard = req.Bytes + 2
		return lineEnd, nil
	}
	end := lineEnd + req.Bytes
	if end+2 > len(buf) {
		return 0, nil
	}
	if buf[end] != '\r' || buf[end+1] != '\n' {
		return 0, protoErr(ErrProtocol, end, "data block not terminated by CRLF")
	}
	req.Data = buf[lineEnd:end:end]
	req.Raw = buf[: end+2 : end+2]
	return end + 2, nil
}

// checkKey validates a text key: 1..MaxKeyLen bytes, no control characters.
func checkKey(k []byte) error {
	if len(k) == 0 || len(k) > MaxKeyLen {
		return protoErr(ErrBadKey, 0, "key length must be 1 to 250 bytes")
	}
	for _, c := range k {
		if c < 0x20 || c == 0x7f {
			return protoErr(ErrBadKey, 0, "control character in key")
		}
	}
	return nil
}

func (r *TextRequest) addKey(k []byte) error {
	if err := checkKey(k); err != nil {
		return err
	}
	r.Keys = append(r.Keys, k)
	return nil
}

// trailingNoreply strips a final "noreply" from args.
func (r *TextRequest) trailingNoreply(args [][]byte) [][]byte {
	if n := len(args); n > 0 && string(args[n-1]) == "noreply" {
		r.NoReply = true
		r.noreply = n // index in tokens (args start at tokens[1])
		return args[:n-1]
	}
	return args
}

func (r *TextRequest) parseRetrieval(args [][]byte) error {
	r.Route = RouteKeys
	r.ReadOnly = r.Cmd == CmdGet || r.Cmd == CmdGets
	if r.Cmd == CmdGat || r.Cmd == CmdGats {
		if len(args) == 0 {
			return protoErr(ErrProtocol, 0, "gat needs an exptime")
		}
		v, ok := parseInt(args[0])
		if !ok {
			return protoErr(ErrProtocol, 0, "bad exptime")
		}
		r.Exptime = v
		args = args[1:]
	}
	if len(args) == 0 {
		return protoErr(ErrProtocol, 0, r.Cmd.String()+" needs a key")
	}
	r.Keys = r.Keys[:0]
	for _, k := range args {
		if err := r.addKey(k); err != nil {
			return err
		}
	}
	return nil
}

func (r *TextRequest) parseDelete(args [][]byte) error {
	args = r.trailingNoreply(args)
	if len(args) == 2 && string(args[1]) == "0" {
		args = args[:1] // legacy "delete <key> 0", accepted by memcached 1.6
	}
	if len(args) != 1 {
		return protoErr(ErrProtocol, 0, "wrong number of arguments for delete")
	}
	return r.addKey(args[0])
}

func (r *TextRequest) parseArith(args [][]byte) error {
	args = r.trailingNoreply(args)
	if len(args) != 2 {
		return protoErr(ErrProtocol, 0, "wrong number of arguments for "+r.Cmd.String())
	}
	if err := r.addKey(args[0]); err != nil {
		return err
	}
	d, ok := parseUint(args[1], ^uint64(0))
	if !ok {
		return protoErr(ErrProtocol, 0, "invalid numeric delta argument")
	}
	r.Delta = d
	return nil
}

func (r *TextRequest) parseTouch(args [][]byte) error {
	args = r.trailingNoreply(args)
	if len(args) != 2 {
		return protoErr(ErrProtocol, 0, "wrong number of arguments for touch")
	}
	if err := r.addKey(args[0]); err != nil {
		return err
	}
	exp, ok := parseInt(args[1])
	if !ok {
		return protoErr(ErrProtocol, 0, "bad exptime")
	}
	r.Exptime = exp
	return nil
}

func (r *TextRequest) parseAdmin(args [][]byte) error {
	r.Route = RouteRefused
	if r.Cmd == CmdStats {
		return nil // any arguments: "stats", "stats items", "stats slabs", ...
	}
	args = r.trailingNoreply(args)
	switch {
	case r.Cmd == CmdVerbosity && len(args) == 1:
	case r.Cmd == CmdFlushAll && len(args) <= 1:
	default:
		return protoErr(ErrProtocol, 0, "wrong number of arguments for "+r.Cmd.String())
	}
	for _, a := range args {
		if _, ok := parseInt(a); !ok {
			return protoErr(ErrProtocol, 0, "bad number")
		}
	}
	return nil
}

// parseUint parses a decimal number of at most max.
func parseUint(b []byte, max uint64) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (max-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

// parseInt parses a signed decimal that fits an int64.
func parseInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	v, ok := parseUint(b, 1<<63-1)
	if neg {
		return -int64(v), ok
	}
	return int64(v), ok
}

// printable returns b for an error message: at most 64 bytes, control bytes as '?'.
func printable(b []byte) string {
	if len(b) > 64 {
		b = b[:64]
	}
	out := make([]byte, len(b))
	for i, c := range b {
		if c < 0x20 || c >= 0x7f {
			c = '?'
		}
		out[i] = c
	}
	return string(out)
}
