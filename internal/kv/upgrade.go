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

	"github.com/poolsuite/poolsuite/internal/config/nutyml"
)

// SessionExporter is implemented by a Session whose protocol state can move with its
// connection to a new process at an upgrade (see doc.go, Upgrade). The state is taken
// between requests and is at most 1 KB. At an upgrade, clients whose Session does not
// implement it are closed between requests instead.
type SessionExporter interface {
	ExportState() []byte
}

// SessionImporter is implemented by a Codec that can resume a session exported by
// SessionExporter. A client handed over to a Codec without ImportSession starts a new
// session.
type SessionImporter interface {
	ImportSession(state []byte) (Session, error)
}

// ErrUpgrading: a Reload was refused because the Proxy is handing over to a new
// process.
var ErrUpgrading = errors.New("kv: an upgrade is under way")

// ErrPeerRefused: a process of another user connected to the upgrade socket.
var ErrPeerRefused = errors.New("kv: upgrade socket peer is of another user")

// Timeouts of the control socket.
const (
	upgradeHelloTimeout = 10 * time.Second // the new process' hello, and each message sent
	upgradeReadyTimeout = time.Minute      // the new process' start, once it has the listeners
	handoffQueue        = 64               // clients waiting for the control socket
)

// aLongTimeAgo is a deadline in the past: setting it wakes a blocked read at once.
var aLongTimeAgo = time.Unix(1, 0)

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
			c.nc.Close()
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
// replies are written. Called with pool.mu held.
func (c *client) kickIdle() {
	c.mu.Lock()
	idle := c.reading && c.pending == 0
	c.mu.Unlock()
	if idle {
		_ = c.nc.SetReadDeadline(aLongTimeAgo)
	}
}

// closeOrHandOff ends a client connection in this process: it is queued for the new
// process when the reader stopped between requests for a handover (and every reply
// was written), else closed.
func (c *client) closeOrHandOff() {
	ex, ok := c.sess.(SessionExporter)
	if !c.handoff || c.broken.Load() || !ok {
		// A session that cannot say its state (memcached's, which tracks the
		// protocol detected and value bytes still to discard) is closed between
		// requests, as a drain does.
		c.nc.Close()
		return
	}
	state := ex.ExportState()
	_ = c.nc.SetDeadline(time.Time{})
	c.pool.p.up.ch <- handoff{nc: c.nc, pool: c.pool.name, state: state}
}

// sendCtl sends one control message, with the socket of f when f is not nil.
func sendCtl(conn *net.UnixConn, m ctlMsg, f syscall.Conn) error {
	b, err := m.encode()
	if err != nil {
		return err
	}
	if f == nil {
		_, _, err = conn.WriteMsgUnix(b, nil, nil)
		return err
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var werr error
	if err := rc.Control(func(fd uintptr) { _, _, werr = conn.WriteMsgUnix(b, unix.UnixRights(int(fd)), nil) }); err != nil {
		return err
	}
	return werr
}

// recvCtl receives one control message and the descriptor it carries, if any.
func recvCtl(conn *net.UnixConn) (ctlMsg, *os.File, error) {
	buf := make([]byte, maxCtlMsg+1)
	oob := make([]byte, unix.CmsgSpace(4*8))
	n, oobn, flags, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return ctlMsg{}, nil, err
	}
	var fds []int
	if oobn > 0 {
		scms, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return ctlMsg{}, nil, fmt.Errorf("%w: %v", ErrBadControl, err)
		}
		for _, scm := range scms {
			if r, err := unix.ParseUnixRights(&scm); err == nil {
				fds = append(fds, r...)
			}
		}
	}
	if n == 0 && len(fds) == 0 {
		return ctlMsg{}, nil, io.EOF
	}
	m, err := decodeCtl(buf[:n], len(fds))
	if err == nil && flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 {
		err = fmt.Errorf("%w: truncated", ErrBadControl)
	}
	if err != nil {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return ctlMsg{}, nil, err
	}
	if len(fds) == 0 {
		return m, nil, nil
	}
	unix.CloseOnExec(fds[0])
	return m, os.NewFile(uintptr(fds[0]), "kvproxy-upgrade"), nil
}

// Takeover is the new process' side of an upgrade: the listeners received from the
// running kvproxy, used by Start (Options.Takeover), then the clients it hands over.
type Takeover struct {
	conn   *net.UnixConn
	oldPid int

	mu  sync.Mutex
	lns []*inherited

	done chan struct{}
	err  error // why the handover ended early; read after done
	n    int   // clients adopted; read after done
}

type inherited struct {
	kind, listen string
	ln           net.Listener
	taken        bool
}

// maxInherited bounds the listeners one takeover may pass.
const maxInherited = 4096

// DialTakeover connects to a running kvproxy's upgrade socket at path and receives its
// listening sockets. Nothing changes in the running process until Ready; Abort (or
// this process' exit) leaves it serving.
func DialTakeover(path string) (*Takeover, error) {
	conn, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		return nil, fmt.Errorf("kv: takeover %s: %w", path, err)
	}
	t := &Takeover{conn: conn, done: make(chan struct{})}
	if err := t.receiveListeners(); err != nil {
		t.Abort()
		return nil, fmt.Errorf("kv: takeover %s: %w", path, err)
	}
	return t, nil
}

func (t *Takeover) receiveListeners() error {
	_ = t.conn.SetDeadline(time.Now().Add(upgradeHelloTimeout))
	if err := sendCtl(t.conn, ctlMsg{Op: opHello, Version: upgradeVersion, Pid: os.Getpid()}, nil); err != nil {
		return err
	}
	for {
		m, f, err := recvCtl(t.conn)
		if err != nil {
			return err
		}
		switch m.Op {
		case opListener:
			ln, err := net.FileListener(f)
			f.Close()
			if err != nil {
				return err
			}
			t.lns = append(t.lns, &inherited{kind: m.Kind, listen: m.Listen, ln: ln})
			if len(t.lns) > maxInherited {
				return fmt.Errorf("%w: more than %d listeners", ErrBadControl, maxInherited)
			}
		case opListeners:
			t.oldPid = m.Pid
			return nil
		default:
			if f != nil {
				f.Close()
			}
			return fmt.Errorf("%w: %q while listeners were expected", ErrBadControl, m.Op)
		}
	}
}

// OldPid returns the process id of the kvproxy being taken over.
func (t *Takeover) OldPid() int { return t.oldPid }

// Abort gives the takeover up before Ready: the received listeners are closed here
// (the running process keeps its own) and it goes on serving.
func (t *Takeover) Abort() {
	t.conn.Close()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, l := range t.lns {
		l.ln.Close()
	}
	t.lns = nil
}

// take returns the received listener of that kind whose address is listen (a pool's
// listen key, or a stats or metrics address), or nil.
func (t *Takeover) take(kind, listen string) net.Listener {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, l := range t.lns {
		if l.taken || l.kind != kind {
			continue
		}
		if l.listen == listen || (kind != kindPool && sameTCPAddr(listen, l.ln.Addr())) {
			l.taken = true
			return l.ln
		}
	}
	return nil
}

// sameTCPAddr reports whether a listener bound at got is what listening on want
// (host:port, possibly a name or an empty host) would give.
func sameTCPAddr(want string, got net.Addr) bool {
	ga, ok := got.(*net.TCPAddr)
	if !ok {
		return false
	}
	wa, err := net.ResolveTCPAddr("tcp", want)
	if err != nil || wa.Port != ga.Port {
		return false
	}
	if wa.IP == nil || wa.IP.IsUnspecified() {
		return ga.IP == nil || ga.IP.IsUnspecified()
	}
	return wa.IP.Equal(ga.IP)
}

// Ready tells the running kvproxy that p (started with this Takeover) serves: it
// stops accepting and hands its clients over, which p adopts in the background until
// Done. Received listeners p does not use are closed. wait bounds the handover (0:
// none). If Ready fails, the old process goes on serving and p should be shut down.
func (t *Takeover) Ready(p *Proxy, wait time.Duration) error {
	t.mu.Lock()
	for _, l := range t.lns {
		if !l.taken {
			l.ln.Close()
		} else if ul, ok := l.ln.(*net.UnixListener); ok {
			ul.SetUnlinkOnClose(true) // this process owns the socket file now
		}
	}
	t.lns = nil
	t.mu.Unlock()
	_ = t.conn.SetDeadline(time.Now().Add(upgradeHelloTimeout))
	if err := sendCtl(t.conn, ctlMsg{Op: opReady}, nil); err != nil {
		t.conn.Close()
		return fmt.Errorf("kv: takeover: %w", err)
	}
	dl := time.Time{}
	if wait > 0 {
		dl = time.Now().Add(wait)
	}
	_ = t.conn.SetDeadline(dl)
	go t.adoptClients(p)
	return nil
}

// Done is closed when the old process has handed every client over (or closed it),
// or the control connection failed (Err says why).
func (t *Takeover) Done() <-chan struct{} { return t.done }

// Err returns, after Done, why the handover ended before the old process said it was
// done, or nil.
func (t *Takeover) Err() error { return t.err }

// Adopted returns, after Done, how many clients were handed over.
func (t *Takeover) Adopted() int { return t.n }

func (t *Takeover) adoptClients(p *Proxy) {
	defer close(t.done)
	defer t.conn.Close()
	for {
		m, f, err := recvCtl(t.conn)
		if err != nil {
			t.err = err
			return
		}
		switch m.Op {
		case opClient:
			if p.adopt(m.Pool, f, m.State) {
				t.n++
			}
		case opDone:
			return
		default:
			if f != nil {
				f.Close()
			}
			t.err = fmt.Errorf("%w: %q during the handover", ErrBadControl, m.Op)
			return
		}
	}
}

// adopt serves a client connection handed over by the old process, with its session
// state, in pool name. It reports whether the client is served.
func (p *Proxy) adopt(name string, f *os.File, state []byte) bool {
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		p.log.Warn("upgrade: client not adopted", "err", err)
		return false
	}
	p.mu.Lock()
	pl := p.pools[name]
	down := p.down
	p.mu.Unlock()
	if pl == nil || down {
		p.log.Info("upgrade: client of a pool this process does not run closed", "pool", name)
		nc.Close()
		return false
	}
	c := newClient(pl, nc)
	if imp, ok := c.codec.(SessionImporter); ok && state != nil {
		sess, err := imp.ImportSession(state)
		if err != nil {
			p.log.Warn("upgrade: client with an invalid session state closed", "pool", name, "err", err)
			nc.Close()
			return false
		}
		c.sess = sess
	}
	// As serveListener does for an accepted client.
	pl.mu.Lock()
	if pl.closing.Load() {
		pl.mu.Unlock()
		nc.Close()
		return false
	}
	pl.clients[c] = struct{}{}
	pl.wg.Add(1)
	pl.mu.Unlock()
	p.totalConns.Add(1)
	p.currConns.Add(1)
	pl.stats.clientConnections.Add(1)
	go c.serve()
	return true
}

// listenPool opens a pool's listener, or takes the one received for its address.
func (p *Proxy) listenPool(pc *nutyml.Pool) (net.Listener, error) {
	if ln := p.opts.Takeover.take(kindPool, listenKey(pc.Listen)); ln != nil {
		if err := setBacklog(ln, pc.Backlog); err != nil {
			p.log.Warn("backlog not changed", "pool", pc.Name, "err", err)
		}
		return ln, nil
	}
	return listen(pc)
}

// listenTCP opens the stats or metrics listener, or takes the one received for addr.
func (p *Proxy) listenTCP(kind, addr string) (net.Listener, error) {
	if ln := p.opts.Takeover.take(kind, addr); ln != nil {
		return ln, nil
	}
	return net.Listen("tcp", addr)
}
