package pgpool

import (
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/poolsuite/poolsuite/protocol/postgres"
	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

// groupKind says which client request a group of server responses answers, and what
// pgpool does with it.
type groupKind uint8

const (
	// Forwarded: the server answers and the reply goes to the client.
	groupParse    groupKind = iota // ParseComplete
	groupBind                      // BindComplete
	groupDescribe                  // [ParameterDescription] RowDescription | NoData
	groupExecute                   // ... CommandComplete | EmptyQueryResponse | PortalSuspended
	groupClose                     // CloseComplete
	groupSync                      // ReadyForQuery
	groupQuery                     // Query or FunctionCall: ... ReadyForQuery

	// Internal: the server answers, the reply is dropped.
	groupParseInternal // ParseComplete of a statement pgpool prepared itself
	groupCloseInternal // CloseComplete of a statement pgpool closed itself

	// Synthetic: the server is not asked; pgpool answers in the server's place.
	groupSynthParse   // ParseComplete: the server already has the statement
	groupSynthClose   // CloseComplete: the client forgot one of its statements
	groupSynthError   // ErrorResponse: a client error pgpool detects itself
	groupSynthDealloc // CommandComplete and ReadyForQuery of a SQL DEALLOCATE
)

// synthetic reports whether pgpool answers the group itself.
func (k groupKind) synthetic() bool { return k >= groupSynthParse }

// dropped reports whether the server's answer is kept from the client.
func (k groupKind) dropped() bool { return k == groupParseInternal || k == groupCloseInternal }

// syncLike reports whether the group ends with ReadyForQuery, so that PostgreSQL's
// skipping after an extended-protocol error ends there.
func (k groupKind) syncLike() bool { return k == groupSync || k == groupQuery }

// terminal reports whether a server message of type typ completes a group of kind k.
func (k groupKind) terminal(typ byte) bool {
	switch k {
	case groupParse, groupParseInternal:
		return typ == wire.ParseComplete
	case groupBind:
		return typ == wire.BindComplete
	case groupDescribe:
		return typ == wire.RowDescription || typ == wire.NoData
	case groupExecute:
		return typ == wire.CommandComplete || typ == wire.EmptyQueryResponse || typ == wire.PortalSuspended
	case groupClose, groupCloseInternal:
		return typ == wire.CloseComplete
	case groupSync, groupQuery:
		return typ == wire.ReadyForQuery
	}
	return false
}

// respGroup is one expected group of responses.
type respGroup struct {
	kind  groupKind
	srv   string        // server-side statement name (Parse, Bind, Describe, Close)
	stale bool          // groupCloseInternal: the closed statement was stale
	stmt  *preparedStmt // the client's statement (Parse, synthetic Parse and Close)
	err   *pgproto3.ErrorResponse
	// removed: the statements a groupSynthDealloc forgot, restored if PostgreSQL
	// would have refused the DEALLOCATE (failed transaction).
	removed []*preparedStmt
	tag     string // groupSynthDealloc: the CommandComplete tag
	seq     uint64 // the client's statement sequence when the group was sent
	sseq    uint64 // the server cache's sequence when the group was sent

	// unnamed: the request changed the unnamed statements, as uc says (undone if
	// PostgreSQL skips the request).
	unnamed bool
	uc      unnamedChange
}

// maxQueuedGroups bounds the responses a tracked client may have outstanding on one
// server connection; beyond it the client's goroutine waits for the server to catch
// up.
const maxQueuedGroups = 1 << 16

// trackedMessage handles a server message for a client whose responses are tracked.
// It returns false for messages that never complete a group (rows, copy data, notices,
// parameter status); those take the ordinary path.
func (c *client) trackedMessage(s *server, typ byte, msg []byte) bool {
	switch typ {
	case wire.ParseComplete, wire.BindComplete, wire.CloseComplete, wire.NoData,
		wire.RowDescription, wire.CommandComplete, wire.EmptyQueryResponse,
		wire.PortalSuspended, wire.ErrorResponse, wire.ReadyForQuery:
	default:
		return false
	}
	if typ == wire.ErrorResponse {
		msg = c.serverError(msg)
	}
	c.mu.Lock()
	forward := c.prep.answer(c, s, typ, msg)
	full := false
	if forward {
		c.wmu.Lock()
		c.w.Raw(msg)
		full = c.w.Buffered() >= 32<<10
		c.wmu.Unlock()
	}
	c.settle(s)
	c.mu.Unlock()
	// The socket write happens outside c.mu: a client that stops reading must not hold
	// up SHOW CLIENTS, cancel or Shutdown, which take c.mu.
	if full {
		c.serverFlush(s)
	}
	switch typ {
	case wire.ReadyForQuery:
		c.ready(s, msg[wire.HeaderSize], true)
	case wire.CommandComplete:
		c.confirmSet(s, msg)
	}
	return true
}

// answer matches a server message against the oldest expected group: it pops the
// group when the message completes it, undoes what PostgreSQL skipped after an error,
// and reports whether the client sees the message. Call with c.mu held.
func (p *prepState) answer(c *client, s *server, typ byte, msg []byte) bool {
	q := &c.inflight
	g := q.peek()
	if typ == wire.CommandComplete {
		p.commandTag(c, s, msg)
	}
	if g == nil {
		return true
	}
	switch typ {
	case wire.ErrorResponse:
		if g.kind.syncLike() {
			return true // inside a Query, or Sync's own error: ReadyForQuery follows
		}
		if g.srv != "" && (g.kind == groupBind || g.kind == groupDescribe) {
			switch postgres.ErrorCode(msg) {
			case CodeFeatureNotSupported:
				// "cached plan must not change result type": the shared statement is
				// stale; whoever uses it next on this connection closes and re-prepares
				// it, clients that prepared it before get the error too, and a fresh
				// Parse gets a new server-side statement.
				s.stmts.markStale(g.srv)
				c.pool.bumpStmtGeneration(g.srv)
				c.pl.stmtEpoch.Add(1)
			case CodeInternalError:
				// "cache lookup failed for type": an object the statement refers to
				// was dropped (and perhaps created again).
				s.stmts.markStale(g.srv)
				c.pl.stmtEpoch.Add(1)
			}
		}
		failed := q.pop()
		if (failed.kind == groupParse || failed.kind == groupParseInternal) && failed.srv != "" {
			c.pool.forgetStmt(failed.srv)
		}
		unnamed := failed.unnamed
		failed.unnamed = false
		p.undo(c, s, &failed)
		p.skipToSync(c, s)
		if unnamed {
			c.sess.stmts.unnamedFailed(c.id, &s.unnamed, &failed.uc)
			if failed.uc.own {
				c.countPin(c.sess.unnamedPin())
			}
		}
		return true
	case wire.ReadyForQuery:
		if g.kind.syncLike() {
			q.drop()
			p.signal(q)
		}
		return true
	}
	if g.kind.terminal(typ) {
		done := q.pop()
		if typ == wire.ParseComplete && done.srv != "" {
			c.pool.noteStmt(done.srv)
		}
		p.signal(q)
		return !done.kind.dropped()
	}
	return !g.kind.dropped()
}

// skipToSync drops the groups PostgreSQL skips after an error in an extended-protocol
// batch, up to the Sync, undoing their effects in reverse order. If the Sync has not
// been sent yet, groups sent later are dropped as they come. Call with c.mu held.
func (p *prepState) skipToSync(c *client, s *server) {
	q := &c.inflight
	end := q.head
	for end < len(q.buf) && !q.buf[end].kind.syncLike() {
		end++
	}
	for i := end - 1; i >= q.head; i-- {
		p.undo(c, s, &q.buf[i])
	}
	for n := end - q.head; n > 0; n-- {
		q.drop()
	}
	p.skipping = q.len() == 0
	p.signal(q)
}

// undo reverts what pgpool recorded for a request that PostgreSQL failed or skipped.
// Call with c.mu held.
func (p *prepState) undo(c *client, s *server, g *respGroup) {
	if g.unnamed {
		c.undoUnnamed(s, g)
	}
	switch g.kind {
	case groupParse, groupParseInternal:
		s.stmts.remove(g.srv)
		if g.kind == groupParse {
			c.sess.stmts.forget(g.stmt)
		}
	case groupCloseInternal:
		s.stmts.restore(g.srv, g.stale)
	case groupSynthParse:
		c.sess.stmts.forget(g.stmt)
	case groupSynthClose:
		c.sess.stmts.restore(g.stmt)
	}
}

// settle answers the synthetic groups at the front of the queue, and drops the groups
// sent while PostgreSQL skips to Sync. Call with c.mu held.
func (c *client) settle(s *server) {
	p, q := c.prep, &c.inflight
	for g := q.peek(); g != nil; g = q.peek() {
		if p.skipping {
			if g.kind.syncLike() {
				p.skipping = false
				return
			}
			p.undo(c, s, g)
			q.drop()
			continue
		}
		if !g.kind.synthetic() {
			return
		}
		done := q.pop()
		c.emit(s, &done)
	}
	p.signal(q)
}

// emit writes a synthetic answer to the client. Call with c.mu held.
func (c *client) emit(s *server, g *respGroup) {
	p := c.prep
	c.wmu.Lock()
	defer c.wmu.Unlock()
	switch g.kind {
	case groupSynthParse:
		c.w.Send(&pgproto3.ParseComplete{})
	case groupSynthClose:
		c.w.Send(&pgproto3.CloseComplete{})
	case groupSynthError:
		c.w.Send(g.err)
	case groupSynthDealloc:
		status := byte(s.txStatus.Load())
		if status == 'E' {
			for _, st := range g.removed {
				c.sess.stmts.restore(st)
			}
			c.w.Send(errorf(CodeInFailedTransaction, "current transaction is aborted, commands ignored until end of transaction block").response())
		} else {
			c.w.Send(&pgproto3.CommandComplete{CommandTag: []byte(g.tag)})
		}
		c.w.Send(&pgproto3.ReadyForQuery{TxStatus: status})
	}
	p.unflushed.Store(true)
}

// commandTag watches for commands that drop every prepared statement of the server
// session (DISCARD ALL, DEALLOCATE ALL) so the server's cache and the client's
// statements follow. Call with c.mu held.
func (p *prepState) commandTag(c *client, s *server, msg []byte) {
	c.noteSchemaChange(msg)
	if !postgres.DropsAllStatements(msg) {
		return
	}
	g := c.inflight.peek()
	if g == nil {
		s.stmts.clearBefore(^uint64(0))
		c.sess.stmts.discarded(c.sess.stmts.seq)
		return
	}
	s.stmts.clearBefore(g.sseq)
	c.sess.stmts.discarded(g.seq)
}

// signal wakes a client goroutine waiting for room in its queue q. Call with c.mu
// held.
func (p *prepState) signal(q *inflightQueue) {
	if p.waiting && q.len() < maxQueuedGroups {
		p.room.Broadcast()
	}
}
