package memcache

import (
	"bytes"
	"encoding/base64"
)

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
