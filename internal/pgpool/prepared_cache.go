package pgpool

import (
	"container/list"
	"sync"
)

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
