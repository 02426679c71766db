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
	// setsWaiting mirrors sess.waitingSets (written with mu held), so that the server's
	// reader takes mu on a CommandComplete only when a followed change may be confirmed.
	setsWaiting atomic.Int32
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
	inflight inflightQueue // the answers expected from the server, oldest first (syncqueue.go)
	stream   streamState   // batch, COPY or discarding, changed by its transitions (clientstate.go)
	gotFatal bool          // the server's FATAL error was passed on (as ERROR)
	// aborted: the server connection died inside the client's transaction. Until the
	// client ends the transaction, pgpool answers as PostgreSQL does inside a failed
	// transaction, so no statement of it runs on another connection.
	aborted bool
	abort   abortState
	// checking: a check of what session state still pins the client (sess.pins,
	// pinning.go) runs now, or the client is being told that its server connection
	// was lost (closed when done); nothing may be sent meanwhile.
	checking chan struct{}
	queryAt  time.Time // when the oldest unanswered request was sent
	boundAt  time.Time // when the server connection was bound (or the last transaction ended)
	xactAt   time.Time // when the current transaction started

	// roomWait: the client's goroutine waits for room in an untracked client's
	// inflight (waitRoomUntracked); room is its condition on mu, made at first use.
	roomWait bool
	room     *sync.Cond

	// longIn: a message too long to buffer is being streamed to the server; the
	// binding stays until it has gone, and a release that came due meanwhile happens
	// then (clientstate.go).
	longIn longInState

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
	// hoWoken: SHOW FDS set the client's read deadline in the past to wake it at a
	// handover point (handover_show.go); a timeout without it is the client's own.
	hoWoken atomic.Bool
	// parking: the connection of an idle client waits on the Pooler's Parker
	// without a goroutine (park.go).
	parking parking
	// pendCancel: a cancel that came while bytes the client had sent were unread
	// (cancel.go); set and cleared with mu held, loaded without it by the client's
	// goroutine. readAt: the client's stream offset when it last went to read.
	pendCancel atomic.Pointer[pendingCancel]
	readAt     atomic.Int64
}

// close closes the client socket; the client's goroutine then ends (a parked client
// is woken first).
func (c *client) close() {
	c.closeOnce.Do(func() {
		c.closeKick()
		c.conn.Close()
	})
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
	c.resumeLinked() // taken over with its server connection (handover_take.go)
	c.initPrepared()
	return c.loop()
}

// loop reads and forwards until the client leaves, must be closed, or is parked
// (errParked: a goroutine the Parker starts calls loop again).
func (c *client) loop() error {
	swept := false // the idle sweep woke the read: the deadline in force stays
	for {
		if !c.rd.HasMessage() {
			if err := c.flushServer(); err != nil {
				return err
			}
			c.cancelBeforeRead()
			if c.handOver(nil) {
				return errHandedOver
			}
			if !swept {
				c.setReadDeadline()
			}
			swept = false
			if c.park() {
				return errParked
			}
		}
		idle := c.idleRead()
		start := c.rd.Consumed()
		typ, msg, err := c.rd.NextPart()
		woken := idle && c.idleReadDone(err)
		if err != nil {
			if c.handoverWoke(err) {
				continue
			}
			if c.sweepWoke(err, woken) {
				swept = true
				continue
			}
			return c.readError(err)
		}
		if idle {
			c.requestRead()
		}
		if h := c.pl.hooks.Load(); h != nil && h.afterRead != nil {
			h.afterRead(c, typ)
		}
		c.pl.susp.park(c.pl.done) // SUSPEND: what was read waits for RESUME
		if c.handOver(msg) {
			return errHandedOver
		}
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
		c.cancelAfterForward(start)
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
		inTx := c.server != nil && !c.server.txIdle() && c.inflight.requests() == 0
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
	case c.inflight.requests() == 0 && !c.server.txIdle():
		d = g.IdleTransactionTimeout
	}
	c.parking.rdl = time.Time{}
	if d > 0 {
		c.parking.rdl = time.Now().Add(d)
		c.conn.SetReadDeadline(c.parking.rdl)
	} else if g.ClientIdleTimeout > 0 || g.IdleTransactionTimeout > 0 {
		c.conn.SetReadDeadline(time.Time{})
	}
}

// flushServer writes what was buffered for the bound server. Only the client's
// goroutine calls it; c.out is set only while messages wait in the server's buffer,
// and the server cannot be released meanwhile (they are in c.inflight or in
// the batch, c.stream), so the buffer is still this client's to write.
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
