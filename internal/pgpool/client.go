package pgpool

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/poolsuite/poolsuite/protocol/postgres"
	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

// client is one connection from an application. Its goroutine reads the client's
// messages and forwards them; the bound server's reader goroutine writes replies back.
type client struct {
	pl     *Pooler
	id     uint64
	conn   net.Conn
	rd     *wire.Reader
	log    *slog.Logger
	tls    bool
	unix   bool // connected over a unix socket: served without TLS
	remote string

	pid, secret uint32 // the BackendKeyData pgpool gave this client
	user        string
	database    string
	appName     string
	params      map[string]string // startup parameters the client sent
	sess        session           // what PostgreSQL would keep for this client between transactions (guarded by mu)
	pool        *pool
	cfg         *poolConfig
	admin       bool
	ownUser     bool // admin console user "pgbouncer" from pgpool's own OS user (unix socket)

	ref  sinkRef
	out  *server    // the server whose write buffer holds this client's unflushed messages
	prep *prepState // named statements in transaction mode (prepared.go); nil: off

	// mu guards the binding: which server serves this client and what is in flight.
	mu       sync.Mutex
	server   *server
	inflight syncQueue // Query, Sync and FunctionCall sent, not yet answered by ReadyForQuery
	unsynced bool      // extended-protocol messages sent since the last Sync
	inCopy   bool      // the server is in COPY FROM STDIN
	discard  bool      // the server died mid-batch: drop messages until Sync
	gotFatal bool      // the server's FATAL error was passed on (as ERROR)
	// aborted: the server connection died inside the client's transaction. Until the
	// client ends the transaction, pgpool answers as PostgreSQL does inside a failed
	// transaction, so no statement of it runs on another connection.
	aborted bool
	abort   abortState
	pinned  bool // the client keeps its server connection (untracked named statements)
	// checking: a check of what session state still pins the client (sess.pins,
	// pinning.go) runs now (closed when done); nothing may be sent meanwhile.
	checking chan struct{}
	queryAt  time.Time // when the oldest unanswered request was sent
	boundAt  time.Time // when the server connection was bound (or the last transaction ended)
	xactAt   time.Time // when the current transaction started

	// streamIn: a message too long to buffer is being streamed to the server; the
	// binding stays until it has gone, and a release that came due meanwhile
	// (releaseDue) happens then.
	streamIn   bool
	releaseDue bool

	// wmu guards w, the buffer of messages to the client, and its write deadline.
	wmu sync.Mutex
	w   *wire.Writer
	wdl writeDeadline
	// streamOut: a server message too long to buffer is being written to the client
	// (wmu is held until it is whole).
	streamOut atomic.Bool

	state       atomic.Int32 // a clientState, changed only by its transitions (clientstate.go)
	connectedAt time.Time
	requestAt   atomic.Int64
	waitStart   atomic.Int64
	queryTimer  *time.Timer
	closeOnce   sync.Once
	// terminated: the client sent Terminate; closeReason is why it closes, for
	// log_disconnections (both owned by the client's goroutine).
	terminated  bool
	closeReason string
	ddlPending  atomic.Bool // a schema change ran in the current transaction (prepared.go)
}

// close closes the client socket; the client's goroutine then ends.
func (c *client) close() {
	c.closeOnce.Do(func() { c.conn.Close() })
}

// sendError writes an ErrorResponse to the client and flushes.
func (c *client) sendError(err error) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.w.Send(asClientError(err))
	return c.w.Flush()
}

// sendErrorReady writes an ErrorResponse followed by ReadyForQuery.
func (c *client) sendErrorReady(err error, status byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.w.Send(asClientError(err))
	c.w.Send(&pgproto3.ReadyForQuery{TxStatus: status})
	return c.w.Flush()
}

// run is the main loop after login: read, bind a server connection if needed,
// forward. It returns when the client leaves or must be closed.
func (c *client) run() error {
	c.loggedIn()
	c.initPrepared()
	for {
		if !c.rd.HasMessage() {
			if err := c.flushServer(); err != nil {
				return err
			}
			c.setReadDeadline()
		}
		typ, msg, err := c.rd.NextPart()
		if err != nil {
			return c.readError(err)
		}
		c.pl.susp.park(c.pl.done) // SUSPEND: what was read waits for RESUME
		if typ == wire.Terminate {
			c.terminated = true
			return nil
		}
		if typ == wire.Parse && c.rd.Remaining() > 0 {
			// The prepared-statement code rewrites a Parse and its text is classified:
			// it is read whole, bounded by max_packet_size. Every other message longer
			// than the read buffer is streamed (forward, streamRest).
			if msg, err = c.rd.Rest(); err != nil {
				return c.readError(err)
			}
		}
		if err := c.forward(typ, msg); err != nil {
			return err
		}
		if c.rd.Remaining() > 0 {
			// Not forwarded (dropped, or answered by pgpool): skip the rest.
			if err := c.rd.Discard(); err != nil {
				return c.readError(err)
			}
		}
	}
}

// readError turns a failed client read into what run returns.
func (c *client) readError(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.mu.Lock()
		inTx := c.server != nil && !c.server.txIdle() && c.inflight.len() == 0
		c.mu.Unlock()
		if inTx {
			e := fatalf(CodeIdleInTransactionTimout, "idle transaction timeout")
			c.sendError(e)
			return e
		}
		e := fatalf(CodeAdminShutdown, "client_idle_timeout")
		c.sendError(e)
		return e
	}
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	var tl *wire.TooLargeError
	var me *wire.MalformedError
	switch {
	case errors.As(err, &tl):
		e := fatalf(CodeProtocolViolation, "bad packet header: message of %d bytes exceeds max_packet_size (%d)", tl.Size, tl.Limit)
		c.sendError(e)
		return e
	case errors.As(err, &me):
		e := fatalf(CodeProtocolViolation, "bad packet header: %s", me.Reason)
		c.sendError(e)
		return e
	}
	return err
}

// setReadDeadline arms client_idle_timeout or idle_transaction_timeout before a read
// that may block.
func (c *client) setReadDeadline() {
	c.mu.Lock()
	c.setReadDeadlineLocked()
	c.mu.Unlock()
}

// setReadDeadlineLocked sets the read deadline for the binding state as it is now.
// Both the client's goroutine (before a read) and the server's reader (when a
// ReadyForQuery leaves nothing in flight, while the client's read is already
// blocked) call it; holding c.mu makes the last deadline set match the latest state.
// Call with c.mu held.
func (c *client) setReadDeadlineLocked() {
	g := c.pl.settings()
	var d time.Duration
	switch {
	case c.server == nil:
		d = g.ClientIdleTimeout
	case c.inflight.len() == 0 && !c.server.txIdle():
		d = g.IdleTransactionTimeout
	}
	if d > 0 {
		c.conn.SetReadDeadline(time.Now().Add(d))
	} else if g.ClientIdleTimeout > 0 || g.IdleTransactionTimeout > 0 {
		c.conn.SetReadDeadline(time.Time{})
	}
}

// flushServer writes what was buffered for the bound server. Only the client's
// goroutine calls it; c.out is set only while messages wait in the server's buffer,
// and the server cannot be released meanwhile (they are counted in pending or
// unsynced), so the buffer is still this client's to write.
func (c *client) flushServer() error {
	c.flushSynthetic()
	s := c.out
	if s == nil {
		return nil
	}
	c.out = nil
	n := s.w.Buffered()
	if err := s.flush(c.pl.settings().WriteTimeout); err != nil {
		// The server's reader sees the closed socket and reports to serverGone.
		return nil
	}
	c.pool.stats.received.Add(int64(n))
	return nil
}

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
	if c.discard {
		if typ == wire.Sync {
			c.discard = false
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
		if typ == wire.Sync && c.inCopy {
			ignored = true
			break // PostgreSQL ignores Sync during COPY FROM STDIN
		}
		c.inflight.push(typ)
		c.unsynced = false
		if c.inflight.len() == 1 {
			c.queryAt = time.Now()
		}
	case typ == wire.CopyDone || typ == wire.CopyFail:
		c.inCopy = false
	case typ == wire.CopyData:
	default:
		c.unsynced = true
	}
	if partial {
		c.streamIn = true
	}
	c.mu.Unlock()
	if typ == wire.Query || typ == wire.Parse {
		c.pool.stats.queryCount.Add(1)
		c.armQueryTimeout()
	}
	if c.prep != nil && c.prep.tracking.Load() {
		c.sendTracked(s, typ, msg, ignored)
	} else {
		if typ == wire.Parse || typ == wire.Query || typ == wire.Close {
			s.unnamedClient = 0 // the unnamed statement may have changed, untracked
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
// its read buffer whatever its length. The binding stays while it runs (streamIn).
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

// endStream ends streamIn, and gives the server connection back if its release came
// due while the message was being streamed.
func (c *client) endStream(s *server) {
	c.mu.Lock()
	c.streamIn = false
	release := c.releaseDue && c.server == s && c.releasable(byte(s.txStatus.Load()))
	c.releaseDue = false
	if release {
		c.server = nil
		s.owner.Store(nil)
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
	c.bound()
	s.owner.Store(&c.ref)
	c.mu.Lock()
	c.server = s
	c.boundAt = time.Now()
	c.xactAt = time.Time{}
	c.gotFatal = false
	c.inflight.reset()
	c.unsynced = false
	c.inCopy = false
	if c.prep != nil {
		c.prep.resetBinding(c, nil)
	}
	c.mu.Unlock()
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
		c.discard = true
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
	late := s != nil && c.inflight.len() > 0 && time.Since(c.queryAt) >= d
	c.mu.Unlock()
	if !late {
		if s != nil && c.inflight.len() > 0 {
			c.queryTimer.Reset(d - time.Since(c.queryAt))
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
		c.ready(s, msg[wire.HeaderSize])
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
		c.inCopy = true
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

// ready handles a ReadyForQuery: one request fewer in flight, and the server
// connection goes back to the pool when the transaction is over and nothing is
// outstanding.
func (c *client) ready(s *server, status byte) {
	c.mu.Lock()
	c.inflight.pop()
	if c.prep != nil && c.prep.tracking.Load() {
		c.passReady(s)
	}
	now := time.Now()
	if c.inflight.len() == 0 {
		c.sess.unconfirmed() // those not confirmed by now failed
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
	if release && c.streamIn {
		release = false
		c.releaseDue = true // once the message being streamed to the server has gone
	}
	if release {
		c.server = nil
		s.owner.Store(nil)
	}
	check := !release && c.startPinCheck(status)
	if c.inflight.len() == 0 && !c.isClosing() {
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
	return c.inflight.len() == 0 && !c.unsynced && status == 'I' &&
		c.cfg.mode != PoolSession && !c.pinned && c.sess.pins == 0 && !c.isClosing()
}

// released gives back a server connection the client has just let go of (c.server
// and the owner already cleared).
func (c *client) released(s *server) {
	c.serverFlush(s)
	c.unboundIdle()
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
	if c.inflight.front() != wire.Sync {
		return // a simple Query's COPY: its ReadyForQuery comes when COPY ends
	}
	c.inflight.dropSyncs()
	if c.prep != nil && c.prep.tracking.Load() {
		c.prep.q.dropSyncs()
	}
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
	n := c.inflight.len()
	c.inflight.reset()
	inTx := !s.txIdle()
	if inTx {
		c.aborted = true
	}
	reported := c.gotFatal
	c.gotFatal = false
	if c.unsynced {
		c.discard = true
	}
	c.unsynced = false
	c.inCopy = false
	c.server = nil
	if c.prep != nil {
		c.prep.resetBinding(c, s)
	}
	if c.queryTimer != nil {
		c.queryTimer.Stop()
	}
	closing := c.isClosing()
	c.mu.Unlock()
	if closing {
		return
	}
	c.unboundIdle()
	c.pl.log.Warn("server connection lost while in use", "client", c.id, "server", s.String(), "err", err)
	e := errorf(CodeConnectionFailure, "server connection lost: %v", err)
	if s.closeErr == nil {
		e = errorf(CodeConnectionFailure, "server connection closed")
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
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
}

// unbind is called when the client goes away: a clean server connection goes back to
// the pool (reset first where the mode asks for it); one inside a transaction is
// rolled back; one with requests in flight is closed.
func (c *client) unbind() {
	c.mu.Lock()
	c.startClosing()
	c.waitPinCheck()
	s := c.server
	c.server = nil
	clean := s != nil && c.inflight.len() == 0 && !c.unsynced && !c.inCopy
	pinned := c.pinned || c.sess.pins != 0
	if c.sess.pins != 0 {
		c.pool.stats.pinned.Add(-1)
		c.sess.pins = 0
	}
	c.mu.Unlock()
	if c.queryTimer != nil {
		c.queryTimer.Stop()
	}
	if s == nil {
		return
	}
	s.owner.Store(nil)
	if !clean || s.closed.Load() {
		s.close()
		return
	}
	s.setState(serverUsed)
	timeout := c.pl.settings().ServerConnectTimeout
	if !s.txIdle() {
		if err := s.exec("ROLLBACK", timeout); err != nil {
			s.close()
			return
		}
	}
	cfg := c.pool.config()
	reset := cfg.resetQuery
	if reset == "" && pinned {
		reset = "DISCARD ALL" // never hand a lock or a listener to the next client
	}
	if reset != "" && (cfg.mode == PoolSession || cfg.resetAlways || pinned) {
		if err := s.exec(reset, timeout); err != nil {
			s.close()
			return
		}
	}
	c.pool.release(s)
}
