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
	// Auth is set when the reply refuses the proxy's AUTH (a wrong password): clients
	// are then answered as the server answers an unauthenticated connection.
	Auth bool
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
	return kv.CodecFunc(New, limits)
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

// CheckHandshake implements kv.Codec. A server without a password answers the
// proxy's AUTH with an error that says so; that is no refusal (the server takes every
// connection, as twemproxy finds too), so the connection is used.
func (c *Codec) CheckHandshake(reply []byte) error {
	if !redis.IsError(reply) {
		return nil
	}
	text := reply[1 : len(reply)-2]
	switch redis.ClassifyAuthError(text) {
	case redis.AuthErrNoPassword:
		return nil
	case redis.AuthErrRefused:
		return &HandshakeError{Reply: string(text), Auth: true}
	}
	return &HandshakeError{Reply: string(text)}
}

// AppendError implements kv.Codec.
func (c *Codec) AppendError(dst []byte, err error) []byte {
	return redis.AppendError(dst, errorText(err))
}

// Texts of the replies to a client before it sent AUTH and to a request that found
// the server refusing the proxy's AUTH: twemproxy's, and Redis's own.
const (
	noAuthText       = "NOAUTH Authentication required"
	serverNoAuthText = "NOAUTH Authentication required."
)

// errorText is the error reply to a failed request: twemproxy's "ERR <strerror>"
// (kv.ErrorText). A server refusing the proxy's AUTH makes it Redis's NOAUTH, which
// twemproxy's clients get from the server itself (it sends requests unauthenticated);
// a refused SELECT, which twemproxy ignores (its requests then go to database 0), is
// kvproxy's own text.
func errorText(err error) string {
	var he *HandshakeError
	switch {
	case errors.As(err, &he) && he.Auth:
		return serverNoAuthText
	case errors.Is(err, kv.ErrHandshake):
		return "ERR server refused the proxy's connection setup"
	}
	return "ERR " + kv.ErrorText(err)
}
