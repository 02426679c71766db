package pgpool

import "github.com/poolsuite/poolsuite/protocol/postgres/wire"

// syncQueue holds the messages a client sent that PostgreSQL answers with a
// ReadyForQuery each (Query, Sync, FunctionCall), oldest first, until they are
// answered. Its length is the number of requests in flight. Only code holding the
// client's mu uses it. In steady state it does not allocate.
type syncQueue struct {
	kinds []byte
	head  int
}

// len reports how many requests are in flight.
func (q *syncQueue) len() int { return len(q.kinds) - q.head }

// push records a request sent.
func (q *syncQueue) push(kind byte) {
	if q.head > 0 && (q.head == len(q.kinds) || q.head >= 64 && q.head*2 >= len(q.kinds)) {
		// Reuse the space of answered requests, so a pipeline that never drains does
		// not grow the slice for ever.
		n := copy(q.kinds, q.kinds[q.head:])
		q.kinds, q.head = q.kinds[:n], 0
	}
	q.kinds = append(q.kinds, kind)
}

// pop records the oldest request answered.
func (q *syncQueue) pop() {
	if q.head < len(q.kinds) {
		q.head++
	}
	if q.head == len(q.kinds) {
		q.reset()
	}
}

// front returns the kind of the oldest request in flight, 0 when none is.
func (q *syncQueue) front() byte {
	if q.head == len(q.kinds) {
		return 0
	}
	return q.kinds[q.head]
}

// reset forgets every request (the server connection is gone).
func (q *syncQueue) reset() { q.kinds, q.head = q.kinds[:0], 0 }

// dropSyncs forgets the Syncs in flight, which PostgreSQL ignores during COPY FROM
// STDIN, keeping the rest in order.
func (q *syncQueue) dropSyncs() {
	kept := q.kinds[:q.head]
	for _, k := range q.kinds[q.head:] {
		if k != wire.Sync {
			kept = append(kept, k)
		}
	}
	q.kinds = kept
	if q.head == len(q.kinds) {
		q.reset()
	}
}
