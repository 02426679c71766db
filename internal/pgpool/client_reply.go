package pgpool

import (
	"errors"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/poolsuite/poolsuite/protocol/postgres"
	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

// serverMessage forwards a server message to the client (called by the server's reader).
func (c *client) serverMessage(s *server, typ byte, msg []byte) {
	if c.prep != nil && c.prep.tracking.Load() && c.trackedMessage(s, typ, msg) {
		return
	}
	if typ == wire.ErrorResponse {
		msg = c.serverError(msg)
	}
	c.wmu.Lock()
	c.w.Raw(msg)
	if c.w.Buffered() >= 32<<10 {
		c.flushClientLocked(s)
	}
	c.wmu.Unlock()
	switch typ {
	case wire.ReadyForQuery:
		c.ready(s, msg[wire.HeaderSize], false)
	case wire.ParameterStatus:
		c.recordParam(msg)
	case wire.CommandComplete:
		c.confirmSet(s, msg)
		c.noteSchemaChange(msg)
		if c.prep != nil && postgres.DropsAllStatements(msg) {
			s.stmts.clearBefore(^uint64(0)) // an untracked DISCARD ALL or DEALLOCATE ALL
		}
	case wire.CopyInResponse:
		c.mu.Lock()
		c.copyInStarted()
		c.copyStarted()
		c.mu.Unlock()
	}
}

// serverStream passes a server message too long to buffer (a large row, COPY data,
// a function result) to the client: its first part, then the rest as it arrives,
// written through without copying. wmu is held until the message is whole, so
// nothing else lands inside it. Called by the server's reader; an error is the
// server's, and the client, which has part of a message, is closed.
func (c *client) serverStream(s *server, head []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.streamOut.Store(true)
	defer c.streamOut.Store(false)
	timeout := c.pl.settings().WriteTimeout
	ok := c.writeThroughLocked(head, timeout)
	for s.rd.Remaining() > 0 {
		part, err := s.rd.More()
		if err != nil {
			c.close()
			return err
		}
		if ok {
			ok = c.writeThroughLocked(part, timeout)
		}
	}
	return nil
}

// writeThroughLocked writes what is buffered for the client and then p; a failed
// write closes the client. Call with wmu held.
func (c *client) writeThroughLocked(p []byte, timeout time.Duration) bool {
	n := c.w.Buffered() + len(p)
	c.wdl.arm(c.conn, timeout)
	if err := c.w.WriteThrough(p); err != nil {
		c.close()
		return false
	}
	c.pool.stats.sent.Add(int64(n))
	return true
}

func (c *client) flushClientLocked(s *server) {
	n := c.w.Buffered()
	c.wdl.arm(c.conn, c.pl.settings().WriteTimeout)
	if err := c.w.Flush(); err != nil {
		// The client is gone or stopped reading: close it; its goroutine notices the
		// closed socket and gives up its server connection.
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.pl.log.Warn("client stopped reading; closing it", "client", c.id, "user", c.user, "database", c.database, "write_timeout", c.pl.settings().WriteTimeout)
		}
		c.close()
		return
	}
	c.pool.stats.sent.Add(int64(n))
}

// serverFlush writes buffered replies to the client.
func (c *client) serverFlush(s *server) {
	c.wmu.Lock()
	c.flushClientLocked(s)
	c.wmu.Unlock()
}

// ready handles a ReadyForQuery: one request fewer in flight (popped already when
// tracked: answer matched it), and the server connection goes back to the pool when
// the transaction is over and nothing is outstanding.
func (c *client) ready(s *server, status byte, tracked bool) {
	c.mu.Lock()
	if !tracked {
		c.inflight.drop()
		c.roomFreed()
	}
	now := time.Now()
	if c.inflight.requests() == 0 {
		c.sess.unconfirmed() // those not confirmed by now failed
		c.setsWaiting.Store(0)
		if c.queryTimer != nil {
			c.queryTimer.Stop()
		}
		if !c.queryAt.IsZero() {
			d := now.Sub(c.queryAt)
			c.pool.stats.queryTime.Add(d.Microseconds())
			c.pool.stats.queryHist.observe(d)
			c.queryAt = time.Time{}
		}
	}
	if c.xactAt.IsZero() {
		c.xactAt = c.boundAt
	}
	if status == 'I' {
		if c.ddlPending.Swap(false) {
			c.pl.stmtEpoch.Add(1) // the schema change is committed (or rolled back)
		}
		c.pool.stats.xactCount.Add(1)
		if !c.xactAt.IsZero() {
			d := now.Sub(c.xactAt)
			c.pool.stats.xactTime.Add(d.Microseconds())
			c.pool.stats.xactHist.observe(d)
		}
		c.xactAt = time.Time{}
		c.boundAt = now // a transaction that follows on the same connection starts here
	}
	if c.cfg.mode == PoolStatement && status != 'I' {
		c.mu.Unlock()
		c.serverFlush(s)
		err := fatalf(CodeFeatureNotSupported, "transaction blocks not allowed in statement pooling mode")
		c.sendError(err)
		s.close()
		c.close()
		return
	}
	release := c.releasable(status)
	if release && c.longIn.releaseDue() {
		release = false // once the message being streamed to the server has gone
	}
	if release {
		c.server = nil
		s.owner.Store(nil)
		c.unboundIdle()
	}
	check := !release && c.startPinCheck(status)
	if c.inflight.requests() == 0 && !c.isClosing() {
		// The client's read was armed while a request was in flight (no deadline):
		// start client_idle_timeout or idle_transaction_timeout now.
		c.setReadDeadlineLocked()
	}
	c.mu.Unlock()
	if check {
		// The session may hold no pinning state any more: ask now, from another
		// goroutine (this one must read the answer), rather than keep the connection
		// until the client's next request.
		c.serverFlush(s)
		c.pool.bg.Add(1)
		go c.checkPins(s)
		return
	}
	if release {
		c.released(s)
	}
}

// releasable reports whether the server connection may go back to the pool after a
// ReadyForQuery with status. Call with c.mu held.
func (c *client) releasable(status byte) bool {
	return c.inflight.requests() == 0 && !c.stream.unsynced() && status == 'I' &&
		c.cfg.mode != PoolSession && c.sess.pins == 0 && !c.isClosing()
}

// released gives back a server connection the client has just let go of (c.server
// and the owner already cleared, and the client moved to idle, all under c.mu: once
// c.mu is released the client may bind again, and must not be taken back to idle).
func (c *client) released(s *server) {
	c.serverFlush(s)
	if reset, timeout := c.pool.releaseAfterTransaction(s); reset != "" {
		// server_reset_query_always: reset before anyone else gets it. This runs on
		// the server's reader goroutine (or the client's), so the query runs from
		// another one, which ends within the timeout.
		s.setState(serverUsed)
		c.pool.bg.Add(1)
		go func() {
			defer c.pool.bg.Done()
			if err := s.exec(reset, timeout); err != nil {
				s.close()
				return
			}
			c.pool.release(s)
		}()
	}
}

// copyStarted handles COPY FROM STDIN started by an extended-protocol Execute (libpq's
// PQexecParams does this): PostgreSQL ignores every Sync that reaches it during COPY, so
// the Syncs the client sent with that batch, already counted, will get no
// ReadyForQuery; only the Sync after CopyDone or CopyFail will. Call with c.mu held.
func (c *client) copyStarted() {
	if g := c.inflight.firstRequest(); g == nil || g.kind != groupSync {
		return // a simple Query's COPY: its ReadyForQuery comes when COPY ends
	}
	c.inflight.dropSyncs()
}

// serverError passes a server's ErrorResponse on. A FATAL one ends the server
// connection, not the client's session with pgpool: it reaches the client as an ERROR
// (same SQLSTATE and text), so the client can go on with a new server connection.
func (c *client) serverError(msg []byte) []byte {
	var er pgproto3.ErrorResponse
	if er.Decode(wire.Body(msg)) != nil || (er.Severity != "FATAL" && er.Severity != "PANIC") {
		return msg
	}
	er.Severity, er.SeverityUnlocalized = "ERROR", "ERROR"
	out, err := er.Encode(nil)
	if err != nil {
		return msg
	}
	c.mu.Lock()
	c.gotFatal = true
	c.mu.Unlock()
	return out
}

// serverGone tells the client its server connection died: every request in flight gets
// an error, never a silent replay elsewhere; the client may go on with a new one.
func (c *client) serverGone(s *server, err error) {
	c.mu.Lock()
	if c.server != s {
		c.mu.Unlock()
		return
	}
	n := c.inflight.requests()
	if c.prep != nil {
		c.prep.resetBinding(c, s)
	}
	c.inflight.reset()
	c.roomFreed()
	inTx := !s.txIdle()
	if inTx {
		c.aborted = true
	}
	reported := c.gotFatal
	c.gotFatal = false
	c.streamLost()
	c.server = nil
	c.countPin(c.sess.serverLost()) // the state that pinned it died with the session
	c.unboundIdle()                 // after countPin, which moves a pinned client to active
	if c.queryTimer != nil {
		c.queryTimer.Stop()
	}
	closing := c.isClosing()
	var told chan struct{}
	if !closing && c.checking == nil {
		// The client's next message waits until the error is written, so that it does
		// not run on a new connection with its answer ahead of the error.
		told = make(chan struct{})
		c.checking = told
	}
	c.mu.Unlock()
	if closing {
		return
	}
	c.pl.log.Warn("server connection lost while in use", "client", c.id, "server", s.String(), "err", err)
	e := errorf(CodeConnectionFailure, "server connection lost: %v", err)
	if s.closeErr == nil {
		e = errorf(CodeConnectionFailure, "server connection closed")
	}
	c.wmu.Lock()
	if n == 0 && !reported {
		c.w.Send(e.response())
	}
	status := byte('I')
	if inTx {
		status = 'E' // the transaction is lost; the client must end it
	}
	for i := 0; i < n; i++ {
		if i > 0 || !reported {
			c.w.Send(e.response())
		}
		c.w.Send(&pgproto3.ReadyForQuery{TxStatus: status})
	}
	c.flushClientLocked(s)
	c.wmu.Unlock()
	if told != nil {
		c.mu.Lock()
		c.checking = nil
		close(told)
		c.mu.Unlock()
	}
}
