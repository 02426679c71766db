package pgpool

import (
	"context"
	"sync"
	"time"
)

// adminPollInterval is how often PAUSE and WAIT_CLOSE look at the pools while they
// wait.
const adminPollInterval = 10 * time.Millisecond

// knownDatabase reports whether clients may connect to name: it has an entry, the "*"
// entry covers it, or it has a pool.
func (pl *Pooler) knownDatabase(name string) bool {
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

// targetDatabase checks the database argument of a command that changes a database.
// what names the command in PgBouncer's error text ("pause", "kill", ...).
func (pl *Pooler) targetDatabase(name, what string) error {
	if adminDatabases[name] {
		return adminErr("cannot %s admin db: %s", what, name)
	}
	if !pl.knownDatabase(name) {
		return adminErr("no such database: %s", name)
	}
	return nil
}

// errShuttingDown ends a console command that waits while pgpool shuts down.
func errShuttingDown() *Error { return fatalf(CodeAdminShutdown, "pgpool is shutting down") }

// adminPause is PAUSE [db]: no client gets a server connection any more, idle server
// connections are closed, and the command returns once every server connection of the
// pools concerned has been released and closed.
func (c *client) adminPause(cmd adminCommand) error {
	if c.pl.isPaused("") {
		return adminErr("already suspended/paused")
	}
	db := cmd.arg
	if db != "" {
		if err := c.pl.targetDatabase(db, "pause"); err != nil {
			return err
		}
	}
	c.pl.setPause(db, true)
	if err := c.waitReleased(db); err != nil {
		return err
	}
	return c.sendComplete("PAUSE")
}

// waitReleased waits until the pools of db ("" = all) have no server connection,
// closing idle ones as they appear, for PAUSE. It gives up if the pause is lifted.
func (c *client) waitReleased(db string) error {
	t := time.NewTicker(adminPollInterval)
	defer t.Stop()
	for {
		ps := c.pl.poolsOf(db)
		for _, p := range ps {
			p.closeIdle()
		}
		if busyServers(ps) == 0 {
			return nil
		}
		if !c.pl.pausedDatabase(db) {
			return adminErr("PAUSE canceled by RESUME")
		}
		select {
		case <-c.pl.done:
			return errShuttingDown()
		case <-t.C:
		}
	}
}

// adminResume is RESUME [db]: lift PAUSE or KILL.
func (c *client) adminResume(cmd adminCommand) error {
	db := cmd.arg
	if db == "" {
		if !c.pl.isPaused("") {
			return adminErr("pooler is not paused/suspended")
		}
	} else {
		if !c.pl.knownDatabase(db) {
			return adminErr("no such database: %s", db)
		}
		if !c.pl.isPaused(db) {
			return adminErr("database %s is not paused", db)
		}
	}
	c.pl.setPause(db, false)
	return c.sendComplete("RESUME")
}

// adminKill is KILL db: every client and server connection of the database is closed
// at once and the database stays paused until RESUME.
func (c *client) adminKill(cmd adminCommand) error {
	if c.pl.isPaused("") {
		return adminErr("already suspended/paused")
	}
	db := cmd.arg
	if db == "" {
		return adminErr("a database is required")
	}
	if err := c.pl.targetDatabase(db, "kill"); err != nil {
		return err
	}
	c.pl.setPause(db, true)
	c.pl.killDatabase(db)
	return c.sendComplete("KILL")
}

// killDatabase closes the pools of db and its clients.
func (pl *Pooler) killDatabase(db string) {
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

// adminReconnect is RECONNECT [db]: every server connection is closed, idle ones now
// and busy ones when released, so new ones pick up changed settings.
func (c *client) adminReconnect(cmd adminCommand) error {
	db := cmd.arg
	if db != "" {
		if err := c.pl.targetDatabase(db, "reconnect"); err != nil {
			return err
		}
	}
	for _, p := range c.pl.poolsOf(db) {
		c.pl.markForClose(p.database, p.expireAll())
	}
	return c.sendComplete("RECONNECT")
}

// adminWaitClose is WAIT_CLOSE [db]: wait until the server connections RECONNECT or a
// reload of server settings asked to close are closed.
func (c *client) adminWaitClose(cmd adminCommand) error {
	db := cmd.arg
	if db != "" {
		if adminDatabases[db] {
			return adminErr("cannot wait in admin db: %s", db)
		}
		if !c.pl.knownDatabase(db) {
			return adminErr("no such database: %s", db)
		}
	}
	t := time.NewTicker(adminPollInterval)
	defer t.Stop()
	for c.pl.pendingClose(db)+staleServers(c.pl.poolsOf(db)) > 0 {
		select {
		case <-c.pl.done:
			return errShuttingDown()
		case <-t.C:
		}
	}
	return c.sendComplete("WAIT_CLOSE")
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

// adminDisable is DISABLE db: new clients of the database are refused; connected ones
// go on.
func (c *client) adminDisable(cmd adminCommand) error {
	db := cmd.arg
	if db == "" {
		return adminErr("a database is required")
	}
	if err := c.pl.targetDatabase(db, "disable"); err != nil {
		return err
	}
	c.pl.setDisabled(db, true)
	return c.sendComplete("DISABLE")
}

// adminEnable is ENABLE db: undo DISABLE.
func (c *client) adminEnable(cmd adminCommand) error {
	db := cmd.arg
	if db == "" {
		return adminErr("a database is required")
	}
	if err := c.pl.targetDatabase(db, "disable"); err != nil { // PgBouncer's wording
		return err
	}
	c.pl.setDisabled(db, false)
	return c.sendComplete("ENABLE")
}

// adminReload is RELOAD: run the function set with SetReloadFunc.
func (c *client) adminReload(cmd adminCommand) error {
	if err := requireNoArg(cmd); err != nil {
		return err
	}
	c.pl.admin.mu.Lock()
	reload := c.pl.admin.reload
	c.pl.admin.mu.Unlock()
	if reload == nil {
		return adminErr("RELOAD is not available: pgpool runs without a configuration file")
	}
	if err := reload(); err != nil {
		c.pl.log.Warn("RELOAD failed", "client", c.id, "user", c.user, "err", err)
		e := adminErr("RELOAD failed")
		e.Detail = err.Error()
		return e
	}
	return c.sendComplete("RELOAD")
}

// adminShutdown is SHUTDOWN: run the function set with SetShutdownFunc, or shut down
// at once. Like PgBouncer, it sends no answer; the connection closes.
func (c *client) adminShutdown(cmd adminCommand) error {
	if err := requireNoArg(cmd); err != nil {
		return err
	}
	c.pl.admin.mu.Lock()
	shutdown := c.pl.admin.shutdown
	c.pl.admin.mu.Unlock()
	if shutdown == nil {
		shutdown = func() {
			// Shutdown waits for this client's goroutine, so it cannot run on it.
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			c.pl.Shutdown(ctx)
		}
	}
	go shutdown()
	return errAdminExit
}

// adminSuspend is SUSPEND, which hands sockets to a new process in PgBouncer; pgpool
// has no online restart.
func (c *client) adminSuspend(cmd adminCommand) error {
	if err := requireNoArg(cmd); err != nil {
		return err
	}
	return errorf(CodeFeatureNotSupported, "SUSPEND is not supported by pgpool; use PAUSE")
}
