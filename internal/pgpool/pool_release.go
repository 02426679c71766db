package pgpool

import (
	"time"
)

// release puts a server connection back: to the first waiter, or to the idle list.
// Connections past server_lifetime, or of a closed or reconfigured pool, are closed.
func (p *pool) release(s *server) { p.put(s, false) }

// releaseAfterTransaction is release for a connection whose client has just ended a
// transaction in transaction or statement mode. With server_reset_query_always it
// keeps the connection out of the pool and returns the reset query, and its timeout,
// to run before release.
func (p *pool) releaseAfterTransaction(s *server) (reset string, timeout time.Duration) {
	return p.put(s, true)
}

func (p *pool) put(s *server, transactionEnd bool) (reset string, timeout time.Duration) {
	s.wmu.Lock() // wait for the last owner's flush to finish unwinding
	s.wmu.Unlock()
	if s.parkForCancels(transactionEnd) {
		return "", 0 // the last cancel to complete releases it (resumeRelease)
	}
	now := time.Now()
	s.lastUsed.Store(now.UnixNano())
	p.mu.Lock()
	if s.closed.Load() {
		p.mu.Unlock()
		return "", 0
	}
	if p.closed || (!s.expiresAt.IsZero() && now.After(s.expiresAt)) || s.stale(p.cfg) {
		expired := !p.closed && !s.expiresAt.IsZero() && now.After(s.expiresAt)
		stale := !p.closed && s.stale(p.cfg)
		p.mu.Unlock()
		switch {
		case expired:
			s.closeBecause(reasonServerLifetime)
		case stale:
			s.closeBecause(reasonConfigChanged)
		default:
			s.close()
		}
		return "", 0
	}
	if transactionEnd && p.cfg.resetAlways && p.cfg.resetQuery != "" {
		reset, timeout = p.cfg.resetQuery, p.cfg.server.connectTimeout
		p.mu.Unlock()
		return reset, timeout
	}
	if !p.paused && p.contended() {
		var since time.Time
		if w := p.waiters.head; w != nil {
			since = w.since
		}
		p.mu.Unlock()
		if o := p.pooler.longerWaiter(p, since); o != nil && p.pooler.handSlot(p, s, o, since) {
			// A client of another pool sharing a limit has waited longer than any of
			// ours: this connection is closed and its slot is that client's.
			p.pooler.log.Debug("closed a server connection to make room for another pool", "database", p.database, "user", p.user, "server", s.String())
			return "", 0
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			s.close()
			return "", 0
		}
	}
	if !p.paused {
		if w := p.waiters.pop(); w != nil {
			s.setState(serverActive)
			w.ch <- grant{s: s}
			p.mu.Unlock()
			return "", 0
		}
	}
	s.setState(serverIdle)
	p.idle = append(p.idle, s)
	p.mu.Unlock()
	return "", 0
}

// resumeRelease performs a release put off while cancels were under way.
func (p *pool) resumeRelease(s *server, transactionEnd bool) {
	reset, timeout := p.put(s, transactionEnd)
	if reset == "" {
		return
	}
	s.setState(serverUsed)
	if err := s.exec(reset, timeout); err != nil {
		s.close()
		return
	}
	p.release(s)
}

// stale reports whether a connection was opened for a configuration that has since
// changed where it matters (address, server TLS settings).
func (s *server) stale(cfg *poolConfig) bool {
	return !cfg.server.hasAddr(s.addr) || s.tlsKey != cfg.server.tlsKey
}

// serverClosed forgets a connection whose reader has ended, and lets a waiter open a
// replacement: of this pool, or of another sharing its limits that has waited longer.
func (p *pool) serverClosed(s *server) {
	p.mu.Lock()
	if _, ok := p.servers[s]; !ok {
		p.mu.Unlock()
		return
	}
	delete(p.servers, s)
	p.dbLimit.give()
	p.usrLimit.give()
	for i, t := range p.idle {
		if t == s {
			copy(p.idle[i:], p.idle[i+1:])
			p.idle[len(p.idle)-1] = nil
			p.idle = p.idle[:len(p.idle)-1]
			break
		}
	}
	p.mu.Unlock()
	p.pooler.offerSlots(p)
}
