package pgpool

import (
	"strconv"

	"github.com/poolsuite/poolsuite/protocol/postgres"
)

// Session state that cannot move between server connections pins the client to its
// server connection until the state is released:
//   - a session-level advisory lock (pg_advisory_lock, pg_try_advisory_lock and their
//     _shared variants), LISTEN, SQL-level PREPARE, a WITH HOLD cursor, or a temporary
//     table: when a transaction that called pg_try_advisory_lock or
//     pg_advisory_unlock(_all), or ran UNLISTEN, DEALLOCATE, CLOSE, DROP, RESET or
//     DISCARD, ends with nothing in flight, pgpool asks the server at once which of
//     these are left (pinCheckQuery, one count per kind) and releases the connection
//     when none is;
//   - a SET pgpool cannot follow (several statements in one Query, inside a
//     transaction block, set_config with parameters; see params.go): pinned until
//     RESET ALL or DISCARD ALL.
// A client that leaves while pinned leaves a connection that is reset with
// server_reset_query (DISCARD ALL, which releases all of the above) before anyone else
// gets it. Config.DisableSessionPinning turns pinning off, as in PgBouncer.
//
// A Query longer than the read buffer (wire.StreamSize) is streamed to the server, not
// read whole, so pgpool sees only its first part. It assumes the unseen rest may take
// session state: the client keeps its server connection until pgpool has asked the
// server, when the transaction ends, whether anything pins it (as after an unlock). A
// SET at the start of such a Query pins the client as a SET pgpool cannot follow; a
// SET after its first part is not seen.

// pins is the set of reasons a client keeps its server connection.
type pins uint8

// The reasons, in the order SHOW CLIENTS lists them: first the kinds of session
// state the protocol package recognises (same bits), then the pooler's own.
const (
	pinAdvisoryLock = pins(postgres.StateAdvisoryLock) // a session-level advisory lock
	pinListen       = pins(postgres.StateListen)       // LISTEN
	pinPrepare      = pins(postgres.StatePrepare)      // SQL-level PREPARE
	pinCursor       = pins(postgres.StateCursor)       // a WITH HOLD cursor
	pinTempTable    = pins(postgres.StateTempTable)    // a temporary table
	pinSet          = pinTempTable << 1                // a SET pgpool cannot follow
	pinPipeline     = pinSet << 1                      // named statements inside an untracked pipeline
	pinUnnamed      = pinPipeline << 1                 // an unnamed Parse longer than maxUnnamedCopy

	// serverPins are the reasons pinCheckQuery counts, in its column order.
	serverPins = pinAdvisoryLock | pinListen | pinPrepare | pinCursor | pinTempTable
)

var pinNames = [...]string{"advisory_lock", "listen", "prepare", "cursor", "temp_table", "set", "pipeline", "unnamed_parse"}

// add returns p with the reasons in r.
func (p pins) add(r pins) pins { return p | r }

// clear returns p without the reasons in r.
func (p pins) clear(r pins) pins { return p &^ r }

// has reports whether p holds any reason in r.
func (p pins) has(r pins) bool { return p&r != 0 }

// checked returns p after the server reported which session state remains: the
// reasons the server counts are replaced by remain, the others kept.
func (p pins) checked(remain pins) pins { return p&^serverPins | remain&serverPins }

// String lists the reasons, comma-separated; "" when there is none.
func (p pins) String() string {
	if p == 0 {
		return ""
	}
	var b []byte
	for i, name := range pinNames {
		if p&(1<<i) != 0 {
			if len(b) > 0 {
				b = append(b, ',')
			}
			b = append(b, name...)
		}
	}
	return string(b)
}

// pinCheckQuery counts, per kind, the session state that still pins a server
// connection; its columns are serverPins' reasons in order.
const pinCheckQuery = "select (select count(*) from pg_locks where locktype = 'advisory' and pid = pg_backend_pid() and granted)," +
	" (select count(*) from pg_listening_channels())," +
	" (select count(*) from pg_prepared_statements where from_sql)," +
	" (select count(*) from pg_cursors where is_holdable)," +
	" (select count(*) from pg_class where relnamespace = pg_my_temp_schema())"

// remainingPins reads pinCheckQuery's row: the reasons whose count is not zero. ok is
// false for a result of another shape.
func remainingPins(rows [][]string) (remain pins, ok bool) {
	if len(rows) != 1 || len(rows[0]) != 5 {
		return 0, false
	}
	for i, v := range rows[0] {
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, false
		}
		if n != 0 {
			remain |= 1 << i
		}
	}
	return remain, true
}

// notePinning updates the client's pins for a message about to be sent; partial says
// msg is only the first part of a message streamed to the server. Call with c.mu
// held.
func (c *client) notePinning(typ byte, msg []byte, unfollowedSet, partial bool) {
	if c.cfg == nil || c.cfg.mode != PoolTransaction || c.pl.settings().DisableSessionPinning {
		return
	}
	ch := postgres.SessionStateChange(typ, msg)
	if partial {
		// What pgpool could not see may take session state: pin, and ask the server
		// when the transaction ends.
		ch.Takes, ch.Recheck = ch.Takes|postgres.SessionState(serverPins), true
	}
	c.countPin(c.sess.note(ch, unfollowedSet))
}

// countPin keeps SHOW STATS' count of pinned clients. Call with c.mu held.
func (c *client) countPin(was pins) {
	now := c.sess.pins
	switch {
	case now != 0 && was == 0:
		c.pinnedNow()
		c.pool.stats.pinned.Add(1)
		c.pl.log.Debug("client pinned to its server connection", "client", c.id, "user", c.user, "database", c.database, "reason", now.String())
	case was != 0 && now == 0:
		c.unpinnedNow()
		c.pool.stats.pinned.Add(-1)
		c.pl.log.Debug("client unpinned", "client", c.id)
	}
}

// startPinCheck is called by ready when a transaction that may have released session
// state has ended with nothing in flight: it reports whether a check must run now, and
// then marks it running (c.checking), so the client's next message waits for its
// outcome. Call with c.mu held.
func (c *client) startPinCheck(status byte) bool {
	if !c.sess.pinCheck || status != 'I' || !c.sess.pins.has(serverPins) || c.inflight.requests() > 0 || c.stream != streamSynced ||
		c.longIn != longInNone || c.isClosing() || c.checking != nil || c.cfg.mode != PoolTransaction {
		return false
	}
	c.sess.pinCheck = false
	c.checking = make(chan struct{})
	return true
}

// checkPins asks s which session state the client still holds, and releases the
// connection when nothing pins the client any more. It runs on its own goroutine
// (counted in the pool's background work), since the server's reader must read the
// answer; the client's goroutine waits on c.checking before it sends anything.
func (c *client) checkPins(s *server) {
	defer c.pool.bg.Done()
	s.wmu.Lock() // the client's last flush may still be unwinding
	s.wmu.Unlock()
	timeout := c.pl.settings().ServerConnectTimeout
	rows, err := s.query(pinCheckQuery, true, timeout)
	c.mu.Lock()
	done := c.checking
	lost := err != nil && s.closed.Load()
	release := false
	if !lost {
		if err != nil {
			c.sess.pinCheck = true // try again when the next transaction ends
		} else if remain, ok := remainingPins(rows); ok {
			c.countPin(c.sess.checked(remain))
		}
		if c.server == s && !c.isClosing() {
			if err == nil && c.sess.pins == 0 {
				release = true
				c.server = nil
				c.unboundIdle()
				c.setReadDeadlineLocked()
			} else if !c.own(s) {
				lost, err = true, s.closeErr
			}
		}
	}
	if lost {
		// The session, and its state, is gone. The client is told before the check
		// ends: until then its next message waits, so it cannot reach the dead
		// connection, or a new one, ahead of the error.
		c.mu.Unlock()
		c.serverGone(s, err)
		c.mu.Lock()
	}
	c.checking = nil
	close(done)
	c.mu.Unlock()
	if !release {
		return
	}
	if reset, timeout := c.pool.releaseAfterTransaction(s); reset != "" {
		s.setState(serverUsed)
		if err := s.exec(reset, timeout); err != nil {
			s.close()
			return
		}
		c.pool.release(s)
	}
}

// own makes the client the owner of s (bound to it, or given it back after pgpool's
// own query on it) and reports whether s is still alive: false when s ended while
// nobody owned it, so that its reader, which reports to the owner, told nobody.
func (c *client) own(s *server) bool {
	s.owner.Store(&c.ref)
	return !s.closed.Load() || !s.owner.CompareAndSwap(&c.ref, nil)
}

// waitPinCheck waits, with c.mu held on entry and on return, until no pin check runs
// on the client's server connection and no report of its loss is being written.
func (c *client) waitPinCheck() {
	for c.checking != nil {
		ch := c.checking
		c.mu.Unlock()
		<-ch
		c.mu.Lock()
	}
}

// pinReason says why the client keeps its server connection, "" when it does not
// (SHOW CLIENTS' pinned column). Call with c.mu held.
func (c *client) pinReason() string {
	return c.sess.pins.String()
}
