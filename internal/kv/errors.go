package kv

import (
	"errors"
	"net"
	"os"
	"syscall"
)

// Errors a request can fail with. A Codec turns them into protocol replies, with the
// texts of ErrorText (for Redis, ErrTimeout is "-ERR Connection timed out").
var (
	// ErrTimeout: the server did not answer within the pool's timeout after the
	// proxy read the request (it may not even have been sent).
	ErrTimeout = errors.New("kv: timeout")
	// ErrServerClosed: the server connection broke while the request was in flight.
	ErrServerClosed = errors.New("kv: server connection closed")
	// ErrServerUnavailable: no connection to the server could be made.
	ErrServerUnavailable = errors.New("kv: server unavailable")
	// ErrNoServer: no server is live for the key (every primary ejected).
	ErrNoServer = errors.New("kv: no server available")
	// ErrPrimaryDown: a write to a shard whose primary is down; reads still go to its
	// replicas.
	ErrPrimaryDown = errors.New("kv: primary down, writes unavailable")
	// ErrNoReplica: a read under read policy "replica" found no live replica.
	ErrNoReplica = errors.New("kv: no replica available")
	// ErrServerRemoved: the server left the configuration or the proxy is shutting
	// down.
	ErrServerRemoved = errors.New("kv: server removed")
	// ErrBadReply: the server sent bytes that are not a valid reply, or a reply nobody
	// asked for.
	ErrBadReply = errors.New("kv: invalid reply from server")
	// ErrHandshake: the server refused the connection setup (authentication, database
	// selection).
	ErrHandshake = errors.New("kv: server handshake failed")
	// ErrClosed: the Proxy is shut down.
	ErrClosed = errors.New("kv: proxy closed")
)

// ServerError is a failure tied to one server: which server, and why. It wraps one of
// the errors above and, when there is one, the network error behind it.
type ServerError struct {
	Server string // the server's name
	Err    error  // ErrServerUnavailable, ErrHandshake, ...
	Cause  error  // the underlying error, or nil
}

// Error implements error.
func (e *ServerError) Error() string {
	s := e.Err.Error() + " (" + e.Server + ")"
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

// Unwrap returns the classifying error and the cause.
func (e *ServerError) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.Cause}
}

// ConfigError reports a configuration the Proxy cannot run: it names the pool.
type ConfigError struct {
	Pool string
	Err  error
}

// Error implements error.
func (e *ConfigError) Error() string { return "kv: pool " + e.Pool + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *ConfigError) Unwrap() error { return e.Err }

// ErrorText returns the text a proxy error is reported with, as twemproxy reports it:
// the strerror text of the failure behind it ("Connection refused", "Connection timed
// out", "unknown" when there is none), so that clients and runbooks matching
// nutcracker's replies match kvproxy's. The errors twemproxy does not have (replicas,
// removed servers) get kvproxy's own texts. Codecs wrap it in their protocol's error
// reply: "-ERR <text>" for Redis, "SERVER_ERROR <text>" for memcached.
func ErrorText(err error) string {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, ErrTimeout), errors.Is(err, os.ErrDeadlineExceeded):
		return "Connection timed out"
	case errors.Is(err, ErrNoServer):
		return "Connection refused" // twemproxy's errno when no server is left
	case errors.Is(err, ErrServerUnavailable):
		switch {
		case errors.As(err, &dnsErr):
			return "Host is down"
		case errors.Is(err, syscall.ECONNRESET):
			return "Connection reset by peer"
		}
		return "Connection refused"
	case errors.Is(err, ErrServerClosed):
		if errors.Is(err, syscall.ECONNRESET) {
			return "Connection reset by peer"
		}
		return "unknown"
	case errors.Is(err, ErrBadReply):
		return "Invalid argument"
	case errors.Is(err, ErrServerRemoved):
		return "server removed"
	case errors.Is(err, ErrPrimaryDown):
		return "primary down, writes unavailable"
	case errors.Is(err, ErrNoReplica):
		return "no replica available"
	}
	return "unknown"
}
