package pgpool

// SHOW FDS of an online restart, the running process's side: the sockets and
// state handed over to the new process, the idle server connections last.

import (
	"encoding/json"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"golang.org/x/sys/unix"

	"github.com/poolsuite/poolsuite/internal/pgpool/admin"
	"github.com/poolsuite/poolsuite/protocol/postgres/auth"
)

// takeIdleForHandover takes an idle server connection that can move out of the pool,
// nil when none is left.
func (p *pool) takeIdleForHandover() *server {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.idle) - 1; i >= 0; i-- {
		s := p.idle[i]
		if s.closed.Load() || s.tls || s.txStatus.Load() != 'I' {
			continue
		}
		copy(p.idle[i:], p.idle[i+1:])
		p.idle[len(p.idle)-1] = nil
		p.idle = p.idle[:len(p.idle)-1]
		s.setState(serverUsed)
		return s
	}
	return nil
}

// handOverIdle hands the pools' idle server connections over, once the clients are;
// it returns how many went.
func (h *handover) handOverIdle(pl *Pooler, write func(*fdRow, *os.File) error) (int, error) {
	n := 0
	for _, p := range pl.poolList() {
		cfg := p.config()
		for {
			s := p.takeIdleForHandover()
			if s == nil {
				break
			}
			stop := h.stopServer(s)
			select {
			case <-stop.stopped:
			case <-s.done:
			}
			select {
			case <-stop.stopped:
			default:
				continue // it ended meanwhile
			}
			sf, err := socketFile(s.conn)
			if !stop.ok || err != nil {
				s.close()
				continue
			}
			fs := exportServer(s, stop.pending)
			r := fdRow{fd: fileFD(sf), task: "server", user: p.user, database: p.database,
				cancel: cancelOf(s.pid, s.secret), encoding: fs.Params["client_encoding"],
				stdStrings: fs.Params["standard_conforming_strings"], dateStyle: fs.Params["DateStyle"],
				timeZone: fs.Params["TimeZone"]}
			if host, port, e := net.SplitHostPort(s.addr); e == nil {
				r.addr = host
				r.port, _ = strconv.Atoi(port)
			}
			r.state, _ = json.Marshal(fdState{Kind: fdKindIdleServer, Server: fs, Pool: &fdPool{
				Database: p.database, User: p.user, Cred: credToFD(cfg.server.cred), Welcome: p.welcomeCopy()}})
			err = write(&r, sf)
			sf.Close()
			if err != nil {
				s.close()
				return n, err
			}
			s.closeOnce.Do(func() {
				s.closed.Store(true)
				s.setState(serverClosed)
				s.conn.Close()
			})
			p.serverClosed(s)
			n++
		}
	}
	return n, nil
}

// takeoverAppName is the application_name of the new process's console connection.
// Only that connection's SHOW FDS hands the sockets over: unlike PgBouncer's, the old
// process stops serving what it hands over, so a psql session's SHOW FDS must not.
const takeoverAppName = "pgpool takeover"

// showFDs answers SHOW FDS: an online restart when the new process asks (pgpool's own
// OS user over the unix socket, after SUSPEND), the list of sockets otherwise.
func (c *client) showFDs() error {
	uc, isUnix := c.conn.(*net.UnixConn)
	if !c.ownUser || !isUnix || !c.pl.susp.on.Load() || c.appName != takeoverAppName {
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
		st := fdState{Kind: fdKindListener, Network: ln.Addr().Network(), Addr: ln.Addr().String(), PID: os.Getpid(), MockKey: auth.MockKey()}
		r.state, _ = json.Marshal(st)
		err = write(&r, f)
		f.Close()
	}
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	send := func(hc handedClient) {
		defer hc.f.Close()
		if hc.sf != nil {
			defer hc.sf.Close()
		}
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
		if hc.sf != nil {
			r.link = fileFD(hc.sf)
		}
		r.state, _ = json.Marshal(fdState{Kind: fdKindClient, Client: hc.st})
		if err = write(&r, hc.f); err == nil && hc.sf != nil {
			sr := fdRow{fd: fileFD(hc.sf), task: "server", user: hc.st.User, database: hc.st.Database,
				cancel: cancelOf(hc.st.Server.PID, hc.st.Server.Secret), link: r.fd,
				encoding: hc.st.Server.Params["client_encoding"], stdStrings: hc.st.Server.Params["standard_conforming_strings"],
				dateStyle: hc.st.Server.Params["DateStyle"], timeZone: hc.st.Server.Params["TimeZone"]}
			sr.addr, sr.port = hostPort(nil, 0)
			if h, p, e := net.SplitHostPort(hc.st.Server.Addr); e == nil {
				sr.addr = h
				sr.port, _ = strconv.Atoi(p)
			}
			sr.state, _ = json.Marshal(fdState{Kind: fdKindServer})
			err = write(&sr, hc.sf)
		}
		if err == nil {
			sent++
		} else {
			lost++
		}
	}
	// The new process sends nothing until SHOW FDS ends: its connection becoming
	// readable means it gave up, and the clients not yet handed over stay here.
	gone := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		if peerStirred(uc) {
			close(gone)
		}
	}()
	defer func() {
		uc.SetReadDeadline(aLongTimeAgo)
		<-watched
		uc.SetReadDeadline(time.Time{})
	}()
	timedOut := false
loop:
	for err == nil { // a failed write ends the handover: the clients left stay here
		select {
		case <-gone:
			err = ErrTakeoverGone
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
	idle := 0
	if err == nil {
		idle, err = h.handOverIdle(pl, write)
	}
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
		"idle_servers", idle, "lost", lost, "closed_at_timeout", closed, "err", err)
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
		st := clientState(o.state.Load())
		at := (st == clientIdle && o.atHandoverPointLocked()) ||
			((st == clientActive || st == clientPinned) && o.linkedHandoverLocked() != nil)
		o.mu.Unlock()
		if at {
			o.handoverKick()
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

// peerStirred waits until uc is readable, without reading: the peer closed it or
// sent something (the new process sends nothing during SHOW FDS unless it gives up).
// It reports false when a read deadline ended the wait.
func peerStirred(uc *net.UnixConn) bool {
	rc, err := uc.SyscallConn()
	if err != nil {
		return false
	}
	rerr := rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		return err != unix.EAGAIN && err != unix.EINTR
	})
	return rerr == nil
}

// isShowFDS reports whether a console command is SHOW FDS (or SELECT FDS).
func isShowFDS(cmd admin.Command) bool {
	return (cmd.Verb == "show" || cmd.Verb == "select") && strings.EqualFold(cmd.Arg, "fds")
}
