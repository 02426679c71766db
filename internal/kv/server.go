package kv

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
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

	wbuf []byte
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

func (c *serverConn) run(preconnect bool) {
	defer close(c.done)
	var first *Frag
	for {
		if first == nil && !preconnect {
			select {
			case first = <-c.queue:
				c.dequeued(first)
				if c.expire(first, time.Now()) {
					first = nil
					continue
				}
			case <-c.quit:
				c.failQueued(ErrServerRemoved)
				return
			}
		}
		preconnect = false
		nc, err := c.connect(first)
		if err != nil {
			c.srv.stats.serverErr.Add(1)
			c.srv.failure()
			c.srv.log.Debug("server connect failed", "server", c.srv.name, "addr", c.srv.addr, "err", err)
			if first != nil {
				first.complete(nil, err)
				first = nil
			}
			c.failQueued(err)
			select {
			case <-c.quit:
				c.failQueued(ErrServerRemoved)
				return
			default:
			}
			continue
		}
		// A connection made is no success: a frozen server accepts connections and
		// answers nothing. Only a reply clears the failure count (see read).
		c.srv.stats.connections.Add(1)
		first = c.serve(nc, first)
		c.srv.stats.connections.Add(-1)
		if first != nil && c.expire(first, time.Now()) {
			first = nil
		}
		select {
		case <-c.quit:
			if first != nil {
				first.complete(nil, ErrServerRemoved)
			}
			c.failQueued(ErrServerRemoved)
			return
		default:
		}
	}
}

// connect dials the server and runs the codec's handshake, both within the timeout,
// and before the deadline of first (the request that called for the connection), if
// there is one.
func (c *serverConn) connect(first *Frag) (net.Conn, error) {
	s := c.srv
	dl := time.Now().Add(s.dialTimeout())
	if first != nil && s.timeout > 0 {
		if fdl := c.deadline(first); fdl.Before(dl) {
			dl = fdl
		}
	}
	d := net.Dialer{Deadline: dl, KeepAlive: -1}
	if s.keepAlive {
		d.KeepAliveConfig = net.KeepAliveConfig{Enable: true}
	}
	nc, err := d.Dial(s.network, s.addr)
	if err != nil {
		return nil, &ServerError{Server: s.name, Err: ErrServerUnavailable, Cause: err}
	}
	info := s.info
	info.Class = c.class
	hs, n := s.codec.Handshake(c.wbuf[:0], info)
	if n == 0 {
		return nc, nil
	}
	_ = nc.SetDeadline(dl)
	if _, err := nc.Write(hs); err != nil {
		nc.Close()
		return nil, &ServerError{Server: s.name, Err: ErrServerUnavailable, Cause: err}
	}
	buf := make([]byte, 0, 512)
	for n > 0 {
		l, err := c.replyLen(buf)
		if err != nil {
			nc.Close()
			return nil, &ServerError{Server: s.name, Err: ErrHandshake, Cause: err}
		}
		if l == 0 {
			if len(buf) == cap(buf) {
				buf = append(buf, 0)[:len(buf)]
			}
			m, err := nc.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+m]
			if err != nil {
				nc.Close()
				if errors.Is(err, os.ErrDeadlineExceeded) {
					return nil, &ServerError{Server: s.name, Err: ErrTimeout, Cause: err}
				}
				return nil, &ServerError{Server: s.name, Err: ErrServerUnavailable, Cause: err}
			}
			continue
		}
		if err := s.codec.CheckHandshake(buf[:l]); err != nil {
			nc.Close()
			return nil, &ServerError{Server: s.name, Err: ErrHandshake, Cause: err}
		}
		buf = buf[:copy(buf, buf[l:])]
		n--
	}
	_ = nc.SetDeadline(time.Time{})
	return nc, nil
}

// serve runs one established connection: this goroutine writes, a reader goroutine
// reads. It returns when the connection broke, timed out or the server was stopped,
// after failing exactly the requests written on it. A request taken from the queue but
// not yet written is returned, to go out on the next connection.
func (c *serverConn) serve(nc net.Conn, f *Frag) *Frag {
	s := c.srv
	c.imu.Lock()
	c.nc = nc
	c.imu.Unlock()
	readErr := make(chan error, 1)
	go c.read(nc, readErr)

	var err error
	readerDone := false
	var wdl time.Time // the write deadline in force
	drain := s.drain  // nil once seen closed
loop:
	for {
		if f != nil {
			c.settle()
			now := time.Now()
			buf := c.wbuf[:0]
			for f != nil {
				if !c.expire(f, now) {
					buf = append(buf, f.Payload...)
					c.push(f, now)
				}
				f = nil
				if len(buf) >= maxWriteBatch {
					break
				}
				select {
				case f = <-c.queue:
					c.dequeued(f)
				default:
				}
			}
			if len(buf) == 0 {
				continue
			}
			// A blocked write fails after between 7/8 of the timeout and the timeout:
			// the deadline is moved only when less than that is left, which saves a
			// timer update per write.
			if s.timeout > 0 && (wdl.IsZero() || wdl.Sub(now) < s.timeout-s.timeout/8) {
				wdl = now.Add(s.timeout)
				_ = nc.SetWriteDeadline(wdl)
			}
			_, werr := nc.Write(buf)
			if cap(buf) <= maxKeptBuf {
				c.wbuf = buf[:0]
			}
			if werr != nil {
				if errors.Is(werr, os.ErrDeadlineExceeded) {
					err = ErrTimeout
				} else {
					err = ErrServerClosed
				}
				break loop
			}
			if f != nil {
				continue
			}
		}
		select {
		case f = <-c.queue:
			c.dequeued(f)
		case err = <-readErr:
			readerDone = true
			break loop
		case <-c.quit:
			err = ErrServerRemoved
			break loop
		case <-drain:
			drain = nil
			if c.drained() {
				err = errDrained
				break loop
			}
		case <-c.wake:
			if drain == nil && c.drained() {
				err = errDrained
				break loop
			}
		}
	}
	nc.Close()
	if !readerDone {
		if rerr := <-readErr; errors.Is(rerr, ErrTimeout) || errors.Is(rerr, ErrBadReply) {
			err = rerr
		}
	}
	c.imu.Lock()
	failed := c.inflight[c.head:]
	c.inflight, c.head, c.nc = c.inflight[:0], 0, nil
	c.imu.Unlock()
	switch {
	case errors.Is(err, errDrained):
		// Nothing was in flight (failed is empty): not a failure.
		s.log.Debug("retired server connection closed", "server", s.name, "addr", s.addr)
	case errors.Is(err, ErrServerRemoved):
	case errors.Is(err, ErrTimeout):
		s.stats.timedOut.Add(1)
		s.stats.timeouts.Add(int64(len(failed)))
	default:
		s.stats.serverEOF.Add(1)
	}
	if !errors.Is(err, ErrServerRemoved) && !errors.Is(err, errDrained) {
		s.failure()
		s.log.Debug("server connection closed", "server", s.name, "addr", s.addr, "err", err, "in_flight", len(failed))
	}
	var ferr error = &ServerError{Server: s.name, Err: err}
	if se, ok := err.(*ServerError); ok {
		ferr = se
	}
	for i, fr := range failed {
		s.stats.outQueue.Add(-1)
		s.stats.outQueueBytes.Add(-int64(len(fr.Payload)))
		s.stats.errors.Add(1)
		fr.complete(nil, ferr)
		failed[i] = nil
	}
	return f
}

// errDrained ends serve on a retiring server with nothing queued or in flight.
var errDrained = errors.New("kv: server connection drained")

// drained reports whether nothing is queued for or in flight on c. Only the writer
// adds requests in flight, so when it sees none they stay none until it writes again.
func (c *serverConn) drained() bool {
	if len(c.queue) > 0 {
		return false
	}
	c.imu.Lock()
	defer c.imu.Unlock()
	return c.head == len(c.inflight)
}

// maxSettle bounds the yields of settle.
const maxSettle = 4

// settle lets runnable clients queue their requests before the writer writes: it
// yields the processor while the queue keeps growing, a few times at most, so that one
// write carries the requests of many clients (as one pass of an event loop does)
// instead of one write per request. It costs nothing measurable when no other
// goroutine is runnable.
func (c *serverConn) settle() {
	n := len(c.queue)
	for i := 0; i < maxSettle; i++ {
		runtime.Gosched()
		m := len(c.queue)
		if m == n {
			return
		}
		n = m
	}
}

// deadline returns when f times out: the pool's timeout after its client's request
// was read.
func (c *serverConn) deadline(f *Frag) time.Time {
	if f.readAt.IsZero() {
		return f.sentAt.Add(c.srv.timeout)
	}
	return f.readAt.Add(c.srv.timeout)
}

// expire fails f with ErrTimeout without sending it if its deadline passed while it
// was queued, and reports whether it did. Such a request is no failure of the server
// (the connection that kept it waiting counted one).
func (c *serverConn) expire(f *Frag, now time.Time) bool {
	s := c.srv
	if s.timeout <= 0 || f.readAt.IsZero() || now.Before(f.readAt.Add(s.timeout)) {
		return false
	}
	s.stats.timeouts.Add(1)
	s.stats.errors.Add(1)
	f.complete(nil, &ServerError{Server: s.name, Err: ErrTimeout})
	return true
}

// push records f as written (in flight) at now. When it is the only request in flight
// the read deadline is its deadline.
func (c *serverConn) push(f *Frag, now time.Time) {
	s := c.srv
	f.sentAt = now
	s.stats.requests.Add(1)
	s.stats.requestBytes.Add(int64(len(f.Payload)))
	s.stats.outQueue.Add(1)
	s.stats.outQueueBytes.Add(int64(len(f.Payload)))
	c.imu.Lock()
	if c.head == len(c.inflight) && s.timeout > 0 && c.nc != nil {
		_ = c.nc.SetReadDeadline(c.deadline(f))
	}
	c.inflight = append(c.inflight, f)
	c.imu.Unlock()
}

// pop removes the oldest request in flight.
func (c *serverConn) pop() *Frag {
	c.imu.Lock()
	defer c.imu.Unlock()
	if c.head == len(c.inflight) {
		return nil
	}
	f := c.inflight[c.head]
	c.inflight[c.head] = nil
	c.head++
	if c.head == len(c.inflight) {
		c.inflight, c.head = c.inflight[:0], 0
	} else if c.head > 1024 && c.head > len(c.inflight)/2 {
		n := copy(c.inflight, c.inflight[c.head:])
		clear(c.inflight[n:])
		c.inflight, c.head = c.inflight[:n], 0
	}
	return f
}

// rearm sets the read deadline to the oldest request in flight's, or clears it when
// none is: an idle connection waits without a deadline (closing it unblocks the read).
// It reports whether no request is in flight.
func (c *serverConn) rearm() (idle bool) {
	c.imu.Lock()
	defer c.imu.Unlock()
	idle = c.head == len(c.inflight)
	if c.srv.timeout <= 0 || c.nc == nil {
		return idle
	}
	if !idle {
		_ = c.nc.SetReadDeadline(c.deadline(c.inflight[c.head]))
	} else {
		_ = c.nc.SetReadDeadline(time.Time{})
	}
	return idle
}

// read matches replies to requests in flight until the connection fails; it reports
// why on out.
func (c *serverConn) read(nc net.Conn, out chan<- error) {
	s := c.srv
	buf := make([]byte, serverReadBuf)
	r, w := 0, 0
	for {
		if w == len(buf) {
			if r > 0 {
				w = copy(buf, buf[r:w])
				r = 0
			} else if len(buf) >= maxServerReply {
				out <- &ServerError{Server: s.name, Err: ErrBadReply, Cause: errors.New("reply too large")}
				return
			} else {
				nb := make([]byte, 2*len(buf))
				copy(nb, buf[:w])
				buf = nb
			}
		}
		n, err := nc.Read(buf[w:])
		w += n
		if n > 0 {
			now := time.Now()
			replied := false
			for r < w {
				l, perr := c.replyLen(buf[r:w])
				if perr != nil {
					out <- &ServerError{Server: s.name, Err: ErrBadReply, Cause: perr}
					return
				}
				if l == 0 {
					break
				}
				f := c.pop()
				if f == nil {
					out <- &ServerError{Server: s.name, Err: ErrBadReply, Cause: errors.New("reply without a request")}
					return
				}
				s.stats.responses.Add(1)
				s.stats.responseBytes.Add(int64(l))
				s.stats.outQueue.Add(-1)
				s.stats.outQueueBytes.Add(-int64(len(f.Payload)))
				s.metrics.latency.Observe(now.Sub(f.sentAt).Seconds())
				f.complete(buf[r:r+l], nil)
				r += l
				replied = true
			}
			if r == w {
				r, w = 0, 0
				if len(buf) > 4*serverReadBuf {
					buf = make([]byte, serverReadBuf)
				}
			}
			if c.rearm() && s.retiring.Load() {
				select {
				case c.wake <- struct{}{}:
				default:
				}
			}
			if replied {
				s.success()
			}
		}
		if err != nil {
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded):
				// Closing unblocks a writer stuck on a server that stopped reading,
				// so the requests behind it fail at their deadline too.
				nc.Close()
				out <- ErrTimeout
			case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
				out <- ErrServerClosed
			default:
				out <- &ServerError{Server: s.name, Err: ErrServerClosed, Cause: err}
			}
			return
		}
	}
}
