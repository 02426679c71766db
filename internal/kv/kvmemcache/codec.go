package kvmemcache

import (
	"errors"
	"net"
	"os"
	"syscall"

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

// AppendError implements kv.Codec: "SERVER_ERROR <text>\r\n" (see the package
// documentation); the session turns it into a binary response for binary clients.
func (c *Codec) AppendError(dst []byte, err error) []byte {
	return memcache.AppendServerError(dst, ErrorText(err))
}

// ErrorText returns the text of the SERVER_ERROR reply that reports err: twemproxy's
// strerror texts where it has one.
func ErrorText(err error) string {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, kv.ErrTimeout), errors.Is(err, os.ErrDeadlineExceeded):
		return "Connection timed out"
	case errors.Is(err, kv.ErrNoServer):
		return "Connection refused"
	case errors.Is(err, kv.ErrServerUnavailable):
		switch {
		case errors.As(err, &dnsErr):
			return "Host is down"
		case errors.Is(err, syscall.ECONNRESET):
			return "Connection reset by peer"
		}
		return "Connection refused"
	case errors.Is(err, kv.ErrServerClosed):
		if errors.Is(err, syscall.ECONNRESET) {
			return "Connection reset by peer"
		}
		return "unknown"
	case errors.Is(err, kv.ErrBadReply):
		return "Invalid argument"
	case errors.Is(err, kv.ErrServerRemoved):
		return "server removed"
	case errors.Is(err, kv.ErrPrimaryDown):
		return "primary down, writes unavailable"
	case errors.Is(err, kv.ErrNoReplica):
		return "no replica available"
	}
	return "unknown"
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
