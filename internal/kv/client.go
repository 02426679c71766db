package kv

import (
	"errors"
	"io"
	"net"
	"runtime/debug"
	"sync/atomic"
)

// Client tuning.
const (
	clientReadBuf  = 4 << 10  // initial read buffer: small, for many idle clients
	maxClientBuf   = 80 << 20 // a request larger than this breaks any codec limit
	maxBatch       = 512      // requests parsed before their replies are written
	clientFlushLen = 64 << 10 // flush the reply buffer when it grows past this
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

	rbuf []byte
	wbuf []byte
	reqs []*Request
}

func newClient(pl *pool, nc net.Conn) *client {
	st := pl.state.Load()
	return &client{pool: pl, nc: nc, codec: st.codec, sess: st.codec.NewSession(), notify: make(chan struct{}, 1)}
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
			werr := c.reply(k)
			if werr != nil {
				c.pool.stats.clientErr.Add(1)
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
	for k < maxBatch {
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
			f.notify = c.notify
			st.dispatch(f)
		}
		if req.Close {
			return k, consumed, nil, true
		}
	}
	return k, consumed, nil, false
}

// reply waits for the k requests of the batch in order, writes their replies and
// flushes.
func (c *client) reply(k int) error {
	buf := c.wbuf[:0]
	var werr error
	for i := 0; i < k; i++ {
		req := c.reqs[i]
		if len(req.Frags) == 0 {
			buf = append(buf, req.Local...)
		} else {
			req.replies = req.replies[:0]
			for _, f := range req.Frags {
				for !f.done.Load() {
					<-c.notify
				}
				if f.err != nil {
					c.pool.stats.forwardError.Add(1)
					f.reply = c.codec.AppendError(f.reply[:0], f.err)
				}
				req.replies = append(req.replies, f.reply)
			}
			if len(req.Frags) == 1 {
				buf = append(buf, req.replies[0]...)
			} else {
				buf = c.sess.Merge(buf, req, req.replies)
			}
			for _, f := range req.Frags {
				f.release()
			}
			clear(req.replies)
		}
		if len(buf) >= clientFlushLen && werr == nil {
			_, werr = c.nc.Write(buf)
			buf = buf[:0]
		}
	}
	if len(buf) > 0 && werr == nil {
		_, werr = c.nc.Write(buf)
	}
	if cap(buf) <= maxKeptBuf {
		c.wbuf = buf[:0]
	} else {
		c.wbuf = nil
	}
	return werr
}
