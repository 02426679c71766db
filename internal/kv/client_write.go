package kv

import (
	"errors"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/poolsuite/poolsuite/internal/sysio"
)

// Writer goroutine states (client.wstate).
const (
	writerRunning = 1
	writerDone    = 2
)

// wakeWriter wakes the writer, starting its goroutine if none runs: a client has one
// only while it has work for it (see writeLoop), so an idle client holds none.
func (c *client) wakeWriter() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
	if c.wstate.CompareAndSwap(0, writerRunning) {
		go c.writeLoop()
	}
}

// answered reports whether every fragment of req has its reply.
func answered(req *Request) bool {
	for _, f := range req.Frags {
		if !f.done.Load() {
			return false
		}
	}
	return true
}

// writeLoop is the writer: it writes the replies of answered requests in order (see
// emit) whenever it is woken: by a fragment completed with an error, by a delivery
// that left bytes a non-blocking write could not send or found the queue emptied
// during a drain or handover, or by the reader's end. After a write error (the client
// went away, or did not read its replies within client_write_timeout) the connection
// is closed and replies are taken without being written, so that no Request is reused
// while a server connection holds it.
// The goroutine runs only while it has work: it is started by wakeWriter and
// returns once nothing is left for it (the next wakeWriter starts another); the last
// one returns when the reader has ended and every pending request is answered, and
// closes wdone.
func (c *client) writeLoop() {
	final := false
	defer func() {
		if final {
			c.wstate.Store(writerDone)
			close(c.wdone)
		}
	}()
	defer func() {
		if r := recover(); r != nil {
			final = true
			c.recoverPanicValue(r)
		}
	}()
	for {
		c.wmu.Lock()
		c.emitLocked(true)
		c.mu.Lock()
		req, done := c.head, c.readerDone
		c.mu.Unlock()
		if req == nil {
			if done {
				final = true
				return
			}
			// The pool drains: the client is closed once answered; or it is handed
			// over once answered.
			if !c.closeIfIdle() && c.pool.handover.Load() {
				c.kickIdle()
			}
		}
		if c.dirty.Load() {
			continue // a delivery found wmu held by this loop
		}
		select {
		case <-c.notify:
			continue
		default:
		}
		// Nothing to do: the goroutine ends. A wakeWriter that found it still
		// running started none, so a wake-up left meanwhile is looked at again.
		c.wstate.Store(0)
		if len(c.notify) == 0 || !c.wstate.CompareAndSwap(0, writerRunning) {
			return
		}
	}
}

// deliver writes the replies now answered at the head of the queue, without ever
// blocking: it is called by a server connection's reader once it has stored the
// replies of a read (Frag.answer), and by the client's reader for replies of the
// session's own. If wmu is held, its holder is told to look again (dirty). The writer
// is woken only when it has work: bytes the socket did not take, a close after a
// reply, or an emptied queue it must act on (see emit).
func (c *client) deliver() {
	c.dirty.Store(true)
	for c.wmu.TryLock() {
		if c.emitLocked(false) {
			c.wakeWriter()
			return
		}
		if !c.dirty.Load() {
			return
		}
	}
}

// emitLocked runs emit with wmu held, and releases it, also on a panic (of a
// session's Merge); a panic in a delivery is recovered as on the client's own
// goroutines, closing this connection only, and wakes the writer.
func (c *client) emitLocked(blocking bool) (wake bool) {
	defer c.wmu.Unlock()
	c.dirty.Store(false)
	if !blocking {
		wake = true
		defer c.recoverPanic()
	}
	return c.emit(blocking)
}

// emit moves the replies of the answered requests at the head of the queue to out,
// in request order, and writes them; a request not yet answered stops it. Called with
// wmu held. The writer (blocking) writes under client_write_timeout; a delivery
// (!blocking) only tries non-blocking writes and reports true when the writer must
// take over: bytes left unwritten (no more replies are gathered behind them, which
// keeps out bounded), or the queue emptied while the reader ended, the pool drains or
// hands its clients over (the writer then closes or hands over the connection).
func (c *client) emit(blocking bool) (wake bool) {
	st := c.pool.state.Load()
	if !c.send(st, blocking) {
		return true
	}
	for {
		c.mu.Lock()
		req := c.head
		c.mu.Unlock()
		if req == nil || !answered(req) {
			break
		}
		c.appendReply(req)
		closeAfter := req.CloseAfterReply
		c.pop(req)
		if closeAfter && c.werr == nil {
			// The session ends the connection after this reply: it is written, then
			// the connection closed; later replies are taken and dropped.
			c.closeAfter = true
		}
		if (c.closeAfter || len(c.out) >= clientFlushLen) && !c.send(st, blocking) {
			return true
		}
	}
	if !c.send(st, blocking) {
		return true
	}
	if blocking {
		return false
	}
	c.mu.Lock()
	end := c.head == nil && (c.readerDone || c.pool.closing.Load() || c.pool.handover.Load())
	c.mu.Unlock()
	return end
}

// appendReply appends req's reply to out (unless the connection is broken) and
// accounts for the reply bytes it held.
func (c *client) appendReply(req *Request) {
	if len(req.Frags) == 0 {
		if c.werr == nil {
			c.out = append(c.out, req.Local...)
		}
		return
	}
	var held int64
	req.replies = req.replies[:0]
	for _, f := range req.Frags {
		if f.err != nil {
			c.pool.stats.forwardError.Add(1)
			f.reply = c.codec.AppendError(f.reply[:0], f.err)
		} else {
			held += int64(len(f.reply))
		}
		req.replies = append(req.replies, f.reply)
	}
	if c.werr == nil {
		if len(req.Frags) == 1 && !req.AlwaysMerge {
			c.out = append(c.out, req.replies[0]...)
		} else {
			c.out = c.sess.Merge(c.out, req, req.replies)
		}
	}
	clear(req.replies)
	c.meter.held.Add(-held)
}

// send writes out: with blocking, under client_write_timeout; otherwise with
// non-blocking writes only, reporting false if bytes are left for the writer. A write
// error closes the connection. Once out is written, a pending close after a reply is
// done. Called with wmu held.
func (c *client) send(st *poolState, blocking bool) bool {
	if len(c.out) > 0 && c.werr == nil {
		var err error
		if blocking || c.rc == nil {
			if !blocking {
				return false // no non-blocking write on this connection
			}
			err = c.write(st, c.out)
		} else {
			var n int
			n, err = c.tryWrite(st, c.out)
			if err == nil && n < len(c.out) {
				c.out = c.out[:copy(c.out, c.out[n:])]
				return false
			}
		}
		if err != nil {
			c.pool.stats.clientErr.Add(1)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				c.pool.p.log.Info("closing client: replies not read within client_write_timeout", "pool", c.pool.name, "client", c.nc.RemoteAddr().String())
			}
			c.werr = err
			c.broken.Store(true)
			c.closeConn()
		}
	}
	if cap(c.out) <= maxKeptBuf {
		c.out = c.out[:0]
	} else {
		c.out = nil
	}
	if c.closeAfter {
		c.closeAfter = false
		if c.werr == nil {
			c.werr = errClosedAfterReply
			c.broken.Store(true)
			c.closeConn()
		}
	}
	return true
}

// tryWrite writes what the socket takes of b without waiting for room; n < len(b)
// with a nil error means the socket is full.
func (c *client) tryWrite(st *poolState, b []byte) (n int, err error) {
	c.armWrite(st) // a deadline passed while idle would fail the write
	if c.wrFn == nil {
		c.wrFn = c.writeFd
	}
	c.wrB, c.wrN, c.wrErr = b, 0, nil
	err = c.rc.Write(c.wrFn)
	if err == nil {
		err = c.wrErr
	}
	n = c.wrN
	c.wrB, c.wrErr = nil, nil
	return n, err
}

// writeFd is tryWrite's callback: it writes c.wrB[c.wrN:] until it is written or the
// socket is full, without waiting.
func (c *client) writeFd(fd uintptr) bool {
	b := c.wrB
	for c.wrN < len(b) {
		// A raw system call: the socket is non-blocking, so the write cannot
		// block, and the runtime need not hand this thread's processor to another
		// thread meanwhile (as it does for a system call that lasts, which costs
		// a thread wake-up and sleep per reply).
		m, e := sysio.Write(fd, b[c.wrN:])
		if e == 0 && m > 0 {
			c.wrN += m
		}
		switch {
		case e == syscall.EINTR:
		case e == syscall.EAGAIN:
			return true
		case e != 0:
			c.wrErr = os.NewSyscallError("write", e)
			return true
		case m <= 0:
			c.wrErr = io.ErrShortWrite
			return true
		}
	}
	return true
}

// pop removes the answered head request req, releases its fragments and keeps it for
// reuse; it wakes a reader waiting for room.
func (c *client) pop(req *Request) {
	keep := c.kept.Load() < maxKeptReplies
	var kept int64
	for _, f := range req.Frags {
		f.release(keep)
		kept += int64(cap(f.reply))
	}
	c.mu.Lock()
	c.head = req.next
	if c.head == nil {
		c.tail = nil
	}
	c.pending--
	c.pendingBytes -= req.bytes
	req.next = nil
	if c.nfree < maxBatch && (c.pending > 0 || !c.parked) { // a parked client keeps none (park.go)
		req.next = c.free
		c.free = req
		c.nfree++
	} else {
		kept = 0
	}
	c.mu.Unlock()
	if kept > 0 {
		c.kept.Add(kept)
	}
	if n := c.meter.seen.Load(); n > seenDecay {
		b := c.meter.seenBytes.Load()
		c.pool.replyMean.Store(b / n)
		c.meter.seen.Add(-n / 2)
		c.meter.seenBytes.Add(-b / 2)
	}
	if c.waiting.Load() {
		select {
		case c.room <- struct{}{}:
		default:
		}
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
		c.lastActive.Store(now.UnixNano())
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
