package pgpool

import (
	"time"
)

// maintain is called by the janitor about once a second: it closes connections idle
// past server_idle_timeout or past server_lifetime, keeps min_pool_size open, and lets
// waiters use the reserve pool once they have waited reserve_pool_timeout.
func (p *pool) maintain(now time.Time) {
	p.mu.Lock()
	cfg := p.cfg
	var toClose []*server
	keep := p.idle[:0]
	n := p.total()
	for _, s := range p.idle {
		idleFor := now.Sub(time.Unix(0, s.lastUsed.Load()))
		expired := !s.expiresAt.IsZero() && now.After(s.expiresAt)
		tooIdle := cfg.serverIdleTimeout > 0 && idleFor > cfg.serverIdleTimeout && n > cfg.minSize
		if expired || tooIdle || p.closed || s.stale(cfg) {
			switch {
			case expired:
				s.reason.CompareAndSwap(nil, ptrTo(reasonServerLifetime))
			case tooIdle:
				s.reason.CompareAndSwap(nil, ptrTo(reasonServerIdle))
			}
			toClose = append(toClose, s)
			n--
			continue
		}
		keep = append(keep, s)
	}
	for i := len(keep); i < len(p.idle); i++ {
		p.idle[i] = nil
	}
	p.idle = keep
	// min_pool_size: open in the background, one at a time per tick.
	var warm bool
	if !p.closed && !p.paused && p.total() < cfg.minSize && p.total() < cfg.size &&
		(p.lastErr == nil || now.Sub(p.lastErrAt) >= cfg.serverLoginRetry) && p.takeLimits() {
		p.opening++
		warm = true
	}
	p.mu.Unlock()
	for _, s := range toClose {
		s.close()
	}
	if warm {
		p.bg.Add(1)
		go func() {
			defer p.bg.Done()
			if s, err := p.open(); err == nil {
				p.release(s)
			}
		}()
	}
}

// takeStaleIdle removes from the idle list the connections stale under cfg and
// returns them for the caller to close. Call with p.mu held.
func (p *pool) takeStaleIdle(cfg *poolConfig) []*server {
	var out []*server
	keep := p.idle[:0]
	for _, s := range p.idle {
		if s.stale(cfg) {
			out = append(out, s)
			continue
		}
		keep = append(keep, s)
	}
	for i := len(keep); i < len(p.idle); i++ {
		p.idle[i] = nil
	}
	p.idle = keep
	return out
}

// closeAll closes every connection (KILL, reload removal, shutdown), fails waiters
// and stops their timer.
func (p *pool) closeAll(err error) {
	p.mu.Lock()
	p.closed = true
	p.idle = nil
	all := make([]*server, 0, len(p.servers))
	for s := range p.servers {
		all = append(all, s)
	}
	for w := p.waiters.pop(); w != nil; w = p.waiters.pop() {
		w.ch <- grant{err: err}
	}
	// No client waits any more, nor will (acquire sees closed): the waiters' timer
	// would only fire to find nothing, holding the pool in memory until then.
	if p.expiry != nil {
		p.expiry.Stop()
	}
	p.expiryAt = time.Time{}
	p.mu.Unlock()
	for _, s := range all {
		s.close()
	}
}

// closeIdle closes idle connections only (RECONNECT, reload of server settings).
func (p *pool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, s := range idle {
		s.close()
	}
}

// setPaused pauses or resumes handing out connections.
func (p *pool) setPaused(paused bool) {
	p.mu.Lock()
	p.paused = paused
	if !paused {
		for len(p.idle) > 0 && p.waiters.head != nil {
			s := p.popIdle()
			if s == nil {
				break
			}
			p.waiters.pop().ch <- grant{s: s}
		}
		p.grantOpen()
	}
	p.mu.Unlock()
}

// activeCount reports connections that are not idle (for PAUSE to wait on).
func (p *pool) activeCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.servers) - len(p.idle) + p.opening
}
