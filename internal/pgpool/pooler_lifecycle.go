package pgpool

import (
	"context"
	"time"
)

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
			idle := c.server == nil || (c.inflight.requests() == 0 && !c.stream.unsynced() && c.server.txIdle() && c.cfg != nil && c.cfg.mode != PoolSession)
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
	pl.parker.Close() // every client has ended: nothing is parked
	for _, p := range pl.poolList() {
		p.bg.Wait()
	}
	return err
}
