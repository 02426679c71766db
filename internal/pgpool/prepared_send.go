package pgpool

import (
	"encoding/binary"
	"sync"

	"github.com/poolsuite/poolsuite/protocol/postgres"
	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

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
// the responses it expects in c.inflight. ignored marks a Sync PostgreSQL ignores
// (during COPY). The caller waited for room (waitRoom). Call with c.mu held: the
// groups are in the queue before anyone may look at whether requests are in flight.
func (c *client) sendTracked(s *server, typ byte, msg []byte, ignored bool) {
	p := c.prep
	seq, sseq := c.sess.stmts.seq, s.stmts.current()
	push := func(g respGroup) {
		g.seq, g.sseq = seq, sseq
		c.inflight.push(g)
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
		st := c.sess.stmts.get(name)
		if !ok1 || !ok2 || len(name) == 0 || st == nil {
			s.w.Raw(msg)
			push(respGroup{kind: groupBind})
			break
		}
		if c.outdated(st, push) {
			break
		}
		c.ensurePrepared(s, st, push)
		c.pool.stats.binds.Add(1)
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
			c.sess.stmts.forget(st) // the shared server-side statement stays
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
	return c.sess.stmts.get(name)
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
			c.setUnnamed(s, &g, msg, true) // copied, up to maxUnnamedCopy
		}
		s.w.Raw(msg)
		push(g)
		return
	}
	if c.sess.stmts.get(name) != nil {
		c.logDuplicateStmt(name)
		push(respGroup{kind: groupSynthError, err: errDuplicateStmt(name).response()})
		p.dropToSync = true
		return
	}
	srv := serverStmtName(rest, c.pl.stmtEpoch.Load())
	have, stale := s.stmts.lookup(srv)
	if have && !stale && s.txStatus.Load() == 'E' && c.inflight.requests() == 0 {
		// PostgreSQL refuses every Parse in a failed transaction.
		push(respGroup{kind: groupSynthError, err: errorf(CodeInFailedTransaction, "current transaction is aborted, commands ignored until end of transaction block").response()})
		p.dropToSync = true
		return
	}
	st := c.sess.stmts.define(name, rest, srv, c.pool.stmtGeneration(srv))
	c.pool.stats.clientParses.Add(1)
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
	for _, e := range s.stmts.add(st.srv, p.bound(c.pl.settings())) {
		c.closeOnServer(s, e.name)
		push(respGroup{kind: groupCloseInternal, srv: e.name, stale: e.stale})
	}
	s.w.Raw(st.parse)
	c.pool.stats.serverParses.Add(1)
	push(respGroup{kind: kind, srv: st.srv, stmt: st})
}

// closeOnServer sends Close of a server-side statement. Call with c.mu held.
func (c *client) closeOnServer(s *server, srv string) {
	p := c.prep
	p.scratch = appendMessage(p.scratch[:0], wire.Close, []byte{'S'}, []byte(srv), nul)
	s.w.Raw(p.scratch)
}

// waitRoom holds the client back while maxQueuedGroups responses are outstanding, after
// sending what is buffered so the server can answer. Call with c.mu held; it is
// released meanwhile, so the caller checks the binding again.
func (c *client) waitRoom(s *server) {
	c.waitRoomOn(s, maxQueuedGroups, c.prep.room, &c.prep.waiting)
}

// waitRoomOn holds the client back while limit groups are in flight on s, after
// sending what is buffered so the server can answer, waiting on room with *waiting
// set. Call with c.mu held (room's lock); it is released meanwhile.
func (c *client) waitRoomOn(s *server, limit int, room *sync.Cond, waiting *bool) {
	full := func() bool { return c.inflight.len() >= limit && c.server == s && !s.closed.Load() }
	for full() {
		c.mu.Unlock()
		c.flushServer()
		c.mu.Lock()
		if full() {
			*waiting = true
			room.Wait()
			*waiting = false
		}
	}
}
