package pgpool

import (
	"sync/atomic"
	"time"
)

// grant is what a waiting client is handed: a server connection, or permission to
// open one, or an error.
type grant struct {
	s    *server
	open bool
	// reserve: the connection to open is one of the reserve pool.
	reserve bool
	err     error
}

type waiter struct {
	ch       chan grant // buffered 1
	since    time.Time
	deadline time.Time // when the wait ends with an error (zero: never)
	c        *client
	next     *waiter
	prev     *waiter
	gone     bool // removed from the queue
}

// waitQueue is a FIFO of waiting clients; its length is bounded by max_client_conn.
type waitQueue struct {
	head, tail *waiter
	n          int
	// lims are the pool's database and user limiters: each counts the waiters of
	// every pool that shares it.
	lims [2]*limiter
}

func (q *waitQueue) push(w *waiter) {
	w.prev = q.tail
	if q.tail != nil {
		q.tail.next = w
	} else {
		q.head = w
	}
	q.tail = w
	q.n++
	for _, l := range q.lims {
		if l != nil {
			l.waiting.Add(1)
		}
	}
}

func (q *waitQueue) remove(w *waiter) {
	if w.gone {
		return
	}
	w.gone = true
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		q.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		q.tail = w.prev
	}
	w.next, w.prev = nil, nil
	q.n--
	for _, l := range q.lims {
		if l != nil {
			l.waiting.Add(-1)
		}
	}
}

func (q *waitQueue) pop() *waiter {
	w := q.head
	if w != nil {
		q.remove(w)
	}
	return w
}

// limiter counts server connections against max_db_connections or
// max_user_connections. Zero max means no limit. The pools that share a limiter hand
// the connection slots it frees to their waiting clients in the order they started
// waiting (Pooler.offerSlots).
type limiter struct {
	n   atomic.Int64
	max atomic.Int64
	// waiting counts the clients waiting in the pools that share this limiter.
	waiting atomic.Int64
}

// limited reports whether the limiter has a maximum.
func (l *limiter) limited() bool { return l != nil && l.max.Load() > 0 }

// fitsAfter reports whether l would have room for one more connection once a
// connection counted against freed had closed.
func (l *limiter) fitsAfter(freed ...*limiter) bool {
	if !l.limited() {
		return true
	}
	n := l.n.Load()
	for _, f := range freed {
		if f == l {
			n--
			break
		}
	}
	return n < l.max.Load()
}

func (l *limiter) tryTake() bool {
	if l == nil {
		return true
	}
	for {
		n, max := l.n.Load(), l.max.Load()
		if max > 0 && n >= max {
			return false
		}
		if l.n.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (l *limiter) give() {
	if l != nil {
		l.n.Add(-1)
	}
}

// takeLimits reserves a connection against max_db_connections and
// max_user_connections. Call with p.mu held.
func (p *pool) takeLimits() bool {
	if !p.dbLimit.tryTake() {
		return false
	}
	if !p.usrLimit.tryTake() {
		p.dbLimit.give()
		return false
	}
	return true
}

// grantOpen lets waiting clients open connections while the pool has room. Call with
// p.mu held.
func (p *pool) grantOpen() {
	for p.grantOne() {
	}
}

// eligible returns when the first waiter started waiting, if it could open a
// connection but for max_db_connections and max_user_connections. Call with p.mu held.
func (p *pool) eligible() (since time.Time, ok bool) {
	w := p.waiters.head
	if w == nil || p.paused || p.closed || !p.mayOpen(w.since) {
		return time.Time{}, false
	}
	return w.since, true
}

// grantOne lets the first waiter open a connection if the pool and the limits have
// room; it reports whether it did. Call with p.mu held.
func (p *pool) grantOne() bool {
	if _, ok := p.eligible(); !ok || !p.takeLimits() {
		return false
	}
	w := p.waiters.pop()
	reserve := p.total() >= p.cfg.size
	p.opening++
	w.ch <- grant{open: true, reserve: reserve}
	return true
}
