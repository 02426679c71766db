package pgpool

import (
	"cmp"
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
	"unsafe"
)

// showCommands maps SHOW's subcommands to the functions building their results.
var showCommands = map[string]func(c *client) (*adminResult, error){
	"pools":          (*client).showPools,
	"clients":        (*client).showClients,
	"servers":        (*client).showServers,
	"databases":      (*client).showDatabases,
	"users":          (*client).showUsers,
	"lists":          (*client).showLists,
	"mem":            (*client).showMem,
	"version":        (*client).showVersion,
	"state":          (*client).showState,
	"config":         (*client).showConfig,
	"stats":          (*client).showStats,
	"stats_totals":   (*client).showStatsTotals,
	"stats_averages": (*client).showStatsAverages,
	"totals":         (*client).showTotals,
	"dns_hosts":      (*client).showDNSHosts,
	"dns_zones":      (*client).showDNSZones,
}

// fakeParams answer SHOW and SET of a few session parameters that some clients query
// or set right after connecting, with PgBouncer's values.
var fakeParams = map[string]string{
	"client_encoding":               "UTF-8",
	"default_transaction_isolation": "read committed",
	"standard_conforming_strings":   "on",
	"datestyle":                     "ISO",
	"timezone":                      "GMT",
}

// adminShow runs SHOW (or SELECT, its synonym) and its subcommand.
func (c *client) adminShow(cmd adminCommand) error {
	name := strings.ToLower(cmd.arg)
	if v, ok := fakeParams[name]; ok {
		r := newResult(textCol(name))
		r.add(v)
		return c.sendResult(r)
	}
	switch name {
	case "help":
		return c.adminShowHelp()
	case "fds", "sockets", "active_sockets":
		if !c.isAdmin(c.pl.settings()) {
			return errAdminAccess()
		}
		return errorf(CodeFeatureNotSupported, "SHOW %s is not supported by pgpool", strings.ToUpper(name))
	}
	f, ok := showCommands[name]
	if !ok {
		return adminSyntaxError(cmd.query)
	}
	r, err := f(c)
	if err != nil {
		return err
	}
	return c.sendResult(r)
}

// clientInfo is what SHOW POOLS and SHOW CLIENTS read of a client connection.
type clientInfo struct {
	c        *client
	state    clientState
	pool     *pool // nil for the admin console
	admin    bool
	waitFrom time.Time
}

// loggedInClients returns the clients past login, and the number still logging in.
func (pl *Pooler) loggedInClients() (infos []clientInfo, login int) {
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
		ci := clientInfo{c: c, state: st, pool: c.pool, admin: c.admin}
		if st == clientWaiting {
			if ns := c.waitStart.Load(); ns != 0 {
				ci.waitFrom = time.Unix(0, ns)
			}
		}
		if ci.admin || ci.pool != nil {
			infos = append(infos, ci)
		}
	}
	return infos, login
}

// sortedPools returns the open pools ordered by database and user.
func (pl *Pooler) sortedPools() []*pool {
	ps := pl.poolList()
	ps = slices.DeleteFunc(ps, func(p *pool) bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.closed
	})
	slices.SortFunc(ps, func(a, b *pool) int {
		return cmp.Or(cmp.Compare(a.database, b.database), cmp.Compare(a.user, b.user))
	})
	return ps
}

// poolCounts are one row of SHOW POOLS.
type poolCounts struct {
	database, user                    string
	clActive, clWaiting               int
	svActive, svIdle, svUsed, svLogin int
	maxWait                           time.Duration
	mode                              string
}

func (c *client) showPools() (*adminResult, error) {
	now := time.Now()
	clients, _ := c.pl.loggedInClients()
	admins := 0
	byPool := make(map[*pool][]clientInfo)
	for _, ci := range clients {
		if ci.admin {
			admins++
			continue
		}
		byPool[ci.pool] = append(byPool[ci.pool], ci)
	}
	rows := []poolCounts{{database: adminDatabase, user: adminDatabase, clActive: admins, mode: PoolStatement.String()}}
	for _, p := range c.pl.sortedPools() {
		pc := p.counts()
		for _, ci := range byPool[p] {
			if ci.state == clientWaiting {
				pc.clWaiting++
				if !ci.waitFrom.IsZero() {
					pc.maxWait = max(pc.maxWait, now.Sub(ci.waitFrom))
				}
			} else {
				pc.clActive++
			}
		}
		rows = append(rows, pc)
	}
	slices.SortStableFunc(rows, func(a, b poolCounts) int {
		return cmp.Or(cmp.Compare(a.database, b.database), cmp.Compare(a.user, b.user))
	})
	r := newResult(
		textCol("database"), textCol("user"),
		int4Col("cl_active"), int4Col("cl_waiting"),
		int4Col("cl_active_cancel_req"), int4Col("cl_waiting_cancel_req"),
		int4Col("sv_active"), int4Col("sv_active_cancel"), int4Col("sv_being_canceled"),
		int4Col("sv_idle"), int4Col("sv_used"), int4Col("sv_tested"), int4Col("sv_login"),
		int4Col("maxwait"), int4Col("maxwait_us"), textCol("pool_mode"))
	for _, pc := range rows {
		us := pc.maxWait.Microseconds()
		r.add(pc.database, pc.user, pc.clActive, pc.clWaiting, 0, 0,
			pc.svActive, 0, 0, pc.svIdle, pc.svUsed, 0, pc.svLogin,
			us/1e6, us%1e6, pc.mode)
	}
	return r, nil
}

// counts returns the pool's server connections by state.
func (p *pool) counts() poolCounts {
	p.mu.Lock()
	defer p.mu.Unlock()
	pc := poolCounts{database: p.database, user: p.user, svLogin: p.opening, mode: p.cfg.mode.String()}
	for s := range p.servers {
		switch s.getState() {
		case serverActive:
			pc.svActive++
		case serverIdle:
			pc.svIdle++
		case serverUsed:
			pc.svUsed++
		case serverLogin:
			pc.svLogin++
		}
	}
	return pc
}

// socketCols are the columns of SHOW CLIENTS and SHOW SERVERS.
func socketCols() *adminResult {
	return newResult(
		textCol("type"), textCol("user"), textCol("database"), textCol("state"),
		textCol("addr"), int4Col("port"), textCol("local_addr"), int4Col("local_port"),
		textCol("connect_time"), textCol("request_time"),
		int4Col("wait"), int4Col("wait_us"), int4Col("close_needed"),
		textCol("ptr"), textCol("link"), int4Col("remote_pid"), textCol("tls"),
		textCol("application_name"))
}

// formatAdminTime formats a time as PgBouncer's console does.
func formatAdminTime(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04:05 MST")
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

// clientPtr and serverPtr are the ptr and link columns: unique per connection, so a
// client's link is its server's ptr and the other way round.
func clientPtr(c *client) string { return fmt.Sprintf("0x%x", c.id<<1) }
func serverPtr(s *server) string { return fmt.Sprintf("0x%x", s.id<<1|1) }

// tlsInfo describes a TLS connection as "version/cipher"; "" without TLS.
func tlsInfo(conn net.Conn) string {
	tc, ok := conn.(*tls.Conn)
	if !ok {
		return ""
	}
	cs := tc.ConnectionState()
	return tls.VersionName(cs.Version) + "/" + tls.CipherSuiteName(cs.CipherSuite)
}

func (c *client) showClients() (*adminResult, error) {
	now := time.Now()
	clients, _ := c.pl.loggedInClients()
	type row struct {
		db, user string
		order    int
		ci       clientInfo
	}
	rows := make([]row, 0, len(clients))
	for _, ci := range clients {
		rw := row{db: adminDatabase, user: adminDatabase, ci: ci}
		if !ci.admin {
			rw.db, rw.user = ci.pool.database, ci.pool.user
		}
		if ci.state == clientWaiting {
			rw.order = 1
		}
		rows = append(rows, rw)
	}
	slices.SortFunc(rows, func(a, b row) int {
		return cmp.Or(cmp.Compare(a.db, b.db), cmp.Compare(a.user, b.user),
			cmp.Compare(a.order, b.order), cmp.Compare(a.ci.c.id, b.ci.c.id))
	})
	r := socketCols()
	r.cols = append(r.cols, textCol("pinned")) // pgpool's addition: why the client keeps its server connection
	for _, rw := range rows {
		cl := rw.ci.c
		state := "active"
		var wait time.Duration
		if rw.ci.state == clientWaiting {
			state = "waiting"
			if !rw.ci.waitFrom.IsZero() {
				wait = now.Sub(rw.ci.waitFrom)
			}
		}
		addr, port := splitAddr(cl.conn.RemoteAddr())
		laddr, lport := splitAddr(cl.conn.LocalAddr())
		requested := cl.connectedAt
		if ns := cl.requestAt.Load(); ns != 0 {
			requested = time.Unix(0, ns)
		}
		link := ""
		appName := cl.appName
		cl.mu.Lock()
		if cl.server != nil {
			link = serverPtr(cl.server)
		}
		if v, ok := cl.sess.vals["application_name"]; ok {
			appName = v
		}
		pinned := cl.pinReason()
		cl.mu.Unlock()
		dbName := rw.db
		if !rw.ci.admin {
			dbName = cl.database
		}
		us := wait.Microseconds()
		r.add("C", cl.user, dbName, state, addr, port, laddr, lport,
			formatAdminTime(cl.connectedAt), formatAdminTime(requested),
			us/1e6, us%1e6, 0, clientPtr(cl), link, 0, tlsInfo(cl.conn), appName, pinned)
	}
	return r, nil
}

// serverStateOrder orders SHOW SERVERS rows within a pool as PgBouncer lists them.
func serverStateOrder(st serverState) int {
	switch st {
	case serverActive:
		return 0
	case serverIdle:
		return 1
	case serverUsed:
		return 2
	}
	return 3
}

func (c *client) showServers() (*adminResult, error) {
	r := socketCols()
	for _, p := range c.pl.sortedPools() {
		p.mu.Lock()
		cfg := p.cfg
		ss := make([]*server, 0, len(p.servers))
		for s := range p.servers {
			ss = append(ss, s)
		}
		p.mu.Unlock()
		slices.SortFunc(ss, func(a, b *server) int {
			return cmp.Or(cmp.Compare(serverStateOrder(a.getState()), serverStateOrder(b.getState())), cmp.Compare(a.id, b.id))
		})
		for _, s := range ss {
			st := s.getState()
			if st == serverClosed {
				continue
			}
			addr, port := splitAddr(s.conn.RemoteAddr())
			laddr, lport := splitAddr(s.conn.LocalAddr())
			link := ""
			if ref := s.owner.Load(); ref != nil {
				if cl, ok := ref.s.(*client); ok {
					link = clientPtr(cl)
				}
			}
			appName, _ := s.param("application_name")
			closeNeeded := c.pl.closeNeeded(s) || s.stale(cfg)
			r.add("S", cfg.server.user, p.database, st.String(), addr, port, laddr, lport,
				formatAdminTime(s.createdAt), formatAdminTime(time.Unix(0, s.lastUsed.Load())),
				0, 0, closeNeeded, serverPtr(s), link, int64(s.pid), tlsInfo(s.conn), appName)
		}
	}
	return r, nil
}

// databaseNames returns the databases SHOW DATABASES lists: the configured ones and
// those reached through the "*" entry that have a pool, without "*" itself.
func (pl *Pooler) databaseNames(g *Config) []string {
	seen := make(map[string]bool)
	var names []string
	for name := range g.Databases {
		if name != "*" {
			seen[name] = true
			names = append(names, name)
		}
	}
	for _, p := range pl.poolList() {
		if !seen[p.database] {
			seen[p.database] = true
			names = append(names, p.database)
		}
	}
	slices.Sort(names)
	return names
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

func (c *client) showDatabases() (*adminResult, error) {
	g := c.pl.settings()
	r := newResult(
		textCol("name"), textCol("host"), int4Col("port"), textCol("database"),
		textCol("force_user"), int4Col("pool_size"), int4Col("min_pool_size"),
		int4Col("reserve_pool"), textCol("pool_mode"), int4Col("max_connections"),
		int4Col("current_connections"), int4Col("paused"), int4Col("disabled"))
	type dbRow struct {
		name string
		vals []any
	}
	rows := []dbRow{{adminDatabase, []any{adminDatabase, nil, c.pl.listenPort(), adminDatabase, adminDatabase,
		2, 0, 0, PoolStatement.String(), 0, 0, false, false}}}
	for _, name := range c.pl.databaseNames(g) {
		db, ok := g.database(name)
		if !ok {
			continue
		}
		cfg := resolvePool(g, name, "", db, nil)
		var mode *string
		if db.PoolMode != nil {
			m := db.PoolMode.String()
			mode = &m
		}
		c.pl.mu.Lock()
		var current int64
		if l := c.pl.dbLimits[name]; l != nil {
			current = l.n.Load()
		}
		paused := c.pl.paused[name]
		c.pl.mu.Unlock()
		host := db.Host
		if host == "" {
			host = "localhost"
		}
		port := db.Port
		if port == 0 {
			port = 5432
		}
		rows = append(rows, dbRow{name, []any{name, host, port, cfg.server.database, nullable(db.User),
			cfg.size, cfg.minSize, cfg.reserveSize, mode, dbMax(g, db), current,
			paused, c.pl.databaseDisabled(name)}})
	}
	slices.SortStableFunc(rows, func(a, b dbRow) int { return cmp.Compare(a.name, b.name) })
	for _, row := range rows {
		r.add(row.vals...)
	}
	return r, nil
}

// userNames returns the users SHOW USERS lists: those of the auth file, of [users], of
// pools and forced by databases, and the console's own.
func (pl *Pooler) userNames(g *Config) []string {
	seen := map[string]bool{adminDatabase: true}
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
	for _, p := range pl.poolList() {
		seen[p.user] = true
	}
	names := make([]string, 0, len(seen))
	for name := range seen {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func (c *client) showUsers() (*adminResult, error) {
	g := c.pl.settings()
	r := newResult(textCol("name"), textCol("pool_mode"))
	for _, name := range c.pl.userNames(g) {
		var mode *string
		if u, ok := g.Users[name]; ok && u.PoolMode != nil {
			m := u.PoolMode.String()
			mode = &m
		}
		r.add(name, mode)
	}
	return r, nil
}

// serverCount returns the number of open server connections.
func (pl *Pooler) serverCount() int {
	n := 0
	for _, p := range pl.poolList() {
		p.mu.Lock()
		n += len(p.servers)
		p.mu.Unlock()
	}
	return n
}

func (c *client) showLists() (*adminResult, error) {
	g := c.pl.settings()
	clients, login := c.pl.loggedInClients()
	r := newResult(textCol("list"), int4Col("items"))
	r.add("databases", len(c.pl.databaseNames(g))+1)
	r.add("users", len(c.pl.userNames(g)))
	r.add("pools", len(c.pl.sortedPools())+1)
	r.add("free_clients", 0)
	r.add("used_clients", len(clients)+login)
	r.add("login_clients", login)
	r.add("free_servers", 0)
	r.add("used_servers", c.pl.serverCount())
	r.add("dns_names", 0)
	r.add("dns_zones", 0)
	r.add("dns_queries", 0)
	r.add("dns_pending", 0)
	return r, nil
}

// showMem estimates memory by object kind: pgpool has no slab caches, so size is the
// size of the Go struct (buffers for iobuf), used the number of live objects and free
// always 0.
func (c *client) showMem() (*adminResult, error) {
	g := c.pl.settings()
	clients, login := c.pl.loggedInClients()
	nclients := len(clients) + login
	nservers := c.pl.serverCount()
	r := newResult(textCol("name"), int4Col("size"), int4Col("used"), int4Col("free"), int4Col("memtotal"))
	add := func(name string, size uintptr, used int) {
		r.add(name, int(size), used, 0, int(size)*used)
	}
	add("user_cache", unsafe.Sizeof(User{}), len(c.pl.userNames(g)))
	add("db_cache", unsafe.Sizeof(Database{}), len(c.pl.databaseNames(g))+1)
	add("pool_cache", unsafe.Sizeof(pool{}), len(c.pl.sortedPools())+1)
	add("server_cache", unsafe.Sizeof(server{}), nservers)
	add("client_cache", unsafe.Sizeof(client{}), nclients)
	add("iobuf_cache", 8<<10, nclients+nservers)
	return r, nil
}

func (c *client) showVersion() (*adminResult, error) {
	r := newResult(textCol("version"))
	r.add(VersionString)
	return r, nil
}

func (c *client) showState() (*adminResult, error) {
	yesNo := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	paused := c.pl.isPaused("")
	r := newResult(textCol("key"), textCol("value"))
	r.add("active", yesNo(!paused))
	r.add("paused", yesNo(paused))
	r.add("suspended", "no")
	return r, nil
}

func (c *client) showDNSHosts() (*adminResult, error) {
	return newResult(textCol("hostname"), int8Col("ttl"), textCol("addrs")), nil
}

func (c *client) showDNSZones() (*adminResult, error) {
	return newResult(textCol("zonename"), int8Col("serial"), int4Col("count")), nil
}
