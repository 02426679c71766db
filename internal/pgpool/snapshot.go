package pgpool

import (
	"cmp"
	"crypto/tls"
	"net"
	"slices"
	"time"
	"unsafe"

	"github.com/poolsuite/poolsuite/internal/pgpool/admin"
)

// Snapshot is the pooler's state at one moment, as the admin console and the
// metrics endpoint read it.
type Snapshot = admin.Snapshot

// Snapshot returns the pooler's state now. Each object's fields are copied under
// its own lock, briefly, or read from atomics; no lock is held while another is
// taken but the pool's over its server list, and none while anything is written to
// a socket. The result is the caller's: nothing changes it afterwards.
func (pl *Pooler) Snapshot() *Snapshot {
	g := pl.settings()
	s := &Snapshot{
		Version:    VersionString,
		ListenPort: pl.listenPort(),
		Paused:     pl.isPaused(""),
		Suspended:  pl.susp.on.Load(),
		Sizes: admin.Sizes{
			User:     int(unsafe.Sizeof(User{})),
			Database: int(unsafe.Sizeof(Database{})),
			Pool:     int(unsafe.Sizeof(pool{})),
			Server:   int(unsafe.Sizeof(server{})),
			Client:   int(unsafe.Sizeof(client{})),
		},
	}
	s.Clients, s.LoginClients = pl.clientRows()
	pools := pl.poolList()
	slices.SortFunc(pools, func(a, b *pool) int {
		return cmp.Or(cmp.Compare(a.database, b.database), cmp.Compare(a.user, b.user))
	})
	s.Pools = make([]admin.Pool, 0, len(pools))
	for _, p := range pools {
		s.Pools = append(s.Pools, pl.poolRow(p))
	}
	s.Databases = pl.databaseRows(g, pools)
	s.Users = userRows(g, pools)
	s.Config = configRows(g)
	s.Console = pl.admin.console.totals()
	s.Taken = time.Now()
	s.Since = pl.admin.stats.Observe(pl.startedAt, s.Taken, s.ByDatabase())
	return s
}

// totals copies the counters.
func (st *poolStats) totals() admin.Totals {
	return admin.Totals{
		Xacts:         st.xactCount.Load(),
		Queries:       st.queryCount.Load(),
		Received:      st.received.Load(),
		Sent:          st.sent.Load(),
		XactUS:        st.xactTime.Load(),
		QueryUS:       st.queryTime.Load(),
		WaitUS:        st.waitTimeUS.Load(),
		ServersOpened: st.serversOpened.Load(),
		ClientParses:  st.clientParses.Load(),
		ServerParses:  st.serverParses.Load(),
		Binds:         st.binds.Load(),
	}
}

// clientRows returns the clients past login, and the number still logging in.
func (pl *Pooler) clientRows() (rows []admin.Client, login int) {
	for _, c := range pl.clientList() {
		st := c.getState()
		switch st {
		case clientClosed:
			continue
		case clientLogin:
			login++
			continue
		}
		// c.admin and c.pool were written before the state left clientLogin.
		if !c.admin && c.pool == nil {
			continue
		}
		rows = append(rows, c.row(st))
	}
	return rows, login
}

// row copies what SHOW CLIENTS shows of the client.
func (c *client) row(st clientState) admin.Client {
	r := admin.Client{
		ID:          c.id,
		User:        c.user,
		Database:    c.database,
		Console:     c.admin,
		Waiting:     st == clientWaiting,
		ConnectedAt: c.connectedAt,
		RequestAt:   c.connectedAt,
		TLS:         tlsInfo(c.conn),
		AppName:     c.appName,
	}
	if c.pool != nil {
		r.PoolDatabase, r.PoolUser = c.pool.database, c.pool.user
	}
	if r.Waiting {
		if ns := c.waitStart.Load(); ns != 0 {
			r.WaitStart = time.Unix(0, ns)
		}
	}
	r.Addr, r.Port = splitAddr(c.conn.RemoteAddr())
	r.LocalAddr, r.LocalPort = splitAddr(c.conn.LocalAddr())
	if ns := c.requestAt.Load(); ns != 0 {
		r.RequestAt = time.Unix(0, ns)
	}
	c.mu.Lock()
	if c.server != nil {
		r.ServerID = c.server.id
	}
	if v, ok := c.sess.vals["application_name"]; ok {
		r.AppName = v
	}
	r.Pinned = c.pinReason()
	c.mu.Unlock()
	return r
}

// poolRow copies the pool's state and its server connections.
func (pl *Pooler) poolRow(p *pool) admin.Pool {
	p.mu.Lock()
	cfg := p.cfg
	r := admin.Pool{Database: p.database, User: p.user, Mode: cfg.mode.String(), Closed: p.closed, Opening: p.opening}
	ss := make([]*server, 0, len(p.servers))
	for s := range p.servers {
		ss = append(ss, s)
	}
	p.mu.Unlock()
	r.Stats = p.stats.totals()
	r.Pinned = p.stats.pinned.Load()
	r.Wait, r.Xact, r.Query = p.stats.waitHist.snapshot(), p.stats.xactHist.snapshot(), p.stats.queryHist.snapshot()
	r.Servers = make([]admin.Server, 0, len(ss))
	for _, s := range ss {
		r.Servers = append(r.Servers, pl.serverRow(s, cfg))
	}
	return r
}

// serverRow copies what SHOW SERVERS shows of a server connection.
func (pl *Pooler) serverRow(s *server, cfg *poolConfig) admin.Server {
	r := admin.Server{
		ID:          s.id,
		User:        cfg.server.user,
		State:       s.getState().String(),
		CreatedAt:   s.createdAt,
		LastUsed:    time.Unix(0, s.lastUsed.Load()),
		CloseNeeded: pl.closeNeeded(s) || s.stale(cfg),
		PID:         int64(s.pid),
		TLS:         tlsInfo(s.conn),
	}
	r.Addr, r.Port = splitAddr(s.conn.RemoteAddr())
	r.LocalAddr, r.LocalPort = splitAddr(s.conn.LocalAddr())
	if ref := s.owner.Load(); ref != nil {
		if cl, ok := ref.s.(*client); ok {
			r.ClientID = cl.id
		}
	}
	r.AppName, _ = s.param("application_name")
	return r
}

// databaseRows returns the rows of SHOW DATABASES but the console's: the configured
// databases and those reached through the "*" entry that have a pool.
func (pl *Pooler) databaseRows(g *Config, pools []*pool) []admin.Database {
	seen := make(map[string]bool)
	var names []string
	for name := range g.Databases {
		if name != "*" {
			seen[name] = true
			names = append(names, name)
		}
	}
	for _, p := range pools {
		if !seen[p.database] {
			seen[p.database] = true
			names = append(names, p.database)
		}
	}
	slices.Sort(names)
	rows := make([]admin.Database, 0, len(names))
	for _, name := range names {
		db, ok := g.database(name)
		if !ok {
			continue
		}
		cfg := resolvePool(g, name, "", db, nil)
		row := admin.Database{
			Name: name, Host: db.Host, Port: db.Port, ServerDatabase: cfg.server.database, ForceUser: db.User,
			PoolSize: cfg.size, MinPoolSize: cfg.minSize, ReservePool: cfg.reserveSize,
			MaxConnections: dbMax(g, db), Disabled: pl.databaseDisabled(name),
		}
		if db.PoolMode != nil {
			row.PoolMode = db.PoolMode.String()
		}
		if row.Host == "" {
			row.Host = "localhost"
		}
		if row.Port == 0 {
			row.Port = 5432
		}
		pl.mu.Lock()
		if l := pl.dbLimits[name]; l != nil {
			row.CurrentConnections = l.n.Load()
		}
		row.Paused = pl.paused[name]
		pl.mu.Unlock()
		rows = append(rows, row)
	}
	return rows
}

// userRows returns the users SHOW USERS lists but the console's: those of the auth
// file, of [users], of pools and forced by databases.
func userRows(g *Config, pools []*pool) []admin.User {
	seen := make(map[string]bool)
	for name := range g.Userlist {
		seen[name] = true
	}
	for name := range g.Users {
		seen[name] = true
	}
	for _, db := range g.Databases {
		if db.User != "" {
			seen[db.User] = true
		}
	}
	for _, p := range pools {
		seen[p.user] = true
	}
	rows := make([]admin.User, 0, len(seen))
	for name := range seen {
		u := admin.User{Name: name}
		if cu, ok := g.Users[name]; ok && cu.PoolMode != nil {
			u.PoolMode = cu.PoolMode.String()
		}
		rows = append(rows, u)
	}
	slices.SortFunc(rows, func(a, b admin.User) int { return cmp.Compare(a.Name, b.Name) })
	return rows
}

// listenPort returns the port of the first TCP listener, 0 if none.
func (pl *Pooler) listenPort() int {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	for _, ln := range pl.lns {
		if a, ok := ln.Addr().(*net.TCPAddr); ok {
			return a.Port
		}
	}
	return 0
}

// splitAddr returns the host and port of a socket address; "unix" for a unix socket.
func splitAddr(a net.Addr) (string, int) {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.IP.String(), a.Port
	case nil:
		return "", 0
	}
	return "unix", 0
}

// tlsInfo describes a TLS connection as "version/cipher"; "" without TLS.
func tlsInfo(conn net.Conn) string {
	tc, ok := conn.(*tls.Conn)
	if !ok {
		return ""
	}
	cs := tc.ConnectionState()
	return tls.VersionName(cs.Version) + "/" + tls.CipherSuiteName(cs.CipherSuite)
}
