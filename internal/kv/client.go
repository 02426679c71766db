package kv

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// Client tuning.
const (
	clientReadBuf = 4 << 10  // initial read buffer: small, for many idle clients
	maxClientBuf  = 80 << 20 // a request larger than this breaks any codec limit
	// maxBatch bounds the requests of one client in flight: the client goroutine parses
	// at most this many before it writes their replies, and reads nothing more from
	// the client until they are written (backpressure on a client that does not read).
	maxBatch = 512
	// clientReplyBudget is the reply bytes one batch aims to stay under: after a batch
	// whose replies were larger, the next batch takes proportionally fewer requests
	// (at least one).
	clientReplyBudget = 4 << 20
	clientFlushLen    = 64 << 10 // flush the reply buffer when it grows past this
	// maxKeptReplies bounds the reply buffers a client keeps for reuse between batches.
	maxKeptReplies = 256 << 10
)

// Client states.
const (
	stateIdle int32 = iota // waiting for a request
	stateActive
)

// client is one client connection, served by one goroutine (serve).
type client struct {
	pool   *pool
	nc     net.Conn
	sess   Session
	codec  Codec
	notify chan struct{}
	state  atomic.Int32
	lane   uint32 // which of each server's connections this client's requests use

	rbuf   []byte
	wbuf   []byte
	reqs   []*Request
	window int // requests the next batch may take: maxBatch, less after large replies

	// Deadlines on the socket, set lazily (see armWrite and armIdle).
	wdl        time.Time // the write deadline in force, zero for none
	rdl        time.Time // the read deadline in force, zero for none
	lastActive time.Time // when the last batch was answered (with client_timeout only)
}

func newClient(pl *pool, nc net.Conn) *client {
	st := pl.state.Load()
	return &client{pool: pl, nc: nc, codec: st.codec, sess: st.codec.NewSession(), notify: make(chan struct{}, 1),
		lane: pl.lanes.Add(1) - 1, window: maxBatch}
}

// closeIfIdle closes the connection when the client waits for a request; an active
// client sees pool.closing after its batch. Called with pool.mu held.
func (c *client) closeIfIdle() {
	if c.state.Load() == stateIdle {
		c.nc.Close()
	}
}

// serve reads pipelines of requests, dispatches them and writes the replies in order,
// until the client leaves, breaks the protocol, or the pool drains. A panic is logged
// and closes this connection only.
func (c *client) serve() {
	log := c.pool.p.log
	defer c.pool.forget(c)
	defer c.nc.Close()
	defer func() {
		if r := recover(); r != nil {
			c.pool.stats.clientErr.Add(1)
			log.Error("client panic", "pool", c.pool.name, "client", c.nc.RemoteAddr().String(), "panic", r, "stack", string(debug.Stack()))
		}
	}()
	c.rbuf = make([]byte, clientReadBuf)
	r, w := 0, 0
	var readErr error
	for {
		st := c.pool.state.Load()
		k, consumed, perr, quit := c.parseBatch(st, c.rbuf[r:w])
		r += consumed
		if k > 0 {
			c.state.Store(stateActive)
			werr := c.reply(st, k)
			if werr != nil {
				c.pool.stats.clientErr.Add(1)
				if errors.Is(werr, os.ErrDeadlineExceeded) {
					log.Info("closing client: replies not read within client_write_timeout", "pool", c.pool.name, "client", c.nc.RemoteAddr().String())
				}
				return
			}
		}
		if perr != nil {
			c.pool.stats.clientErr.Add(1)
			log.Info("closing client: protocol error", "pool", c.pool.name, "client", c.nc.RemoteAddr().String(), "err", perr)
			return
		}
		if quit {
			return
		}
		if k > 0 {
			continue // more may be buffered
		}
		if readErr != nil && errors.Is(readErr, os.ErrDeadlineExceeded) {
			if c.idleRearm(st) {
				readErr = nil
			} else {
				c.pool.stats.clientEOF.Add(1)
				log.Debug("closing idle client", "pool", c.pool.name, "client", c.nc.RemoteAddr().String())
				return
			}
		}
		if readErr != nil {
			if errors.Is(readErr, io.EOF) || errors.Is(readErr, net.ErrClosed) {
				c.pool.stats.clientEOF.Add(1)
			} else {
				c.pool.stats.clientErr.Add(1)
			}
			return
		}
		// Need more bytes.
		if r == w {
			r, w = 0, 0
			if len(c.rbuf) > 4*clientReadBuf {
				c.rbuf = make([]byte, clientReadBuf)
			}
		}
		if w == len(c.rbuf) {
			if r > 0 {
				w = copy(c.rbuf, c.rbuf[r:w])
				r = 0
			} else {
				if len(c.rbuf) >= maxClientBuf {
					c.pool.stats.clientErr.Add(1)
					log.Info("closing client: request too large", "pool", c.pool.name, "client", c.nc.RemoteAddr().String())
					return
				}
				nb := make([]byte, 2*len(c.rbuf))
				copy(nb, c.rbuf[:w])
				c.rbuf = nb
			}
		}
		c.state.Store(stateIdle)
		if c.pool.closing.Load() {
			return
		}
		c.armIdle(st)
		var n int
		n, readErr = c.nc.Read(c.rbuf[w:])
		w += n
	}
}

func (c *client) request(i int) *Request {
	if i == len(c.reqs) {
		c.reqs = append(c.reqs, &Request{})
	}
	return c.reqs[i]
}

// parseBatch parses and dispatches up to maxBatch requests from buf.
func (c *client) parseBatch(st *poolState, buf []byte) (k, consumed int, err error, quit bool) {
	for k < c.window {
		req := c.request(k)
		req.reset()
		n, perr := c.sess.Parse(buf[consumed:], req, st)
		if perr != nil {
			return k, consumed, perr, false
		}
		if n == 0 {
			return k, consumed, nil, false
		}
		consumed += n
		k++
		if len(req.Frags) > 1 {
			c.pool.stats.fragments.Add(int64(len(req.Frags)))
		}
		for _, f := range req.Frags {
			f.notify, f.lane = c.notify, c.lane
			st.dispatch(f)
		}
		if req.Close {
			return k, consumed, nil, true
		}
	}
	return k, consumed, nil, false
}

// reply waits for the k requests of the batch in order, writes their replies and
// flushes. After a write error (the client went away, or did not read its replies
// within client_write_timeout) it still waits for every request of the batch, so that
// none is reused while a server connection holds it, but writes nothing more.
func (c *client) reply(st *poolState, k int) error {
	buf := c.wbuf[:0]
	var werr error
	total, kept := 0, 0
	for i := 0; i < k; i++ {
		req := c.reqs[i]
		if len(req.Frags) == 0 {
			if werr == nil {
				buf = append(buf, req.Local...)
			}
			continue
		}
		req.replies = req.replies[:0]
		for _, f := range req.Frags {
			for !f.done.Load() {
				<-c.notify
			}
			if f.err != nil {
				c.pool.stats.forwardError.Add(1)
				f.reply = c.codec.AppendError(f.reply[:0], f.err)
			}
			total += len(f.reply)
			req.replies = append(req.replies, f.reply)
		}
		if werr == nil {
			if len(req.Frags) == 1 {
				buf = append(buf, req.replies[0]...)
			} else {
				buf = c.sess.Merge(buf, req, req.replies)
			}
		}
		for _, f := range req.Frags {
			kept += cap(f.reply)
			f.release(kept <= maxKeptReplies)
		}
		clear(req.replies)
		if len(buf) >= clientFlushLen && werr == nil {
			werr = c.write(st, buf)
			buf = buf[:0]
		}
	}
	if len(buf) > 0 && werr == nil {
		werr = c.write(st, buf)
	}
	if cap(buf) <= maxKeptBuf {
		c.wbuf = buf[:0]
	} else {
		c.wbuf = nil
	}
	c.adjustWindow(k, total)
	return werr
}

// adjustWindow sizes the next batch from this one's k requests and total reply bytes:
// smaller after replies above clientReplyBudget, back up to maxBatch otherwise.
func (c *client) adjustWindow(k, total int) {
	switch {
	case total > clientReplyBudget:
		c.window = max(1, int(int64(k)*clientReplyBudget/int64(total)))
	case c.window < maxBatch:
		c.window = min(maxBatch, 2*c.window)
	}
}

// write writes replies to the client under the pool's client_write_timeout.
func (c *client) write(st *poolState, b []byte) error {
	c.armWrite(st)
	_, err := c.nc.Write(b)
	return err
}

// armWrite keeps a write deadline of client_write_timeout (wt) ahead of now. Moving
// a deadline costs a timer update, so it is moved only once it is less than 7/8 of wt
// ahead: a write that blocks gives up after between 7/8 wt and wt. With client_timeout
// set, it also records when the client was last active.
func (c *client) armWrite(st *poolState) {
	wt := st.cfg.ClientWriteTimeout
	if wt <= 0 && st.cfg.ClientTimeout <= 0 {
		if !c.wdl.IsZero() {
			_ = c.nc.SetWriteDeadline(time.Time{})
			c.wdl = time.Time{}
		}
		return
	}
	now := time.Now()
	if st.cfg.ClientTimeout > 0 {
		c.lastActive = now
	}
	switch {
	case wt > 0 && (c.wdl.IsZero() || c.wdl.Sub(now) < wt-wt/8):
		c.wdl = now.Add(wt)
		_ = c.nc.SetWriteDeadline(c.wdl)
	case wt <= 0 && !c.wdl.IsZero():
		_ = c.nc.SetWriteDeadline(time.Time{})
		c.wdl = time.Time{}
	}
}

// armIdle sets the read deadline for client_timeout before the client goroutine waits
// for a request. The deadline is set once and moved only when it passes while the
// client was active since (idleRearm), so a busy client costs no timer updates.
func (c *client) armIdle(st *poolState) {
	idle := st.cfg.ClientTimeout
	switch {
	case idle > 0 && c.rdl.IsZero():
		if c.lastActive.IsZero() {
			c.lastActive = time.Now()
		}
		c.rdl = c.lastActive.Add(idle)
		_ = c.nc.SetReadDeadline(c.rdl)
	case idle <= 0 && !c.rdl.IsZero():
		c.rdl = time.Time{}
		c.lastActive = time.Time{}
		_ = c.nc.SetReadDeadline(time.Time{})
	}
}

// idleRearm is called when the read deadline passed. It moves the deadline and
// reports true if the client was active within client_timeout; false means the
// client has been idle that long and is to be closed.
func (c *client) idleRearm(st *poolState) bool {
	idle := st.cfg.ClientTimeout
	if idle <= 0 {
		c.rdl = time.Time{}
		c.lastActive = time.Time{}
		_ = c.nc.SetReadDeadline(time.Time{})
		return true
	}
	if time.Since(c.lastActive) >= idle {
		return false
	}
	c.rdl = c.lastActive.Add(idle)
	_ = c.nc.SetReadDeadline(c.rdl)
	return true
}
