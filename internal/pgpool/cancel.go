package pgpool

func cancelKey(pid, secret uint32) uint64 { return uint64(pid)<<32 | uint64(secret) }

func (pl *Pooler) register(c *client) {
	pl.mu.Lock()
	pl.clients[c] = struct{}{}
	pl.cancels[cancelKey(c.pid, c.secret)] = c
	pl.mu.Unlock()
}

func (pl *Pooler) unregister(c *client) {
	pl.mu.Lock()
	delete(pl.clients, c)
	if pl.cancels[cancelKey(c.pid, c.secret)] == c {
		delete(pl.cancels, cancelKey(c.pid, c.secret))
	}
	pl.mu.Unlock()
}

// cancel forwards a CancelRequest to the server connection serving the client with that
// key at this moment, while that client has a request in flight; otherwise it is
// dropped. The server connection is not handed to another client before the cancel
// has completed.
func (pl *Pooler) cancel(pid, secret uint32) {
	pl.mu.Lock()
	c := pl.cancels[cancelKey(pid, secret)]
	pl.mu.Unlock()
	if c == nil {
		pl.log.Debug("cancel request for unknown client dropped")
		return
	}
	// Counted under c.mu: the connection cannot be released to another client
	// between this check and the count, and a counted cancel keeps it from the next
	// client until PostgreSQL has processed it.
	c.mu.Lock()
	s := c.server
	busy := s != nil && c.inflight.requests() > 0
	if busy {
		s.cancelStarted()
	}
	c.mu.Unlock()
	if !busy {
		pl.log.Debug("cancel request for a client with nothing running dropped", "client", c.id)
		return
	}
	pl.log.Info("forwarding cancel request", "client", c.id, "server", s.String())
	s.cancel(pl.settings().CancelWaitTimeout)
	s.cancelDone()
}
