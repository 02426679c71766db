package pgpool

// Online restart (pgpool -R), the new process's side: TakeOver logs in to the running
// process's admin console over its unix socket, runs SUSPEND and SHOW FDS, serves
// every client that comes with a row at once and returns the listeners; Finish sends
// SHUTDOWN, after which the old process exits.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"golang.org/x/sys/unix"

	"github.com/poolsuite/poolsuite/protocol/postgres/auth"
	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

// ErrTakeover: the running process refused or broke off the online restart.
var ErrTakeover = errors.New("pgpool: online restart failed")

// takeoverMaxRow bounds one SHOW FDS row (a client's prepared statements included).
const takeoverMaxRow = 256 << 20

// Takeover is an online restart taken from a running process.
type Takeover struct {
	// Listeners are the old process's listeners, to Serve.
	Listeners []net.Listener
	// Clients is the number of clients taken over (each served since its row came).
	Clients int
	// IdleServers is the number of idle server connections taken into the pools.
	IdleServers int
	// Skipped counts clients that could not be served here (a database gone from the
	// configuration, say); their connections were closed.
	Skipped int
	// OldPID is the old process's id, as it says in SHOW FDS.
	OldPID int

	conn *net.UnixConn
	rd   *wire.Reader
	fr   *fdReader
	once sync.Once
	// linked is a client whose server connection comes in the next row.
	linked     *fdClient
	linkedConn net.Conn
}

// TakeOver takes over from the pgpool (or PgBouncer-compatible process) whose admin
// console listens on the unix socket at path, for pl: clients are served by pl as
// they arrive. ctx bounds the whole exchange. On error nothing was taken over but the
// listeners and clients returned so far are closed.
func (pl *Pooler) TakeOver(ctx context.Context, path string) (*Takeover, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTakeover, err)
	}
	uc := nc.(*net.UnixConn)
	t := &Takeover{conn: uc, fr: &fdReader{uc: uc}}
	t.rd = wire.NewReader(t.fr)
	t.rd.SetMaxMessageSize(takeoverMaxRow)
	if dl, ok := ctx.Deadline(); ok {
		uc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { uc.SetDeadline(aLongTimeAgo) })
	defer stop()
	if raw, err := uc.SyscallConn(); err == nil {
		raw.Control(func(fd uintptr) {
			if cr, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
				t.OldPID = int(cr.Pid)
			}
		})
	}
	w := wire.NewWriter(uc)
	suspended := false
	fail := func(err error) (*Takeover, error) {
		for _, ln := range t.Listeners {
			ln.Close()
		}
		t.fr.closeAll()
		if suspended {
			// Leave the old process running as it was, as far as it is up to us.
			uc.SetDeadline(time.Now().Add(time.Second))
			w.Send(&pgproto3.Query{String: "RESUME"})
			w.Flush()
		}
		uc.Close()
		return nil, err
	}
	w.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{
		"user": ownAdminUser, "database": "pgbouncer", "application_name": takeoverAppName}})
	if err := w.Flush(); err != nil {
		return fail(fmt.Errorf("%w: %w", ErrTakeover, err))
	}
	if err := t.untilReady(nil); err != nil {
		return fail(err)
	}
	w.Send(&pgproto3.Query{String: "SUSPEND"})
	if err := w.Flush(); err != nil {
		return fail(fmt.Errorf("%w: %w", ErrTakeover, err))
	}
	if err := t.untilReady(nil); err != nil {
		return fail(err)
	}
	suspended = true
	w.Send(&pgproto3.Query{String: "SHOW FDS"})
	if err := w.Flush(); err != nil {
		return fail(fmt.Errorf("%w: %w", ErrTakeover, err))
	}
	col := -1
	err = t.untilReady(func(typ byte, msg []byte) error {
		switch typ {
		case 'T':
			var rd pgproto3.RowDescription
			if err := rd.Decode(wire.Body(msg)); err != nil {
				return err
			}
			for i, f := range rd.Fields {
				if string(f.Name) == fdStateColumn {
					col = i
				}
			}
			if col < 0 {
				return fmt.Errorf("%w: SHOW FDS has no %s column", ErrTakeover, fdStateColumn)
			}
		case 'D':
			var row pgproto3.DataRow
			if err := row.Decode(wire.Body(msg)); err != nil {
				return err
			}
			if col < 0 || col >= len(row.Values) {
				return fmt.Errorf("%w: SHOW FDS row before its description", ErrTakeover)
			}
			return t.row(pl, row.Values[col])
		}
		return nil
	})
	if err != nil {
		return fail(err)
	}
	uc.SetDeadline(time.Time{})
	pl.log.Info("online restart: took over", "listeners", len(t.Listeners), "clients", t.Clients,
		"skipped", t.Skipped, "idle_servers", t.IdleServers, "old_pid", t.OldPID)
	return t, nil
}

// row takes over the socket of one SHOW FDS row.
func (t *Takeover) row(pl *Pooler, state []byte) error {
	var st fdState
	if err := json.Unmarshal(state, &st); err != nil {
		return fmt.Errorf("%w: %w", ErrFDProtocol, err)
	}
	f, err := t.fr.take(st.Kind)
	if err != nil {
		return err
	}
	defer f.Close()
	switch st.Kind {
	case fdKindListener:
		ln, err := net.FileListener(f)
		if err != nil {
			return fmt.Errorf("%w: listener %s: %w", ErrTakeover, st.Addr, err)
		}
		t.Listeners = append(t.Listeners, ln)
		if st.MockKey != nil {
			// Before any login here: the listeners are served once TakeOver returns.
			if err := auth.SetMockKey(st.MockKey); err != nil {
				return fmt.Errorf("%w: listener %s: %w", ErrFDProtocol, st.Addr, err)
			}
		}
		if st.PID > 0 {
			// The listening socket's peer credentials name the process that opened
			// it, which after earlier restarts is not the one running now.
			t.OldPID = st.PID
		}
	case fdKindClient:
		nc, err := net.FileConn(f)
		if err != nil || st.Client == nil {
			t.Skipped++
			return nil
		}
		if st.Client.Server != nil {
			t.linked, t.linkedConn = st.Client, nc
			return nil
		}
		if err := pl.adopt(nc, st.Client, nil); err != nil {
			pl.log.Warn("online restart: client not taken over", "user", st.Client.User,
				"database", st.Client.Database, "err", err)
			nc.Close()
			t.Skipped++
			return nil
		}
		t.Clients++
	case fdKindIdleServer:
		if st.Pool == nil || st.Server == nil {
			return fmt.Errorf("%w: an idle server row without its pool", ErrFDProtocol)
		}
		sc, err := net.FileConn(f)
		if err != nil {
			return nil
		}
		if err := pl.adoptIdle(sc, st.Pool, st.Server); err != nil {
			pl.log.Debug("online restart: idle server connection not taken over", "database", st.Pool.Database, "err", err)
			sc.Close()
			return nil
		}
		t.IdleServers++
	case fdKindServer:
		cst, cc := t.linked, t.linkedConn
		t.linked, t.linkedConn = nil, nil
		if cst == nil {
			return fmt.Errorf("%w: a server row without its client", ErrFDProtocol)
		}
		sc, err := net.FileConn(f)
		if err != nil {
			cc.Close()
			t.Skipped++
			return nil
		}
		if err := pl.adopt(cc, cst, sc); err != nil {
			pl.log.Warn("online restart: client not taken over", "user", cst.User, "database", cst.Database, "err", err)
			cc.Close()
			sc.Close()
			t.Skipped++
			return nil
		}
		t.Clients++
	}
	return nil
}

// untilReady reads the console's answer up to ReadyForQuery, passing every other
// message to each (which may be nil); an ErrorResponse is an error.
func (t *Takeover) untilReady(each func(typ byte, msg []byte) error) error {
	var failed error
	for {
		typ, msg, err := t.rd.Next()
		if err != nil {
			return fmt.Errorf("%w: %w", ErrTakeover, err)
		}
		switch typ {
		case 'Z':
			return failed
		case 'E':
			var e pgproto3.ErrorResponse
			e.Decode(wire.Body(msg))
			failed = fmt.Errorf("%w: %s", ErrTakeover, e.Message)
			if e.Severity == "FATAL" {
				return failed
			}
		case 'R':
			var a pgproto3.AuthenticationOk
			if a.Decode(wire.Body(msg)) != nil {
				return fmt.Errorf("%w: the admin console asks for a password: run as the old process's OS user", ErrTakeover)
			}
		default:
			if each != nil && failed == nil {
				if err := each(typ, msg); err != nil {
					return err
				}
			}
		}
	}
}

// Finish sends SHUTDOWN to the old process and waits until it has closed the
// console connection (it then exits), at most until ctx ends.
func (t *Takeover) Finish(ctx context.Context) error {
	var err error
	t.once.Do(func() {
		defer t.conn.Close()
		defer t.fr.closeAll()
		stop := context.AfterFunc(ctx, func() { t.conn.SetDeadline(aLongTimeAgo) })
		defer stop()
		w := wire.NewWriter(t.conn)
		w.Send(&pgproto3.Query{String: "SHUTDOWN"})
		if err = w.Flush(); err != nil {
			err = fmt.Errorf("%w: SHUTDOWN: %w", ErrTakeover, err)
			return
		}
		for {
			if _, _, rerr := t.rd.Next(); rerr != nil {
				var ne net.Error
				if errors.As(rerr, &ne) && ne.Timeout() {
					err = fmt.Errorf("%w: the old process did not close its console: %w", ErrTakeover, rerr)
				}
				return
			}
		}
	})
	return err
}

// adopt serves a client taken over from another process as if it had logged in here;
// sc, when not nil, is its server connection, which it goes on using.
func (pl *Pooler) adopt(conn net.Conn, st *fdClient, sc net.Conn) error {
	g := pl.settings()
	db, ok := g.database(st.Database)
	if !ok {
		return fmt.Errorf("%w: no such database: %s", ErrTakeover, st.Database)
	}
	p, err := pl.poolFor(st.Database, st.User, db, st.Cred.credentials())
	if err != nil {
		return err
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	c := &client{
		pl: pl, id: pl.nextClientID.Add(1), conn: conn, rd: wire.NewReader(conn),
		remote: st.Remote, unix: st.Unix, connectedAt: st.ConnectedAt,
		pid: st.PID, secret: st.Secret, user: st.User, database: st.Database,
		appName: st.AppName, params: st.Params,
	}
	if c.remote == "" {
		c.remote = remoteAddr(conn)
	}
	if c.params == nil {
		c.params = map[string]string{}
	}
	c.w = wire.NewWriter(conn)
	c.ref.s = c
	c.rd.SetMaxMessageSize(g.MaxPacketSize)
	c.rd.Preload(st.Pending)
	c.pool = p
	c.cfg = p.config()
	p.learnWelcome(st.Welcome)
	c.sess = session{vals: orEmpty(st.Vals), sets: orEmpty(st.Sets), base: orEmpty(st.Base), startupSets: orEmpty(st.StartupSets)}
	c.initPrepared()
	if c.prep != nil && st.Prep != nil {
		c.prep.off = st.Prep.Off
		ss := &c.sess.stmts
		ss.unnamed = st.Prep.Unnamed
		ss.unnamedSeq = st.Prep.UnnamedSeq
		ss.seq = st.Prep.Seq
		for _, s := range st.Prep.Stmts {
			ss.named[s.Name] = &preparedStmt{name: s.Name, srv: s.Srv, parse: s.Parse, seq: s.Seq,
				gen: p.stmtGeneration(s.Srv)}
		}
		c.prep.tracking.Store(st.Prep.Tracking)
	}
	if sc != nil && st.Server != nil {
		s := p.adoptServer(sc, st.Server)
		c.sess.pins = st.Pins
		s.owner.Store(&c.ref)
		c.server = s
		c.boundAt = time.Now()
		c.inflight.reset()
		c.streamBound()
		if c.prep != nil {
			c.prep.resetBinding(c, nil)
		}
		if st.Pins != 0 {
			c.pool.stats.pinned.Add(1)
		}
		go s.readLoop()
	}
	c.state.Store(int32(clientLogin))
	pl.nclients.Add(1)
	pl.register(c)
	pl.wg.Add(1)
	go pl.runClient(c, g, false)
	return nil
}

// adoptServer serves on a server connection taken over with its client: counted in
// the pool (beyond its limits if need be: the connection exists), read by a reader of
// its own once started (go s.readLoop()).
func (p *pool) adoptServer(conn net.Conn, st *fdServer) *server {
	p.mu.Lock()
	cfg := p.cfg
	p.mu.Unlock()
	s := &server{
		id: p.nextID.Add(1), pool: p, conn: conn, addr: st.Addr, tlsKey: cfg.server.tlsKey,
		pid: st.PID, secret: st.Secret,
		params: orEmpty(st.Params), sets: orEmpty(st.Sets),
		createdAt: st.CreatedAt, done: make(chan struct{}),
		logDB: p.database, logUser: cfg.server.user,
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	s.rd = wire.NewReader(conn)
	s.rd.Preload(st.Pending)
	s.w = wire.NewWriter(conn)
	s.txStatus.Store('I')
	for _, cs := range st.Stmts {
		s.stmts.restore(cs.Name, cs.Stale)
	}
	now := time.Now()
	s.lastUsed.Store(now.UnixNano())
	s.lastCheck = now
	if cfg.serverLifetime > 0 {
		s.expiresAt = s.createdAt.Add(cfg.serverLifetime)
	}
	for _, l := range []*limiter{p.dbLimit, p.usrLimit} {
		if l != nil {
			l.n.Add(1)
		}
	}
	p.mu.Lock()
	p.servers[s] = struct{}{}
	p.mu.Unlock()
	s.setState(serverActive)
	return s
}

// learnWelcome sets the pool's welcome parameters from the old process's, if it has
// none yet (its server connections may all come from there).
func (p *pool) learnWelcome(w map[string]string) {
	if len(w) == 0 {
		return
	}
	p.mu.Lock()
	if p.welcome == nil {
		p.welcome = w
	}
	p.mu.Unlock()
}

// adoptIdle puts an idle server connection taken over into its pool.
func (pl *Pooler) adoptIdle(conn net.Conn, fp *fdPool, fs *fdServer) error {
	g := pl.settings()
	db, ok := g.database(fp.Database)
	if !ok {
		return fmt.Errorf("%w: no such database: %s", ErrTakeover, fp.Database)
	}
	p, err := pl.poolFor(fp.Database, fp.User, db, fp.Cred.credentials())
	if err != nil {
		return err
	}
	p.learnWelcome(fp.Welcome)
	s := p.adoptServer(conn, fs)
	go s.readLoop()
	p.release(s)
	return nil
}

// resumeLinked gives a client taken over with its server connection the state of a
// client bound to it, once its goroutine runs.
func (c *client) resumeLinked() {
	c.mu.Lock()
	linked := c.server != nil
	pinned := c.sess.pins != 0
	c.mu.Unlock()
	if linked {
		c.bound()
		if pinned {
			c.pinnedNow()
		}
	}
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
