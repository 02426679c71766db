package pgpool

import (
	"sync"
	"time"

	"github.com/poolsuite/poolsuite/internal/pgpool/admin"
)

// adminState is what the admin console keeps in the Pooler beyond the pools
// themselves. The zero value is ready to use.
type adminState struct {
	mu       sync.Mutex
	disabled map[string]bool    // DISABLE: databases refusing new clients
	marked   map[*server]string // RECONNECT: connections to close when released -> database
	reload   func() error       // SetReloadFunc
	shutdown func()             // SetShutdownFunc
	verbose  func(int)          // SetVerboseFunc
	stats    admin.Sampler      // for the avg_ columns of SHOW STATS
	console  poolStats          // the admin console's own traffic, as database "pgbouncer"
}

// SetReloadFunc sets what the admin console's RELOAD runs: typically re-read the
// configuration file and pass the result to Reload. Without it RELOAD answers an error.
// It is safe to call at any time.
func (pl *Pooler) SetReloadFunc(f func() error) {
	pl.admin.mu.Lock()
	pl.admin.reload = f
	pl.admin.mu.Unlock()
}

// SetShutdownFunc sets what the admin console's SHUTDOWN runs, in a goroutine of its
// own. Without it SHUTDOWN calls Shutdown with no time to drain, as PgBouncer's SHUTDOWN
// exits at once. It is safe to call at any time.
func (pl *Pooler) SetShutdownFunc(f func()) {
	pl.admin.mu.Lock()
	pl.admin.shutdown = f
	pl.admin.mu.Unlock()
}

// SetVerboseFunc sets what the admin console's SET verbose = N runs once the setting
// has changed: typically set the log level of the Pooler's logger (N >= 1: debug).
// It is safe to call at any time.
func (pl *Pooler) SetVerboseFunc(f func(verbose int)) {
	pl.admin.mu.Lock()
	pl.admin.verbose = f
	pl.admin.mu.Unlock()
}

// applyVerbose runs the SetVerboseFunc function; the caller holds a.mu.
func (a *adminState) applyVerbose(n int) {
	if a.verbose != nil {
		a.verbose(n)
	}
}

// databaseDisabled reports whether DISABLE was run for the database (and no ENABLE
// since): new clients of it are refused.
func (pl *Pooler) databaseDisabled(database string) bool {
	pl.admin.mu.Lock()
	defer pl.admin.mu.Unlock()
	return pl.admin.disabled[database]
}

func (pl *Pooler) setDisabled(database string, disabled bool) {
	pl.admin.mu.Lock()
	defer pl.admin.mu.Unlock()
	if !disabled {
		delete(pl.admin.disabled, database)
		return
	}
	if pl.admin.disabled == nil {
		pl.admin.disabled = make(map[string]bool)
	}
	pl.admin.disabled[database] = true
}

// markForClose notes connections RECONNECT asked to be closed, for WAIT_CLOSE and the
// close_needed column of SHOW SERVERS.
func (pl *Pooler) markForClose(database string, ss []*server) {
	pl.admin.mu.Lock()
	defer pl.admin.mu.Unlock()
	if pl.admin.marked == nil {
		pl.admin.marked = make(map[*server]string)
	}
	for _, s := range ss {
		pl.admin.marked[s] = database
	}
}

// closeNeeded reports whether RECONNECT marked s and it is still open.
func (pl *Pooler) closeNeeded(s *server) bool {
	pl.admin.mu.Lock()
	defer pl.admin.mu.Unlock()
	_, ok := pl.admin.marked[s]
	return ok && !s.closed.Load()
}

// pendingClose counts marked connections of the database ("" = all) still open, and
// forgets the closed ones.
func (pl *Pooler) pendingClose(database string) int {
	pl.admin.mu.Lock()
	defer pl.admin.mu.Unlock()
	n := 0
	for s, db := range pl.admin.marked {
		if s.closed.Load() {
			delete(pl.admin.marked, s)
			continue
		}
		if database == "" || db == database {
			n++
		}
	}
	return n
}

// isPaused reports whether the database ("" = the whole pooler) is paused.
func (pl *Pooler) isPaused(database string) bool {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return pl.paused[database]
}

// pausedDatabase reports whether clients of the database get no server connection
// now: the database or the whole pooler is paused.
func (pl *Pooler) pausedDatabase(database string) bool {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return pl.paused[""] || pl.paused[database]
}

// setPause pauses or resumes the database ("" = the whole pooler) and applies the
// result to every pool it covers.
func (pl *Pooler) setPause(database string, paused bool) {
	pl.mu.Lock()
	if paused {
		pl.paused[database] = true
	} else {
		delete(pl.paused, database)
	}
	type change struct {
		p      *pool
		paused bool
	}
	var cs []change
	for key, p := range pl.pools {
		if database == "" || key.database == database {
			cs = append(cs, change{p, pl.paused[""] || pl.paused[key.database]})
		}
	}
	pl.mu.Unlock()
	for _, c := range cs {
		c.p.setPaused(c.paused)
	}
}

// poolsOf returns the pools of the database ("" = all).
func (pl *Pooler) poolsOf(database string) []*pool {
	var ps []*pool
	for _, p := range pl.poolList() {
		if database == "" || p.database == database {
			ps = append(ps, p)
		}
	}
	return ps
}

// busyServers counts the server connections of the pools that are not idle: in use by
// a client, running a check or reset, or logging in.
func busyServers(ps []*pool) int {
	n := 0
	for _, p := range ps {
		n += p.activeCount()
	}
	return n
}

// expireAll makes every server connection of p expire now: idle ones are closed at
// once and busy ones when they are released (pool.release closes expired
// connections). It returns the connections that were open.
func (p *pool) expireAll() []*server {
	now := time.Now()
	p.mu.Lock()
	all := make([]*server, 0, len(p.servers))
	for s := range p.servers {
		s.expiresAt = now
		all = append(all, s)
	}
	p.mu.Unlock()
	p.closeIdle()
	return all
}
