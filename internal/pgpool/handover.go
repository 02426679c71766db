package pgpool

// Online restart (pgpool -R), the running process's side.
//
// The new process logs in to the admin console over the unix socket as pgpool's own
// OS user, runs SUSPEND and then SHOW FDS. SHOW FDS then hands everything over: the
// listeners stop accepting (their backlog moves with them), the suspended readers go
// on so that requests under way are answered, and each client is handed over by its
// own goroutine at its next handover point: between transactions, with nothing in
// flight, its replies flushed, and what was read from it and not yet processed sent
// along (Pending). A row with its socket goes out per listener and per client. A
// client not at a handover point within suspend_timeout is closed, as are TLS clients
// (their socket cannot move) at their next handover point. Idle server connections
// are not handed over: the new process opens its own, and these close when the
// console's SHUTDOWN that follows ends this process.

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// ErrTakeoverGone: the new process's connection closed during SHOW FDS.
var ErrTakeoverGone = errors.New("pgpool: the new process left during the online restart")

// errHandedOver ends the goroutine of a client whose connection went to a new process.
var errHandedOver = errors.New("pgpool: connection handed over to a new process")

// aLongTimeAgo is a deadline in the past: setting it wakes a blocked read or accept.
var aLongTimeAgo = time.Unix(1, 0)

// defaultSuspendTimeout is suspend_timeout when the configuration has none.
const defaultSuspendTimeout = 10 * time.Second

// handover is an online restart under way in the running process.
type handover struct {
	admin *client // the new process's console connection
	// clients receives the clients their goroutines handed over; unbuffered, so a
	// client is handed over only if SHOW FDS takes it before done closes.
	clients chan handedClient
	done    chan struct{} // closed when SHOW FDS stops taking clients
	release chan struct{} // closed if the handover is abandoned: accept again
	held    chan struct{} // a Serve loop holds its listener (one send per loop)
	// finished: the new process sent SHUTDOWN; this process ends, the listeners
	// stay held.
	finished atomic.Bool

	// smu guards stops: the server readers being stopped to hand their connection
	// over with its client.
	smu   sync.Mutex
	stops map[*server]*serverStop
}

// serverStop is a server reader asked to stop for a handover.
type serverStop struct {
	stopped chan struct{} // closed by the reader when it stopped
	pending []byte        // what it had read and not processed
	ok      bool          // the bytes are whole messages (no long message under way)
}

// handedClient is a client's state and a duplicate of its socket, and of its server
// connection's when it moves with it.
type handedClient struct {
	st *fdClient
	f  *os.File
	sf *os.File
}

// atHandoverPointLocked reports whether the client is between transactions with
// nothing in flight, so that its connection can move. Call with c.mu held.
func (c *client) atHandoverPointLocked() bool {
	if c.server != nil || c.inflight.len() > 0 || c.stream != streamSynced || c.longIn != longInNone ||
		c.aborted || c.checking != nil || c.sess.pins != 0 || c.sess.pinCheck ||
		len(c.sess.setOps) > 0 || c.out != nil || c.sess.stmts.unnamedPinned {
		return false
	}
	if p := c.prep; p != nil && (p.skipping || p.waiting || p.dropToSync) {
		return false
	}
	return true
}

// linkedHandoverLocked returns the client's server connection when the client can
// move with it: it keeps the connection (session mode, or pinned), which is idle
// outside a transaction with nothing in flight. Call with c.mu held.
func (c *client) linkedHandoverLocked() *server {
	s := c.server
	if s == nil || s.tls || s.closed.Load() || s.txStatus.Load() != 'I' || c.inflight.len() > 0 ||
		c.stream != streamSynced || c.longIn != longInNone || c.aborted || c.checking != nil ||
		c.sess.pinCheck || len(c.sess.setOps) > 0 || c.out != nil || c.cfg == nil ||
		(c.cfg.mode != PoolSession && c.sess.pins == 0) {
		return nil
	}
	if p := c.prep; p != nil && (p.skipping || p.waiting || p.dropToSync) {
		return nil
	}
	s.cmu.Lock()
	cancels := s.cancels
	s.cmu.Unlock()
	if cancels > 0 {
		return nil
	}
	return s
}

// exportServer returns a stopped server connection's state.
func exportServer(s *server, pending []byte) *fdServer {
	fs := &fdServer{Addr: s.addr, PID: s.pid, Secret: s.secret, CreatedAt: s.createdAt, Pending: pending}
	s.paramsMu.Lock()
	fs.Params = make(map[string]string, len(s.params))
	for k, v := range s.params {
		fs.Params[k] = v
	}
	fs.Sets = make(map[string]string, len(s.sets))
	for k, v := range s.sets {
		fs.Sets[k] = v
	}
	s.paramsMu.Unlock()
	s.stmts.mu.Lock()
	for e := s.stmts.order.Front(); e != nil; e = e.Next() {
		cs := e.Value.(*cachedStmt)
		fs.Stmts = append(fs.Stmts, fdCached{Name: cs.name, Stale: cs.stale})
	}
	s.stmts.mu.Unlock()
	return fs
}

// welcomeCopy returns the pool's welcome parameters, nil if it has none yet.
func (p *pool) welcomeCopy() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.welcome == nil {
		return nil
	}
	m := make(map[string]string, len(p.welcome))
	for k, v := range p.welcome {
		m[k] = v
	}
	return m
}

// stopServer stops the reader of a server connection that moves with its client.
func (h *handover) stopServer(s *server) *serverStop {
	st := &serverStop{stopped: make(chan struct{})}
	h.smu.Lock()
	if h.stops == nil {
		h.stops = make(map[*server]*serverStop)
	}
	h.stops[s] = st
	h.smu.Unlock()
	s.conn.SetReadDeadline(aLongTimeAgo)
	return st
}

// serverHandedOver is called by a server reader whose read failed: if the reader was
// asked to stop for a handover, it keeps what it had read and reports true (the
// reader then ends without closing the connection).
func (s *server) serverHandedOver(err error) bool {
	if s.pool == nil || s.pool.pooler == nil {
		return false
	}
	h := s.pool.pooler.ho.Load()
	var ne net.Error
	if h == nil || !errors.As(err, &ne) || !ne.Timeout() {
		return false
	}
	h.smu.Lock()
	st := h.stops[s]
	delete(h.stops, s)
	h.smu.Unlock()
	if st == nil {
		return false
	}
	st.pending, st.ok = s.rd.Unread()
	close(st.stopped)
	return true
}

// detachServer forgets a server connection handed over: without Terminate (the
// backend serves on, for the new process), its slot given back.
func (c *client) detachServer(s *server) {
	c.mu.Lock()
	if c.server == s {
		c.server = nil
	}
	c.mu.Unlock()
	s.owner.Store(nil)
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.setState(serverClosed)
		s.conn.Close()
	})
	if s.pool != nil {
		s.pool.serverClosed(s)
	}
}

// exportLocked returns the client's state for the new process. Call with c.mu held.
func (c *client) exportLocked() *fdClient {
	st := &fdClient{
		User: c.user, Database: c.database, AppName: c.appName, Params: c.params,
		Remote: c.remote, Unix: c.unix, PID: c.pid, Secret: c.secret, ConnectedAt: c.connectedAt,
		Vals: c.sess.vals, Sets: c.sess.sets, Base: c.sess.base, StartupSets: c.sess.startupSets,
	}
	if p := c.prep; p != nil {
		ss := &c.sess.stmts
		fp := &fdPrep{Tracking: p.tracking.Load(), Off: p.off, Unnamed: ss.unnamed, UnnamedSeq: ss.unnamedSeq, Seq: ss.seq}
		for _, s := range ss.named {
			fp.Stmts = append(fp.Stmts, fdStmt{Name: s.name, Srv: s.srv, Parse: s.parse, Seq: s.seq})
		}
		st.Prep = fp
	}
	if c.pool != nil {
		st.Cred = credToFD(c.pool.config().server.cred)
		st.Welcome = c.pool.welcomeCopy()
	}
	return st
}

// handOver hands the client over to the new process when an online restart is under
// way and the client is at a handover point; msg, when not nil, is the message just
// read and not processed. It reports whether the connection is gone to the new
// process (the goroutine then ends without a word to the client).
func (c *client) handOver(msg []byte) bool {
	h := c.pl.ho.Load()
	if h == nil || c.admin || c.rd.Remaining() > 0 {
		return false
	}
	c.flushSynthetic()
	c.mu.Lock()
	var st *fdClient
	var srv *server
	if c.atHandoverPointLocked() {
		st = c.exportLocked()
	} else if srv = c.linkedHandoverLocked(); srv != nil {
		st = c.exportLocked()
		st.Pins = c.sess.pins
	}
	c.mu.Unlock()
	if st == nil {
		return false
	}
	if c.tls {
		// A TLS session cannot move: the client is closed here, between transactions.
		c.closeReason = "TLS connection cannot be handed over"
		c.close()
		return false
	}
	c.wmu.Lock()
	err := c.w.Flush()
	c.wmu.Unlock()
	if err != nil {
		return false
	}
	pending, ok := c.rd.Unread()
	if !ok {
		return false
	}
	if msg != nil {
		pending = append(append([]byte(nil), msg...), pending...)
	}
	st.Pending = pending
	var sf *os.File
	if srv != nil {
		// The server's reader stops; what it read and did not relay moves too.
		stop := h.stopServer(srv)
		select {
		case <-stop.stopped:
		case <-srv.done:
		}
		select {
		case <-stop.stopped:
		default:
			return false // the connection ended meanwhile: the reader told the client
		}
		c.mu.Lock()
		still := c.server == srv && srv.txStatus.Load() == 'I' && c.inflight.len() == 0
		c.mu.Unlock()
		if !stop.ok || !still {
			// Cannot move after all, and its reader is gone: both close.
			c.closeReason = "server connection could not be handed over"
			srv.close()
			c.close()
			return false
		}
		st.Server = exportServer(srv, stop.pending)
		if sf, err = socketFile(srv.conn); err != nil {
			srv.close()
			c.close()
			return false
		}
	}
	f, err := socketFile(c.conn)
	if err != nil {
		c.pl.log.Warn("cannot hand a client over", "client", c.id, "err", err)
		if sf != nil {
			sf.Close()
			srv.close()
			c.close()
		}
		return false
	}
	select {
	case h.clients <- handedClient{st: st, f: f, sf: sf}:
		if srv != nil {
			c.detachServer(srv)
		}
		return true
	case <-h.done:
		f.Close()
		if sf != nil {
			sf.Close()
			srv.close()
			c.close()
		}
		return false
	}
}

// handoverWoke reports whether a failed client read was SHOW FDS waking the client
// to see whether it can be handed over (the read is then retried), not one of the
// client's own timeouts (client_idle_timeout, idle_transaction_timeout), which still
// apply during an online restart.
func (c *client) handoverWoke(err error) bool {
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !c.hoWoken.Swap(false) {
		return false
	}
	c.conn.SetReadDeadline(time.Time{})
	return true
}

// holdAccept keeps a Serve loop from accepting while an online restart is under way:
// the listener is the new process's. It reports whether it held (Serve then goes on,
// and ends after Shutdown).
func (pl *Pooler) holdAccept(ln net.Listener) bool {
	h := pl.ho.Load()
	if h == nil {
		return false
	}
	select {
	case h.held <- struct{}{}:
	case <-h.release:
	case <-pl.done:
		return false // Serve ends
	}
	select {
	case <-h.release:
		setAcceptDeadline(ln, time.Time{})
	case <-pl.done:
	}
	return true
}

func setAcceptDeadline(ln net.Listener, t time.Time) {
	if d, ok := ln.(interface{ SetDeadline(time.Time) error }); ok {
		d.SetDeadline(t)
	}
}

// handoverEnded is called when a console connection ends: if it was the new
// process's and this process is not shutting down, the restart was abandoned and
// the listeners accept again.
func (pl *Pooler) handoverEnded(c *client) {
	h := pl.ho.Load()
	if h == nil || h.admin != c || h.finished.Load() {
		return
	}
	select {
	case <-pl.done:
		return
	default:
	}
	pl.log.Warn("online restart abandoned by the new process: accepting again")
	pl.ho.Store(nil)
	close(h.release)
}
