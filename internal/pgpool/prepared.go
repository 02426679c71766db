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
// server never sees, it keeps per binding a FIFO of the response groups it expects
// (respqueue.go) and matches the server's replies against it. This bookkeeping starts
// at a client's first Parse, so clients of the simple protocol pay nothing for it.
//
// The unnamed statement is the client's own too: pgpool keeps the client's last
// unnamed Parse and, per server connection, whose unnamed statement it holds, and
// sends that Parse again before a Bind or Describe of the unnamed statement on a
// connection that holds another's.
//
// Server-side names include a schema epoch (Pooler.stmtEpoch), raised at schema
// changes pgpool sees, so a fresh Parse after one is analysed against the new schema.

import (
	"container/list"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
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

// preparedStmt is one of a client's named statements.
type preparedStmt struct {
	name  string // the client's name
	srv   string // the server-side name
	parse []byte // the Parse message under srv, ready to send
	seq   uint64 // order of definition, for DISCARD ALL seen later
	gen   uint64 // the pool's generation of srv when the client prepared it
}

// stmtCache is the LRU of statements a server connection has prepared under
// server-side names. Its methods are safe for concurrent use.
type stmtCache struct {
	mu    sync.Mutex
	items map[string]*list.Element // of *cachedStmt
	order list.List                // front: most recently used
	seq   uint64
}

type cachedStmt struct {
	name  string
	stale bool // PostgreSQL reported its cached plan changed result type
	seq   uint64
}

// lookup reports whether the server has the statement, and whether it is stale, and
// marks it recently used.
func (sc *stmtCache) lookup(name string) (have, stale bool) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	e, ok := sc.items[name]
	if !ok {
		return false, false
	}
	sc.order.MoveToFront(e)
	return true, e.Value.(*cachedStmt).stale
}

// current returns the sequence number of the last statement added.
func (sc *stmtCache) current() uint64 {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.seq
}

// add records a statement as prepared (fresh) and returns those evicted to keep at
// most max.
func (sc *stmtCache) add(name string, max int) []cachedStmt {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.items == nil {
		sc.items = make(map[string]*list.Element)
	}
	sc.seq++
	if e, ok := sc.items[name]; ok {
		cs := e.Value.(*cachedStmt)
		cs.stale, cs.seq = false, sc.seq
		sc.order.MoveToFront(e)
	} else {
		sc.items[name] = sc.order.PushFront(&cachedStmt{name: name, seq: sc.seq})
	}
	var evicted []cachedStmt
	for sc.order.Len() > max && sc.order.Len() > 1 {
		e := sc.order.Back()
		cs := e.Value.(*cachedStmt)
		sc.order.Remove(e)
		delete(sc.items, cs.name)
		evicted = append(evicted, *cs)
	}
	return evicted
}

// restore puts back a statement whose Close PostgreSQL skipped.
func (sc *stmtCache) restore(name string, stale bool) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.items == nil {
		sc.items = make(map[string]*list.Element)
	}
	if _, ok := sc.items[name]; !ok {
		sc.items[name] = sc.order.PushBack(&cachedStmt{name: name, stale: stale})
	}
}

// remove forgets a statement (its Parse failed or was skipped).
func (sc *stmtCache) remove(name string) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if e, ok := sc.items[name]; ok {
		sc.order.Remove(e)
		delete(sc.items, name)
	}
}

// markStale notes that the statement must be closed and prepared again before use.
func (sc *stmtCache) markStale(name string) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if e, ok := sc.items[name]; ok {
		e.Value.(*cachedStmt).stale = true
	}
}

// clearBefore forgets the statements added up to sequence seq: PostgreSQL ran DISCARD
// ALL or DEALLOCATE ALL sent after them.
func (sc *stmtCache) clearBefore(seq uint64) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for e := sc.order.Front(); e != nil; {
		next := e.Next()
		if cs := e.Value.(*cachedStmt); cs.seq <= seq {
			sc.order.Remove(e)
			delete(sc.items, cs.name)
		}
		e = next
	}
}

// len reports how many statements the server connection holds.
func (sc *stmtCache) len() int {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.order.Len()
}

// prepState is a client's named statements and the response tracking they need.
type prepState struct {
	max int // max_prepared_statements when the client logged in

	tracking  atomic.Bool // responses are tracked; set by the client's goroutine
	unflushed atomic.Bool // a synthetic answer waits in the client's write buffer

	// Owned by the client's goroutine.
	off        bool   // the client was pinned instead; its statements pass through
	dropToSync bool   // after an error pgpool reported itself, drop messages until Sync
	scratch    []byte // for rewritten messages

	// Guarded by the client's mu.
	// unnamed is the client's last unnamed Parse (one message, so bounded by
	// max_packet_size) as things stand after what was sent; nil: the client has no
	// unnamed statement. unnamedSeq counts its changes; a server connection holds the
	// client's unnamed statement when its unnamedClient and unnamedSeq match.
	unnamed    []byte
	unnamedSeq uint64
	stmts      map[string]*preparedStmt
	q          respQueue
	skipping   bool   // PostgreSQL skips to the next Sync; groups sent meanwhile are void
	seq        uint64 // statements defined so far
	waiting    bool
	room       *sync.Cond
}

// initPrepared turns statement tracking on for a client in transaction or statement
// mode when max_prepared_statements is above zero.
func (c *client) initPrepared() {
	max := c.pl.settings().MaxPreparedStatements
	if max <= 0 || c.cfg == nil || c.cfg.mode == PoolSession {
		return
	}
	c.prep = &prepState{max: max, stmts: make(map[string]*preparedStmt)}
	c.prep.room = sync.NewCond(&c.mu)
}

// resetBinding forgets the expected responses of a binding that ended or began. What
// the client recorded for requests that will never be answered is undone. Call with
// c.mu held.
func (p *prepState) resetBinding(c *client, s *server) {
	for i := len(p.q.buf) - 1; i >= p.q.head; i-- {
		if s != nil {
			p.undo(c, s, &p.q.buf[i])
		}
	}
	p.q.reset()
	p.skipping = false
	if p.waiting {
		p.room.Broadcast()
	}
}

// deallocate forgets the client's statement name, or all of them when name is "",
// defined up to sequence seq. Call with c.mu held.
func (p *prepState) deallocate(name string, seq uint64) {
	if name != "" {
		if st := p.stmts[name]; st != nil && st.seq <= seq {
			delete(p.stmts, name)
		}
		return
	}
	for n, st := range p.stmts {
		if st.seq <= seq {
			delete(p.stmts, n)
		}
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
	if c.server != nil || c.discard || c.aborted {
		c.mu.Unlock()
		return false
	}
	_, dup := p.stmts[string(name)]
	if !dup {
		srv := serverStmtName(rest, c.pl.stmtEpoch.Load())
		if !c.pool.knownStmt(srv) {
			c.mu.Unlock()
			return false
		}
		st := p.define(name, rest, srv)
		st.gen = c.pool.stmtGeneration(st.srv)
	}
	c.mu.Unlock()
	c.pool.stats.queryCount.Add(1)
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

// errDuplicateStmt is PostgreSQL's error for a Parse under a name in use.
func errDuplicateStmt(name []byte) *Error {
	return errorf(CodeDuplicatePreparedStatement, "prepared statement \"%s\" already exists", name)
}

// define records a client's named statement from its Parse body after the name, under
// the server-side name srv. Call with c.mu held.
func (p *prepState) define(name, rest []byte, srv string) *preparedStmt {
	p.seq++
	st := &preparedStmt{name: string(name), srv: srv, seq: p.seq}
	st.parse = appendMessage(nil, wire.Parse, []byte(st.srv), nul, rest)
	p.stmts[st.name] = st
	return st
}

// startTracking begins response tracking. With requests in flight, the batches already
// synced are passed through as they are; a pipeline that started with untracked
// extended-protocol messages and has not reached Sync cannot be matched, so the
// client is pinned to its server connection and its statements pass through unchanged.
// It reports whether tracking began.
func (c *client) startTracking() bool {
	p := c.prep
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.server != nil && c.unsynced {
		p.off = true
		c.pinned = true
		c.pl.log.Info("client pinned: named statement inside an untracked pipeline", "client", c.id, "user", c.user, "database", c.database)
		return false
	}
	if c.server != nil {
		for i := 0; i < c.inflight.len(); i++ {
			p.q.push(respGroup{kind: groupPassSync})
		}
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
	p := c.prep
	c.mu.Lock()
	if c.discard || c.aborted {
		c.mu.Unlock()
		return false, nil // forward drops it or answers it as PostgreSQL would
	}
	g := respGroup{kind: groupSynthDealloc, tag: "DEALLOCATE"}
	if all {
		g.tag = "DEALLOCATE ALL"
		for _, st := range p.stmts {
			g.removed = append(g.removed, st)
		}
		clear(p.stmts)
	} else {
		st := p.stmts[name]
		if st == nil {
			c.mu.Unlock()
			return false, nil // not one of the client's protocol-level statements
		}
		delete(p.stmts, name)
		g.removed = []*preparedStmt{st}
	}
	c.pool.stats.queryCount.Add(1)
	s := c.server
	if s != nil {
		p.q.push(g)
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

// appendMessage appends a message of type typ made of parts.
func appendMessage(dst []byte, typ byte, parts ...[]byte) []byte {
	start := len(dst)
	dst = append(dst, typ, 0, 0, 0, 0)
	for _, p := range parts {
		dst = append(dst, p...)
	}
	binary.BigEndian.PutUint32(dst[start+1:], uint32(len(dst)-start-1))
	return dst
}

var nul = []byte{0}

// sendTracked sends one client message to s, rewriting statement names, and records
// the responses it expects. ignored marks a Sync PostgreSQL ignores (during COPY).
func (c *client) sendTracked(s *server, typ byte, msg []byte, ignored bool) {
	p := c.prep
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waitRoom(s)
	seq, sseq := p.seq, s.stmts.current()
	push := func(g respGroup) {
		g.seq, g.sseq = seq, sseq
		p.q.push(g)
	}
	body := wire.Body(msg)
	switch typ {
	case wire.Parse:
		c.trackParse(s, msg, push)
	case wire.Bind:
		portal, rest, ok1 := postgres.CString(body)
		name, rest, ok2 := postgres.CString(rest)
		if ok1 && ok2 && len(name) == 0 && !c.unnamedReady(s, push) {
			break
		}
		st := p.stmts[string(name)]
		if !ok1 || !ok2 || len(name) == 0 || st == nil {
			s.w.Raw(msg)
			push(respGroup{kind: groupBind})
			break
		}
		if c.outdated(st, push) {
			break
		}
		c.ensurePrepared(s, st, push)
		// The client's length with the statement name replaced: the parameters (rest)
		// may be only the first part of a Bind streamed to the server.
		p.scratch = appendMessage(p.scratch[:0], wire.Bind, portal, nul, []byte(st.srv), nul)
		binary.BigEndian.PutUint32(p.scratch[1:], binary.BigEndian.Uint32(msg[1:])-uint32(len(name))+uint32(len(st.srv)))
		s.w.Raw(p.scratch)
		s.w.Raw(rest)
		push(respGroup{kind: groupBind, srv: st.srv})
	case wire.Describe:
		if st := c.namedStmt(body); st != nil {
			if c.outdated(st, push) {
				break
			}
			c.ensurePrepared(s, st, push)
			p.scratch = appendMessage(p.scratch[:0], wire.Describe, []byte{'S'}, []byte(st.srv), nul)
			s.w.Raw(p.scratch)
			push(respGroup{kind: groupDescribe, srv: st.srv})
			break
		}
		if isUnnamedStmt(body) && !c.unnamedReady(s, push) {
			break
		}
		s.w.Raw(msg)
		push(respGroup{kind: groupDescribe})
	case wire.Close:
		if st := c.namedStmt(body); st != nil {
			delete(p.stmts, st.name) // the shared server-side statement stays
			push(respGroup{kind: groupSynthClose, stmt: st})
			break
		}
		g := respGroup{kind: groupClose}
		if isUnnamedStmt(body) {
			c.setUnnamed(s, &g, nil, true)
		}
		s.w.Raw(msg)
		push(g)
	case wire.Execute:
		s.w.Raw(msg)
		push(respGroup{kind: groupExecute})
	case wire.Sync:
		s.w.Raw(msg)
		if !ignored {
			push(respGroup{kind: groupSync})
		}
	case wire.Query, wire.FunctionCall:
		g := respGroup{kind: groupQuery}
		if typ == wire.Query {
			c.setUnnamed(s, &g, nil, true) // a simple Query drops the unnamed statement
		}
		s.w.Raw(msg)
		push(g)
	default:
		s.w.Raw(msg)
	}
	c.settle(s)
}

// namedStmt returns the client's statement a Describe or Close body names, if it is
// a named statement the client prepared.
func (c *client) namedStmt(body []byte) *preparedStmt {
	if len(body) < 2 || body[0] != 'S' {
		return nil
	}
	name, _, ok := postgres.CString(body[1:])
	if !ok || len(name) == 0 {
		return nil
	}
	return c.prep.stmts[string(name)]
}

// isUnnamedStmt reports whether a Describe or Close body names the unnamed statement.
func isUnnamedStmt(body []byte) bool {
	return len(body) >= 2 && body[0] == 'S' && body[1] == 0
}

// setUnnamed records in g, a request about to be sent to s, that it changes the
// unnamed statement: the client's own to parse (own), or only the server
// connection's to the client's current one (pgpool re-sends the client's Parse).
// Call with c.mu held.
func (c *client) setUnnamed(s *server, g *respGroup, parse []byte, own bool) {
	p := c.prep
	g.unnamed, g.own = true, own
	g.prevParse = p.unnamed
	g.prevSrvClient, g.prevSrvSeq = s.unnamedClient, s.unnamedSeq
	if own {
		p.unnamedSeq++
		p.unnamed = parse
	}
	s.unnamedClient, s.unnamedSeq = c.id, p.unnamedSeq
	g.useq = p.unnamedSeq
}

// unnamedReady runs before a Bind or Describe of the unnamed statement: when the
// server connection holds another client's unnamed statement (a client's unnamed
// statement outlives its Sync, and the connection may have served others since),
// pgpool sends the client's last unnamed Parse first, its ParseComplete dropped; a
// client without one gets PostgreSQL's 26000 from pgpool. It reports whether the
// message may be sent. Call with c.mu held.
func (c *client) unnamedReady(s *server, push func(respGroup)) bool {
	p := c.prep
	if s.unnamedClient == c.id && s.unnamedSeq == p.unnamedSeq {
		return true
	}
	if p.unnamed == nil {
		push(respGroup{kind: groupSynthError, err: errorf(CodeInvalidStatementName, "unnamed prepared statement does not exist").response()})
		p.dropToSync = true
		return false
	}
	g := respGroup{kind: groupParseInternal}
	c.setUnnamed(s, &g, nil, false)
	s.w.Raw(p.unnamed)
	push(g)
	return true
}

// trackParse records a client's Parse. A named statement is prepared under its
// server-side name unless the server connection already has it; then pgpool answers
// ParseComplete itself. Call with c.mu held.
func (c *client) trackParse(s *server, msg []byte, push func(respGroup)) {
	p := c.prep
	name, rest, ok := postgres.CString(wire.Body(msg))
	if !ok || len(name) == 0 {
		g := respGroup{kind: groupParse}
		if ok {
			c.setUnnamed(s, &g, append([]byte(nil), msg...), true)
		}
		s.w.Raw(msg)
		push(g)
		return
	}
	if _, dup := p.stmts[string(name)]; dup {
		push(respGroup{kind: groupSynthError, err: errDuplicateStmt(name).response()})
		p.dropToSync = true
		return
	}
	srv := serverStmtName(rest, c.pl.stmtEpoch.Load())
	have, stale := s.stmts.lookup(srv)
	if have && !stale && s.txStatus.Load() == 'E' && c.inflight.len() == 0 {
		// PostgreSQL refuses every Parse in a failed transaction.
		push(respGroup{kind: groupSynthError, err: errorf(CodeInFailedTransaction, "current transaction is aborted, commands ignored until end of transaction block").response()})
		p.dropToSync = true
		return
	}
	st := p.define(name, rest, srv)
	st.gen = c.pool.stmtGeneration(st.srv)
	if have && !stale {
		push(respGroup{kind: groupSynthParse, stmt: st})
		return
	}
	c.prepareOn(s, st, groupParse, stale, push)
}

// outdated answers a Bind or Describe of a statement whose result type changed after
// the client prepared it (another client met "cached plan must not change result
// type" for the same query): the client gets that error too, as PostgreSQL would give
// it for the client's own statement, until it prepares the statement again. It
// reports whether it answered. Call with c.mu held.
func (c *client) outdated(st *preparedStmt, push func(respGroup)) bool {
	if st.gen >= c.pool.stmtGeneration(st.srv) {
		return false
	}
	push(respGroup{kind: groupSynthError, err: errorf(CodeFeatureNotSupported, "cached plan must not change result type").response()})
	c.prep.dropToSync = true
	return true
}

// ensurePrepared prepares st on s before a Bind or Describe that uses it, unless s
// has it. Call with c.mu held.
func (c *client) ensurePrepared(s *server, st *preparedStmt, push func(respGroup)) {
	have, stale := s.stmts.lookup(st.srv)
	if have && !stale {
		return
	}
	c.prepareOn(s, st, groupParseInternal, stale, push)
}

// prepareOn sends the Parse of st under its server-side name: first a Close of the
// stale version, if any, and of the statements the LRU evicts. Call with c.mu held.
func (c *client) prepareOn(s *server, st *preparedStmt, kind groupKind, stale bool, push func(respGroup)) {
	p := c.prep
	if stale {
		c.closeOnServer(s, st.srv)
		push(respGroup{kind: groupCloseInternal, srv: st.srv, stale: true})
	}
	for _, e := range s.stmts.add(st.srv, p.max) {
		c.closeOnServer(s, e.name)
		push(respGroup{kind: groupCloseInternal, srv: e.name, stale: e.stale})
	}
	s.w.Raw(st.parse)
	push(respGroup{kind: kind, srv: st.srv, stmt: st})
}

// closeOnServer sends Close of a server-side statement. Call with c.mu held.
func (c *client) closeOnServer(s *server, srv string) {
	p := c.prep
	p.scratch = appendMessage(p.scratch[:0], wire.Close, []byte{'S'}, []byte(srv), nul)
	s.w.Raw(p.scratch)
}

// waitRoom holds the client back while maxQueuedGroups responses are outstanding, after
// sending what is buffered so the server can answer. Call with c.mu held.
func (c *client) waitRoom(s *server) {
	p := c.prep
	for p.q.len() >= maxQueuedGroups && c.server == s && !s.closed.Load() {
		c.mu.Unlock()
		c.flushServer()
		c.mu.Lock()
		if p.q.len() >= maxQueuedGroups && c.server == s && !s.closed.Load() {
			p.waiting = true
			p.room.Wait()
			p.waiting = false
		}
	}
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
