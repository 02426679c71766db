package kv

import (
	"sync/atomic"
	"time"

	"github.com/poolsuite/poolsuite/internal/config/nutyml"
)

// Codec is a wire protocol as the engine drives it. One Codec serves one pool; its
// methods are called from many goroutines at once and must be safe for that.
type Codec interface {
	// NewSession returns the protocol state of a new client connection.
	NewSession() Session
	// ReplyLen returns the length of the first complete server reply in buf, or 0 when
	// buf does not hold a whole reply yet. An error means the stream is broken.
	ReplyLen(buf []byte) (int, error)
	// Handshake appends to dst the requests that set up a new connection to server s
	// (authentication, database selection) and returns how many replies they produce.
	Handshake(dst []byte, s ServerInfo) ([]byte, int)
	// CheckHandshake checks one reply to the handshake requests.
	CheckHandshake(reply []byte) error
	// AppendError appends to dst the reply that reports err to a client.
	AppendError(dst []byte, err error) []byte
}

// Session is the protocol state of one client connection. It is used only by that
// connection's goroutine.
type Session interface {
	// Parse parses the first request in buf into req (which the engine has reset),
	// routing its keys with rt. It returns the bytes consumed; 0 with a nil error means
	// buf holds no complete request yet. An error means the client broke the protocol:
	// the engine logs it and closes the connection. A request the proxy refuses is not an
	// error: the session puts the refusal in req.Local.
	Parse(buf []byte, req *Request, rt Router) (n int, err error)
	// Merge appends to dst the client's reply to a request with more than one fragment,
	// or with one when the session set req.AlwaysMerge; replies[i] answers req.Frags[i]
	// (a fragment that failed has the Codec's AppendError reply). Otherwise a request
	// with one fragment gets that fragment's reply unchanged. Merge may append nothing
	// (no reply for that request), and may set req.CloseAfterReply. It runs on
	// whichever goroutine writes the client's replies (its writer, or a server
	// connection's reader delivering them; never two at once), concurrently with Parse
	// of later requests: it must use only req (its Scratch) and replies, not state
	// Parse changes.
	Merge(dst []byte, req *Request, replies [][]byte) []byte
}

// ClassCodec is a Codec whose server connections come in several protocol classes,
// such as memcached's text and binary protocols: a client speaking binary has its
// requests sent on binary connections, so the server answers them in its protocol.
// Each server then keeps server_connections connections per class, dialed when a
// request of that class first needs one (preconnect dials class 0 only). A Frag's
// Class says which connections carry it.
type ClassCodec interface {
	Codec
	// Classes returns the number of classes (Frag.Class is below it).
	Classes() int
	// ClassReplyLen is ReplyLen for the replies of connections of class c; ReplyLen is
	// never used for such a Codec's server connections.
	ClassReplyLen(c int, buf []byte) (int, error)
}

// Router maps a routing key to the shard that owns it, or -1 when no server is live.
type Router interface {
	Shard(key []byte) int
}

// ServerInfo describes a server to a Codec's Handshake.
type ServerInfo struct {
	Name     string
	Password string // "" for none
	DB       int
	Class    int // the connection's class (see ClassCodec); 0 for a plain Codec
}

// Request is one client request as the engine tracks it. The engine reuses Requests;
// a Session fills one per Parse.
type Request struct {
	// Frags are the pieces sent to servers, added with AddFrag.
	Frags []*Frag
	// Local is a reply the session produced itself (no fragments then). It may be
	// empty: a request can consume bytes and need no reply at all.
	Local []byte
	// Close asks the engine to close the connection after this request's reply.
	Close bool
	// AlwaysMerge asks for Session.Merge to be called even when the request has one
	// fragment: the session rewrites or drops that fragment's reply.
	AlwaysMerge bool
	// CloseAfterReply is set by Session.Merge to have the connection closed once this
	// request's reply is written; nothing after it is written (twemproxy closes a
	// client whose multi-key get failed). Close, by contrast, is read when the request
	// is parsed.
	CloseAfterReply bool
	// Scratch is the session's own, kept with the Request from one use to the next
	// (for example a reusable splitter).
	Scratch any

	spare   []*Frag // Frags ever allocated for this Request, reused
	replies [][]byte
	next    *Request // the client's queue of requests awaiting their replies, or its free list
	bytes   int      // payload bytes of the fragments, counted against the client's bound
}

func (r *Request) reset() {
	r.Frags = r.Frags[:0]
	r.Local = r.Local[:0]
	r.Close, r.AlwaysMerge, r.CloseAfterReply = false, false, false
}

// AddFrag adds a fragment bound for shard (from a Router; -1 for none) and returns it
// with an empty Payload for the session to fill. readOnly fragments may be served by a
// replica.
func (r *Request) AddFrag(shard int, readOnly bool) *Frag {
	n := len(r.Frags)
	if n == len(r.spare) {
		r.spare = append(r.spare, &Frag{})
	}
	f := r.spare[n]
	f.Shard = shard
	f.ReadOnly = readOnly
	f.Replicate = false
	f.Class = 0
	f.Payload = f.Payload[:0]
	r.Frags = append(r.Frags, f)
	return f
}

// Frag is one piece of a request bound for one server.
type Frag struct {
	// Shard is the owning shard (set by AddFrag).
	Shard int
	// ReadOnly fragments may go to a replica.
	ReadOnly bool
	// Replicate asks for a write to go to every live server of its shard, the primary
	// and its replicas (memcached replicated pools): the client gets one reply, the
	// primary's, or the first live replica's while the primary is down; the copies'
	// replies are consumed. See "Replicated writes" in the package documentation. It
	// is ignored for a ReadOnly fragment and in a shard without replicas.
	Replicate bool
	// Class is the class of server connection that carries the fragment (see
	// ClassCodec); 0 for a plain Codec.
	Class uint8
	// Payload is the request to send, appended by the session.
	Payload []byte

	reply  []byte
	err    error
	done   atomic.Bool
	owner  *client     // the client waiting for it; nil for a replicated write's copy
	meter  *replyMeter // the client's count of replies received and not yet written
	lane   uint32      // the client's lane: which of a server's connections it uses
	srv    *server
	readAt time.Time // when the proxy read the request from its client: its deadline is readAt + timeout
	sentAt time.Time
	// copy marks a replicated write's copy for another server of the shard: nobody
	// waits for it, its outcome is counted and dropped (see poolState.replicate).
	copy bool
}

// replyMeter counts, for one client, the replies its server connections delivered:
// the bytes not yet written to the client (held), and a decaying count and size of all
// replies, from which the client estimates the memory its next requests will take.
type replyMeter struct {
	held, seen, seenBytes atomic.Int64
}

// complete records the fragment's outcome and wakes its client's writer. The reply
// bytes are copied; after complete the fragment belongs to its client again.
func (f *Frag) complete(reply []byte, err error) {
	if f.copy {
		return // the server counted it (responses, errors); nobody waits for it
	}
	owner := f.owner // read before done: the client may reuse f at once after
	f.settle(reply, err)
	if owner != nil {
		owner.wakeWriter() // starts its writer goroutine if none runs
	}
}

// answer records a reply like complete but wakes nobody: it returns the client
// waiting for it (nil for a copy, or a Frag without a client), which the caller is
// to deliver to (client.deliver) once it has answered the rest of its batch.
func (f *Frag) answer(reply []byte) *client {
	if f.copy {
		return nil
	}
	owner := f.owner // read before done: the client may reuse f at once after
	f.settle(reply, nil)
	return owner
}

// settle stores the outcome and marks f done.
func (f *Frag) settle(reply []byte, err error) {
	if err == nil {
		f.reply = append(f.reply[:0], reply...)
		if m := f.meter; m != nil {
			m.held.Add(int64(len(reply)))
			m.seenBytes.Add(int64(len(reply)))
			m.seen.Add(1)
		}
	}
	f.err = err
	f.done.Store(true)
}

// maxKeptBuf is the largest buffer kept for reuse; bigger ones are dropped after use.
const maxKeptBuf = 64 << 10

// release makes f ready for reuse; its reply buffer is kept only if keepReply and it
// is not oversized.
func (f *Frag) release(keepReply bool) {
	if !keepReply || cap(f.reply) > maxKeptBuf {
		f.reply = nil
	}
	if cap(f.Payload) > maxKeptBuf {
		f.Payload = nil
	}
	f.err = nil
	f.srv = nil
	f.done.Store(false)
}

// CodecFunc adapts a protocol package's constructor, New(pool, limits), to
// Options.NewCodec: it builds each pool's codec with limits. A failed New yields a nil
// Codec (not a nil *C wrapped in the interface).
func CodecFunc[C Codec, L any](newCodec func(*nutyml.Pool, L) (C, error), limits L) func(*nutyml.Pool) (Codec, error) {
	return func(p *nutyml.Pool) (Codec, error) {
		c, err := newCodec(p, limits)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}
