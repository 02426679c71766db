package pgpool

import (
	"errors"
	"sync"
	"time"
)

// errFastClosed ends a client whose session server_fast_close closed.
var errFastClosed = errors.New("pgpool: session closed by server_fast_close")

// fastCloseReason is what the client and the log are told, as PgBouncer says it.
const fastCloseReason = reasonConfigChanged

// fastClose applies server_fast_close, called by the janitor: in session mode, a
// server connection that must close (RECONNECT, or a reload that changed where the
// database's connections go) is closed together with its client as soon as the
// client is idle outside a transaction, instead of serving the client until it
// leaves. A transaction under way is never interrupted: the connection is closed
// once it has ended.
func (p *pool) fastClose() {
	p.mu.Lock()
	cfg := p.cfg
	if !cfg.fastClose || p.closed {
		p.mu.Unlock()
		return
	}
	var active []*server
	for s := range p.servers {
		if s.getState() == serverActive {
			active = append(active, s)
		}
	}
	p.mu.Unlock()

	type victim struct {
		s *server
		c *client
	}
	var vs []victim
	for _, s := range active {
		if !s.stale(cfg) && !p.pooler.closeNeeded(s) {
			continue
		}
		ref := s.owner.Load()
		if ref == nil {
			continue
		}
		c, ok := ref.s.(*client)
		if !ok || c.cfg == nil || c.cfg.mode != PoolSession {
			continue
		}
		c.mu.Lock()
		idle := c.server == s && !c.isClosing() && c.inflight.requests() == 0 && c.stream == streamSynced && s.txIdle()
		if idle {
			// From here on the client sends nothing more to any server (forward).
			c.startClosing()
		}
		c.mu.Unlock()
		if idle {
			vs = append(vs, victim{s, c})
		}
	}
	if len(vs) == 0 {
		return
	}
	var wg sync.WaitGroup
	for _, v := range vs {
		p.pooler.log.Info("server_fast_close: closing server connection and its client",
			"database", p.database, "user", p.user, "server", v.s.String(), "client", v.c.id, "reason", fastCloseReason)
		wg.Add(1)
		go func() {
			defer wg.Done()
			v.s.closeBecause(fastCloseReason)
			// Do not let a client that stopped reading hold the janitor up.
			v.c.conn.SetWriteDeadline(time.Now().Add(time.Second))
			v.c.sendError(fatalf(CodeAdminShutdown, "closing because: %s (server_fast_close)", fastCloseReason))
			v.c.close()
		}()
	}
	wg.Wait()
}
