package pgpool

// Protocol-level prepared statements in transaction mode.
//
// A client's named statements are its own: pgpool records each named Parse per client
// and prepares it on whichever server connection serves the client, under a
// server-side name derived from the query text and parameter types ("pgpool_" and a
// hash), so every client preparing the same statement shares one prepare per server
// connection. Bind, Describe and Close are rewritten to the server-side name; a
// statement the server connection lacks is prepared first, its ParseComplete dropped.
// Each server connection keeps an LRU of the names it has prepared, bounded by
// max_prepared_statements; an evicted statement is closed on the server.
//
// Because pgpool sends some messages the client did not send and answers some the
// server never sees, it records in the binding's queue (c.inflight, syncqueue.go)
// every response group it expects (respqueue.go) and matches the server's replies
// against it. This bookkeeping starts at a client's first Parse; until then the same
// queue holds only the requests answered by ReadyForQuery, so clients of the simple
// protocol pay nothing for it.
//
// The unnamed statement is the client's own too: pgpool keeps the client's last
// unnamed Parse (up to maxUnnamedCopy; a longer one pins the client instead) and, per
// server connection, whose unnamed statement it holds, and sends that Parse again
// before a Bind or Describe of the unnamed statement on a connection that holds
// another's. The statements themselves are part of the client's session (statements,
// session_stmts.go), whose methods decide; the code here sends and tracks.
//
// Server-side names include a schema epoch (Pooler.stmtEpoch), raised at schema
// changes pgpool sees, so a fresh Parse after one is analysed against the new schema.

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/poolsuite/poolsuite/protocol/postgres"
	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

// serverStmtPrefix starts every server-side statement name pgpool chooses.
const serverStmtPrefix = "pgpool_"

// SQLSTATE codes of prepared-statement errors pgpool reports itself.
const (
	CodeDuplicatePreparedStatement = "42P05"
	CodeInFailedTransaction        = "25P02"
	CodeInvalidStatementName       = "26000"
)

// serverStmtName returns the server-side name of a statement: a hash of the Parse
// body after the name (query text and parameter types) and of the schema epoch it is
// prepared in (see Pooler.stmtEpoch): after a schema change a fresh Parse gets a new
// server-side statement, analysed against today's schema.
func serverStmtName(rest []byte, epoch uint64) string {
	h := sha256.New()
	h.Write(rest)
	if epoch > 0 {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], epoch)
		h.Write(b[:])
	}
	var sum [sha256.Size]byte
	return serverStmtPrefix + hex.EncodeToString(h.Sum(sum[:0])[:16])
}

// prepState is the response tracking a client's statements need (the statements
// themselves are part of the client's session: session.stmts, session_stmts.go; the
// groups expected are in the binding's one queue, c.inflight).
type prepState struct {
	max int // max_prepared_statements when the client logged in (see bound)

	tracking  atomic.Bool // responses are tracked; set by the client's goroutine
	unflushed atomic.Bool // a synthetic answer waits in the client's write buffer

	// Owned by the client's goroutine.
	off        bool   // the client was pinned instead; its statements pass through
	dropToSync bool   // after an error pgpool reported itself, drop messages until Sync
	scratch    []byte // for rewritten messages

	// Guarded by the client's mu.
	skipping bool // PostgreSQL skips to the next Sync; groups sent meanwhile are void
	waiting  bool
	room     *sync.Cond
}

// initPrepared turns statement tracking on for a client in transaction or statement
// mode when max_prepared_statements is above zero.
func (c *client) initPrepared() {
	max := c.pl.settings().MaxPreparedStatements
	if c.prep != nil || max <= 0 || c.cfg == nil || c.cfg.mode == PoolSession {
		return
	}
	c.prep = &prepState{max: max}
	c.prep.room = sync.NewCond(&c.mu)
	c.mu.Lock()
	c.sess.stmts.init()
	c.mu.Unlock()
}

// resetBinding undoes, before the binding's queue (c.inflight) is reset, what the
// client recorded for requests to s that will never be answered (s nil: a binding
// that begins, nothing to undo). Call with c.mu held.
func (p *prepState) resetBinding(c *client, s *server) {
	q := &c.inflight
	for i := len(q.buf) - 1; s != nil && i >= q.head; i-- {
		p.undo(c, s, &q.buf[i])
	}
	p.skipping = false
	if p.waiting {
		p.room.Broadcast()
	}
}

// prepIntercept runs before a client message is forwarded. It starts tracking at the
// client's first Parse (named statements are the client's own, and so is its unnamed
// statement across Sync), drops messages after an error pgpool reported until Sync,
// and answers SQL DEALLOCATE of the client's statements. It reports whether the
// message was handled.
func (c *client) prepIntercept(typ byte, msg []byte) (bool, error) {
	p := c.prep
	if !p.tracking.Load() {
		if p.off || typ != wire.Parse || len(msg) <= wire.HeaderSize {
			return false, nil
		}
		if !c.startTracking() {
			return false, nil
		}
	}
	if p.dropToSync {
		if typ != wire.Sync {
			return true, nil
		}
		p.dropToSync = false
		return false, nil
	}
	switch typ {
	case wire.Query:
		if c.rd.Remaining() > 0 {
			return false, nil // longer than any DEALLOCATE of the client's statements
		}
		return c.sqlDeallocate(msg)
	case wire.Parse:
		return c.parseUnbound(msg), nil
	}
	return false, nil
}

// parseUnbound answers a named Parse that arrives while the client has no server
// connection, when PostgreSQL's answer is known: the same statement (query text and
// parameter types) was prepared on a server connection of the pool since the last
// schema change pgpool saw (ParseComplete), or the name is in use (42P05). The
// statement is then prepared on the server connection where a Bind or Describe first
// needs it. Taking a server connection for such a Parse would make a client that
// prepares synchronously (libpq's PQprepare, as pgbench -M prepared does) wait for a
// connection that another client of the same thread holds in a transaction. Any
// other Parse goes to a server connection, so an error in the statement reaches the
// client as PostgreSQL's answer to the Parse. It reports whether msg was handled.
func (c *client) parseUnbound(msg []byte) bool {
	p := c.prep
	name, rest, ok := postgres.CString(wire.Body(msg))
	if !ok || len(name) == 0 {
		return false
	}
	c.mu.Lock()
	if c.server != nil || c.stream == streamDiscard || c.aborted {
		c.mu.Unlock()
		return false
	}
	dup := c.sess.stmts.get(name) != nil
	if !dup {
		srv := serverStmtName(rest, c.pl.stmtEpoch.Load())
		if !c.pool.knownStmt(srv) {
			c.mu.Unlock()
			return false
		}
		c.sess.stmts.define(name, rest, srv, c.pool.stmtGeneration(srv))
		c.pool.stats.clientParses.Add(1)
	}
	c.mu.Unlock()
	c.pool.stats.queryCount.Add(1)
	if dup {
		c.logDuplicateStmt(name)
	}
	c.wmu.Lock()
	if dup {
		c.w.Send(errDuplicateStmt(name).response())
		p.dropToSync = true
	} else {
		c.w.Send(&pgproto3.ParseComplete{})
	}
	c.wmu.Unlock()
	p.unflushed.Store(true)
	return true
}

// noteSchemaChange raises the statement epoch when a CommandComplete reports a schema
// change, so that a fresh Parse by any client is analysed against the new schema;
// the end of the client's transaction raises it again, for Parses other clients
// made before the change was committed.
func (c *client) noteSchemaChange(msg []byte) {
	if !postgres.SchemaChangeTag(wire.Body(msg)) {
		return
	}
	c.pl.stmtEpoch.Add(1)
	c.ddlPending.Store(true)
}

// logDuplicateStmt logs a Parse under a name the client has in use, in PgBouncer's
// words (PgBouncer closes the client then; pgpool answers PostgreSQL's 42P05).
func (c *client) logDuplicateStmt(name []byte) {
	c.pl.log.Error(fmt.Sprintf("prepared statement '%s' was already prepared", name), c.logConn())
}

// errDuplicateStmt is PostgreSQL's error for a Parse under a name in use.
func errDuplicateStmt(name []byte) *Error {
	return errorf(CodeDuplicatePreparedStatement, "prepared statement \"%s\" already exists", name)
}

// startTracking begins response tracking. With requests in flight, the batches already
// synced are passed through as they are (their groups in c.inflight end with
// ReadyForQuery, and everything up to it goes to the client); a pipeline that started with untracked
// extended-protocol messages and has not reached Sync cannot be matched, so the
// client is pinned to its server connection and its statements pass through unchanged.
// It reports whether tracking began.
func (c *client) startTracking() bool {
	p := c.prep
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.server != nil && c.stream.unsynced() {
		p.off = true
		c.countPin(c.sess.pin(pinPipeline))
		c.pl.log.Info("client pinned: named statement inside an untracked pipeline", "client", c.id, "user", c.user, "database", c.database)
		return false
	}
	p.tracking.Store(true)
	return true
}

// sqlDeallocate answers DEALLOCATE name and DEALLOCATE ALL for the client's own
// statements in a simple Query. Other statements (SQL-level PREPARE) are left to the
// server.
func (c *client) sqlDeallocate(msg []byte) (bool, error) {
	body := wire.Body(msg)
	if len(body) == 0 || (body[0]|0x20) != 'd' && body[0] != ' ' && body[0] != '\t' && body[0] != '\n' {
		return false, nil
	}
	name, all, ok := postgres.ParseDeallocate(strings.TrimSuffix(string(body), "\x00"))
	if !ok {
		return false, nil
	}
	c.mu.Lock()
	if c.stream == streamDiscard || c.aborted {
		c.mu.Unlock()
		return false, nil // forward drops it or answers it as PostgreSQL would
	}
	removed, ok := c.sess.stmts.deallocate(name, all)
	if !ok {
		c.mu.Unlock()
		return false, nil // not one of the client's protocol-level statements
	}
	g := respGroup{kind: groupSynthDealloc, tag: "DEALLOCATE", removed: removed}
	if all {
		g.tag = "DEALLOCATE ALL"
	}
	c.pool.stats.queryCount.Add(1)
	s := c.server
	if s != nil {
		c.inflight.push(g)
		c.settle(s)
		c.mu.Unlock()
		return true, nil
	}
	c.mu.Unlock()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.w.Send(&pgproto3.CommandComplete{CommandTag: []byte(g.tag)})
	c.w.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	return true, c.w.Flush()
}

// flushSynthetic writes synthetic answers the client's goroutine left in the client's
// buffer. Only the client's goroutine calls it, before it blocks reading.
func (c *client) flushSynthetic() {
	if c.prep == nil || !c.prep.unflushed.Swap(false) {
		return
	}
	c.wmu.Lock()
	c.flushClientLocked(nil)
	c.wmu.Unlock()
}

// bound returns how many statements a server connection may hold for this client's
// Parses: today's max_prepared_statements, so a console SET or a reload applies to
// clients already connected, as in PgBouncer. Set to 0 meanwhile, it keeps the value
// the client logged in with: the client's statements are renamed and tracked for the
// whole session, so they still need a bounded cache.
func (p *prepState) bound(cfg *Config) int {
	if cfg != nil && cfg.MaxPreparedStatements > 0 {
		return cfg.MaxPreparedStatements
	}
	return p.max
}
