package kv

import (
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/poolsuite/poolsuite/sharding"
)

// Tuning of server connections.
const (
	// queueLen bounds the requests waiting for one server connection; clients block
	// (backpressure) when it is full.
	queueLen = 1024
	// maxWriteBatch is the most bytes the writer gathers into one write.
	maxWriteBatch = 256 << 10
	// serverReadBuf is the initial read buffer of a server connection.
	serverReadBuf = 16 << 10
	// maxServerReply bounds one server reply held in memory.
	maxServerReply = 512 << 20
)

// server is one Redis (or memcached) server: a primary or a replica. It owns
// serverConnections pipelined connections. A server is shared by every pool state that
// names it with the same settings, so a reload keeps its connections.
type server struct {
	key        string // identity: what must match for a reload to keep it
	pool       string
	preconnect bool
	keepAlive  bool   // tcpkeepalive: on its connections
	name       string // the name in stats: the config name, or the replica's address
	network    string
	addr       string
	info       ServerInfo
	timeout    time.Duration
	codec      Codec
	log        *slog.Logger

	conns   []*serverConn   // every connection, of every class
	byClass [][]*serverConn // the connections of each class (see ClassCodec)

	// retiring is set, and then drain closed, when a reload removed the server: each
	// connection closes as soon as it has nothing queued or in flight (see retire).
	retiring atomic.Bool
	drain    chan struct{}

	health  atomic.Pointer[health]
	stats   serverStats
	metrics *serverMetrics
}

// health says where a server's failures are reported: its place in the current
// sharding.Pool of its pool.
type health struct {
	shards *sharding.Pool
	node   sharding.NodeID
	pool   *pool
}

func newServer(key, name, network, addr string, info ServerInfo, nconns int, timeout time.Duration, codec Codec, log *slog.Logger, m *serverMetrics) *server {
	s := &server{key: key, name: name, network: network, addr: addr, info: info, timeout: timeout, codec: codec, log: log, metrics: m, drain: make(chan struct{})}
	classes, cc := 1, ClassCodec(nil)
	if x, ok := codec.(ClassCodec); ok && x.Classes() > 1 {
		classes, cc = x.Classes(), x
	}
	for class := 0; class < classes; class++ {
		replyLen := codec.ReplyLen
		if cc != nil {
			replyLen = func(b []byte) (int, error) { return cc.ClassReplyLen(class, b) }
		}
		var row []*serverConn
		for i := 0; i < nconns; i++ {
			c := &serverConn{srv: s, class: class, replyLen: replyLen, queue: make(chan *Frag, queueLen), quit: make(chan struct{}), done: make(chan struct{}), wake: make(chan struct{}, 1)}
			s.conns = append(s.conns, c)
			row = append(row, c)
		}
		s.byClass = append(s.byClass, row)
	}
	return s
}

// start launches the connections' goroutines; preconnect dials those of class 0 at
// once (the others are dialed when a request of their class first comes).
func (s *server) start(preconnect bool) {
	for _, c := range s.conns {
		go c.run(preconnect && c.class == 0)
	}
}

// stop ends every connection: queued and in-flight requests fail with
// ErrServerRemoved. It returns when the goroutines have ended.
func (s *server) stop() {
	for _, c := range s.conns {
		c.stop()
	}
	for _, c := range s.conns {
		<-c.done
	}
}

// retire starts draining a server that left the configuration: no new state routes to
// it, and each of its connections closes as soon as nothing is queued or in flight on
// it, instead of when the server is stopped. A request still routed to it afterwards
// (by a client that read the previous configuration just before the reload) is served
// on a new connection, which closes in turn once that request is answered. Called once.
func (s *server) retire() {
	if s.retiring.CompareAndSwap(false, true) {
		close(s.drain)
	}
}

// enqueue queues f on the connection of its client's lane. Every request of one client
// to this server goes on the same connection, so the server runs them in the order the
// client sent them (a GET after a SET of the same key sees it), as with one
// connection; the pool's clients are spread over the connections in turn.
//
// A Frag of a class the codec does not have (see ClassCodec) goes on class 0.
func (s *server) enqueue(f *Frag) {
	row := s.byClass[0]
	if int(f.Class) < len(s.byClass) {
		row = s.byClass[f.Class]
	}
	c := row[0]
	if n := uint32(len(row)); n > 1 {
		c = row[f.lane%n]
	}
	c.enqueue(f)
}

func (s *server) failure() {
	s.stats.failures.Add(1)
	h := s.health.Load()
	if h == nil {
		return
	}
	if h.shards.ReportFailure(h.node) {
		s.stats.ejectedAt.Store(time.Now().UnixMicro())
		s.stats.ejects.Add(1)
		h.pool.stats.serverEjects.Add(1)
		s.log.Warn("server ejected", "server", s.name, "addr", s.addr)
	}
}

func (s *server) success() {
	if h := s.health.Load(); h != nil {
		h.shards.ReportSuccess(h.node)
	}
}

func (s *server) dialTimeout() time.Duration {
	if s.timeout > 0 {
		return s.timeout
	}
	return DefaultTimeout
}

// serverConn is one pipelined connection to a server. Its run goroutine dials on
// demand and writes batches of queued requests; a reader goroutine per established
// connection matches replies to the requests in flight, oldest first.
type serverConn struct {
	srv   *server
	class int // the protocol class of its requests (see ClassCodec)
	// replyLen frames the replies of this connection's protocol.
	replyLen func([]byte) (int, error)
	queue    chan *Frag
	quit     chan struct{} // closed by stop
	done     chan struct{} // closed when run returns
	wake     chan struct{} // the reader tells a retiring writer that nothing is in flight

	mu     sync.RWMutex // guards closed against enqueue
	closed bool

	imu      sync.Mutex // guards inflight and nc
	inflight []*Frag
	head     int
	nc       net.Conn

	wbuf  []byte
	batch []*Frag // the writer's requests of one write
}

func (c *serverConn) enqueue(f *Frag) {
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		f.complete(nil, ErrServerRemoved)
		return
	}
	c.srv.stats.inQueue.Add(1)
	c.srv.stats.inQueueBytes.Add(int64(len(f.Payload)))
	select {
	case c.queue <- f:
	case <-c.quit:
		c.srv.stats.inQueue.Add(-1)
		c.srv.stats.inQueueBytes.Add(-int64(len(f.Payload)))
		f.complete(nil, ErrServerRemoved)
	}
	c.mu.RUnlock()
}

func (c *serverConn) stop() {
	select {
	case <-c.quit:
	default:
		close(c.quit)
	}
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
}

// dequeued accounts for a request leaving the queue.
func (c *serverConn) dequeued(f *Frag) {
	c.srv.stats.inQueue.Add(-1)
	c.srv.stats.inQueueBytes.Add(-int64(len(f.Payload)))
}

// failQueued fails every request waiting in the queue.
func (c *serverConn) failQueued(err error) {
	for {
		select {
		case f := <-c.queue:
			c.dequeued(f)
			f.complete(nil, err)
		default:
			return
		}
	}
}
