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

// push records the requests of a write as written (in flight) at now, counted in
// one go. When none was in flight the read deadline is the first one's.
func (c *serverConn) push(fs []*Frag, now time.Time) {
	if len(fs) == 0 {
		return
	}
	s := c.srv
	var bytes int64
	for _, f := range fs {
		f.sentAt = now
		bytes += int64(len(f.Payload))
	}
	n := int64(len(fs))
	s.stats.requests.Add(n)
	s.stats.requestBytes.Add(bytes)
	s.stats.outQueue.Add(n)
	s.stats.outQueueBytes.Add(bytes)
	c.imu.Lock()
	if c.head == len(c.inflight) && s.timeout > 0 && c.nc != nil {
		_ = c.nc.SetReadDeadline(c.deadline(fs[0]))
	}
	c.inflight = append(c.inflight, fs...)
	c.imu.Unlock()
}

// popLocked removes the oldest request in flight; imu is held.
func (c *serverConn) popLocked() *Frag {
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

// rearmLocked sets the read deadline to the oldest request in flight's, or clears it
// when none is: an idle connection waits without a deadline (closing it unblocks the
// read). It reports whether no request is in flight. imu is held.
func (c *serverConn) rearmLocked() (idle bool) {
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

// serverReader is the state of a connection's reader goroutine.
type serverReader struct {
	c      *serverConn
	buf    []byte
	r, w   int       // buf[r:w] holds bytes read and not yet answered
	owners []*client // the clients answered by the current read, to deliver to
	perr   error     // the replies broke the protocol: the reader's error
	got    []matched // the replies of the current read and their requests
}

// matched is a reply of a read (its length, from serverReader.r on) and its request.
type matched struct {
	f   *Frag
	len int
}

// read matches replies to requests in flight until the connection fails; it reports
// why on out.
func (c *serverConn) read(nc net.Conn, out chan<- error) {
	s := c.srv
	rd := &serverReader{c: c, buf: make([]byte, serverReadBuf)}
	defer func() {
		for _, o := range rd.owners { // a read that failed half-way delivers what it answered
			o.deliver()
		}
	}()
	var err error
	if rc := rawConnOf(nc); rc != nil {
		err = rd.readRaw(rc)
	} else {
		for err == nil && rd.perr == nil {
			if rd.perr = rd.grow(); rd.perr != nil {
				break
			}
			var n int
			n, err = nc.Read(rd.buf[rd.w:])
			if n > 0 {
				rd.perr = rd.consume(n)
			}
		}
	}
	if rd.perr != nil {
		out <- rd.perr
		return
	}
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
}

// grow makes room in buf for the next read: it moves what is left of a reply to the
// front, or doubles buf, up to maxServerReply.
func (rd *serverReader) grow() error {
	if rd.w < len(rd.buf) {
		return nil
	}
	if rd.r > 0 {
		rd.w = copy(rd.buf, rd.buf[rd.r:rd.w])
		rd.r = 0
		return nil
	}
	if len(rd.buf) >= maxServerReply {
		return &ServerError{Server: rd.c.srv.name, Err: ErrBadReply, Cause: errors.New("reply too large")}
	}
	nb := make([]byte, 2*len(rd.buf))
	copy(nb, rd.buf[:rd.w])
	rd.buf = nb
	return nil
}

// consume answers the requests in flight whose replies the n bytes just read into
// buf[w:] complete, and delivers them to their clients. An error means the replies
// broke the protocol.
func (rd *serverReader) consume(n int) error {
	c := rd.c
	s := c.srv
	rd.w += n
	now := time.Now()
	// The replies of one read are matched to their requests under one lock, and
	// counted in one go before any is answered (a client that sees its reply sees it
	// counted); the read deadline is moved once for them.
	var replyBytes, reqBytes int64
	got := rd.got[:0]
	c.imu.Lock()
	var perr error
	for r := rd.r; r < rd.w; {
		l, err := c.replyLen(rd.buf[r:rd.w])
		if err != nil {
			perr = &ServerError{Server: s.name, Err: ErrBadReply, Cause: err}
			break
		}
		if l == 0 {
			break
		}
		f := c.popLocked()
		if f == nil {
			perr = &ServerError{Server: s.name, Err: ErrBadReply, Cause: errors.New("reply without a request")}
			break
		}
		got = append(got, matched{f, l})
		replyBytes += int64(l)
		reqBytes += int64(len(f.Payload))
		r += l
	}
	idle := false
	if perr == nil {
		idle = c.rearmLocked()
	}
	c.imu.Unlock()
	if n := int64(len(got)); n > 0 {
		s.stats.responses.Add(n)
		s.stats.responseBytes.Add(replyBytes)
		s.stats.outQueue.Add(-n)
		s.stats.outQueueBytes.Add(-reqBytes)
	}
	for i, m := range got {
		s.metrics.latency.Observe(now.Sub(m.f.sentAt).Seconds())
		if o := m.f.answer(rd.buf[rd.r : rd.r+m.len]); o != nil && (len(rd.owners) == 0 || rd.owners[len(rd.owners)-1] != o) {
			rd.owners = append(rd.owners, o)
		}
		rd.r += m.len
		got[i] = matched{}
	}
	rd.got = got[:0]
	if perr != nil {
		return perr // read's deferred function delivers what was answered
	}
	// The replies of the whole read are stored before any is written, so a
	// client answered twice by it writes once (non-blocking: a client that does
	// not read holds up nobody here).
	for i, o := range rd.owners {
		o.deliver()
		rd.owners[i] = nil
	}
	rd.owners = rd.owners[:0]
	if rd.r == rd.w {
		rd.r, rd.w = 0, 0
		if len(rd.buf) > 4*serverReadBuf {
			rd.buf = make([]byte, serverReadBuf)
		}
	}
	if idle && s.retiring.Load() {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	if len(got) > 0 {
		s.success()
	}
	return nil
}
