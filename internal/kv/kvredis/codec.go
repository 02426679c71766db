package kvredis

import (
	"errors"
	"strconv"

	"github.com/poolsuite/poolsuite/internal/config/nutyml"
	"github.com/poolsuite/poolsuite/internal/kv"
	"github.com/poolsuite/poolsuite/protocol/redis"
)

// ErrNotRedis is returned by New for a pool with redis: false.
var ErrNotRedis = errors.New("kvredis: pool is not a Redis pool (redis: true missing): it is a memcached pool")

// HandshakeError is a server's error reply to the connection setup (AUTH or SELECT).
type HandshakeError struct {
	Reply string // the error reply, without the leading '-' and CRLF
}

// Error implements error.
func (e *HandshakeError) Error() string { return "kvredis: server refused setup: " + e.Reply }

// Codec is the Redis protocol for one pool. It is safe for concurrent use.
type Codec struct {
	limits   redis.Limits
	password string // redis_auth: what clients must send
}

// New returns the codec of a Redis pool, with the given request limits (zero fields
// take protocol/redis defaults).
func New(pool *nutyml.Pool, limits redis.Limits) (*Codec, error) {
	if !pool.Redis {
		return nil, ErrNotRedis
	}
	return &Codec{limits: limits.WithDefaults(), password: pool.RedisAuth}, nil
}

// NewCodecFunc returns a function for kv.Options.NewCodec that builds Redis codecs
// with limits.
func NewCodecFunc(limits redis.Limits) func(*nutyml.Pool) (kv.Codec, error) {
	return func(p *nutyml.Pool) (kv.Codec, error) {
		c, err := New(p, limits)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}

// NewSession implements kv.Codec.
func (c *Codec) NewSession() kv.Session {
	return &session{c: c, authed: c.password == ""}
}

// ErrBadState is returned by ImportSession for a state ExportState does not produce.
var ErrBadState = errors.New("kvredis: invalid session state")

// ImportSession implements kv.SessionImporter: a session handed over at an upgrade
// keeps its AUTH. Without redis_auth every session is authenticated anyway.
func (c *Codec) ImportSession(state []byte) (kv.Session, error) {
	if len(state) != 1 || (state[0] != stateAuthed && state[0] != stateNotAuthed) {
		return nil, ErrBadState
	}
	return &session{c: c, authed: c.password == "" || state[0] == stateAuthed}, nil
}

// ReplyLen implements kv.Codec.
func (c *Codec) ReplyLen(buf []byte) (int, error) { return redis.ReplyLen(buf, 0) }

// Handshake implements kv.Codec: AUTH with the server's password, SELECT redis_db.
func (c *Codec) Handshake(dst []byte, s kv.ServerInfo) ([]byte, int) {
	n := 0
	if s.Password != "" {
		dst = redis.AppendCommandStrings(dst, "AUTH", s.Password)
		n++
	}
	if s.DB != 0 {
		dst = redis.AppendCommandStrings(dst, "SELECT", strconv.Itoa(s.DB))
		n++
	}
	return dst, n
}

// CheckHandshake implements kv.Codec.
func (c *Codec) CheckHandshake(reply []byte) error {
	if redis.IsError(reply) {
		return &HandshakeError{Reply: string(reply[1 : len(reply)-2])}
	}
	return nil
}

// AppendError implements kv.Codec.
func (c *Codec) AppendError(dst []byte, err error) []byte {
	return redis.AppendError(dst, errorText(err))
}

func errorText(err error) string {
	switch {
	case errors.Is(err, kv.ErrTimeout):
		return "ERR timeout"
	case errors.Is(err, kv.ErrServerClosed):
		return "ERR server connection closed"
	case errors.Is(err, kv.ErrServerUnavailable):
		return "ERR server unavailable"
	case errors.Is(err, kv.ErrNoServer):
		return "ERR no server available"
	case errors.Is(err, kv.ErrPrimaryDown):
		return "ERR primary down, writes unavailable"
	case errors.Is(err, kv.ErrNoReplica):
		return "ERR no replica available"
	case errors.Is(err, kv.ErrServerRemoved):
		return "ERR server removed"
	case errors.Is(err, kv.ErrBadReply):
		return "ERR invalid reply from server"
	case errors.Is(err, kv.ErrHandshake):
		return "ERR server refused the proxy's connection setup"
	}
	return "ERR proxy error"
}
