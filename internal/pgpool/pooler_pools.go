package pgpool

import (
	"errors"
	"strings"
	"time"

	"github.com/poolsuite/poolsuite/protocol/postgres/auth"
)

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
	if mockMethodMatters(g) && !pl.encKnown(g, database) {
		// What PostgreSQL stores new passwords as, which the mock exchange of a user it
		// does not have follows (mockSCRAM). Asked before the lookup, for known and
		// unknown users alike; a server that refuses to say leaves the default.
		rows, err := s.query("SHOW password_encryption", true, g.ServerConnectTimeout)
		var se *ServerError
		switch {
		case err == nil && len(rows) > 0 && len(rows[0]) > 0:
			pl.learnEnc(g, database, rows[0][0])
		case err != nil && !errors.As(err, &se):
			return "", false, err
		}
	}
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
	for tick := 1; ; tick++ {
		select {
		case <-pl.done:
			return
		case now := <-t.C:
			if tick%3 == 0 && !pl.sweepPaused.Load() {
				pl.sweepIdle() // once a second (park.go)
			}
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

// longerWaiter returns the pool, among those sharing p's limits, whose first waiting
// client has waited longest, since before since (zero: at all), and could open a
// connection once one of p's had closed; nil if there is none.
func (pl *Pooler) longerWaiter(p *pool, since time.Time) *pool {
	var best *pool
	var bestAt time.Time
	for _, o := range pl.sharing(p)[1:] {
		o.mu.Lock()
		at, ok := o.eligible()
		o.mu.Unlock()
		if ok && (since.IsZero() || at.Before(since)) && (best == nil || at.Before(bestAt)) &&
			o.dbLimit.fitsAfter(p.dbLimit, p.usrLimit) && o.usrLimit.fitsAfter(p.dbLimit, p.usrLimit) {
			best, bestAt = o, at
		}
	}
	return best
}

// handSlot closes s, a server connection of from that no client is using, so that
// its slot under max_db_connections and max_user_connections goes to the first
// waiting client of to, who opens a connection in its place. The slot passes
// straight to that client: nobody else can take it in between, and no other
// connection is closed for the same client. A client that started waiting at or
// after before (when not zero) is not taken. It reports false, leaving s open and
// untouched, when to has no such client or to's own limits have no room; true when
// s is closed (or was found closed already, its slot given back).
func (pl *Pooler) handSlot(from *pool, s *server, to *pool, before time.Time) bool {
	to.mu.Lock()
	at, ok := to.eligible()
	if !ok || (!before.IsZero() && !at.Before(before)) {
		to.mu.Unlock()
		return false
	}
	w := to.waiters.pop()
	reserve := to.total() >= to.cfg.size
	to.opening++
	to.mu.Unlock()
	// The limits the two pools share keep their count; to's others take one, from's
	// others give one back.
	var took []*limiter
	for _, l := range [2]*limiter{to.dbLimit, to.usrLimit} {
		if l == nil || l == from.dbLimit || l == from.usrLimit {
			continue
		}
		if !l.tryTake() {
			for _, t := range took {
				t.give()
			}
			to.retry(w)
			return false
		}
		took = append(took, l)
	}
	from.mu.Lock()
	_, counted := from.servers[s]
	if counted {
		// s leaves the pool now: its slot is to's, so the reader's serverClosed must
		// not give it back.
		delete(from.servers, s)
	}
	from.mu.Unlock()
	if !counted {
		// s ended meanwhile and serverClosed gave its slot back: to's client takes
		// its turn again like every other.
		for _, t := range took {
			t.give()
		}
		to.retry(w)
		return true
	}
	freed := false
	for _, l := range [2]*limiter{from.dbLimit, from.usrLimit} {
		if l != nil && l != to.dbLimit && l != to.usrLimit {
			l.give()
			freed = freed || l.limited()
		}
	}
	s.close()
	w.ch <- grant{open: true, reserve: reserve}
	if freed {
		pl.offerSlots(from) // a slot of a limit to does not share may serve another pool
	}
	return true
}

// retry undoes handSlot's claim on w: w's client looks for a connection again, with
// the time it started waiting.
func (p *pool) retry(w *waiter) {
	p.mu.Lock()
	p.opening--
	p.mu.Unlock()
	w.ch <- grant{}
}

// evictIdle closes the longest-idle server connection of another pool that shares
// p's database or user limit, to make room under max_db_connections or
// max_user_connections for p's first waiting client (handSlot). It reports whether
// it closed one.
func (pl *Pooler) evictIdle(p *pool) bool {
	for _, o := range pl.poolList() {
		if o == p || (o.dbLimit != p.dbLimit && o.usrLimit != p.usrLimit) {
			continue
		}
		var victim *server
		o.mu.Lock()
		if len(o.idle) > 0 {
			victim = o.idle[0] // idle is most recently used last
			copy(o.idle, o.idle[1:])
			o.idle[len(o.idle)-1] = nil
			o.idle = o.idle[:len(o.idle)-1]
		}
		o.mu.Unlock()
		if victim == nil {
			continue
		}
		if pl.handSlot(o, victim, p, time.Time{}) {
			pl.log.Debug("closed an idle server connection to make room", "database", p.database, "user", p.user, "server", victim.String())
			return true
		}
		// Nobody to hand the slot to after all: the connection stays idle, the
		// longest idle again.
		o.mu.Lock()
		_, counted := o.servers[victim]
		if counted && !o.closed && !victim.closed.Load() {
			o.idle = append(o.idle, nil)
			copy(o.idle[1:], o.idle)
			o.idle[0] = victim
			o.mu.Unlock()
		} else {
			o.mu.Unlock()
			victim.close()
		}
		return false
	}
	return false
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
