package pgpool

import (
	"crypto/tls"
	"net"
	"syscall"
	"time"
)

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
	c.mu.Lock()
	c.dropPendingCancelLocked()
	c.mu.Unlock()
}

// pendingCancel is a CancelRequest that came while its client had nothing in flight
// but had sent bytes pgpool had not yet read (in the socket's receive queue or the
// client's read buffer): PostgreSQL would have read them before the cancel, so the
// cancel applies to the requests that begin there. A client holds at most one; the
// cancel request's own goroutine waits for it to be resolved, at most
// pendingCancelWait.
type pendingCancel struct {
	// bound is the client's stream offset (wire.Reader.Consumed) past the bytes
	// it had sent when the cancel came: a message starting before it was sent
	// before the cancel.
	bound int64
	// ch gets the request to cancel (its cancel counted with cancelStarted), or
	// the zero cancelShot when there is nothing to cancel. Buffered: the one who
	// resolves the cancel never waits.
	ch chan cancelShot
}

// cancelShot is a request a cancel is forwarded for: the server connection running
// it, when the client's oldest unanswered request was sent (client.queryAt), and what
// the connection's reader had read then.
type cancelShot struct {
	s    *server
	at   time.Time
	recv int64
}

// shotLocked describes the request the client has in flight on s now. c.mu is held.
func (c *client) shotLocked(s *server) cancelShot {
	return cancelShot{s: s, at: c.queryAt, recv: s.rd.Received()}
}

// cancelRetries bounds how many times a cancel PostgreSQL may have missed is sent
// again, the first cancelRetryAfter after the first, each wait twice the last.
const (
	cancelRetries    = 3
	cancelRetryAfter = 20 * time.Millisecond
)

// cancelHooks are called, when set (tests only), as a client's goroutine reaches a
// point of the read path or of binding, so that a test can hold the client there.
type cancelHooks struct {
	// beforeRead: the client has no whole message buffered and is about to read
	// (or park).
	beforeRead func(c *client)
	// afterRead: the client read a message of type typ and has not yet handled it.
	afterRead func(c *client, typ byte)
	// pending: a cancel for the client became pending.
	pending func(c *client)
	// shot: a cancel for the client is about to be sent to PostgreSQL, for the
	// try-th time (0: the first); false: it is not sent, as if PostgreSQL had
	// ignored it.
	shot func(c *client, try int) bool
	// acquired: the pool handed s to the client, which does not own it yet.
	acquired func(c *client, s *server)
}

// pendingCancelWait bounds how long a pending cancel waits for the request it is
// for: cancel_wait_timeout, or query_wait_timeout when that is off, or 10s.
func pendingCancelWait(g *Config) time.Duration {
	switch {
	case g.CancelWaitTimeout > 0:
		return g.CancelWaitTimeout
	case g.QueryWaitTimeout > 0:
		return g.QueryWaitTimeout
	}
	return 10 * time.Second
}

// cancel forwards a CancelRequest to the server connection serving the client with that
// key at this moment, while that client has a request in flight. When it has none, but
// bytes the client sent are still unread, the cancel waits (pendingCancel) for a
// request from those bytes to be in flight and is then forwarded; once they are read
// with nothing to cancel, or the wait is over, it is dropped. A cancel never reaches a
// request the client sent after it. The server connection is not handed to another
// client before the cancel has completed.
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
	var p *pendingCancel
	var shot cancelShot
	if busy {
		s.cancelStarted()
		shot = c.shotLocked(s)
	} else if c.pendCancel.Load() == nil && clientState(c.state.Load()) != clientClosed {
		// A closed client's cancel is not made pending: unregister, which drops
		// the pending one, follows closedNow.
		if bound, ok := c.unreadBound(); ok && bound > c.readAt.Load() {
			p = &pendingCancel{bound: bound, ch: make(chan cancelShot, 1)}
			c.pendCancel.Store(p)
		}
	}
	c.mu.Unlock()
	if p != nil {
		shot = pl.awaitPendingCancel(c, p)
	}
	if shot.s == nil {
		pl.log.Debug("cancel request for a client with nothing running dropped", "client", c.id)
		return
	}
	pl.log.Info("forwarding cancel request", "client", c.id, "server", shot.s.String())
	pl.forwardCancel(c, shot)
}

// forwardCancel sends a CancelRequest for the request of shot, whose cancel is
// counted. PostgreSQL ignores a cancel that comes while the backend is still reading
// the request, even one whose bytes have reached it: when the same request is still
// unanswered a moment after, with nothing at all come back from the server since, the
// cancel is sent again (at most cancelRetries times). A later request of the client
// has another queryAt; other clients cannot have the connection meanwhile.
func (pl *Pooler) forwardCancel(c *client, shot cancelShot) {
	g := pl.settings()
	wait := cancelRetryAfter
	for try := 0; ; try++ {
		if h := pl.hooks.Load(); h == nil || h.shot == nil || h.shot(c, try) {
			shot.s.cancel(g.CancelWaitTimeout)
		}
		shot.s.cancelDone()
		if try == cancelRetries {
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-pl.done:
			t.Stop()
			return
		}
		wait *= 2
		c.mu.Lock()
		again := c.server == shot.s && c.inflight.requests() > 0 && c.queryAt.Equal(shot.at) &&
			!shot.s.heardSince(shot.recv)
		if again {
			shot.s.cancelStarted()
		}
		c.mu.Unlock()
		if !again {
			return
		}
		pl.log.Debug("cancel request sent again: the request is still running", "client", c.id, "server", shot.s.String())
	}
}

// heardSince reports whether the server has sent anything since its reader had read
// recv bytes: read by now, or waiting in the socket's receive queue.
func (s *server) heardSince(recv int64) bool {
	if s.rd.Received() != recv {
		return true
	}
	n, _, ok := queuedOn(s.conn)
	return !ok || n > 0
}

// queuedOn reports how many bytes wait unread in the receive queue of conn's socket
// (for a TLS connection, the socket under it). sock is false when conn has no socket
// to ask (not a syscall.Conn); ok is false when the queue could not be read.
func queuedOn(conn net.Conn) (n int, sock, ok bool) {
	if tc, isTLS := conn.(*tls.Conn); isTLS {
		conn = tc.NetConn()
	}
	sc, isSock := conn.(syscall.Conn)
	if !isSock {
		return 0, false, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, true, false
	}
	n, ok = queuedIn(rc)
	return n, true, ok
}

// awaitPendingCancel waits until the client resolves p, and returns the request to
// cancel (none: dropped). A parked client is woken to read now.
func (pl *Pooler) awaitPendingCancel(c *client, p *pendingCancel) cancelShot {
	if h := pl.hooks.Load(); h != nil && h.pending != nil {
		h.pending(c)
	}
	c.idleWake() // reads what it was sent, as if woken by its bytes
	t := time.NewTimer(pendingCancelWait(pl.settings()))
	defer t.Stop()
	select {
	case s := <-p.ch:
		return s
	case <-t.C:
	case <-pl.done:
	}
	c.mu.Lock()
	if c.pendCancel.Load() == p {
		c.pendCancel.Store(nil)
	}
	c.mu.Unlock()
	// Resolved meanwhile? A request sent here has its cancel counted.
	select {
	case s := <-p.ch:
		return s
	default:
		return cancelShot{}
	}
}

// unreadBound returns the stream offset past what the client had sent at this moment:
// what its reader has read, plus what waits in its socket's receive queue. The
// reader's count is taken first, so a read in between makes the bound smaller, never
// larger: a cancel may then be dropped, but never reach a later request. A TLS
// client's bound is what its reader has read: what crypto/tls holds decrypted or
// what waits encrypted in the receive queue cannot be counted in plaintext bytes.
func (c *client) unreadBound() (int64, bool) {
	bound := c.rd.Received()
	if c.tls {
		return bound, true
	}
	n, sock, ok := queuedOn(c.conn)
	if !sock {
		return bound, true
	}
	if !ok {
		return 0, false
	}
	return bound + int64(n), true
}

// dropPendingCancelLocked resolves the client's pending cancel, if any, as dropped.
// c.mu is held.
func (c *client) dropPendingCancelLocked() {
	if p := c.pendCancel.Load(); p != nil {
		c.pendCancel.Store(nil)
		p.ch <- cancelShot{}
	}
}

// cancelBeforeRead is called by the client's goroutine when it has no whole message
// buffered, before it reads or parks: a pending cancel is forwarded if a request it
// covers is in flight, dropped once the bytes it covers are all handled.
func (c *client) cancelBeforeRead() {
	at := c.rd.Consumed()
	c.readAt.Store(at)
	if p := c.pendCancel.Load(); p != nil {
		// Past the bound, what is in flight may have been sent after the cancel.
		c.resolvePendingCancel(at <= p.bound, at >= p.bound)
	}
	if h := c.pl.hooks.Load(); h != nil && h.beforeRead != nil {
		h.beforeRead(c)
	}
}

// cancelAfterForward is called by the client's goroutine after it handled the message
// that started at stream offset start: a pending cancel that covers it is forwarded
// if a request is in flight now.
func (c *client) cancelAfterForward(start int64) {
	if p := c.pendCancel.Load(); p != nil && start < p.bound {
		c.resolvePendingCancel(true, false)
	}
}

// resolvePendingCancel forwards the pending cancel, when fire allows it and the client
// has a request in flight, after writing what is buffered for its server connection,
// so that the request is there before the cancel. Otherwise it drops it if drop says
// so.
func (c *client) resolvePendingCancel(fire, drop bool) {
	if fire {
		c.flushServer()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pendCancel.Load()
	if p == nil {
		return
	}
	if s := c.server; fire && s != nil && c.inflight.requests() > 0 {
		s.cancelStarted()
		c.pendCancel.Store(nil)
		p.ch <- c.shotLocked(s)
		return
	}
	if drop {
		c.dropPendingCancelLocked()
	}
}
