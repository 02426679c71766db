package pgpool

import "sync"

// inflightQueue is what a client has in flight on its server connection, oldest
// first: one respGroup per answer pgpool expects. It is the one queue of the binding,
// for every client. A client whose responses are not tracked (no Parse yet, or
// max_prepared_statements = 0, or session mode) records only the requests PostgreSQL
// answers with a ReadyForQuery each (Query, Sync, FunctionCall), and its server's
// reader pops them at ReadyForQuery; a tracked client records every group (Parse,
// Bind, ..., synthetic answers, respqueue.go), matched by its server's reader as the
// replies come. When tracking begins the groups already there simply stay: they end
// with ReadyForQuery, as every untracked one does.
//
// requests counts the groups that end with ReadyForQuery: the requests in flight,
// whose number decides whether the server connection may go back to the pool. Only
// code holding the client's mu uses the queue. In steady state it does not allocate,
// and a pipeline that never drains keeps it bounded by what is in flight.
type inflightQueue struct {
	buf  []respGroup
	head int
	reqs int
}

// len reports how many groups are expected.
func (q *inflightQueue) len() int { return len(q.buf) - q.head }

// requests reports how many requests answered by ReadyForQuery are in flight.
func (q *inflightQueue) requests() int { return q.reqs }

// push records a group expected.
func (q *inflightQueue) push(g respGroup) {
	if q.head > 0 && (q.head == len(q.buf) || q.head >= 64 && q.head*2 >= len(q.buf)) {
		// Reuse the space of answered groups.
		n := copy(q.buf, q.buf[q.head:])
		clear(q.buf[n:])
		q.buf, q.head = q.buf[:n], 0
	}
	q.buf = append(q.buf, g)
	if g.kind.syncLike() {
		q.reqs++
	}
}

// pushRequest records a request of an untracked client: a Query or FunctionCall
// (groupQuery) or a Sync (groupSync).
func (q *inflightQueue) pushRequest(typ byte) {
	kind := groupQuery
	if typ == 'S' {
		kind = groupSync
	}
	q.push(respGroup{kind: kind})
}

// peek returns the oldest group, or nil.
func (q *inflightQueue) peek() *respGroup {
	if q.head == len(q.buf) {
		return nil
	}
	return &q.buf[q.head]
}

// pop forgets the oldest group (answered, or skipped by PostgreSQL) and returns it;
// popping an empty queue returns the zero group.
func (q *inflightQueue) pop() respGroup {
	if q.head == len(q.buf) {
		return respGroup{}
	}
	g := q.buf[q.head]
	q.drop()
	return g
}

// drop forgets the oldest group, if any, without returning it.
func (q *inflightQueue) drop() {
	if q.head == len(q.buf) {
		return
	}
	g := &q.buf[q.head]
	if g.kind.syncLike() {
		q.reqs--
	}
	*g = respGroup{}
	q.head++
	if q.head == len(q.buf) {
		q.buf, q.head = q.buf[:0], 0
	}
}

// firstRequest returns the oldest group that ends with ReadyForQuery, or nil.
func (q *inflightQueue) firstRequest() *respGroup {
	for i := q.head; i < len(q.buf); i++ {
		if q.buf[i].kind.syncLike() {
			return &q.buf[i]
		}
	}
	return nil
}

// dropSyncs forgets the Syncs expected, which PostgreSQL ignores during COPY FROM
// STDIN, keeping the other groups in order.
func (q *inflightQueue) dropSyncs() {
	kept := q.buf[:q.head]
	for _, g := range q.buf[q.head:] {
		if g.kind == groupSync {
			q.reqs--
		} else {
			kept = append(kept, g)
		}
	}
	clear(q.buf[len(kept):])
	q.buf = kept
}

// waitRoomUntracked holds back an untracked client while pl.inflightMax requests are
// in flight on s (a client pipelining requests without reading the answers), after
// sending what is buffered so the server can answer: the client's goroutine stops
// reading, so the client's own socket pushes back, as a tracked client's does
// (waitRoom). Call with c.mu held; it is released meanwhile, so the caller checks the
// binding again.
func (c *client) waitRoomUntracked(s *server) {
	if c.room == nil {
		c.room = sync.NewCond(&c.mu)
	}
	c.waitRoomOn(s, c.pl.inflightMax, c.room, &c.roomWait)
}

// roomFreed wakes the client's goroutine waiting in waitRoomUntracked once there is
// room. Call with c.mu held.
func (c *client) roomFreed() {
	if c.roomWait && c.inflight.len() < c.pl.inflightMax {
		c.room.Broadcast()
	}
}

// reset forgets every group (the binding ended or began), keeping a small buffer.
func (q *inflightQueue) reset() {
	if cap(q.buf) > 1024 {
		q.buf = nil
	} else {
		clear(q.buf)
		q.buf = q.buf[:0]
	}
	q.head, q.reqs = 0, 0
}
