package pgpool

import (
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// PoolMode says when a server connection goes back to the pool.
type PoolMode int

const (
	// PoolSession keeps a server connection for the client's whole session.
	PoolSession PoolMode = iota
	// PoolTransaction returns it when a transaction ends and every Query and Sync the
	// client sent on it has been answered.
	PoolTransaction
	// PoolStatement returns it after every statement; transactions are refused.
	PoolStatement
)

func (m PoolMode) String() string {
	switch m {
	case PoolSession:
		return "session"
	case PoolTransaction:
		return "transaction"
	case PoolStatement:
		return "statement"
	}
	return "unknown"
}

// ParsePoolMode reads a pool_mode value.
func ParsePoolMode(s string) (PoolMode, bool) {
	switch s {
	case "session":
		return PoolSession, true
	case "transaction":
		return PoolTransaction, true
	case "statement":
		return PoolStatement, true
	}
	return 0, false
}

// poolConfig is the resolved configuration of one pool: a (database, user) pair.
type poolConfig struct {
	mode           PoolMode
	size           int
	minSize        int
	reserveSize    int
	reserveTimeout time.Duration
	server         serverOptions

	serverLifetime    time.Duration
	serverIdleTimeout time.Duration
	serverLoginRetry  time.Duration
	queryWaitTimeout  time.Duration
	checkQuery        string
	checkDelay        time.Duration
	resetQuery        string
	resetAlways       bool
	fastClose         bool // server_fast_close (fastclose.go)
}

// grant is what a waiting client is handed: a server connection, or permission to
// open one, or an error.
type grant struct {
	s    *server
	open bool
	// reserve: the connection to open is one of the reserve pool.
	reserve bool
	err     error
}

type waiter struct {
	ch    chan grant // buffered 1
	since time.Time
	c     *client
	next  *waiter
	prev  *waiter
	gone  bool // removed from the queue
}

// waitQueue is a FIFO of waiting clients; its length is bounded by max_client_conn.
type waitQueue struct {
	head, tail *waiter
	n          int
	// lims are the pool's database and user limiters: each counts the waiters of
	// every pool that shares it.
	lims [2]*limiter
}

func (q *waitQueue) push(w *waiter) {
	w.prev = q.tail
	if q.tail != nil {
		q.tail.next = w
	} else {
		q.head = w
	}
	q.tail = w
	q.n++
	for _, l := range q.lims {
		if l != nil {
			l.waiting.Add(1)
		}
	}
}

func (q *waitQueue) remove(w *waiter) {
	if w.gone {
		return
	}
	w.gone = true
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		q.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		q.tail = w.prev
	}
	w.next, w.prev = nil, nil
	q.n--
	for _, l := range q.lims {
		if l != nil {
			l.waiting.Add(-1)
		}
	}
}

func (q *waitQueue) pop() *waiter {
	w := q.head
	if w != nil {
		q.remove(w)
	}
	return w
}

// limiter counts server connections against max_db_connections or
// max_user_connections. Zero max means no limit. The pools that share a limiter hand
// the connection slots it frees to their waiting clients in the order they started
// waiting (Pooler.offerSlots).
type limiter struct {
	n   atomic.Int64
	max atomic.Int64
	// waiting counts the clients waiting in the pools that share this limiter.
	waiting atomic.Int64
}

// limited reports whether the limiter has a maximum.
func (l *limiter) limited() bool { return l != nil && l.max.Load() > 0 }

// fitsAfter reports whether l would have room for one more connection once a
// connection counted against freed had closed.
func (l *limiter) fitsAfter(freed ...*limiter) bool {
	if !l.limited() {
		return true
	}
	n := l.n.Load()
	for _, f := range freed {
		if f == l {
			n--
			break
		}
	}
	return n < l.max.Load()
}

func (l *limiter) tryTake() bool {
	if l == nil {
		return true
	}
	for {
		n, max := l.n.Load(), l.max.Load()
		if max > 0 && n >= max {
			return false
		}
		if l.n.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (l *limiter) give() {
	if l != nil {
		l.n.Add(-1)
	}
}

// pool holds the server connections of one (database, user) pair.
type pool struct {
	pooler   *Pooler
	database string // as the client names it
	user     string // as the client names it
	dbLimit  *limiter
	usrLimit *limiter

	mu        sync.Mutex
	cfg       *poolConfig
	idle      []*server // most recently used last
	servers   map[*server]struct{}
	opening   int
	waiters   waitQueue
	paused    bool
	closed    bool
	lastErr   error // the last failed server connect, until one succeeds
	lastErrAt time.Time
	// lastErrRefused: lastErr is PostgreSQL refusing the login (not the network, not
	// a server starting up): clients get it at once instead of waiting.
	lastErrRefused bool
	welcome        map[string]string // ParameterStatus values sent to new clients
	nextID         *atomic.Uint64
	bg             sync.WaitGroup // background work: min_pool_size connects, reset queries
	hosts          hostState      // which host of a host list the next connect uses (hosts.go)

	stats poolStats

	// stmtGen maps a server-side statement name to its generation, raised each time
	// PostgreSQL reports that the statement's result type changed (prepared.go).
	stmtGen sync.Map

	// known holds server-side statement names PostgreSQL prepared (ParseComplete) on
	// a server connection of the pool, at most maxKnownStmts; the schema epoch is part
	// of each name, so a schema change retires them all (prepared.go).
	knownMu sync.Mutex
	known   map[string]struct{}
}

// maxKnownStmts bounds pool.known.
const maxKnownStmts = 4096

// knownStmt reports whether PostgreSQL prepared the server-side statement srv on a
// server connection of the pool.
func (p *pool) knownStmt(srv string) bool {
	p.knownMu.Lock()
	defer p.knownMu.Unlock()
	_, ok := p.known[srv]
	return ok
}

// noteStmt records that PostgreSQL prepared srv; when the set is full, an arbitrary
// other name is forgotten.
func (p *pool) noteStmt(srv string) {
	p.knownMu.Lock()
	defer p.knownMu.Unlock()
	if _, ok := p.known[srv]; ok {
		return
	}
	if p.known == nil {
		p.known = make(map[string]struct{})
	}
	for name := range p.known {
		if len(p.known) < maxKnownStmts {
			break
		}
		delete(p.known, name)
	}
	p.known[srv] = struct{}{}
}

// forgetStmt drops srv from the statements known to prepare.
func (p *pool) forgetStmt(srv string) {
	p.knownMu.Lock()
	defer p.knownMu.Unlock()
	delete(p.known, srv)
}

// stmtGeneration returns the generation of a server-side statement.
func (p *pool) stmtGeneration(srv string) uint64 {
	if v, ok := p.stmtGen.Load(srv); ok {
		return v.(*atomic.Uint64).Load()
	}
	return 0
}

// bumpStmtGeneration records that a statement's result type changed: clients that
// prepared it before get PostgreSQL's error until they prepare it again.
func (p *pool) bumpStmtGeneration(srv string) {
	v, _ := p.stmtGen.LoadOrStore(srv, new(atomic.Uint64))
	v.(*atomic.Uint64).Add(1)
}

func newPool(pl *Pooler, database, user string, cfg *poolConfig, dbLimit, usrLimit *limiter) *pool {
	p := &pool{
		pooler: pl, database: database, user: user, cfg: cfg,
		dbLimit: dbLimit, usrLimit: usrLimit,
		servers: make(map[*server]struct{}),
		nextID:  &pl.nextServerID,
	}
	p.waiters.lims = [2]*limiter{dbLimit, usrLimit}
	return p
}

func (p *pool) config() *poolConfig {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cfg
}

// total is the number of server connections open or opening. Call with p.mu held.
func (p *pool) total() int { return len(p.servers) + p.opening }

// mayOpen reports whether one more server connection may be opened for a client that
// has waited since `since`. Call with p.mu held.
func (p *pool) mayOpen(since time.Time) bool {
	limit := p.cfg.size
	if p.cfg.reserveSize > 0 && !since.IsZero() && time.Since(since) >= p.cfg.reserveTimeout {
		limit += p.cfg.reserveSize
	}
	if p.total() >= limit {
		return false
	}
	if p.lastErr != nil && (p.opening > 0 || time.Since(p.lastErrAt) < p.cfg.serverLoginRetry) {
		// The last connect failed: try again once server_login_retry has passed since,
		// one attempt at a time, while the clients wait.
		return false
	}
	return true
}

// contended reports whether clients of other pools wait under a limit p shares:
// a slot p could take or give back is theirs first if they have waited longer.
// Call with p.mu held.
func (p *pool) contended() bool {
	for _, l := range p.waiters.lims {
		if l.limited() && l.waiting.Load() > int64(p.waiters.n) {
			return true
		}
	}
	return false
}

// acquire returns a server connection for c, waiting up to the deadline (zero: no
// limit). The connection is checked with server_check_query when it has been idle
// longer than server_check_delay. While server connects fail for want of the server
// (refused, unreachable, starting up), c keeps waiting and a connect is tried again
// every server_login_retry; when the deadline passes, the error names the last failure.
func (p *pool) acquire(c *client, deadline time.Time) (*server, error) {
	start := time.Now()
	evicted := false
	p.mu.Lock()
	for {
		if p.closed {
			p.mu.Unlock()
			return nil, ErrPoolClosed
		}
		if !p.paused {
			if s := p.popIdle(); s != nil {
				p.mu.Unlock()
				if s, err := p.check(s); err == nil {
					p.stats.waitTime(start)
					return s, nil
				}
				p.mu.Lock()
				continue
			}
			if err := p.recentFailure(); err != nil {
				p.mu.Unlock()
				return nil, err
			}
			if p.mayOpen(start) && !p.contended() {
				if p.takeLimits() {
					reserve := p.total() >= p.cfg.size
					p.opening++
					p.mu.Unlock()
					if reserve && c != nil {
						c.logReserve()
					}
					s, err := p.open()
					if err == nil {
						p.stats.waitTime(start)
						return s, nil
					}
					if !transientConnectError(err) {
						return nil, err
					}
					p.mu.Lock()
					continue
				}
				if !evicted {
					// max_db_connections or max_user_connections is reached: close an
					// idle connection of another pool of the same database or user, as
					// PgBouncer does; the slot it frees is offered to the waiters.
					evicted = true
					p.mu.Unlock()
					p.pooler.evictIdle(p)
					p.mu.Lock()
					continue
				}
			}
		}
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			err := waitTimeout(p.lastErr)
			p.mu.Unlock()
			return nil, err
		}
		w := &waiter{ch: make(chan grant, 1), since: start, c: c}
		p.waiters.push(w)
		p.stats.waiting.Add(1)
		offer := !p.paused && p.mayOpen(start)
		p.mu.Unlock()
		if offer {
			// A slot may be free (or freed since the checks above): it goes to whoever
			// has waited longest among the pools sharing the limits, maybe w.
			p.pooler.offerSlots(p)
		}
		g, err := p.wait(w, deadline)
		p.stats.waiting.Add(-1)
		if err != nil {
			return nil, err
		}
		if g.err != nil {
			return nil, g.err
		}
		if g.s != nil {
			if s, err := p.check(g.s); err == nil {
				p.stats.waitTime(start)
				return s, nil
			}
		}
		if g.open {
			if g.reserve && c != nil {
				c.logReserve()
			}
			s, err := p.open()
			if err == nil {
				p.stats.waitTime(start)
				return s, nil
			}
			if !transientConnectError(err) {
				return nil, err
			}
		}
		p.mu.Lock()
	}
}

// recentFailure returns PostgreSQL's refusal of the last login while
// server_login_retry has not passed and no connection could serve the client anyway.
// Call with p.mu held.
func (p *pool) recentFailure() error {
	if p.lastErr != nil && p.lastErrRefused && p.total() == 0 && time.Since(p.lastErrAt) < p.cfg.serverLoginRetry {
		return p.lastErr
	}
	return nil
}

// takeLimits reserves a connection against max_db_connections and
// max_user_connections. Call with p.mu held.
func (p *pool) takeLimits() bool {
	if !p.dbLimit.tryTake() {
		return false
	}
	if !p.usrLimit.tryTake() {
		p.dbLimit.give()
		return false
	}
	return true
}

func (p *pool) wait(w *waiter, deadline time.Time) (grant, error) {
	var timeout <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case g := <-w.ch:
		return g, nil
	case <-timeout:
	case <-p.pooler.done:
	}
	p.mu.Lock()
	if w.gone {
		// Granted while we timed out: take what was granted.
		p.mu.Unlock()
		return <-w.ch, nil
	}
	p.waiters.remove(w)
	paused := p.paused
	cause := p.lastErr
	p.mu.Unlock()
	if paused {
		return grant{}, ErrPaused
	}
	return grant{}, waitTimeout(cause)
}

// popIdle takes the most recently used idle connection. Call with p.mu held.
func (p *pool) popIdle() *server {
	for n := len(p.idle); n > 0; n = len(p.idle) {
		s := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		if s.closed.Load() {
			continue
		}
		s.setState(serverActive)
		return s
	}
	return nil
}

// check runs server_check_query on a connection idle longer than server_check_delay.
// A connection that fails the check is closed.
func (p *pool) check(s *server) (*server, error) {
	cfg := p.config()
	if time.Since(time.Unix(0, s.lastUsed.Load())) < cfg.checkDelay && cfg.checkDelay > 0 {
		return s, nil
	}
	s.setState(serverUsed)
	q := cfg.checkQuery
	if err := s.exec(q, cfg.server.connectTimeout); err != nil {
		s.close()
		return nil, err
	}
	s.setState(serverActive)
	s.lastCheck = time.Now()
	return s, nil
}

// open connects a new server connection; the caller has counted it in p.opening.
func (p *pool) open() (*server, error) {
	p.mu.Lock()
	cfg := p.cfg
	p.mu.Unlock()
	s, err := dialServer(p, &p.hosts, p.nextID.Add(1), &cfg.server, cfg.serverLoginRetry, p.pooler.log)
	if err != nil {
		p.connectFailed(err)
		return nil, err
	}
	s.logNewServer(p)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.opening--
	if p.lastErr != nil {
		p.pooler.log.Info("server connect works again", "database", p.database, "user", p.user)
		p.lastErr, p.lastErrAt, p.lastErrRefused = nil, time.Time{}, false
		defer p.grantOpen() // the waiters held back by the failures may connect now
	}
	j := 0.9 + 0.1*rand.Float64() // jitter so connections do not all expire together
	if cfg.serverLifetime > 0 {
		s.expiresAt = s.createdAt.Add(time.Duration(float64(cfg.serverLifetime) * j))
	}
	if p.welcome == nil {
		p.welcome = s.paramsCopy()
	}
	if p.closed {
		s.close()
		return nil, ErrPoolClosed
	}
	p.servers[s] = struct{}{}
	s.setState(serverActive)
	p.stats.serversOpened.Add(1)
	return s, nil
}

// connectFailed records a failed connect and gives its slot back. PostgreSQL's refusal
// of the login goes to every waiting client at once when nobody can be served; a
// failure for want of the server leaves them waiting for the next attempt.
func (p *pool) connectFailed(err error) {
	p.logServerLoginFailed(err)
	p.mu.Lock()
	p.opening--
	p.dbLimit.give()
	p.usrLimit.give()
	p.lastErr, p.lastErrAt = err, time.Now()
	p.lastErrRefused = !transientConnectError(err)
	if p.lastErrRefused && p.total() == 0 {
		for w := p.waiters.pop(); w != nil; w = p.waiters.pop() {
			w.ch <- grant{err: err}
		}
	}
	p.mu.Unlock()
	p.pooler.offerSlots(p) // the slot given back may serve another pool
}

// release puts a server connection back: to the first waiter, or to the idle list.
// Connections past server_lifetime, or of a closed or reconfigured pool, are closed.
func (p *pool) release(s *server) { p.put(s, false) }

// releaseAfterTransaction is release for a connection whose client has just ended a
// transaction in transaction or statement mode. With server_reset_query_always it
// keeps the connection out of the pool and returns the reset query, and its timeout,
// to run before release.
func (p *pool) releaseAfterTransaction(s *server) (reset string, timeout time.Duration) {
	return p.put(s, true)
}

func (p *pool) put(s *server, transactionEnd bool) (reset string, timeout time.Duration) {
	s.wmu.Lock() // wait for the last owner's flush to finish unwinding
	s.wmu.Unlock()
	if s.parkForCancels(transactionEnd) {
		return "", 0 // the last cancel to complete releases it (resumeRelease)
	}
	now := time.Now()
	s.lastUsed.Store(now.UnixNano())
	p.mu.Lock()
	if s.closed.Load() {
		p.mu.Unlock()
		return "", 0
	}
	if p.closed || (!s.expiresAt.IsZero() && now.After(s.expiresAt)) || s.stale(p.cfg) {
		expired := !p.closed && !s.expiresAt.IsZero() && now.After(s.expiresAt)
		stale := !p.closed && s.stale(p.cfg)
		p.mu.Unlock()
		switch {
		case expired:
			s.closeBecause(reasonServerLifetime)
		case stale:
			s.closeBecause(reasonConfigChanged)
		default:
			s.close()
		}
		return "", 0
	}
	if transactionEnd && p.cfg.resetAlways && p.cfg.resetQuery != "" {
		reset, timeout = p.cfg.resetQuery, p.cfg.server.connectTimeout
		p.mu.Unlock()
		return reset, timeout
	}
	if !p.paused && p.contended() {
		var since time.Time
		if w := p.waiters.head; w != nil {
			since = w.since
		}
		p.mu.Unlock()
		if p.pooler.waitsLonger(p, since) {
			// A client of another pool sharing a limit has waited longer than any of
			// ours: close this connection so that its slot goes to that client.
			p.pooler.log.Debug("closing a server connection to make room for another pool", "database", p.database, "user", p.user, "server", s.String())
			s.close()
			return "", 0
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			s.close()
			return "", 0
		}
	}
	if !p.paused {
		if w := p.waiters.pop(); w != nil {
			s.setState(serverActive)
			w.ch <- grant{s: s}
			p.mu.Unlock()
			return "", 0
		}
	}
	s.setState(serverIdle)
	p.idle = append(p.idle, s)
	p.mu.Unlock()
	return "", 0
}

// resumeRelease performs a release put off while cancels were under way.
func (p *pool) resumeRelease(s *server, transactionEnd bool) {
	reset, timeout := p.put(s, transactionEnd)
	if reset == "" {
		return
	}
	s.setState(serverUsed)
	if err := s.exec(reset, timeout); err != nil {
		s.close()
		return
	}
	p.release(s)
}

// stale reports whether a connection was opened for a configuration that has since
// changed where it matters (address, server TLS settings).
func (s *server) stale(cfg *poolConfig) bool {
	return !cfg.server.hasAddr(s.addr) || s.tlsKey != cfg.server.tlsKey
}

// serverClosed forgets a connection whose reader has ended, and lets a waiter open a
// replacement: of this pool, or of another sharing its limits that has waited longer.
func (p *pool) serverClosed(s *server) {
	p.mu.Lock()
	if _, ok := p.servers[s]; !ok {
		p.mu.Unlock()
		return
	}
	delete(p.servers, s)
	p.dbLimit.give()
	p.usrLimit.give()
	for i, t := range p.idle {
		if t == s {
			copy(p.idle[i:], p.idle[i+1:])
			p.idle[len(p.idle)-1] = nil
			p.idle = p.idle[:len(p.idle)-1]
			break
		}
	}
	p.mu.Unlock()
	p.pooler.offerSlots(p)
}

// grantOpen lets waiting clients open connections while the pool has room. Call with
// p.mu held.
func (p *pool) grantOpen() {
	for p.grantOne() {
	}
}

// eligible returns when the first waiter started waiting, if it could open a
// connection but for max_db_connections and max_user_connections. Call with p.mu held.
func (p *pool) eligible() (since time.Time, ok bool) {
	w := p.waiters.head
	if w == nil || p.paused || p.closed || !p.mayOpen(w.since) {
		return time.Time{}, false
	}
	return w.since, true
}

// grantOne lets the first waiter open a connection if the pool and the limits have
// room; it reports whether it did. Call with p.mu held.
func (p *pool) grantOne() bool {
	if _, ok := p.eligible(); !ok || !p.takeLimits() {
		return false
	}
	w := p.waiters.pop()
	reserve := p.total() >= p.cfg.size
	p.opening++
	w.ch <- grant{open: true, reserve: reserve}
	return true
}

// maintain is called by the janitor about once a second: it closes connections idle
// past server_idle_timeout or past server_lifetime, keeps min_pool_size open, and lets
// waiters use the reserve pool once they have waited reserve_pool_timeout.
func (p *pool) maintain(now time.Time) {
	p.mu.Lock()
	cfg := p.cfg
	var toClose []*server
	keep := p.idle[:0]
	n := p.total()
	for _, s := range p.idle {
		idleFor := now.Sub(time.Unix(0, s.lastUsed.Load()))
		expired := !s.expiresAt.IsZero() && now.After(s.expiresAt)
		tooIdle := cfg.serverIdleTimeout > 0 && idleFor > cfg.serverIdleTimeout && n > cfg.minSize
		if expired || tooIdle || p.closed || s.stale(cfg) {
			switch {
			case expired:
				s.reason.CompareAndSwap(nil, ptrTo(reasonServerLifetime))
			case tooIdle:
				s.reason.CompareAndSwap(nil, ptrTo(reasonServerIdle))
			}
			toClose = append(toClose, s)
			n--
			continue
		}
		keep = append(keep, s)
	}
	for i := len(keep); i < len(p.idle); i++ {
		p.idle[i] = nil
	}
	p.idle = keep
	// min_pool_size: open in the background, one at a time per tick.
	var warm bool
	if !p.closed && !p.paused && p.total() < cfg.minSize && p.total() < cfg.size &&
		(p.lastErr == nil || now.Sub(p.lastErrAt) >= cfg.serverLoginRetry) && p.takeLimits() {
		p.opening++
		warm = true
	}
	p.mu.Unlock()
	for _, s := range toClose {
		s.close()
	}
	if warm {
		p.bg.Add(1)
		go func() {
			defer p.bg.Done()
			if s, err := p.open(); err == nil {
				p.release(s)
			}
		}()
	}
}

// takeStaleIdle removes from the idle list the connections stale under cfg and
// returns them for the caller to close. Call with p.mu held.
func (p *pool) takeStaleIdle(cfg *poolConfig) []*server {
	var out []*server
	keep := p.idle[:0]
	for _, s := range p.idle {
		if s.stale(cfg) {
			out = append(out, s)
			continue
		}
		keep = append(keep, s)
	}
	for i := len(keep); i < len(p.idle); i++ {
		p.idle[i] = nil
	}
	p.idle = keep
	return out
}

// closeAll closes every connection (KILL, reload removal, shutdown) and fails waiters.
func (p *pool) closeAll(err error) {
	p.mu.Lock()
	p.closed = true
	p.idle = nil
	all := make([]*server, 0, len(p.servers))
	for s := range p.servers {
		all = append(all, s)
	}
	for w := p.waiters.pop(); w != nil; w = p.waiters.pop() {
		w.ch <- grant{err: err}
	}
	p.mu.Unlock()
	for _, s := range all {
		s.close()
	}
}

// closeIdle closes idle connections only (RECONNECT, reload of server settings).
func (p *pool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, s := range idle {
		s.close()
	}
}

// setPaused pauses or resumes handing out connections.
func (p *pool) setPaused(paused bool) {
	p.mu.Lock()
	p.paused = paused
	if !paused {
		for len(p.idle) > 0 && p.waiters.head != nil {
			s := p.popIdle()
			if s == nil {
				break
			}
			p.waiters.pop().ch <- grant{s: s}
		}
		p.grantOpen()
	}
	p.mu.Unlock()
}

// activeCount reports connections that are not idle (for PAUSE to wait on).
func (p *pool) activeCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.servers) - len(p.idle) + p.opening
}

// welcomeParams returns the ParameterStatus values new clients are told, learning them
// from a server connection first if the pool has none yet.
func (p *pool) welcomeParams(c *client, deadline time.Time) (map[string]string, error) {
	p.mu.Lock()
	w := p.welcome
	p.mu.Unlock()
	if w != nil {
		return w, nil
	}
	s, err := p.acquire(c, deadline)
	if err != nil {
		return nil, err
	}
	p.release(s)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.welcome == nil {
		return nil, errors.New("pgpool: no server parameters")
	}
	return p.welcome, nil
}

// poolStats are the counters SHOW STATS and SHOW POOLS read.
type poolStats struct {
	xactCount     atomic.Int64
	queryCount    atomic.Int64
	received      atomic.Int64
	sent          atomic.Int64
	xactTime      atomic.Int64 // microseconds
	queryTime     atomic.Int64 // microseconds
	waitTimeUS    atomic.Int64 // microseconds
	waiting       atomic.Int64
	serversOpened atomic.Int64
	pinned        atomic.Int64

	// Distributions for the metrics endpoint: client waits for a server connection,
	// transactions, requests (histogram.go).
	waitHist, xactHist, queryHist histogram
}

func (st *poolStats) waitTime(since time.Time) {
	d := time.Since(since)
	st.waitTimeUS.Add(d.Microseconds())
	st.waitHist.observe(d)
}
