package memcache

import (
	"bytes"
	"encoding/base64"
)

// Command is a text (ASCII or meta) command.
type Command uint8

// Text commands.
const (
	CmdUnknown        Command = iota // not a memcached command
	CmdGet                           // get <key>+
	CmdGets                          // gets <key>+
	CmdGat                           // gat <exptime> <key>+
	CmdGats                          // gats <exptime> <key>+
	CmdSet                           // set <key> <flags> <exptime> <bytes> [noreply]
	CmdAdd                           // add ...
	CmdReplace                       // replace ...
	CmdAppend                        // append ...
	CmdPrepend                       // prepend ...
	CmdCas                           // cas <key> <flags> <exptime> <bytes> <cas unique> [noreply]
	CmdDelete                        // delete <key> [0] [noreply]
	CmdIncr                          // incr <key> <value> [noreply]
	CmdDecr                          // decr <key> <value> [noreply]
	CmdTouch                         // touch <key> <exptime> [noreply]
	CmdVersion                       // version
	CmdQuit                          // quit
	CmdVerbosity                     // verbosity <n> [noreply]
	CmdFlushAll                      // flush_all [delay] [noreply]
	CmdStats                         // stats [args]
	CmdMetaGet                       // mg <key> <flags>*
	CmdMetaSet                       // ms <key> <datalen> <flags>*
	CmdMetaDelete                    // md <key> <flags>*
	CmdMetaArithmetic                // ma <key> <flags>*
	CmdMetaNoop                      // mn
	CmdMetaDebug                     // me <key> [b]
)

var commandNames = [...]string{
	CmdUnknown: "", CmdGet: "get", CmdGets: "gets", CmdGat: "gat", CmdGats: "gats",
	CmdSet: "set", CmdAdd: "add", CmdReplace: "replace", CmdAppend: "append",
	CmdPrepend: "prepend", CmdCas: "cas", CmdDelete: "delete", CmdIncr: "incr",
	CmdDecr: "decr", CmdTouch: "touch", CmdVersion: "version", CmdQuit: "quit",
	CmdVerbosity: "verbosity", CmdFlushAll: "flush_all", CmdStats: "stats",
	CmdMetaGet: "mg", CmdMetaSet: "ms", CmdMetaDelete: "md", CmdMetaArithmetic: "ma",
	CmdMetaNoop: "mn", CmdMetaDebug: "me",
}

// String returns the command's name as sent on the wire.
func (c Command) String() string {
	if int(c) < len(commandNames) {
		return commandNames[c]
	}
	return ""
}

func lookupCommand(name []byte) Command {
	for i := CmdGet; i <= CmdMetaDebug; i++ {
		if string(name) == commandNames[i] {
			return i
		}
	}
	return CmdUnknown
}

// IsRetrieval reports get, gets, gat and gats: the multi-key commands answered by
// VALUE blocks and END.
func (c Command) IsRetrieval() bool { return c >= CmdGet && c <= CmdGats }

// IsStorage reports the classic commands followed by a data block.
func (c Command) IsStorage() bool { return c >= CmdSet && c <= CmdCas }

// IsMeta reports the meta commands.
func (c Command) IsMeta() bool { return c >= CmdMetaGet }

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

func (r *TextRequest) parseStorage(args [][]byte) error {
	args = r.trailingNoreply(args)
	want := 4
	if r.Cmd == CmdCas {
		want = 5
	}
	if len(args) != want {
		return protoErr(ErrProtocol, 0, "wrong number of arguments for "+r.Cmd.String())
	}
	if err := r.addKey(args[0]); err != nil {
		return err
	}
	flags, ok := parseUint(args[1], 1<<32-1)
	if !ok {
		return protoErr(ErrProtocol, 0, "bad flags")
	}
	exp, ok := parseInt(args[2])
	if !ok {
		return protoErr(ErrProtocol, 0, "bad exptime")
	}
	n, ok := parseUint(args[3], 1<<62)
	if !ok {
		return protoErr(ErrProtocol, 0, "bad data length")
	}
	if r.Cmd == CmdCas {
		cas, ok := parseUint(args[4], ^uint64(0))
		if !ok {
			return protoErr(ErrProtocol, 0, "bad cas unique")
		}
		r.CasUnique = cas
	}
	r.ClientFlags, r.Exptime, r.Bytes, r.HasData = uint32(flags), exp, int(n), true
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

// metaFlags lists the flags each meta command takes (P and L, routing hints the
// server ignores, are allowed everywhere).
var metaFlags = map[Command]string{
	CmdMetaGet:        "bcfhklOqstuvENRTPL",
	CmdMetaSet:        "bcCEFIkOqsTMNPL",
	CmdMetaDelete:     "bCEIkOqTxPL",
	CmdMetaArithmetic: "bCENJDTMOqtcvkPL",
	CmdMetaDebug:      "bPL",
}

// maxOpaque is the longest meta opaque token memcached accepts.
const maxOpaque = 32

func (r *TextRequest) parseMeta(args [][]byte, maxValue int) error {
	r.Route = RouteKey
	if r.Cmd == CmdMetaNoop {
		if len(args) != 0 {
			return protoErr(ErrProtocol, 0, "mn takes no arguments")
		}
		r.Route, r.Terminator = RouteLocal, true
		return nil
	}
	if len(args) == 0 {
		return protoErr(ErrProtocol, 0, r.Cmd.String()+" needs a key")
	}
	key := args[0]
	args = args[1:]
	if r.Cmd == CmdMetaSet {
		if len(args) == 0 {
			return protoErr(ErrProtocol, 0, "ms needs a data length")
		}
		n, ok := parseUint(args[0], 1<<62)
		if !ok {
			return protoErr(ErrProtocol, 0, "bad data length")
		}
		r.Bytes, r.HasData = int(n), true
		args = args[1:]
	}
	allowed := metaFlags[r.Cmd]
	first := len(r.tokens) - len(args)
	for i, f := range args {
		c := f[0]
		if bytes.IndexByte([]byte(allowed), c) < 0 {
			return protoErr(ErrBadFlag, 0, "flag "+printable(f[:1])+" not taken by "+r.Cmd.String())
		}
		switch c {
		case 'q':
			if len(f) != 1 {
				return protoErr(ErrBadFlag, 0, "q takes no token")
			}
			r.Quiet = true
			r.noreply = first + i
		case 'b':
			r.Base64 = true
		case 'O':
			if len(f)-1 > maxOpaque {
				return protoErr(ErrBadFlag, 0, "opaque longer than 32 bytes")
			}
		case 'M':
			modes := "EAPRSeaprs"
			if r.Cmd == CmdMetaArithmetic {
				modes = "ID+-id"
			}
			if len(f) != 2 || bytes.IndexByte([]byte(modes), f[1]) < 0 {
				return protoErr(ErrBadFlag, 0, "bad mode")
			}
		}
		r.MetaFlags = append(r.MetaFlags, f)
	}
	if r.Base64 {
		if len(key) > base64.StdEncoding.EncodedLen(MaxKeyLen) {
			return protoErr(ErrBadKey, 0, "base64 key too long")
		}
		n := base64.StdEncoding.DecodedLen(len(key))
		start := len(r.keyBuf)
		r.keyBuf = append(r.keyBuf, make([]byte, n)...)
		m, err := base64.StdEncoding.Decode(r.keyBuf[start:], key)
		if err != nil || m == 0 || m > MaxKeyLen {
			return protoErr(ErrBadKey, 0, "bad base64 key")
		}
		r.keyOne[0] = r.keyBuf[start : start+m : start+m]
		r.Keys = r.keyOne[:]
	} else if err := r.addKey(key); err != nil {
		return err
	}
	switch r.Cmd {
	case CmdMetaGet:
		_, n := r.Flag('N')
		_, t := r.Flag('T')
		r.ReadOnly = !n && !t
	case CmdMetaDebug:
		r.ReadOnly = true
	}
	if r.Quiet {
		r.Expect = ExpectMaybe
	}
	return nil
}

// AppendServerForm appends req as the proxy sends it so that the server answers it
// exactly once: noreply and the meta q flag are removed (the proxy then drops the
// nominal reply itself: see TextReplyRule); anything else is passed byte for byte.
func AppendServerForm(dst []byte, req *TextRequest) []byte {
	if req.noreply < 0 {
		return append(dst, req.Raw...)
	}
	sep := false
	for i, t := range req.tokens {
		if i == req.noreply || req.Quiet && i >= 2 && string(t) == "q" { // every q, repeated ones too
			continue
		}
		if sep {
			dst = append(dst, ' ')
		}
		dst = append(dst, t...)
		sep = true
	}
	dst = append(dst, '\r', '\n')
	if req.HasData && !req.TooLarge {
		dst = append(dst, req.Data...)
		dst = append(dst, '\r', '\n')
	}
	return dst
}

// TextReplyRule says which replies to a request sent in server form reach the client.
type TextReplyRule struct {
	Cmd     Command
	NoReply bool
	Quiet   bool
}

// Rule returns the reply rule of req.
func (r *TextRequest) Rule() TextReplyRule {
	return TextReplyRule{Cmd: r.Cmd, NoReply: r.NoReply, Quiet: r.Quiet}
}

// Deliver reports whether the server's reply (or a proxy error standing for it) goes
// to the client: never for noreply (memcached 1.6 suppresses even errors once it has
// parsed noreply); for a quiet meta command, unless it is the nominal reply.
func (r TextReplyRule) Deliver(reply []byte) bool {
	if r.NoReply {
		return false
	}
	return !r.Quiet || !IsNominal(r.Cmd, reply)
}

// IsNominal reports whether reply is the nominal reply that quiet mode hides for cmd:
// EN (with any flags) for mg; HD (with any flags) for ms, md and ma.
func IsNominal(cmd Command, reply []byte) bool {
	switch cmd {
	case CmdMetaGet: // a miss, with the k and O flags it carries back
		return len(reply) >= 4 && reply[0] == 'E' && reply[1] == 'N' && (reply[2] == ' ' || reply[2] == '\r')
	case CmdMetaSet, CmdMetaDelete, CmdMetaArithmetic:
		return len(reply) >= 4 && reply[0] == 'H' && reply[1] == 'D' && (reply[2] == ' ' || reply[2] == '\r')
	}
	return false
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
