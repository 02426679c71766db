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
	"encoding/json"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/poolsuite/poolsuite/internal/pgpool/admin"
)

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
}

// handedClient is a client's state and a duplicate of its socket.
type handedClient struct {
	st *fdClient
	f  *os.File
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
	if c.atHandoverPointLocked() {
		st = c.exportLocked()
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
	f, err := socketFile(c.conn)
	if err != nil {
		c.pl.log.Warn("cannot hand a client over", "client", c.id, "err", err)
		return false
	}
	select {
	case h.clients <- handedClient{st: st, f: f}:
		return true
	case <-h.done:
		f.Close()
		return false
	}
}

// handoverWoke reports whether a failed client read was SHOW FDS waking the client
// to see whether it can be handed over; the read is then retried.
func (c *client) handoverWoke(err error) bool {
	var ne net.Error
	if c.pl.ho.Load() == nil || !errors.As(err, &ne) || !ne.Timeout() {
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

// showFDs answers SHOW FDS: an online restart when the new process asks (pgpool's own
// OS user over the unix socket, after SUSPEND), the list of sockets otherwise.
func (c *client) showFDs() error {
	uc, isUnix := c.conn.(*net.UnixConn)
	if !c.ownUser || !isUnix || !c.pl.susp.on.Load() {
		return c.listFDs()
	}
	return c.handOverAll(uc)
}

// listFDs writes SHOW FDS's rows without passing any socket.
func (c *client) listFDs() error {
	pl := c.pl
	var rows []fdRow
	pl.mu.Lock()
	lns := append([]net.Listener(nil), pl.lns...)
	pl.mu.Unlock()
	for _, ln := range lns {
		rows = append(rows, listenerRow(ln, socketFD(ln)))
	}
	for _, o := range pl.clientList() {
		if clientState(o.state.Load()) == clientLogin {
			continue
		}
		o.mu.Lock()
		r := clientRow(o, socketFD(o.conn))
		if o.server != nil {
			r.link = socketFD(o.server.conn)
		}
		o.mu.Unlock()
		rows = append(rows, r)
	}
	for _, p := range pl.poolList() {
		p.mu.Lock()
		for s := range p.servers {
			if serverState(s.state.Load()) == serverLogin {
				continue
			}
			host, port := hostPort(s.conn.RemoteAddr(), 0)
			rows = append(rows, fdRow{fd: socketFD(s.conn), task: "server", user: p.user, database: p.database,
				addr: host, port: port, cancel: cancelOf(s.pid, s.secret)})
		}
		p.mu.Unlock()
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.w.Send(fdRowDescription())
	for i := range rows {
		c.w.Send(&pgproto3.DataRow{Values: rows[i].values()})
	}
	c.w.Send(&pgproto3.CommandComplete{CommandTag: []byte("SHOW")})
	c.w.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	return c.w.Flush()
}

func listenerRow(ln net.Listener, fd int) fdRow {
	host, port := hostPort(ln.Addr(), unixPortOf(ln.Addr()))
	return fdRow{fd: fd, task: "pooler", addr: host, port: port}
}

// clientRow is a client's row; call with o.mu held.
func clientRow(o *client, fd int) fdRow {
	host, port := "unix", 0
	if !o.unix {
		host, port = hostPort(o.conn.RemoteAddr(), 0)
	}
	return fdRow{fd: fd, task: "client", user: o.user, database: o.database, addr: host, port: port,
		cancel: cancelOf(o.pid, o.secret), encoding: o.sess.vals["client_encoding"],
		stdStrings: o.sess.vals["standard_conforming_strings"], dateStyle: o.sess.vals["DateStyle"],
		timeZone: o.sess.vals["TimeZone"]}
}

// handOverAll is SHOW FDS of an online restart: it hands the listeners and every
// client over to the new process on uc, with their sockets.
func (c *client) handOverAll(uc *net.UnixConn) error {
	pl := c.pl
	g := pl.settings()
	wait := g.SuspendTimeout
	if wait <= 0 {
		wait = defaultSuspendTimeout
	}
	h := &handover{admin: c, clients: make(chan handedClient), done: make(chan struct{}),
		release: make(chan struct{}), held: make(chan struct{})}
	if !pl.ho.CompareAndSwap(nil, h) {
		return c.sendErrorReady(adminErr("an online restart is already under way"), 'I')
	}
	deadline := time.Now().Add(wait)
	pl.log.Info("online restart: handing sockets over to a new process", "suspend_timeout", wait)

	// The listeners stop accepting; their sockets (and backlog) go first.
	pl.mu.Lock()
	lns := append([]net.Listener(nil), pl.lns...)
	pl.mu.Unlock()
	for _, ln := range lns {
		if ul, ok := ln.(*net.UnixListener); ok {
			ul.SetUnlinkOnClose(false) // the socket file is the new process's now
		}
		setAcceptDeadline(ln, aLongTimeAgo)
	}
	for range lns {
		select {
		case <-h.held:
		case <-pl.done:
			return admin.ErrShuttingDown
		}
	}
	// What SUSPEND holds goes on, so that requests under way reach their end.
	pl.susp.resume()

	write := func(r *fdRow, f *os.File) error {
		b, err := (&pgproto3.DataRow{Values: r.values()}).Encode(nil)
		if err != nil {
			return err
		}
		return sendFD(uc, b, f, g.WriteTimeout)
	}
	c.wmu.Lock()
	c.w.Send(fdRowDescription())
	err := c.w.Flush()
	c.wmu.Unlock()
	var sent, lost int
	for _, ln := range lns {
		if err != nil {
			break
		}
		var f *os.File
		if f, err = socketFile(ln); err != nil {
			break
		}
		r := listenerRow(ln, fileFD(f))
		st := fdState{Kind: fdKindListener, Network: ln.Addr().Network(), Addr: ln.Addr().String(), PID: os.Getpid()}
		r.state, _ = json.Marshal(st)
		err = write(&r, f)
		f.Close()
	}
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	send := func(hc handedClient) {
		defer hc.f.Close()
		if err != nil {
			lost++
			return
		}
		r := fdRow{fd: fileFD(hc.f), task: "client", user: hc.st.User, database: hc.st.Database,
			cancel: cancelOf(hc.st.PID, hc.st.Secret), encoding: hc.st.Vals["client_encoding"],
			stdStrings: hc.st.Vals["standard_conforming_strings"], dateStyle: hc.st.Vals["DateStyle"],
			timeZone: hc.st.Vals["TimeZone"]}
		r.addr, r.port = "unix", 0
		if !hc.st.Unix {
			if h, p, e := net.SplitHostPort(hc.st.Remote); e == nil {
				r.addr = h
				r.port, _ = strconv.Atoi(p)
			}
		}
		if cr := hc.st.Cred; cr != nil && len(cr.ClientKey) > 0 {
			r.clientKey = cr.ClientKey
			if s := cr.credentials(); s.SCRAM != nil {
				r.serverKey = s.SCRAM.ServerKey[:]
			}
		}
		r.state, _ = json.Marshal(fdState{Kind: fdKindClient, Client: hc.st})
		if err = write(&r, hc.f); err == nil {
			sent++
		} else {
			lost++
		}
	}
	timedOut := false
loop:
	for {
		select {
		case hc := <-h.clients:
			send(hc)
		case <-tick.C:
			if pl.wakeForHandover() == 0 {
				break loop
			}
			if time.Now().After(deadline) {
				timedOut = true
				break loop
			}
		case <-pl.done:
			break loop
		}
	}
	close(h.done)
	closed := 0
	if timedOut {
		for _, o := range pl.clientList() {
			if o != c && (clientState(o.state.Load()) == clientLogin || !o.admin) {
				o.close()
				closed++
			}
		}
	}
	pl.log.Info("online restart: sockets handed over", "listeners", len(lns), "clients", sent,
		"lost", lost, "closed_at_timeout", closed, "err", err)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.w.Send(&pgproto3.CommandComplete{CommandTag: []byte("SHOW")})
	c.w.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	return c.w.Flush()
}

// wakeForHandover wakes every client at a handover point, so that its goroutine hands
// it over (or closes it, for TLS), and returns how many connections other than the
// console's are still to go.
func (pl *Pooler) wakeForHandover() int {
	left := int(pl.nclients.Load())
	for _, o := range pl.clientList() {
		if clientState(o.state.Load()) == clientLogin {
			continue
		}
		if o.admin {
			left--
			continue
		}
		o.mu.Lock()
		at := clientState(o.state.Load()) == clientIdle && o.atHandoverPointLocked()
		o.mu.Unlock()
		if at {
			o.conn.SetReadDeadline(aLongTimeAgo)
		}
	}
	return left
}

// handoverCommand notes the new process's SHUTDOWN, which ends the online restart.
func (pl *Pooler) handoverCommand(c *client, cmd admin.Command) {
	if h := pl.ho.Load(); h != nil && h.admin == c && cmd.Verb == "shutdown" {
		h.finished.Store(true)
	}
}

// isShowFDS reports whether a console command is SHOW FDS (or SELECT FDS).
func isShowFDS(cmd admin.Command) bool {
	return (cmd.Verb == "show" || cmd.Verb == "select") && strings.EqualFold(cmd.Arg, "fds")
}
