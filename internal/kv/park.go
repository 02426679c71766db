package kv

import (
	"time"

	"github.com/poolsuite/poolsuite/internal/netpark"
)

// Idle clients hold no goroutine. A reader that needs bytes with nothing buffered,
// once it has read since its goroutine started, parks the connection on the proxy's Parker (internal/netpark) and its goroutine
// returns; the Parker starts a new one, which runs serve again, when the client sends
// bytes or closes, or when the proxy wakes it: before it closes the connection
// (drain, shutdown, a write error), before a handover, and at the read deadline of
// client_timeout. Replies need no reader: the writer and the server connections'
// readers write them, so a client is parked with requests in flight too.
//
// A reader whose last read came within netpark.HotGap of the one before (hot) waits
// in Read instead, and the idle sweep, every parkSweep, wakes the readers that read
// nothing since the sweep before and have nothing in flight, so that they park.
const parkSweep = time.Second

// parkLocked parks the connection for a reader about to wait for bytes with nothing
// buffered, unless parking is unavailable, a close or deadline is on its way
// (kicked), or the read deadline has passed. It reports whether it parked; the
// reader's goroutine must then return at once. c.mu is held.
func (c *client) parkLocked() bool {
	pk := c.pool.p.parker
	if pk == nil || c.rc == nil || c.kicked || c.closing {
		return false
	}
	var idle time.Duration
	if !c.rdl.IsZero() {
		if idle = time.Until(c.rdl); idle <= 0 {
			return false
		}
	}
	c.putReadBuf()
	if c.pending == 0 {
		c.dropKeptLocked()
	}
	if c.wakeFn == nil {
		c.wakeFn = c.resume
	}
	// The callback may run before Park returns: what the goroutine it starts reads
	// is written before.
	c.woke = true
	// Counted before Park: once the Parker holds the connection (and its callback
	// may have run), a test that sees it parked or woken sees it counted.
	c.pool.p.parks.Add(1)
	if pk.Park(&c.pk, c.rc, c.wakeFn) != nil {
		c.pool.p.parks.Add(-1)
		c.woke = false
		return false
	}
	c.parked = true
	if idle > 0 {
		// The Parker cannot see the read deadline: a timer wakes the client at it,
		// and the read then fails with the deadline passed, as if the reader had
		// waited in Read.
		if c.idleT == nil {
			c.idleT = time.AfterFunc(idle, c.idleWake)
		} else {
			c.idleT.Reset(idle)
		}
	}
	return true
}

// dropKeptLocked lets go of what a client keeps for its next requests, when it
// parks with none pending: the answered requests and their reply buffers, the spare
// request, and an empty output buffer (unless a delivery holds it now); what is
// answered while it is parked is not kept either (pop). c.mu is held.
func (c *client) dropKeptLocked() {
	var kept int64
	for r := c.free; r != nil; r = r.next {
		for _, f := range r.spare {
			kept += int64(cap(f.reply))
		}
	}
	c.free, c.nfree = nil, 0
	c.kept.Add(-kept)
	c.spare = nil
	if c.wmu.TryLock() {
		if len(c.out) == 0 {
			c.out = nil
		}
		c.wmu.Unlock()
	}
}

// resume is the Parker's callback: the connection woke.
func (c *client) resume() { go c.serve() }

// resumed is called by the reader as it starts: a woken connection is no longer
// parked, and its deadline timer is stopped.
func (c *client) resumed() {
	if !c.woke {
		return // the client's first goroutine
	}
	c.woke = false
	c.mu.Lock()
	c.parked, c.reading = false, false
	if c.idleT != nil {
		c.idleT.Stop()
	}
	c.mu.Unlock()
}

// idleWake wakes a parked client at its read deadline.
func (c *client) idleWake() {
	c.mu.Lock()
	parked := c.parked
	c.parked = false
	c.mu.Unlock()
	c.unpark(parked)
}

// kickLocked tells the reader that a close or a deadline is on its way, so that it
// does not park before its next read sees it, and reports whether the connection is
// parked: the caller then wakes it with unpark before it closes the connection or
// sets the deadline. c.mu is held.
func (c *client) kickLocked() (parked bool) {
	c.kicked = true
	parked = c.parked
	c.parked = false
	return parked
}

// unpark wakes the connection if parked (kickLocked's result): it is deregistered
// from the Parker and a new goroutine runs its reader.
func (c *client) unpark(parked bool) {
	if parked {
		c.pk.Wake()
	}
}

// closeConn closes the client's connection, waking its reader first if it is
// parked: a parked descriptor is never closed, and the reader sees the close.
func (c *client) closeConn() {
	c.unpark(c.closeKick())
	c.nc.Close()
}

// closeKick is the first half of a close: the reader is told, and never parks again
// (a reader the Parker woke just before would otherwise park once more after its
// next read, and the close would find it parked past its Wake). It reports whether
// the connection is parked, for unpark.
func (c *client) closeKick() (parked bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closing = true
	return c.kickLocked()
}

// sweep wakes the reader of a client idle since the last sweep, waiting in Read with
// nothing buffered or in flight, so that it parks. May be called with pool.mu held.
func (c *client) sweep() {
	if c.active.Swap(false) {
		return
	}
	c.mu.Lock()
	idle := c.reading && c.readEmpty && !c.parked && !c.kicked && c.pending == 0
	c.mu.Unlock()
	if idle {
		c.parkKick.Store(true)
		_ = c.nc.SetReadDeadline(aLongTimeAgo)
	}
}

// sweepIdle runs the idle sweep every parkSweep until the proxy closes.
func (p *Proxy) sweepIdle() {
	defer p.wg.Done()
	t := time.NewTicker(parkSweep)
	defer t.Stop()
	for {
		select {
		case <-p.closed:
			return
		case <-t.C:
		}
		if !p.sweepPaused.Load() {
			p.sweepOnce()
		}
	}
}

// sweepOnce sweeps every pool's clients once.
func (p *Proxy) sweepOnce() {
	p.mu.Lock()
	pools := make([]*pool, 0, len(p.pools))
	for _, pl := range p.pools {
		pools = append(pools, pl)
	}
	p.mu.Unlock()
	for _, pl := range pools {
		pl.mu.Lock()
		for c := range pl.clients {
			c.sweep()
		}
		pl.mu.Unlock()
	}
}

// newParker opens the proxy's Parker; without one (no epoll on this system), idle
// readers wait in Read.
func newParker() *netpark.Parker {
	pk, err := netpark.New()
	if err != nil {
		return nil
	}
	return pk
}
