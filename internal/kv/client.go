package kv

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/poolsuite/poolsuite/internal/netpark"
	"github.com/poolsuite/poolsuite/internal/sysio"
)

// Client tuning.
const (
	clientReadBuf = 4 << 10  // initial read buffer: small, for many idle clients
	maxClientBuf  = 80 << 20 // a request larger than this breaks any codec limit
	// maxBatch is the most requests the reader parses before it checks its bounds
	// again, the most it may have pending before any reply size is known, and the most
	// answered requests kept for reuse.
	maxBatch = 512
	// maxPending bounds the requests of one client read and not yet answered: the
	// client goroutine keeps reading while earlier requests wait for their servers, so
	// that every request's deadline starts when its client sent it, and stops at this
	// bound (backpressure).
	maxPending = 8192
	// maxPendingBytes bounds the request bytes of one client's pending requests, the
	// bytes of replies received for it and not yet written, and the estimate of the
	// replies still to come (pending requests times the mean reply size).
	maxPendingBytes = 8 << 20
	// minSeen is how many replies make a mean reply size worth trusting.
	minSeen = 16
	// seenDecay: past this many replies seen, the counts are halved, so the mean
	// follows the client's recent replies.
	seenDecay      = 1024
	clientFlushLen = 64 << 10 // flush the reply buffer when it grows past this
	// maxKeptReplies bounds the reply buffers a client keeps for reuse.
	maxKeptReplies = 256 << 10
)

// errClosedAfterReply stops a client's writer after the reply a session asked to close
// the connection after (Request.CloseAfterReply).
var errClosedAfterReply = errors.New("kv: connection closed after reply")

// client is one client connection, served by two goroutines: serve reads, parses and
// dispatches requests, and queues them in order; writeLoop writes each reply once
// its request is answered, in request order, flushing whenever the next reply is not
// ready yet.
type client struct {
	pool   *pool
	nc     net.Conn
	sess   Session
	codec  Codec
	notify chan struct{} // wakes the writer: a reply arrived, a request was queued, the reader ended
	room   chan struct{} // wakes a reader waiting for its bounds
	lane   uint32        // which of each server's connections this client's requests use
	meter  replyMeter

	// Reader only.
	rbuf []byte
	rbp  *[]byte // the readBufs entry rbuf came from, reused to give it back
	// The state of read's callback, kept here so that a read allocates nothing.
	rdFn     func(fd uintptr) bool
	rdW, rdN int
	rdErr    error
	spare    *Request  // a Request taken for parsing and not used
	readAt   time.Time // when the last bytes were read
	rdl      time.Time // the read deadline in force, zero for none
	// handoff: the reader stopped between requests to hand the connection over to a
	// new process (upgrade.go); read by serve once the writer has ended.
	handoff bool
	// hot: the last read came within netpark.HotGap of the one before; such a reader waits
	// in Read, and is parked by the idle sweep once idle (park.go).
	hot bool

	// Parking (park.go): while the reader waits for bytes, its goroutine may end with
	// the connection on the proxy's Parker, which starts a new one when bytes come.
	pk       netpark.Conn
	wakeFn   func()      // c.resume, the Parker's callback
	woke     bool        // reader only: the goroutine is one the Parker started
	idleT    *time.Timer // c.mu: wakes a parked client at its read deadline
	parkKick atomic.Bool // the idle sweep woke a reader waiting in Read to park it
	active   atomic.Bool // bytes were read since the last idle sweep

	// Output: whoever holds wmu moves answered replies to the socket, in request
	// order. That is the writer goroutine, which may wait in a write for up to
	// client_write_timeout, or a goroutine delivering a reply (a server connection's
	// reader, or the client's reader for a reply of its own), which only tries
	// non-blocking writes and takes wmu only if it is free (TryLock): nobody ever waits
	// for wmu but the writer. What a non-blocking write leaves is the writer's to
	// write (see emit).
	wmu        sync.Mutex
	rc         syscall.RawConn // for non-blocking writes; nil when the conn has none
	out        []byte          // replies gathered and not yet written
	werr       error           // the write error that broke the connection, or errClosedAfterReply
	closeAfter bool            // close once out is written (Request.CloseAfterReply)
	wdl        time.Time       // the write deadline in force, zero for none
	dirty      atomic.Bool     // a reply arrived while wmu was held: its holder looks again
	// The state of tryWrite's callback, kept here so that a write allocates nothing.
	wrFn  func(fd uintptr) bool
	wrB   []byte
	wrN   int
	wrErr error

	mu           sync.Mutex // guards the fields below
	head, tail   *Request   // requests awaiting their replies, oldest first
	pending      int        // requests in head..tail
	pendingBytes int        // their payload bytes
	free         *Request   // answered requests kept for reuse
	nfree        int
	reading      bool // the reader waits for bytes: in Read, or parked
	readEmpty    bool // it waits with nothing buffered
	parked       bool // its goroutine ended with the connection on the Parker
	// kicked: a close or a deadline is on its way to the reader's next read, which
	// must then wait in Read, not parked, to see it.
	kicked bool
	// closing: the connection is closed or about to be; the reader never parks
	// again, so that no close meets a parked descriptor.
	closing    bool
	readerDone bool // the reader queues nothing more

	// wstate: whether a writer goroutine runs (writerRunning), none does (0: one is
	// started by the next wakeWriter), or the last one ended (writerDone).
	wstate     atomic.Int32
	wdone      chan struct{} // closed when the last writer has ended
	waiting    atomic.Bool   // the reader waits on room
	broken     atomic.Bool   // the writer failed and closed the connection
	kept       atomic.Int64  // reply buffer bytes of the requests on free
	lastActive atomic.Int64  // Unix nanoseconds of the last reply write (with client_timeout only)
}

func newClient(pl *pool, nc net.Conn) *client {
	st := pl.state.Load()
	c := &client{pool: pl, nc: nc, codec: st.codec, sess: st.codec.NewSession(), notify: make(chan struct{}, 1),
		room: make(chan struct{}, 1), wdone: make(chan struct{}), lane: pl.lanes.Add(1) - 1, rc: rawConnOf(nc)}
	return c
}

// closeIfIdle closes the connection when the pool is closing and the client waits for
// a request with nothing pending and no reply left to write; an active client sees
// pool.closing once its pending requests are answered. It reports whether it closed
// the connection. May be called with pool.mu held.
func (c *client) closeIfIdle() bool {
	if !c.wmu.TryLock() {
		// A delivery may be writing the last reply, popped already: the writer looks
		// again once it has wmu, after that delivery.
		c.wakeWriter()
		return false
	}
	c.mu.Lock()
	idle := c.reading && c.pending == 0 && len(c.out) == 0 && c.pool.closing.Load()
	parked := idle && c.kickLocked()
	c.closing = c.closing || idle
	c.mu.Unlock()
	c.wmu.Unlock()
	if idle {
		c.unpark(parked)
		c.nc.Close()
	}
	return idle
}

// serve reads pipelines of requests and dispatches them, while writeLoop writes the
// replies in order, until the client leaves, breaks the protocol, or the pool drains.
// It returns once every reply is written (or the connection failed) and writeLoop
// has ended, or as soon as the reader parked the connection (park.go): the
// goroutine the Parker starts when it wakes runs serve again. A panic is logged and
// closes this connection only.
func (c *client) serve() {
	if c.run() {
		return // parked: the Parker serves the connection again once it wakes
	}
	defer c.pool.forget(c)
	defer c.closeOrHandOff()
	defer func() {
		c.mu.Lock()
		c.readerDone = true
		c.mu.Unlock()
		c.wakeWriter()
		<-c.wdone
		c.putReadBuf()
	}()
}

// run runs the reader until it ends, or until it parks the connection (true). A panic
// is logged and closes this connection only.
func (c *client) run() (parked bool) {
	defer c.recoverPanic()
	return c.readLoop(c.wdone)
}

// recoverPanic logs a panic of a client goroutine and closes its connection.
func (c *client) recoverPanic() {
	if r := recover(); r != nil {
		c.recoverPanicValue(r)
	}
}

// recoverPanicValue logs the recovered panic r and closes the connection.
func (c *client) recoverPanicValue(r any) {
	c.pool.stats.clientErr.Add(1)
	c.pool.p.log.Error("client panic", "pool", c.pool.name, "client", c.nc.RemoteAddr().String(), "panic", r, "stack", string(debug.Stack()))
	c.broken.Store(true)
	c.closeConn()
}

// readBufs holds the read buffers of clients waiting for a request with nothing
// buffered: an idle client holds none.
var readBufs = sync.Pool{New: func() any { b := make([]byte, clientReadBuf); return &b }}

// takeReadBuf gives the reader a buffer if it has none.
func (c *client) takeReadBuf() {
	if c.rbuf == nil {
		c.rbp = readBufs.Get().(*[]byte)
		c.rbuf = *c.rbp
	}
}

// putReadBuf returns the reader's buffer, which must hold nothing unparsed.
func (c *client) putReadBuf() {
	if p := c.rbp; p != nil && c.rbuf != nil && len(c.rbuf) <= 4*clientReadBuf {
		*p = c.rbuf
		readBufs.Put(p)
	}
	c.rbuf, c.rbp = nil, nil
}

// read reads into c.rbuf[w:]. With nothing buffered (w == 0), the buffer goes back
// to readBufs while the reader waits for the socket, and is taken again when bytes
// arrive; the deadlines in force apply as to any Read.
func (c *client) read(w int) (int, error) {
	if c.rc == nil || w != 0 {
		c.takeReadBuf()
		return c.nc.Read(c.rbuf[w:])
	}
	if c.rdFn == nil {
		c.rdFn = c.readFd
	}
	c.rdW, c.rdN, c.rdErr = w, 0, nil
	err := c.rc.Read(c.rdFn)
	if err == nil {
		err = c.rdErr
	}
	c.rdErr = nil
	return c.rdN, err
}

// readFd is read's callback: one non-blocking read into c.rbuf[c.rdW:].
func (c *client) readFd(fd uintptr) bool {
	c.takeReadBuf()
	for {
		r, e := sysio.Read(fd, c.rbuf[c.rdW:])
		switch {
		case e == syscall.EINTR:
			continue
		case e == syscall.EAGAIN:
			c.putReadBuf()
			return false // wait for the socket without a buffer
		case e != 0:
			c.rdErr = os.NewSyscallError("read", e)
		case r == 0:
			c.rdErr = io.EOF
		default:
			c.rdN = r
		}
		return true
	}
}

// readLoop is the reader: it parses and dispatches what the client sent, reading more
// whenever the buffer holds no complete request and the client's bounds allow. It
// returns true when it parked the connection (see park): it then holds nothing
// buffered, and the goroutine the Parker starts runs serve again.
func (c *client) readLoop(wdone <-chan struct{}) bool {
	log := c.pool.p.log
	r, w := 0, 0
	var readErr error
	// A goroutine reads before it parks: a woken connection, because what woke it is
	// for the read; a new one, because a client that just connected is about to send
	// (parking it would put a wake-up on the way of its first request; one that sends
	// nothing is parked by the idle sweep).
	c.resumed()
	mayPark := false
	for {
		if !c.waitRoom(wdone) {
			return false
		}
		st := c.pool.state.Load()
		k, consumed, perr, quit := c.parseBatch(st, c.rbuf[r:w])
		r += consumed
		if perr != nil {
			c.pool.stats.clientErr.Add(1)
			log.Info("closing client: protocol error", "pool", c.pool.name, "client", c.nc.RemoteAddr().String(), "err", perr)
			return false
		}
		if quit {
			return false
		}
		if k > 0 {
			continue // more may be buffered
		}
		if readErr != nil && c.broken.Load() {
			return false // the writer failed and counted it
		}
		if readErr != nil && errors.Is(readErr, os.ErrDeadlineExceeded) {
			kick := c.parkKick.Swap(false)
			if (kick || c.pool.handover.Load()) && (c.rdl.IsZero() || time.Now().Before(c.rdl)) {
				// Woken for a handover, or to be parked: the check before the next
				// read decides.
				_ = c.nc.SetReadDeadline(c.rdl)
				readErr = nil
				c.hot = c.hot && !kick
			} else if c.idleRearm(st) {
				readErr = nil
			} else {
				c.pool.stats.clientEOF.Add(1)
				log.Debug("closing idle client", "pool", c.pool.name, "client", c.nc.RemoteAddr().String())
				return false
			}
		}
		if readErr != nil {
			if errors.Is(readErr, io.EOF) || errors.Is(readErr, net.ErrClosed) {
				c.pool.stats.clientEOF.Add(1)
			} else {
				c.pool.stats.clientErr.Add(1)
			}
			return false
		}
		// Need more bytes.
		if r == w {
			r, w = 0, 0
			if len(c.rbuf) > 4*clientReadBuf {
				c.rbuf = nil
			}
		}
		c.takeReadBuf()
		if w == len(c.rbuf) {
			if r > 0 {
				w = copy(c.rbuf, c.rbuf[r:w])
				r = 0
			} else {
				if len(c.rbuf) >= maxClientBuf {
					c.pool.stats.clientErr.Add(1)
					log.Info("closing client: request too large", "pool", c.pool.name, "client", c.nc.RemoteAddr().String())
					return false
				}
				nb := make([]byte, 2*len(c.rbuf))
				copy(nb, c.rbuf[:w])
				c.rbuf = nb
			}
		}
		c.armIdle(st)
		c.mu.Lock()
		if c.pool.closing.Load() && c.pending == 0 {
			c.mu.Unlock()
			return false
		}
		if c.pool.handover.Load() && c.pending == 0 && r == w {
			c.handoff = true // between requests: serve hands the connection over
			c.mu.Unlock()
			return false
		}
		c.reading, c.readEmpty = true, w == 0
		if w == 0 && mayPark && !c.hot && c.parkLocked() {
			c.mu.Unlock()
			return true
		}
		c.kicked = false
		c.mu.Unlock()
		var n int
		n, readErr = c.read(w)
		mayPark = true
		if n > 0 {
			now := time.Now()
			c.hot = now.Sub(c.readAt) < time.Duration(c.pool.p.hotGap.Load())
			c.readAt = now
			if !c.active.Load() {
				c.active.Store(true)
			}
		}
		c.mu.Lock()
		c.reading = false
		c.mu.Unlock()
		w += n
	}
}

// waitRoom waits until the client's bounds allow more requests (see roomLocked). It
// returns false if the writer ended meanwhile.
func (c *client) waitRoom(wdone <-chan struct{}) bool {
	for {
		c.waiting.Store(true)
		c.mu.Lock()
		ok := c.roomLocked()
		c.mu.Unlock()
		if ok {
			c.waiting.Store(false)
			return true
		}
		select {
		case <-c.room:
		case <-wdone:
			c.waiting.Store(false)
			return false
		}
	}
}

// roomLocked reports whether the reader may parse more requests: always when none is
// pending; otherwise while fewer than maxPending are, their request bytes, the reply
// bytes held and the estimate of the replies to come stay under maxPendingBytes.
// Before the client (or its pool) has seen minSeen replies, maxBatch requests at most
// are pending. c.mu must be held.
func (c *client) roomLocked() bool {
	if c.pending == 0 {
		return true
	}
	if c.pending >= maxPending || c.pendingBytes >= maxPendingBytes || c.meter.held.Load() >= maxPendingBytes {
		return false
	}
	mean := c.pool.replyMean.Load()
	if n := c.meter.seen.Load(); n >= minSeen {
		mean = c.meter.seenBytes.Load() / n
	}
	if mean <= 0 {
		return c.pending < maxBatch
	}
	return int64(c.pending)*(mean+1) < maxPendingBytes
}

// takeRequest returns a Request to parse into: the spare one, one from the free list,
// or a new one.
func (c *client) takeRequest() *Request {
	if r := c.spare; r != nil {
		c.spare = nil
		return r
	}
	c.mu.Lock()
	r := c.free
	if r != nil {
		c.free, r.next = r.next, nil
		c.nfree--
	}
	c.mu.Unlock()
	if r == nil {
		return &Request{}
	}
	var kept int64
	for _, f := range r.spare {
		kept += int64(cap(f.reply))
	}
	c.kept.Add(-kept)
	return r
}

// parseBatch parses and dispatches up to maxBatch requests from buf, queueing each
// for the writer before its fragments go out.
func (c *client) parseBatch(st *poolState, buf []byte) (k, consumed int, err error, quit bool) {
	local := false // a request answered by the session itself was queued
	defer func() {
		if local {
			c.deliver()
		}
	}()
	for k < maxBatch {
		req := c.takeRequest()
		req.reset()
		n, perr := c.sess.Parse(buf[consumed:], req, st)
		if perr != nil || n == 0 {
			c.spare = req
			return k, consumed, perr, false
		}
		local = local || len(req.Frags) == 0
		consumed += n
		k++
		if len(req.Frags) > 1 {
			c.pool.stats.fragments.Add(int64(len(req.Frags)))
		}
		req.bytes = 0
		for _, f := range req.Frags {
			f.owner, f.lane, f.meter, f.readAt = c, c.lane, &c.meter, c.readAt
			req.bytes += len(f.Payload)
		}
		c.push(req)
		for _, f := range req.Frags {
			st.dispatch(f)
		}
		if req.Close {
			return k, consumed, nil, true
		}
	}
	return k, consumed, nil, false
}

// push queues req for its reply. Nobody is woken: its fragments wake the client
// when they complete, and parseBatch delivers the replies of the session's own.
func (c *client) push(req *Request) {
	req.next = nil
	c.mu.Lock()
	if c.head == nil {
		c.head = req
	} else {
		c.tail.next = req
	}
	c.tail = req
	c.pending++
	c.pendingBytes += req.bytes
	c.mu.Unlock()
}

// armIdle sets the read deadline for client_timeout before the reader waits for a
// request. The deadline is set once and moved only when it passes while the client
// was active since (idleRearm), so a busy client costs no timer updates.
func (c *client) armIdle(st *poolState) {
	idle := st.cfg.ClientTimeout
	switch {
	case idle > 0 && c.rdl.IsZero():
		c.lastActive.CompareAndSwap(0, time.Now().UnixNano())
		c.rdl = time.Unix(0, c.lastActive.Load()).Add(idle)
		_ = c.nc.SetReadDeadline(c.rdl)
	case idle <= 0 && !c.rdl.IsZero():
		c.rdl = time.Time{}
		c.lastActive.Store(0)
		_ = c.nc.SetReadDeadline(time.Time{})
	}
}

// idleRearm is called when the read deadline passed. It moves the deadline and
// reports true if the client was active within client_timeout or has requests
// pending (they count as activity); false means the client has been idle that long
// and is to be closed.
func (c *client) idleRearm(st *poolState) bool {
	idle := st.cfg.ClientTimeout
	if idle <= 0 {
		c.rdl = time.Time{}
		c.lastActive.Store(0)
		_ = c.nc.SetReadDeadline(time.Time{})
		return true
	}
	c.mu.Lock()
	busy := c.pending > 0
	c.mu.Unlock()
	now := time.Now()
	if busy {
		c.lastActive.Store(now.UnixNano())
	}
	last := time.Unix(0, c.lastActive.Load())
	if now.Sub(last) >= idle {
		return false
	}
	c.rdl = last.Add(idle)
	_ = c.nc.SetReadDeadline(c.rdl)
	return true
}
