package kv

import (
	"errors"
	"net"
	"os"
	"time"
)

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
			// The requests queued meanwhile fail first: a client answered for first
			// may send its next request at once, which is for the next attempt.
			c.failQueued(err)
			if first != nil {
				first.complete(nil, err)
				first = nil
			}
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
