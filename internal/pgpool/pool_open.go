package pgpool

import (
	"math/rand/v2"
	"time"
)

// recentFailure returns PostgreSQL's refusal of the last login while
// server_login_retry has not passed and no connection could serve the client anyway.
// Call with p.mu held.
func (p *pool) recentFailure() error {
	if p.lastErr != nil && p.lastErrRefused && p.total() == 0 && time.Since(p.lastErrAt) < p.cfg.serverLoginRetry {
		return p.lastErr
	}
	return nil
}

// open connects a new server connection; the caller has counted it in p.opening.
func (p *pool) open() (*server, error) {
	p.mu.Lock()
	cfg := p.cfg
	p.mu.Unlock()
	s, err := dialServer(p, &p.hosts, p.nextID.Add(1), &cfg.server, cfg.serverLoginRetry, p.pooler.log)
	if err != nil {
		p.connectFailed(err)
		return nil, err
	}
	s.logNewServer(p)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.opening--
	if p.lastErr != nil {
		p.pooler.log.Info("server connect works again", "database", p.database, "user", p.user)
		p.lastErr, p.lastErrAt, p.lastErrRefused = nil, time.Time{}, false
		defer p.grantOpen() // the waiters held back by the failures may connect now
	}
	j := 0.9 + 0.1*rand.Float64() // jitter so connections do not all expire together
	if cfg.serverLifetime > 0 {
		s.expiresAt = s.createdAt.Add(time.Duration(float64(cfg.serverLifetime) * j))
	}
	if p.welcome == nil {
		p.welcome = s.paramsCopy()
	}
	if p.closed {
		s.close()
		return nil, ErrPoolClosed
	}
	p.servers[s] = struct{}{}
	s.setState(serverActive)
	p.stats.serversOpened.Add(1)
	return s, nil
}

// connectFailed records a failed connect and gives its slot back. PostgreSQL's refusal
// of the login goes to every waiting client at once when nobody can be served; a
// failure for want of the server leaves them waiting for the next attempt.
func (p *pool) connectFailed(err error) {
	p.logServerLoginFailed(err)
	p.mu.Lock()
	p.opening--
	p.dbLimit.give()
	p.usrLimit.give()
	p.lastErr, p.lastErrAt = err, time.Now()
	p.lastErrRefused = !transientConnectError(err)
	if p.lastErrRefused && p.total() == 0 {
		for w := p.waiters.pop(); w != nil; w = p.waiters.pop() {
			w.ch <- grant{err: err}
		}
	}
	p.mu.Unlock()
	p.pooler.offerSlots(p) // the slot given back may serve another pool
}
