package pgpool

// unbind is called when the client goes away: a clean server connection goes back to
// the pool (reset first where the mode asks for it); one inside a transaction is
// rolled back; one with requests in flight is closed.
func (c *client) unbind() {
	c.mu.Lock()
	c.startClosing()
	c.waitPinCheck()
	s := c.server
	c.server = nil
	clean := s != nil && c.inflight.requests() == 0 && c.stream == streamSynced
	pinned := c.sess.pins != 0
	if c.sess.pins != 0 {
		c.pool.stats.pinned.Add(-1)
		c.sess.pins = 0
	}
	c.mu.Unlock()
	if c.queryTimer != nil {
		c.queryTimer.Stop()
	}
	if s == nil {
		return
	}
	s.owner.Store(nil)
	if !clean || s.closed.Load() {
		s.close()
		return
	}
	s.setState(serverUsed)
	timeout := c.pl.settings().ServerConnectTimeout
	if !s.txIdle() {
		if err := s.exec("ROLLBACK", timeout); err != nil {
			s.close()
			return
		}
	}
	cfg := c.pool.config()
	reset := cfg.resetQuery
	if reset == "" && pinned {
		reset = "DISCARD ALL" // never hand a lock or a listener to the next client
	}
	if reset != "" && (cfg.mode == PoolSession || cfg.resetAlways || pinned) {
		if err := s.exec(reset, timeout); err != nil {
			s.close()
			return
		}
	}
	c.pool.release(s)
}
