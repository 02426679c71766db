package postgres

import (
	"strconv"

	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

// Session state that cannot move between server connections pins the client to its
// server connection until the state is released: a session-level advisory lock taken
// with pg_advisory_lock or pg_try_advisory_lock (and their _shared variants), or LISTEN.
// pg_advisory_unlock, pg_advisory_unlock_all, UNLISTEN and DISCARD make pgpool check,
// before the client's next request, whether anything is still held; when nothing is,
// the connection is shared again. A client that leaves while pinned leaves a
// connection that is reset with server_reset_query (DISCARD ALL releases locks and
// listeners) before anyone else gets it.

// pinCheckQuery counts what still pins a server connection.
const pinCheckQuery = "select (select count(*) from pg_locks where locktype = 'advisory' and pid = pg_backend_pid() and granted) + (select count(*) from pg_listening_channels())"

// sessionStateChange reports whether a Query or Parse takes session state (pin) or may
// release it (recheck).
func sessionStateChange(typ byte, msg []byte) (pin, recheck bool) {
	var sql []byte
	body := wire.Body(msg)
	switch typ {
	case wire.Query:
		sql = body
	case wire.Parse:
		// Parse: statement name, then the query, both NUL-terminated.
		for i, b := range body {
			if b == 0 {
				sql = body[i+1:]
				break
			}
		}
	default:
		return false, false
	}
	if containsFold(sql, "pg_advisory_lock") || containsFold(sql, "pg_try_advisory_lock") {
		pin = true
	}
	if containsFold(sql, "pg_advisory_unlock") {
		recheck = true
	}
	switch firstWord(sql) {
	case "listen":
		pin = true
	case "unlisten", "discard":
		recheck = true
	}
	return pin, recheck
}

// notePinning updates the client's pin for a message about to be sent. Call with c.mu
// held.
func (c *client) notePinning(typ byte, msg []byte) {
	if c.cfg == nil || c.cfg.mode != PoolTransaction || c.pl.settings().DisableSessionPinning {
		return
	}
	pin, recheck := sessionStateChange(typ, msg)
	if pin && !c.sessionPin {
		c.sessionPin = true
		c.pool.stats.pinned.Add(1)
		c.pl.log.Debug("client pinned to its server connection", "client", c.id, "user", c.user, "database", c.database)
	}
	if recheck && c.sessionPin {
		c.pinCheck = true
	}
}

// recheckPin asks the bound server connection whether anything still pins the client,
// when the client may have released its session state and nothing is in flight. It
// runs on the client's goroutine before the client's next request is forwarded.
func (c *client) recheckPin(s *server) error {
	c.mu.Lock()
	due := c.pinCheck && c.sessionPin && c.pending == 0 && !c.unsynced && s.txIdle() && c.out == nil
	if due {
		c.pinCheck = false
	}
	c.mu.Unlock()
	if !due {
		return nil
	}
	s.owner.Store(nil)
	rows, err := s.query(pinCheckQuery, true, c.pl.settings().ServerConnectTimeout)
	s.owner.Store(&c.ref)
	if err != nil {
		return err
	}
	if len(rows) == 1 && len(rows[0]) == 1 {
		if n, err := strconv.Atoi(rows[0][0]); err == nil && n == 0 {
			c.mu.Lock()
			c.sessionPin = false
			c.mu.Unlock()
			c.pool.stats.pinned.Add(-1)
			c.pl.log.Debug("client unpinned", "client", c.id)
		}
	}
	return nil
}

// containsFold reports whether b contains needle, ignoring ASCII case; needle is lower
// case.
func containsFold(b []byte, needle string) bool {
	n := len(needle)
	for i := 0; i+n <= len(b); i++ {
		j := 0
		for ; j < n; j++ {
			c := b[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != needle[j] {
				break
			}
		}
		if j == n {
			return true
		}
	}
	return false
}

// firstWord returns the first SQL word of a statement, lower case, skipping blanks and
// comments' absence is assumed (a leading comment hides the word).
func firstWord(sql []byte) string {
	i := 0
	for i < len(sql) && (sql[i] == ' ' || sql[i] == '\t' || sql[i] == '\n' || sql[i] == '\r') {
		i++
	}
	j := i
	for j < len(sql) && j-i < 10 && (sql[j]|0x20 >= 'a' && sql[j]|0x20 <= 'z') {
		j++
	}
	w := make([]byte, j-i)
	for k := range w {
		w[k] = sql[i+k] | 0x20
	}
	return string(w)
}
