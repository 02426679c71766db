package pgpool

import (
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/poolsuite/poolsuite/protocol/postgres"
	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

// isSyncPoint reports whether a client message is answered by its own ReadyForQuery.
func isSyncPoint(typ byte) bool {
	return typ == wire.Query || typ == wire.Sync || typ == wire.FunctionCall
}

// forward sends one client message to the bound server connection, binding one first
// if needed. A message longer than the read buffer arrives as its first part (the
// reader has the rest): that part goes through the same path, then the rest is
// streamed.
func (c *client) forward(typ byte, msg []byte) error {
	partial := c.rd.Remaining() > 0
	if c.prep != nil {
		if done, err := c.prepIntercept(typ, msg); done {
			return err
		}
	}
	c.mu.Lock()
	if c.isClosing() {
		c.mu.Unlock()
		return errFastClosed // server_fast_close ended the session (fastclose.go)
	}
	if c.stream == streamDiscard {
		if typ == wire.Sync {
			c.discardSynced()
			status := byte('I')
			if c.aborted {
				status = 'E'
			}
			c.mu.Unlock()
			c.wmu.Lock()
			c.w.Send(&pgproto3.ReadyForQuery{TxStatus: status})
			err := c.w.Flush()
			c.wmu.Unlock()
			return err
		}
		c.mu.Unlock()
		return nil
	}
	if c.aborted {
		c.mu.Unlock()
		return c.abortedTx(typ, msg)
	}
	c.waitPinCheck()
	s := c.server
	if s == nil {
		c.mu.Unlock()
		switch typ {
		case wire.CopyData, wire.CopyDone, wire.CopyFail:
			return nil // PostgreSQL drops these outside COPY too
		case wire.Flush:
			return nil // nothing is outstanding
		case wire.Sync:
			// Nothing is outstanding: answer without taking a server connection.
			c.wmu.Lock()
			c.w.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
			err := c.w.Flush()
			c.wmu.Unlock()
			return err
		}
		var err error
		if s, err = c.bind(); err != nil {
			return c.bindFailed(typ, err)
		}
		c.mu.Lock()
		if c.server != s {
			// The connection ended as it was bound, and the client was told: start over.
			c.mu.Unlock()
			return c.forward(typ, msg)
		}
	}
	tracked := c.prep != nil && c.prep.tracking.Load()
	if tracked || isSyncPoint(typ) && c.inflight.len() >= c.pl.inflightMax {
		if tracked {
			c.waitRoom(s)
		} else {
			c.waitRoomUntracked(s)
		}
		if c.server != s {
			// The server connection went while the client waited: start over.
			c.mu.Unlock()
			return c.forward(typ, msg)
		}
	}
	if typ == wire.Query || typ == wire.Parse {
		var unfollowed bool
		if partial {
			unfollowed = postgres.StartsSet(msg) // a SET pgpool cannot read whole cannot be followed
		} else {
			unfollowed = c.noteSet(s, typ, msg)
		}
		c.notePinning(typ, msg, unfollowed, partial)
	}

	ignored := false
	switch {
	case isSyncPoint(typ):
		if typ == wire.Sync && c.stream.inCopy() {
			ignored = true
			break // PostgreSQL ignores Sync during COPY FROM STDIN
		}
		if c.inflight.requests() == 0 {
			c.queryAt = time.Now()
		}
		if !tracked {
			c.inflight.pushRequest(typ) // a tracked client's is pushed by sendTracked
		}
		c.sentSyncPoint()
	case typ == wire.CopyDone || typ == wire.CopyFail:
		c.sentCopyEnd()
	case typ == wire.CopyData:
	default:
		c.sentBatchMsg()
	}
	if partial {
		c.longIn = longInStreaming
	}
	if tracked {
		c.sendTracked(s, typ, msg, ignored)
	}
	c.mu.Unlock()
	if typ == wire.Query || typ == wire.Parse {
		c.pool.stats.queryCount.Add(1)
		c.armQueryTimeout()
	}
	if !tracked {
		if typ == wire.Parse || typ == wire.Query || typ == wire.Close {
			s.unnamed = unnamedHolder{} // the unnamed statement may have changed, untracked
		}
		s.w.Raw(msg)
	}
	c.out = s
	if partial {
		return c.streamRest(s)
	}
	if s.w.Buffered() >= 32<<10 {
		return c.flushServer()
	}
	return nil
}

// streamRest sends the rest of a message too long to buffer to s as it arrives, one
// read buffer at a time, written through without copying: the message costs pgpool
// its read buffer whatever its length. The binding stays while it runs (longIn).
func (c *client) streamRest(s *server) error {
	c.flushServer() // the first part; a failed write closed s, and its reader reports
	timeout := c.pl.settings().WriteTimeout
	var err error
	for c.rd.Remaining() > 0 {
		var part []byte
		if part, err = c.rd.More(); err != nil {
			// The server has part of a message: its connection cannot be used again.
			s.close()
			break
		}
		if !s.closed.Load() && s.writeThrough(part, timeout) == nil {
			c.pool.stats.received.Add(int64(len(part)))
		}
	}
	c.endStream(s)
	if err != nil {
		return c.readError(err)
	}
	return nil
}

// endStream ends longIn, and gives the server connection back if its release came
// due while the message was being streamed.
func (c *client) endStream(s *server) {
	c.mu.Lock()
	release := c.longIn.ended() && c.server == s && c.releasable(byte(s.txStatus.Load()))
	if release {
		c.server = nil
		s.owner.Store(nil)
		c.unboundIdle()
	}
	c.mu.Unlock()
	if release {
		c.released(s)
	}
}

// bind takes a server connection from the pool and makes this client its owner.
func (c *client) bind() (*server, error) {
	g := c.pl.settings()
	deadline, reason := waitDeadline(g)
	c.startWait()
	c.waitStart.Store(time.Now().UnixNano())
	s, err := c.pool.acquire(c, deadline)
	c.waitStart.Store(0)
	if err != nil {
		c.unboundIdle()
		if errors.Is(err, ErrQueryWaitTimeout) {
			return nil, waitError(err, reason)
		}
		return nil, err
	}
	if q := c.syncQuery(s); q != "" {
		s.setState(serverUsed)
		if err := s.exec(q, g.ServerConnectTimeout); err != nil {
			c.unboundIdle()
			var se *ServerError
			if errors.As(err, &se) {
				// A value the server refuses (it accepted it at login, so rarely seen).
				c.pool.release(s)
				return nil, err
			}
			s.close()
			return nil, err
		}
		c.syncedSets(s)
		s.setState(serverActive)
	}
	if h := c.pl.hooks.Load(); h != nil && h.acquired != nil {
		h.acquired(c, s)
	}
	c.bound()
	c.mu.Lock()
	c.server = s
	c.boundAt = time.Now()
	c.xactAt = time.Time{}
	c.gotFatal = false
	c.inflight.reset()
	c.streamBound()
	if c.prep != nil {
		c.prep.resetBinding(c, nil)
	}
	c.mu.Unlock()
	// c.server is set first, so that a reader that ends the connection from here on
	// finds the client to tell (serverGone). One that ended it after the pool handed
	// it out, before the client owned it, told nobody: then the client takes another
	// connection instead of writing to a dead one whose reader is gone.
	if !c.own(s) {
		c.mu.Lock()
		if c.server == s {
			c.server = nil
			c.unboundIdle()
		}
		c.mu.Unlock()
		return c.bind()
	}
	return s, nil
}

// bindFailed tells the client why no server connection could be had. Inside an
// extended-protocol batch the rest of the batch is dropped until Sync, as PostgreSQL
// does after an error.
func (c *client) bindFailed(typ byte, err error) error {
	c.pl.log.Info("no server connection for client", "client", c.id, "user", c.user, "database", c.database, "err", err)
	var ce *Error
	if errors.Is(err, ErrQueryWaitTimeout) {
		err = queryWaitTimeoutError(err)
	} else if errors.Is(err, ErrPoolClosed) {
		err = fatalf(CodeAdminShutdown, "database removed or closed")
	} else if errors.Is(err, ErrPaused) {
		err = fatalf(CodeCannotConnectNow, "pool is paused")
	}
	if errors.As(err, &ce) && ce.Fatal() {
		c.sendError(err)
		return err
	}
	var se *ServerError
	if errors.As(err, &se) && se.Response.Severity == "FATAL" {
		c.sendError(err)
		return err
	}
	switch typ {
	case wire.Query, wire.FunctionCall:
		return c.sendErrorReady(err, 'I')
	default:
		c.mu.Lock()
		c.streamBindFailed()
		c.mu.Unlock()
		return c.sendError(err)
	}
}

// armQueryTimeout starts query_timeout for the request just sent.
func (c *client) armQueryTimeout() {
	d := c.pl.settings().QueryTimeout
	if d <= 0 {
		return
	}
	if c.queryTimer == nil {
		c.queryTimer = time.AfterFunc(d, c.queryTimedOut)
		return
	}
	c.queryTimer.Reset(d)
}

// queryTimedOut closes a client whose request has run longer than query_timeout, and
// the server connection running it, as PgBouncer does.
func (c *client) queryTimedOut() {
	d := c.pl.settings().QueryTimeout
	c.mu.Lock()
	s := c.server
	busy := s != nil && c.inflight.requests() > 0
	since := time.Since(c.queryAt)
	c.mu.Unlock()
	if !busy || since < d {
		if busy {
			c.queryTimer.Reset(d - since)
		}
		return
	}
	c.pl.log.Warn("query timeout", "client", c.id, "user", c.user, "database", c.database)
	if c.streamOut.Load() {
		// A long row is being written to the client: no error can go in the middle
		// of it, and closing both ends the write.
		s.close()
		c.close()
		return
	}
	c.wmu.Lock()
	c.w.Send(fatalf(CodeQueryCanceled, "query timeout").response())
	c.conn.SetWriteDeadline(time.Now().Add(time.Second))
	c.w.Flush()
	c.wmu.Unlock()
	s.close()
	c.close()
}
