package pgpool

import (
	"errors"
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

	// expiry is the one timer of the waiters' deadlines, armed for expiryAt
	// (armExpiry, expireWaiters; guarded by mu).
	expiry   *time.Timer
	expiryAt time.Time

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
		evict := false
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
				// max_db_connections or max_user_connections is reached: once c
				// waits, an idle connection of another pool of the same database or
				// user is closed, as PgBouncer does, and its slot handed to the
				// first of this pool's waiting clients.
				evict = !evicted
				evicted = true
			}
		}
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			err := waitTimeout(p.lastErr)
			p.mu.Unlock()
			return nil, err
		}
		w := &waiter{ch: make(chan grant, 1), since: start, deadline: deadline, c: c}
		p.waiters.push(w)
		p.armExpiry(w)
		p.stats.waiting.Add(1)
		offer := !p.paused && p.mayOpen(start)
		p.mu.Unlock()
		if offer {
			// A slot may be free (or freed since the checks above): it goes to whoever
			// has waited longest among the pools sharing the limits, maybe w.
			p.pooler.offerSlots(p)
		}
		if evict {
			p.pooler.evictIdle(p)
		}
		g, err := p.wait(w)
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

// wait blocks until w is granted something. A deadline passing reaches w as a grant
// with the error (expireWaiters), so a waiting client holds no timer of its own.
func (p *pool) wait(w *waiter) (grant, error) {
	select {
	case g := <-w.ch:
		return g, nil
	case <-p.pooler.done:
	}
	p.mu.Lock()
	if w.gone {
		// Granted while pgpool stopped: take what was granted.
		p.mu.Unlock()
		return <-w.ch, nil
	}
	p.waiters.remove(w)
	err := p.waitEnded()
	p.mu.Unlock()
	return grant{}, err
}

// waitEnded is the error of a wait that ends without a grant. Call with p.mu held.
func (p *pool) waitEnded() error {
	if p.paused {
		return ErrPaused
	}
	return waitTimeout(p.lastErr)
}

// armExpiry makes the pool's one wait timer fire by w's deadline. Call with p.mu
// held.
func (p *pool) armExpiry(w *waiter) {
	if w.deadline.IsZero() || (!p.expiryAt.IsZero() && !w.deadline.Before(p.expiryAt)) {
		return
	}
	p.expiryAt = w.deadline
	d := time.Until(w.deadline)
	if p.expiry == nil {
		p.expiry = time.AfterFunc(d, p.expireWaiters)
		return
	}
	p.expiry.Reset(d)
}

// expireWaiters ends the wait of every client whose deadline has passed, with the
// error of a wait that ends without a grant, and arms the timer for the earliest
// deadline left. The timer may fire early (the waiter it was armed for was served
// meanwhile): it then only re-arms.
func (p *pool) expireWaiters() {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expiryAt = time.Time{}
	var next *waiter
	for w := p.waiters.head; w != nil; {
		after := w.next
		switch {
		case w.deadline.IsZero():
		case !now.Before(w.deadline):
			p.waiters.remove(w)
			w.ch <- grant{err: p.waitEnded()}
		case next == nil || w.deadline.Before(next.deadline):
			next = w
		}
		w = after
	}
	if next != nil {
		p.armExpiry(next)
	}
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
	// Prepared statements (SHOW STATS *_parse_count, *_bind_count): clients' named
	// Parses, Parses sent to server connections, Binds of clients' named statements.
	clientParses, serverParses, binds atomic.Int64

	// Distributions for the metrics endpoint: client waits for a server connection,
	// transactions, requests (histogram.go).
	waitHist, xactHist, queryHist histogram
}

func (st *poolStats) waitTime(since time.Time) {
	d := time.Since(since)
	st.waitTimeUS.Add(d.Microseconds())
	st.waitHist.observe(d)
}
