package pgpool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/poolsuite/poolsuite/internal/version"
	"github.com/poolsuite/poolsuite/protocol/postgres/auth"
	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

// Version is pgpool's version, the suite's (kvproxy reports the same), reported by
// SHOW VERSION and `pgpool version`.
const Version = version.Version

// VersionString is what SHOW VERSION and `pgpool version` print: the PgBouncer release
// whose console pgpool imitates first, so tools that parse PgBouncer's version read
// it, then pgpool's own.
const VersionString = "PgBouncer " + compatVersion + " (pgpool " + Version + ")"

// Pooler is a PostgreSQL connection pooler: it accepts client connections on the
// listeners given to Serve and shares server connections among them per (database,
// user) pool. It is safe for concurrent use.
type Pooler struct {
	log *slog.Logger
	cfg atomic.Pointer[Config]
	// mock caches mockSCRAMWork's choice for the configuration in cfg.
	mock atomic.Pointer[mockChoice]

	mu       sync.Mutex
	pools    map[poolKey]*pool
	dbLimits map[string]*limiter
	usLimits map[string]*limiter
	clients  map[*client]struct{}
	cancels  map[uint64]*client
	paused   map[string]bool // database -> paused ("" = all)
	susp     suspendGate     // SUSPEND (suspend.go)
	lns      []net.Listener

	nextServerID atomic.Uint64
	nextClientID atomic.Uint64
	// stmtEpoch is raised at every schema change pgpool sees (DDL passing through, or
	// PostgreSQL reporting a shared statement stale); it is part of every server-side
	// statement name, so a fresh Parse after the change is prepared anew (prepared.go).
	stmtEpoch atomic.Uint64
	nclients  atomic.Int64
	startedAt time.Time

	admin adminState // admin console state: DISABLE, RECONNECT, callbacks (admin_state.go)
	// metrics serves Config.MetricsListen (metrics.go); nil without. Set in New.
	metrics *metricsServer

	done     chan struct{} // closed by Shutdown
	doneOnce sync.Once
	wg       sync.WaitGroup // client goroutines, the janitor, listeners
}

type poolKey struct{ database, user string }

// loginMaxMessageSize bounds the messages a client may send before it has logged in.
const loginMaxMessageSize = 64 << 10

// New returns a Pooler with the given configuration.
func New(cfg *Config, log *slog.Logger) *Pooler {
	if log == nil {
		log = slog.Default()
	}
	pl := &Pooler{
		log:       log,
		pools:     make(map[poolKey]*pool),
		dbLimits:  make(map[string]*limiter),
		usLimits:  make(map[string]*limiter),
		clients:   make(map[*client]struct{}),
		cancels:   make(map[uint64]*client),
		paused:    make(map[string]bool),
		startedAt: time.Now(),
		done:      make(chan struct{}),
	}
	pl.cfg.Store(cfg)
	if cfg.MetricsListen != "" {
		pl.startMetrics(cfg.MetricsListen)
	}
	pl.wg.Add(1)
	go pl.janitor()
	pl.wg.Add(1)
	go pl.statsLogger()
	return pl
}

func (pl *Pooler) settings() *Config { return pl.cfg.Load() }

// Serve accepts connections on ln until Shutdown. It returns nil after Shutdown.
func (pl *Pooler) Serve(ln net.Listener) error {
	pl.mu.Lock()
	select {
	case <-pl.done:
		pl.mu.Unlock()
		ln.Close()
		return nil
	default:
	}
	pl.lns = append(pl.lns, ln)
	pl.wg.Add(1)
	pl.mu.Unlock()
	defer pl.wg.Done()
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			select {
			case <-pl.done:
				return nil
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && !errors.Is(err, net.ErrClosed) {
				// Out of file descriptors and the like: back off instead of spinning.
				backoff = min(max(backoff*2, 5*time.Millisecond), time.Second)
				pl.log.Warn("accept failed", "err", err, "retry_in", backoff)
				select {
				case <-time.After(backoff):
				case <-pl.done:
					return nil
				}
				continue
			}
			return err
		}
		backoff = 0
		pl.handle(conn)
	}
}

// handle starts the goroutine of a new client connection.
func (pl *Pooler) handle(conn net.Conn) {
	g := pl.settings()
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	c := &client{
		pl: pl, id: pl.nextClientID.Add(1), conn: conn,
		rd: wire.NewReader(conn), remote: remoteAddr(conn),
		connectedAt: time.Now(),
	}
	c.w = wire.NewWriter(conn)
	if la := conn.LocalAddr(); la != nil && la.Network() == "unix" {
		c.unix = true
	}
	c.ref.s = c
	c.rd.SetMaxMessageSize(loginMaxMessageSize) // until the client has logged in
	c.state.Store(int32(clientLogin))
	pl.wg.Add(1)
	go pl.serveClient(c, g)
}

// serveClient owns a client connection from accept until it has logged in; then it
// hands the connection to a fresh goroutine (runClient) and ends. Login (TLS, SCRAM)
// grows a goroutine's stack; the goroutine that waits on an idle client for hours
// starts small instead, which keeps idle clients cheap.
func (pl *Pooler) serveClient(c *client, g *Config) {
	defer pl.wg.Done()
	handedOff := false
	pl.nclients.Add(1)
	defer func() {
		if r := recover(); r != nil {
			pl.log.Error("panic in client connection", "client", c.id, "user", c.user,
				"database", c.database, "remote", c.remote, "panic", r, "stack", string(debug.Stack()))
		}
		if !handedOff {
			pl.endClient(c)
		}
	}()
	if !pl.loginClient(c, g) {
		return
	}
	handedOff = true
	pl.wg.Add(1)
	go pl.runClient(c, g)
}

// endClient cleans up after a client connection.
func (pl *Pooler) endClient(c *client) {
	c.logClosing()
	c.unbind()
	c.closedNow()
	pl.unregister(c)
	c.close()
	c.rd.Free()
	pl.nclients.Add(-1)
}

// loginClient runs startup and authentication; it reports whether the client may go on.
func (pl *Pooler) loginClient(c *client, g *Config) bool {
	if g.ClientLoginTimeout > 0 {
		c.conn.SetDeadline(time.Now().Add(g.ClientLoginTimeout))
	}
	if err := c.startup(); err != nil {
		if !errors.Is(err, errCancelRequest) {
			pl.logStartupError(c, err)
			var pe *Error
			var tl *wire.TooLargeError
			switch {
			case errors.As(err, &pe):
				c.refuse(err)
			case errors.As(err, &tl), errors.Is(err, wire.ErrMalformed):
				// The client hears why before the connection closes, as from PostgreSQL.
				c.sendStartupError(fatalf(CodeProtocolViolation, "invalid startup packet: %s", startupProblem(err)))
			}
		}
		return false
	}
	if n := pl.nclients.Load(); g.MaxClientConn > 0 && int(n) > g.MaxClientConn {
		pl.log.Warn("max_client_conn reached", "remote", c.remote, "max_client_conn", g.MaxClientConn)
		c.refuse(fatalf(CodeTooManyConnections, "no more connections allowed (max_client_conn)"))
		return false
	}
	select {
	case <-pl.done:
		c.refuse(fatalf(CodeCannotConnectNow, "pgpool is shutting down"))
		return false
	default:
	}
	c.pid, c.secret = newCancelKey()
	pl.register(c)
	c.logLoginAttempt()
	if err := c.login(); err != nil {
		pl.log.Debug("client login failed", "client", c.id, "user", c.user, "database", c.database, "remote", c.remote, "err", err)
		c.refuse(err)
		return false
	}
	c.conn.SetDeadline(time.Time{})
	c.rd.SetMaxMessageSize(g.MaxPacketSize)
	return true
}

// runClient serves a logged-in client until it leaves.
func (pl *Pooler) runClient(c *client, g *Config) {
	defer pl.wg.Done()
	defer func() {
		if r := recover(); r != nil {
			pl.log.Error("panic in client connection", "client", c.id, "user", c.user,
				"database", c.database, "remote", c.remote, "panic", r, "stack", string(debug.Stack()))
		}
		pl.endClient(c)
	}()
	if c.admin {
		err := c.runAdmin()
		if err != nil {
			pl.log.Debug("admin connection closed", "client", c.id, "err", err)
		}
		c.closeReason = "client close request"
		if err != nil {
			c.closeReason = c.runEndReason(err)
		}
		return
	}
	err := c.run()
	var pe *Error
	if errors.As(err, &pe) {
		c.logPoolerError(pe.Message)
	}
	c.closeReason = c.runEndReason(err)
}

// startupProblem says what is wrong with a startup packet, without the package prefix.
func startupProblem(err error) string {
	var tl *wire.TooLargeError
	var me *wire.MalformedError
	switch {
	case errors.As(err, &tl):
		return fmt.Sprintf("length %d exceeds the limit of %d", tl.Size, tl.Limit)
	case errors.As(err, &me):
		return me.Reason
	}
	return "malformed"
}

func (pl *Pooler) logStartupError(c *client, err error) {
	var tl *wire.TooLargeError
	switch {
	case errors.As(err, &tl), errors.Is(err, wire.ErrMalformed):
		pl.log.Warn("bad startup packet", "remote", c.remote, "err", err)
	default:
		pl.log.Debug("startup failed", "remote", c.remote, "err", err)
	}
}

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
	busy := s != nil && c.inflight.len() > 0
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

// poolFor returns the pool of (database, user), creating it on first use.
func (pl *Pooler) poolFor(database, user string, db *Database, cred *auth.Credentials) (*pool, error) {
	g := pl.settings()
	key := poolKey{database, user}
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if p, ok := pl.pools[key]; ok && !p.closed {
		if cred != nil {
			p.mu.Lock()
			if p.cfg.server.cred == nil || credWeaker(p.cfg.server.cred, cred) {
				cfg := *p.cfg
				cfg.server.cred = cred
				p.cfg = &cfg
			}
			p.mu.Unlock()
		}
		return p, nil
	}
	cfg := resolvePool(g, database, user, db, cred)
	dl := pl.dbLimits[database]
	if dl == nil {
		dl = &limiter{}
		pl.dbLimits[database] = dl
	}
	dl.max.Store(int64(dbMax(g, db)))
	ul := pl.usLimits[user]
	if ul == nil {
		ul = &limiter{}
		pl.usLimits[user] = ul
	}
	ul.max.Store(int64(userMax(g, user)))
	p := newPool(pl, database, user, cfg, dl, ul)
	if pl.paused[""] || pl.paused[database] {
		p.paused = true
	}
	pl.pools[key] = p
	return p, nil
}

// credWeaker reports whether b lets the pool log in where a may not (a client that
// logged in with a password brings more than one that brought a ClientKey).
func credWeaker(a, b *auth.Credentials) bool {
	return a.Password == "" && b.Password != ""
}

func dbMax(g *Config, db *Database) int {
	if db != nil && db.MaxDBConnections > 0 {
		return db.MaxDBConnections
	}
	return g.MaxDBConnections
}

func userMax(g *Config, user string) int {
	if u, ok := g.Users[user]; ok && u.MaxUserConnections > 0 {
		return u.MaxUserConnections
	}
	return g.MaxUserConnections
}

// serverTLSKey identifies the server_tls_* settings of g.
func serverTLSKey(g *Config) string {
	f := g.ServerTLSFiles
	return strings.Join([]string{g.ServerTLSMode, f.KeyFile, f.CertFile, f.CAFile, f.Protocols, f.Ciphers}, "\x00")
}

// resolvePool computes a pool's settings from the global ones and its entries.
func resolvePool(g *Config, database, user string, db *Database, cred *auth.Credentials) *poolConfig {
	cfg := &poolConfig{
		mode:              g.PoolMode,
		size:              g.DefaultPoolSize,
		minSize:           g.MinPoolSize,
		reserveSize:       g.ReservePoolSize,
		reserveTimeout:    g.ReservePoolTimeout,
		serverLifetime:    g.ServerLifetime,
		serverIdleTimeout: g.ServerIdleTimeout,
		serverLoginRetry:  g.ServerLoginRetry,
		queryWaitTimeout:  g.QueryWaitTimeout,
		checkQuery:        g.ServerCheckQuery,
		checkDelay:        g.ServerCheckDelay,
		resetQuery:        g.ServerResetQuery,
		resetAlways:       g.ServerResetQueryAlways,
		fastClose:         g.ServerFastClose,
	}
	if db.PoolSize > 0 {
		cfg.size = db.PoolSize
	}
	if db.MinPoolSize > 0 {
		cfg.minSize = db.MinPoolSize
	}
	if db.ReservePool >= 0 {
		cfg.reserveSize = db.ReservePool
	}
	if db.PoolMode != nil {
		cfg.mode = *db.PoolMode
	}
	if u, ok := g.Users[user]; ok && u.PoolMode != nil {
		cfg.mode = *u.PoolMode
	}
	so := serverOptions{
		user:           user,
		database:       database,
		startup:        db.StartupParams,
		cred:           cred,
		connectTimeout: g.ServerConnectTimeout,
		tlsMode:        g.ServerTLSMode,
		tlsConfig:      g.ServerTLS,
		tlsKey:         serverTLSKey(g),
		stickyHost:     db.LoadBalanceDisable,
		connectQuery:   db.ConnectQuery,
	}
	hosts, err := parseHosts(db.Host, db.Port)
	if err != nil {
		// An entry with nothing but commas: nothing to connect to but the default.
		hosts, _ = parseHosts("", db.Port)
	}
	so.network, so.addr = hosts[0].network, hosts[0].addr
	if len(hosts) > 1 {
		so.hosts = hosts
	}
	if db.DBName != "" {
		so.database = db.DBName
	}
	if db.User != "" {
		so.user = db.User
	}
	cfg.server = so
	return cfg
}

// authQuery looks a user's secret up with auth_query, run as auth_user on the
// database the client asked for.
func (pl *Pooler) authQuery(db *Database, database, user string) (string, bool, error) {
	g := pl.settings()
	authUser := authUserOf(g, db)
	secret, ok := g.Userlist[authUser]
	var cred *auth.Credentials
	if ok {
		cred = auth.ParseSecret(secret).Credentials()
	} else {
		cred = &auth.Credentials{}
	}
	adb := *db
	adb.User = ""
	adb.Password = ""
	adb.ConnectQuery = ""
	cfg := resolvePool(g, database, authUser, &adb, cred)
	s, err := dialServer(nil, nil, pl.nextServerID.Add(1), &cfg.server, 0, pl.log)
	if err != nil {
		return "", false, err
	}
	defer s.close()
	rows, err := s.queryParams(g.AuthQuery, []string{user}, g.ServerConnectTimeout)
	if err != nil {
		return "", false, err
	}
	if len(rows) == 0 || len(rows[0]) < 2 || rows[0][1] == "" {
		return "", false, nil
	}
	return rows[0][1], true, nil
}

// authUserOf is the auth_user for a database: its own, else the global one.
func authUserOf(g *Config, db *Database) string {
	if db != nil && db.AuthUser != "" {
		return db.AuthUser
	}
	return g.AuthUser
}

// janitor runs pool maintenance about once a second until Shutdown.
func (pl *Pooler) janitor() {
	defer pl.wg.Done()
	t := time.NewTicker(time.Second / 3)
	defer t.Stop()
	for {
		select {
		case <-pl.done:
			return
		case now := <-t.C:
			pools := pl.poolList()
			for _, p := range pools {
				p.maintain(now)
				p.fastClose()
			}
			// Waiters that may open now (server_login_retry passed, reserve_pool_timeout
			// reached, a slot freed): oldest first. Those still held back by a shared
			// limit get an idle connection of another pool closed for them.
			pl.offer(pools)
			for _, p := range pools {
				p.mu.Lock()
				_, starved := p.eligible()
				p.mu.Unlock()
				if starved {
					pl.evictIdle(p)
				}
			}
		}
	}
}

// sharing returns p and the pools that share its max_db_connections or
// max_user_connections limit.
func (pl *Pooler) sharing(p *pool) []*pool {
	if !p.dbLimit.limited() && !p.usrLimit.limited() {
		return []*pool{p}
	}
	pl.mu.Lock()
	defer pl.mu.Unlock()
	ps := []*pool{p}
	for _, o := range pl.pools {
		if o != p && ((o.dbLimit == p.dbLimit && p.dbLimit.limited()) || (o.usrLimit == p.usrLimit && p.usrLimit.limited())) {
			ps = append(ps, o)
		}
	}
	return ps
}

// offerSlots lets waiting clients of p and of the pools sharing its limits open
// connections while there is room, the client that has waited longest first.
func (pl *Pooler) offerSlots(p *pool) { pl.offer(pl.sharing(p)) }

// offer lets the waiting clients of pools open connections while there is room, the
// client that has waited longest first. Pool locks are taken one at a time.
func (pl *Pooler) offer(pools []*pool) {
	skip := make([]bool, len(pools))
	for {
		best := -1
		var bestSince time.Time
		for i, o := range pools {
			if skip[i] {
				continue
			}
			o.mu.Lock()
			since, ok := o.eligible()
			o.mu.Unlock()
			if !ok {
				skip[i] = true
			} else if best < 0 || since.Before(bestSince) {
				best, bestSince = i, since
			}
		}
		if best < 0 {
			return
		}
		o := pools[best]
		o.mu.Lock()
		granted := o.grantOne()
		o.mu.Unlock()
		if !granted {
			skip[best] = true // full under a limit (or no longer waiting)
		}
	}
}

// waitsLonger reports whether a client of another pool sharing p's limits has waited
// since before since (zero: at all) and could open a connection once one of p's had
// closed.
func (pl *Pooler) waitsLonger(p *pool, since time.Time) bool {
	for _, o := range pl.sharing(p)[1:] {
		o.mu.Lock()
		at, ok := o.eligible()
		o.mu.Unlock()
		if ok && (since.IsZero() || at.Before(since)) &&
			o.dbLimit.fitsAfter(p.dbLimit, p.usrLimit) && o.usrLimit.fitsAfter(p.dbLimit, p.usrLimit) {
			return true
		}
	}
	return false
}

// evictIdle closes the longest-idle server connection of another pool that shares
// p's database or user limit, to make room under max_db_connections or
// max_user_connections. It reports whether it closed one.
func (pl *Pooler) evictIdle(p *pool) bool {
	var victim *server
	for _, o := range pl.poolList() {
		if o == p || (o.dbLimit != p.dbLimit && o.usrLimit != p.usrLimit) {
			continue
		}
		o.mu.Lock()
		if len(o.idle) > 0 {
			victim = o.idle[0] // idle is most recently used last
			copy(o.idle, o.idle[1:])
			o.idle[len(o.idle)-1] = nil
			o.idle = o.idle[:len(o.idle)-1]
		}
		o.mu.Unlock()
		if victim != nil {
			break
		}
	}
	if victim == nil {
		return false
	}
	pl.log.Debug("closing an idle server connection to make room", "database", p.database, "user", p.user, "server", victim.String())
	victim.close()
	return true
}

func (pl *Pooler) poolList() []*pool {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	ps := make([]*pool, 0, len(pl.pools))
	for _, p := range pl.pools {
		ps = append(ps, p)
	}
	return ps
}

func (pl *Pooler) clientList() []*client {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	cs := make([]*client, 0, len(pl.clients))
	for c := range pl.clients {
		cs = append(cs, c)
	}
	return cs
}

// Reload applies a new configuration: pool sizes, modes, databases and users change
// without dropping clients. Pools whose server address or credentials changed close
// their idle connections so new ones use the new settings; pools of removed databases
// finish their work and close.
func (pl *Pooler) Reload(cfg *Config) {
	if old := pl.cfg.Swap(cfg); old.MetricsListen != cfg.MetricsListen {
		pl.log.Warn("metrics_listen changes need a restart", "running", old.MetricsListen, "new", cfg.MetricsListen)
	}
	var removed []*pool
	var stale []*server
	defer func() {
		// Closed outside pl.mu: closing sockets takes a moment per connection.
		for _, p := range removed {
			p.closeAll(ErrPoolClosed)
			p.bg.Wait()
		}
		for _, s := range stale {
			s.closeBecause(reasonConfigChanged)
		}
	}()
	pl.mu.Lock()
	defer pl.mu.Unlock()
	for key, p := range pl.pools {
		db, ok := cfg.database(key.database)
		if !ok {
			delete(pl.pools, key)
			removed = append(removed, p)
			continue
		}
		p.mu.Lock()
		ncfg := resolvePool(cfg, key.database, key.user, db, p.cfg.server.cred)
		if db.Password == "" && db.User == "" {
			ncfg.server.cred = p.cfg.server.cred
		}
		if ncfg.server.tlsKey != p.cfg.server.tlsKey || ncfg.server.addr != p.cfg.server.addr {
			// Server connections opened under the old settings are closed, idle ones
			// now, the others when their client is done with them (put, fastclose.go);
			// the last failure says nothing of a connect under the new ones.
			p.lastErr, p.lastErrAt, p.lastErrRefused = nil, time.Time{}, false
			stale = append(stale, p.takeStaleIdle(ncfg)...)
		}
		p.cfg = ncfg
		if dl := pl.dbLimits[key.database]; dl != nil {
			dl.max.Store(int64(dbMax(cfg, db)))
		}
		if ul := pl.usLimits[key.user]; ul != nil {
			ul.max.Store(int64(userMax(cfg, key.user)))
		}
		p.grantOpen()
		p.mu.Unlock()
	}
	pl.log.Info("configuration reloaded", "databases", len(cfg.Databases))
}

// Shutdown stops accepting, lets clients finish their transactions until ctx ends,
// then closes everything. It returns when every goroutine has ended.
func (pl *Pooler) Shutdown(ctx context.Context) error {
	pl.doneOnce.Do(func() { close(pl.done) })
	pl.mu.Lock()
	for _, ln := range pl.lns {
		ln.Close()
	}
	pl.mu.Unlock()
	pl.stopMetrics()
	// Close clients as they become idle; close the rest when ctx ends.
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	var err error
wait:
	for {
		busy := 0
		for _, c := range pl.clientList() {
			c.mu.Lock()
			idle := c.server == nil || (c.inflight.len() == 0 && !c.unsynced && c.server.txIdle() && c.cfg != nil && c.cfg.mode != PoolSession)
			c.mu.Unlock()
			if idle {
				c.close()
			} else {
				busy++
			}
		}
		if busy == 0 {
			break
		}
		select {
		case <-ctx.Done():
			err = ctx.Err()
			break wait
		case <-t.C:
		}
	}
	for _, c := range pl.clientList() {
		c.close()
	}
	for _, p := range pl.poolList() {
		p.closeAll(ErrPoolClosed)
	}
	pl.wg.Wait()
	for _, p := range pl.poolList() {
		p.bg.Wait()
	}
	return err
}
