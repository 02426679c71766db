package kvredis

import (
	"bytes"
	"crypto/subtle"
	"errors"

	"github.com/poolsuite/poolsuite/internal/kv"
	"github.com/poolsuite/poolsuite/protocol/redis"
)

// session is one client connection's protocol state.
type session struct {
	c      *Codec
	req    redis.Request
	authed bool
}

// Parse implements kv.Session.
func (s *session) Parse(buf []byte, kr *kv.Request, rt kv.Router) (int, error) {
	n, err := redis.ParseRequest(buf, &s.req, s.c.limits)
	if err != nil || n == 0 {
		return n, err
	}
	args := s.req.Args
	if len(args) == 0 {
		return n, nil // nothing to answer, as Redis
	}
	cmd := redis.Lookup(args[0])
	switch {
	case cmd == nil:
		kr.Local = redis.AppendError(kr.Local, "ERR unsupported command '"+printable(args[0])+"'")
		return n, nil
	case !s.authed && cmd.Name != "AUTH" && cmd.Name != "QUIT":
		kr.Local = redis.AppendError(kr.Local, noAuthText)
		return n, nil
	}
	if err := redis.CheckArgs(cmd, args); err != nil {
		kr.Local = wrongArgs(kr.Local, cmd)
		return n, nil
	}
	switch cmd.Kind {
	case redis.Local:
		s.local(kr, cmd, args)
	case redis.SingleKey:
		f := kr.AddFrag(rt.Shard(args[cmd.KeyIndex]), cmd.ReadOnly)
		f.Payload = s.payload(f.Payload)
	case redis.NoKey:
		f := kr.AddFrag(rt.Shard(nil), cmd.ReadOnly)
		f.Payload = s.payload(f.Payload)
	case redis.Eval:
		shard, err := redis.EvalShard(args, rt)
		if err != nil {
			kr.Local = redis.AppendError(kr.Local, evalError(err))
			return n, nil
		}
		f := kr.AddFrag(shard, false)
		f.Payload = s.payload(f.Payload)
	case redis.MultiKey, redis.MultiKeyValue:
		sp, _ := kr.Scratch.(*redis.Split)
		if sp == nil {
			sp = &redis.Split{}
			kr.Scratch = sp
		}
		sp.Build(cmd, args, rt)
		for i := range sp.Parts {
			f := kr.AddFrag(sp.Parts[i].Shard, cmd.ReadOnly)
			f.Payload = append(f.Payload, sp.Parts[i].Payload...)
		}
	default:
		kr.Local = redis.AppendError(kr.Local, "ERR unsupported command '"+printable(args[0])+"'")
	}
	return n, nil
}

// payload appends the request as it goes to a server: the bytes received, or an
// inline request re-encoded as multi-bulk.
func (s *session) payload(dst []byte) []byte {
	if s.req.Inline {
		return redis.AppendCommand(dst, s.req.Args...)
	}
	return append(dst, s.req.Raw...)
}

// Merge implements kv.Session.
func (s *session) Merge(dst []byte, kr *kv.Request, replies [][]byte) []byte {
	sp, _ := kr.Scratch.(*redis.Split)
	if sp == nil || len(sp.Parts) != len(replies) {
		return redis.AppendError(dst, "ERR proxy error")
	}
	return sp.Merge(dst, replies)
}

// local answers the commands the proxy handles itself.
func (s *session) local(kr *kv.Request, cmd *redis.Command, args [][]byte) {
	switch cmd.Name {
	case "PING":
		switch len(args) {
		case 1:
			kr.Local = redis.AppendSimple(kr.Local, "PONG")
		case 2:
			kr.Local = redis.AppendBulk(kr.Local, args[1])
		default:
			kr.Local = wrongArgs(kr.Local, cmd)
		}
	case "ECHO":
		if len(args) != 2 {
			kr.Local = wrongArgs(kr.Local, cmd)
			return
		}
		kr.Local = redis.AppendBulk(kr.Local, args[1])
	case "QUIT":
		kr.Local = redis.AppendSimple(kr.Local, "OK")
		kr.Close = true
	case "SELECT":
		if len(args) != 2 {
			kr.Local = wrongArgs(kr.Local, cmd)
			return
		}
		if !bytes.Equal(args[1], []byte("0")) {
			kr.Local = redis.AppendError(kr.Local, "ERR SELECT is not supported by the proxy: only SELECT 0 (the pool's redis_db is selected on the servers)")
			return
		}
		kr.Local = redis.AppendSimple(kr.Local, "OK")
	case "AUTH":
		s.auth(kr, cmd, args)
	}
}

// auth checks AUTH password (or AUTH default password) against redis_auth.
func (s *session) auth(kr *kv.Request, cmd *redis.Command, args [][]byte) {
	if len(args) > 3 {
		kr.Local = wrongArgs(kr.Local, cmd)
		return
	}
	if s.c.password == "" {
		kr.Local = redis.AppendError(kr.Local, "ERR Client sent AUTH, but no password is set")
		return
	}
	pass := args[len(args)-1]
	userOK := len(args) == 2 || string(args[1]) == "default"
	if userOK && subtle.ConstantTimeCompare(pass, []byte(s.c.password)) == 1 {
		s.authed = true
		kr.Local = redis.AppendSimple(kr.Local, "OK")
		return
	}
	s.authed = false
	kr.Local = redis.AppendError(kr.Local, "ERR invalid password")
}

func wrongArgs(dst []byte, cmd *redis.Command) []byte {
	return redis.AppendError(dst, "ERR wrong number of arguments for '"+string(bytes.ToLower([]byte(cmd.Name)))+"' command")
}

func evalError(err error) string {
	switch {
	case errors.Is(err, redis.ErrEvalCrossShard):
		return "ERR EVAL keys live on different servers: the proxy needs every key of a script on one server (use a hash tag)"
	case errors.Is(err, redis.ErrEvalNoKeys):
		return "ERR EVAL without keys cannot be routed by the proxy"
	case errors.Is(err, redis.ErrEvalNumKeys):
		return "ERR Number of keys can't be greater than number of args"
	}
	return "ERR invalid EVAL"
}

// printable returns name for an error message: at most 64 bytes, control bytes
// replaced by '?'.
func printable(name []byte) string {
	if len(name) > 64 {
		name = name[:64]
	}
	b := make([]byte, len(name))
	for i, c := range name {
		if c < 0x20 || c == 0x7f {
			c = '?'
		}
		b[i] = c
	}
	return string(b)
}

// ExportState implements kv.SessionExporter: all a Redis client carries between
// requests is whether it has authenticated (SELECT is refused but for 0, and nothing
// else is per connection).
func (s *session) ExportState() []byte {
	if s.authed {
		return []byte{stateAuthed}
	}
	return []byte{stateNotAuthed}
}

// Session states, as ExportState encodes them.
const (
	stateNotAuthed = '0'
	stateAuthed    = '1'
)
