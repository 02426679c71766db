package kvmemcache

import (
	"errors"

	"github.com/poolsuite/poolsuite/internal/config/nutyml"
	"github.com/poolsuite/poolsuite/internal/kv"
	"github.com/poolsuite/poolsuite/protocol/memcache"
)

// ErrNotMemcached is returned by New for a pool with redis: true.
var ErrNotMemcached = errors.New("kvmemcache: pool is a Redis pool (redis: true)")

// Server connection classes (kv.ClassCodec).
const (
	// ClassText connections carry ASCII and meta requests.
	ClassText = 0
	// ClassBinary connections carry binary-protocol requests.
	ClassBinary = 1
)

// Codec is the memcached protocol for one pool. It is safe for concurrent use.
type Codec struct {
	limits memcache.Limits
}

// New returns the codec of a memcached pool, with the given limits (zero fields take
// protocol/memcache defaults).
func New(pool *nutyml.Pool, limits memcache.Limits) (*Codec, error) {
	if pool.Redis {
		return nil, ErrNotMemcached
	}
	return &Codec{limits: limits.WithDefaults()}, nil
}

// NewCodecFunc returns a function for kv.Options.NewCodec that builds memcached
// codecs with limits.
func NewCodecFunc(limits memcache.Limits) func(*nutyml.Pool) (kv.Codec, error) {
	return kv.CodecFunc(New, limits)
}

// NewSession implements kv.Codec.
func (c *Codec) NewSession() kv.Session {
	return &session{conn: memcache.NewConn(c.limits)}
}

// ReplyLen implements kv.Codec: a text reply.
func (c *Codec) ReplyLen(buf []byte) (int, error) { return memcache.TextReplyLen(buf, c.limits) }

// Classes implements kv.ClassCodec: text and binary connections.
func (c *Codec) Classes() int { return 2 }

// ClassReplyLen implements kv.ClassCodec.
func (c *Codec) ClassReplyLen(class int, buf []byte) (int, error) {
	if class == ClassBinary {
		return memcache.BinaryReplyLen(buf, c.limits)
	}
	return memcache.TextReplyLen(buf, c.limits)
}

// Handshake implements kv.Codec: memcached connections need no setup.
func (c *Codec) Handshake(dst []byte, _ kv.ServerInfo) ([]byte, int) { return dst, 0 }

// CheckHandshake implements kv.Codec; it is never called (no handshake).
func (c *Codec) CheckHandshake([]byte) error { return nil }

// AppendError implements kv.Codec: "SERVER_ERROR <text>\r\n" with kv.ErrorText's
// text (see the package documentation); the session turns it into a binary response
// for binary clients.
func (c *Codec) AppendError(dst []byte, err error) []byte {
	return memcache.AppendServerError(dst, kv.ErrorText(err))
}

// ImportSession implements kv.SessionImporter: a client handed over at an upgrade
// goes on in the protocol it was detected to speak, skipping what remains of an
// oversized value, under this codec's limits.
func (c *Codec) ImportSession(state []byte) (kv.Session, error) {
	st, err := decodeState(state)
	if err != nil {
		return nil, err
	}
	conn, err := memcache.ResumeConn(c.limits, st)
	if err != nil {
		return nil, ErrBadState
	}
	return &session{conn: conn}, nil
}
