package kv

import (
	"errors"
	"io"
	"net"
	"os"
	"time"
)

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
	var owners []*client // the clients answered by the current read, to deliver to
	defer func() {
		for _, o := range owners { // a read that failed half-way delivers what it answered
			o.deliver()
		}
	}()
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
				if o := f.answer(buf[r : r+l]); o != nil && (len(owners) == 0 || owners[len(owners)-1] != o) {
					owners = append(owners, o)
				}
				r += l
				replied = true
			}
			// The replies of the whole read are stored before any is written, so a
			// client answered twice by it writes once (non-blocking: a client that does
			// not read holds up nobody here).
			for i, o := range owners {
				o.deliver()
				owners[i] = nil
			}
			owners = owners[:0]
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
