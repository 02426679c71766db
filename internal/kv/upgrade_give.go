package kv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// upgrade is a Proxy's side of the upgrade socket.
type upgrade struct {
	busy bool // a takeover is under way (guarded by Proxy.mu)

	mu   sync.Mutex
	ln   *net.UnixListener
	conn *net.UnixConn // the takeover session under way
	done chan struct{} // closed once the clients are handed over

	ch chan handoff // set before any pool's handover flag
}

// handoff is a client connection on its way to the new process.
type handoff struct {
	nc    net.Conn
	pool  string
	state []byte
}

// ServeUpgrades listens on the unix socket path for a new kvproxy taking over (see
// doc.go, Upgrade). A stale socket file is replaced; the socket is accessible to this
// process' user only, and a peer of another user (root excepted) is refused. clientWait
// bounds how long busy clients are waited for once a new process serves; the rest are
// closed then. TakenOver is closed when the handover is complete.
func (p *Proxy) ServeUpgrades(path string, clientWait time.Duration) error {
	ln, err := listenControl(path)
	if err != nil {
		return fmt.Errorf("kv: upgrade socket %s: %w", path, err)
	}
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		ln.Close()
		return ErrClosed
	}
	p.up.mu.Lock()
	if p.up.done == nil {
		p.up.done = make(chan struct{})
	}
	old := p.up.ln
	p.up.ln = ln
	p.up.mu.Unlock()
	p.wg.Add(1)
	p.mu.Unlock()
	if old != nil {
		old.Close()
	}
	go p.acceptUpgrades(ln, clientWait)
	return nil
}

// TakenOver is closed once a new process took over and every client was handed over
// (or closed): the Proxy then serves nothing and is to be shut down. Nil (never
// ready) before ServeUpgrades.
func (p *Proxy) TakenOver() <-chan struct{} {
	p.up.mu.Lock()
	defer p.up.mu.Unlock()
	return p.up.done
}

// stopUpgrades closes the upgrade socket and any session under way (Shutdown).
func (p *Proxy) stopUpgrades() {
	p.up.mu.Lock()
	ln, conn := p.up.ln, p.up.conn
	p.up.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	if conn != nil {
		conn.Close()
	}
}

func listenControl(path string) (*net.UnixListener, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		if c, err := net.DialTimeout("unixpacket", path, 100*time.Millisecond); err == nil {
			c.Close()
			return nil, &net.OpError{Op: "listen", Net: "unixpacket", Err: syscall.EADDRINUSE}
		}
		_ = os.Remove(path)
	}
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// peerAllowed reports whether the process at the other end of conn runs as this
// process' user or as root.
func peerAllowed(conn *net.UnixConn) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) { cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil {
		return err
	}
	if cerr != nil {
		return cerr
	}
	if cred.Uid != 0 && int(cred.Uid) != os.Getuid() {
		return fmt.Errorf("%w (uid %d, pid %d)", ErrPeerRefused, cred.Uid, cred.Pid)
	}
	return nil
}

func (p *Proxy) acceptUpgrades(ln *net.UnixListener, clientWait time.Duration) {
	defer p.wg.Done()
	backoff := 5 * time.Millisecond
	for {
		conn, err := ln.AcceptUnix()
		if err != nil {
			if isClosed(err) {
				return
			}
			p.log.Warn("upgrade socket accept failed", "err", err)
			if !p.pause(backoff) {
				return
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		if err := peerAllowed(conn); err != nil {
			p.log.Warn("upgrade refused", "err", err)
			conn.Close()
			continue
		}
		if p.upgradeSession(ln, conn, clientWait) {
			return
		}
	}
}

// upgradeSession runs one takeover with a new process: listeners out, its ready back,
// then the clients. It reports whether the new process took over; if not, this one
// serves on as before.
func (p *Proxy) upgradeSession(ln *net.UnixListener, conn *net.UnixConn, clientWait time.Duration) bool {
	_ = conn.SetDeadline(time.Now().Add(upgradeHelloTimeout))
	m, f, err := recvCtl(conn)
	if err == nil && m.Op != opHello {
		err = fmt.Errorf("%w: %q before hello", ErrBadControl, m.Op)
	}
	if f != nil {
		f.Close()
	}
	if err != nil {
		p.log.Warn("upgrade refused", "err", err)
		conn.Close()
		return false
	}
	newPid := m.Pid
	p.mu.Lock()
	if p.down || p.up.busy {
		p.mu.Unlock()
		conn.Close()
		return false
	}
	p.up.busy = true
	pools := make([]*pool, 0, len(p.pools))
	for _, pl := range p.pools {
		pools = append(pools, pl)
	}
	p.mu.Unlock()
	p.up.mu.Lock()
	p.up.conn = conn
	p.up.mu.Unlock()
	p.log.Info("upgrade: a new process asks to take over; passing the listeners", "new_pid", newPid)

	err = p.sendListeners(conn, pools)
	if err == nil {
		_ = conn.SetDeadline(time.Now().Add(upgradeReadyTimeout))
		m, f, err = recvCtl(conn)
		if f != nil {
			f.Close()
		}
		if err == nil && m.Op != opReady {
			err = fmt.Errorf("%w: %q instead of ready", ErrBadControl, m.Op)
		}
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("the new process ended without taking over")
		}
		p.log.Warn("upgrade abandoned; this process goes on serving", "new_pid", newPid, "err", err)
		conn.Close()
		p.mu.Lock()
		p.up.busy = false
		p.mu.Unlock()
		p.up.mu.Lock()
		p.up.conn = nil
		p.up.mu.Unlock()
		return false
	}
	ln.Close() // the new process listens on the path once it is done
	p.handOver(conn, pools, newPid, clientWait)
	return true
}

func (p *Proxy) sendListeners(conn *net.UnixConn, pools []*pool) error {
	for _, pl := range pools {
		if pl.ln == nil {
			continue
		}
		if err := sendCtl(conn, ctlMsg{Op: opListener, Kind: kindPool, Pool: pl.name, Listen: pl.listenKey}, pl.ln.(syscall.Conn)); err != nil {
			return err
		}
	}
	for _, l := range []struct {
		kind string
		ln   net.Listener
	}{{kindStats, p.statsLn}, {kindMetrics, p.metricsLn}} {
		if l.ln == nil {
			continue
		}
		if err := sendCtl(conn, ctlMsg{Op: opListener, Kind: l.kind, Listen: l.ln.Addr().String()}, l.ln.(syscall.Conn)); err != nil {
			return err
		}
	}
	return sendCtl(conn, ctlMsg{Op: opListeners, Pid: os.Getpid()}, nil)
}

// handOver runs once the new process serves on the listeners: this one stops
// accepting and passes each client as soon as it is between requests, closes those
// still busy after clientWait, and tells the new process it is done.
func (p *Proxy) handOver(conn *net.UnixConn, pools []*pool, newPid int, clientWait time.Duration) {
	p.log.Info("upgrade: the new process serves; handing over the clients", "new_pid", newPid)
	if p.statsLn != nil {
		p.statsLn.Close()
	}
	if p.httpSrv != nil {
		_ = p.httpSrv.Close()
	}
	for _, pl := range pools {
		if ul, ok := pl.ln.(*net.UnixListener); ok {
			ul.SetUnlinkOnClose(false) // the socket file is the new process' now
		}
		pl.closeListener()
	}
	ch := make(chan handoff, handoffQueue)
	sent := make(chan int)
	go p.sendClients(conn, ch, sent)
	p.up.ch = ch
	for _, pl := range pools {
		pl.handover.Store(true)
		pl.mu.Lock()
		for c := range pl.clients {
			c.kickIdle()
		}
		pl.mu.Unlock()
	}
	ctx, cancel := context.WithTimeout(context.Background(), clientWait)
	closed := 0
	for _, pl := range pools {
		done := make(chan struct{})
		go func() { pl.wg.Wait(); close(done) }()
		select {
		case <-done:
			continue
		case <-ctx.Done():
		}
		pl.mu.Lock()
		for c := range pl.clients {
			closed++
			c.closeConn()
		}
		pl.mu.Unlock()
		<-done
	}
	cancel()
	close(ch)
	n := <-sent
	_ = conn.SetDeadline(time.Now().Add(upgradeHelloTimeout))
	_ = sendCtl(conn, ctlMsg{Op: opDone}, nil)
	conn.Close()
	p.log.Info("upgrade: handover complete", "new_pid", newPid, "clients_passed", n, "clients_closed", closed)
	p.up.mu.Lock()
	p.up.conn = nil
	close(p.up.done)
	p.up.mu.Unlock()
}

// sendClients passes each queued client to the new process and closes this process'
// copy of its socket; once the control socket fails, the rest are only closed. It
// sends the number passed on sent when ch is closed.
func (p *Proxy) sendClients(conn *net.UnixConn, ch <-chan handoff, sent chan<- int) {
	n := 0
	var failed error
	for h := range ch {
		if failed == nil {
			_ = conn.SetWriteDeadline(time.Now().Add(upgradeHelloTimeout))
			if sc, ok := h.nc.(syscall.Conn); ok {
				failed = sendCtl(conn, ctlMsg{Op: opClient, Pool: h.pool, State: h.state}, sc)
			}
			if failed != nil {
				p.log.Error("upgrade: client not handed over; closing the rest", "err", failed)
			} else {
				n++
			}
		}
		h.nc.Close()
	}
	sent <- n
}

// kickIdle wakes the reader of a client waiting for a request with nothing pending,
// so that it hands the connection over; a busy client is woken by its writer once its
// replies are written. A parked client is woken by the Parker. May be called with
// pool.mu held.
func (c *client) kickIdle() {
	c.mu.Lock()
	idle := c.reading && c.pending == 0
	parked := idle && c.kickLocked()
	c.mu.Unlock()
	if idle {
		_ = c.nc.SetReadDeadline(aLongTimeAgo)
		c.unpark(parked)
	}
}

// closeOrHandOff ends a client connection in this process: it is queued for the new
// process when the reader stopped between requests for a handover (and every reply
// was written), else closed.
func (c *client) closeOrHandOff() {
	ex, ok := c.sess.(SessionExporter)
	if !c.handoff || c.broken.Load() || !ok {
		// A session that cannot say its state is closed between requests, as a
		// drain does.
		c.nc.Close()
		return
	}
	state := ex.ExportState()
	_ = c.nc.SetDeadline(time.Time{})
	c.pool.p.up.ch <- handoff{nc: c.nc, pool: c.pool.name, state: state}
}
