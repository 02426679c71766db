package memcache

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
