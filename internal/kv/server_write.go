package kv

import (
	"errors"
	"net"
	"os"
	"runtime"
	"time"
)

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
	var rw *rawWriter
	if rc := rawConnOf(nc); rc != nil {
		rw = newRawWriter(rc)
	}

	var err error
	readerDone := false
	var wdl time.Time // the write deadline in force
	drain := s.drain  // nil once seen closed
loop:
	for {
		if f != nil {
			c.settle()
			now := time.Now()
			buf, batch := c.wbuf[:0], c.batch[:0]
			var taken, takenBytes int64 // taken from the queue by this loop
			for f != nil {
				if !c.expire(f, now) {
					buf = append(buf, f.Payload...)
					batch = append(batch, f)
				}
				f = nil
				if len(buf) >= maxWriteBatch {
					break
				}
				select {
				case f = <-c.queue:
					taken++
					takenBytes += int64(len(f.Payload))
				default:
				}
			}
			if taken > 0 {
				s.stats.inQueue.Add(-taken)
				s.stats.inQueueBytes.Add(-takenBytes)
			}
			c.push(batch, now)
			clear(batch)
			c.batch = batch[:0]
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
			var werr error
			if rw != nil {
				werr = rw.writeAll(buf)
			} else {
				_, werr = nc.Write(buf)
			}
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
