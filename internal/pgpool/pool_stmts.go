package pgpool

import (
	"sync/atomic"
)

// maxKnownStmts bounds pool.known.
const maxKnownStmts = 4096

// knownStmt reports whether PostgreSQL prepared the server-side statement srv on a
// server connection of the pool.
func (p *pool) knownStmt(srv string) bool {
	p.knownMu.Lock()
	defer p.knownMu.Unlock()
	_, ok := p.known[srv]
	return ok
}

// noteStmt records that PostgreSQL prepared srv; when the set is full, an arbitrary
// other name is forgotten.
func (p *pool) noteStmt(srv string) {
	p.knownMu.Lock()
	defer p.knownMu.Unlock()
	if _, ok := p.known[srv]; ok {
		return
	}
	if p.known == nil {
		p.known = make(map[string]struct{})
	}
	for name := range p.known {
		if len(p.known) < maxKnownStmts {
			break
		}
		delete(p.known, name)
	}
	p.known[srv] = struct{}{}
}

// forgetStmt drops srv from the statements known to prepare.
func (p *pool) forgetStmt(srv string) {
	p.knownMu.Lock()
	defer p.knownMu.Unlock()
	delete(p.known, srv)
}

// stmtGeneration returns the generation of a server-side statement.
func (p *pool) stmtGeneration(srv string) uint64 {
	if v, ok := p.stmtGen.Load(srv); ok {
		return v.(*atomic.Uint64).Load()
	}
	return 0
}

// bumpStmtGeneration records that a statement's result type changed: clients that
// prepared it before get PostgreSQL's error until they prepare it again.
func (p *pool) bumpStmtGeneration(srv string) {
	v, _ := p.stmtGen.LoadOrStore(srv, new(atomic.Uint64))
	v.(*atomic.Uint64).Add(1)
}
