package pgpool

import (
	"context"
	"sync"
	"time"

	"github.com/poolsuite/poolsuite/internal/pgpool/admin"
)

// adminPollInterval is how often PAUSE and WAIT_CLOSE look at the pools while they
// wait.
const adminPollInterval = 10 * time.Millisecond

// consoleControl is what the admin console changes in the Pooler.
type consoleControl struct{ pl *Pooler }

var _ admin.Control = consoleControl{}

// Snapshot returns the pooler's state now.
func (cc consoleControl) Snapshot() *admin.Snapshot { return cc.pl.Snapshot() }

// KnownDatabase reports whether clients may connect to name: it has an entry, the
// "*" entry covers it, or it has a pool.
func (cc consoleControl) KnownDatabase(name string) bool {
	pl := cc.pl
	if _, ok := pl.settings().database(name); ok {
		return true
	}
	for _, p := range pl.poolList() {
		if p.database == name {
			return true
		}
	}
	return false
}

// Paused reports whether the database ("" = the whole pooler) is paused.
func (cc consoleControl) Paused(database string) bool { return cc.pl.isPaused(database) }

// SetPaused pauses or resumes the database ("" = the whole pooler).
func (cc consoleControl) SetPaused(database string, paused bool) { cc.pl.setPause(database, paused) }

// WaitReleased waits until the pools of db ("" = all) have no server connection,
// closing idle ones as they appear, for PAUSE. It gives up if the pause is lifted.
func (cc consoleControl) WaitReleased(db string) error {
	pl := cc.pl
	t := time.NewTicker(adminPollInterval)
	defer t.Stop()
	for {
		ps := pl.poolsOf(db)
		for _, p := range ps {
			p.closeIdle()
		}
		if busyServers(ps) == 0 {
			return nil
		}
		if !pl.pausedDatabase(db) {
			return admin.ErrPauseCanceled
		}
		select {
		case <-pl.done:
			return admin.ErrShuttingDown
		case <-t.C:
		}
	}
}

// Kill closes the pools of db and its clients.
func (cc consoleControl) Kill(db string) {
	pl := cc.pl
	pl.mu.Lock()
	var ps []*pool
	for key, p := range pl.pools {
		if key.database == db {
			delete(pl.pools, key)
			ps = append(ps, p)
		}
	}
	pl.mu.Unlock()
	for _, p := range ps {
		p.closeAll(ErrPoolClosed)
	}
	var wg sync.WaitGroup
	for _, c := range pl.clientList() {
		st := c.getState()
		if st == clientLogin || st == clientClosed || c.admin || c.database != db {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Do not let a client that stopped reading hold KILL up.
			c.conn.SetWriteDeadline(time.Now().Add(time.Second))
			c.sendError(fatalf(CodeAdminShutdown, "database removed"))
			c.close()
		}()
	}
	wg.Wait()
}

// Reconnect closes every server connection of db ("" = all), idle ones now and busy
// ones when released, so new ones pick up changed settings.
func (cc consoleControl) Reconnect(db string) {
	for _, p := range cc.pl.poolsOf(db) {
		cc.pl.markForClose(p.database, p.expireAll())
	}
}

// WaitClose waits until the server connections RECONNECT or a reload of server
// settings asked to close are closed.
func (cc consoleControl) WaitClose(db string) error {
	pl := cc.pl
	t := time.NewTicker(adminPollInterval)
	defer t.Stop()
	for pl.pendingClose(db)+staleServers(pl.poolsOf(db)) > 0 {
		select {
		case <-pl.done:
			return admin.ErrShuttingDown
		case <-t.C:
		}
	}
	return nil
}

// staleServers counts open connections made for server settings that have changed.
func staleServers(ps []*pool) int {
	n := 0
	for _, p := range ps {
		p.mu.Lock()
		for s := range p.servers {
			if s.stale(p.cfg) && !s.closed.Load() {
				n++
			}
		}
		p.mu.Unlock()
	}
	return n
}

// SetDisabled is DISABLE and ENABLE.
func (cc consoleControl) SetDisabled(db string, disabled bool) { cc.pl.setDisabled(db, disabled) }

// Reload runs the function set with SetReloadFunc.
func (cc consoleControl) Reload() error {
	pl := cc.pl
	pl.admin.mu.Lock()
	reload := pl.admin.reload
	pl.admin.mu.Unlock()
	if reload == nil {
		return admin.ErrNoReload
	}
	return reload()
}

// Shutdown runs the function set with SetShutdownFunc, or shuts down at once, in a
// goroutine of its own: Shutdown waits for the console client's goroutine.
func (cc consoleControl) Shutdown() {
	pl := cc.pl
	pl.admin.mu.Lock()
	shutdown := pl.admin.shutdown
	pl.admin.mu.Unlock()
	if shutdown == nil {
		shutdown = func() {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			pl.Shutdown(ctx)
		}
	}
	go shutdown()
}

// Set is the console's SET of a setting.
func (cc consoleControl) Set(who admin.Caller, name, value string) error {
	return cc.pl.setSetting(who.Owner, name, value)
}
