package postgres

import (
	"strconv"

	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

// Session state that cannot move between server connections pins the client to its
// server connection until the state is released:
//   - a session-level advisory lock (pg_advisory_lock, pg_try_advisory_lock and their
//     _shared variants), LISTEN, SQL-level PREPARE, a WITH HOLD cursor, or a temporary
//     table: after pg_advisory_unlock(_all), UNLISTEN, DEALLOCATE, CLOSE, DROP, RESET or
//     DISCARD, pgpool asks the server before the client's next request whether any such
//     state is left, and unpins when none is;
//   - a SET pgpool cannot follow (several statements in one Query, or inside a
//     transaction block; see params.go): pinned until RESET ALL or DISCARD ALL.
// A client that leaves while pinned leaves a connection that is reset with
// server_reset_query (DISCARD ALL, which releases all of the above) before anyone else
// gets it. Config.DisableSessionPinning turns pinning off, as in PgBouncer.

// pinCheckQuery counts the session state that still pins a server connection.
const pinCheckQuery = "select (select count(*) from pg_locks where locktype = 'advisory' and pid = pg_backend_pid() and granted)" +
	" + (select count(*) from pg_listening_channels())" +
	" + (select count(*) from pg_prepared_statements where from_sql)" +
	" + (select count(*) from pg_cursors where is_holdable)" +
	" + (select count(*) from pg_class where relnamespace = pg_my_temp_schema())"

// stateChange is what a statement does to session state that pins.
type stateChange struct {
	pin     bool // takes state the server can be asked about
	recheck bool // may release such state
	unset   bool // RESET ALL or DISCARD ALL: such SETs are gone
}

// sessionStateChange reads a Query or Parse for statements that take or release
// session state.
func sessionStateChange(typ byte, msg []byte) stateChange {
	if typ != wire.Query && typ != wire.Parse {
		return stateChange{}
	}
	sql := statementText(typ, msg)
	var ch stateChange
	if containsFold(sql, "advisory") { // one scan for the common case of no lock at all
		if containsFold(sql, "pg_advisory_lock") || containsFold(sql, "pg_try_advisory_lock") {
			ch.pin = true
		}
		if containsFold(sql, "pg_advisory_unlock") {
			ch.recheck = true
		}
	}
	// Most statements (SELECT, INSERT, UPDATE, ...) are none of the keywords below:
	// decide on the first word before splitting words, which allocates.
	var first [12]byte
	switch string(firstWordLower(sql, first[:])) {
	case "listen", "prepare", "declare", "create", "reset", "discard", "unlisten", "deallocate", "close", "drop":
	default:
		return ch
	}
	words := leadingWords(sql, 4)
	if len(words) == 0 {
		return ch
	}
	switch words[0] {
	case "listen":
		ch.pin = true
	case "prepare":
		ch.pin = len(words) < 2 || words[1] != "transaction"
	case "declare":
		ch.pin = containsFold(sql, "with hold")
	case "create":
		for _, w := range words[1:] {
			if w == "temp" || w == "temporary" {
				ch.pin = true
			}
		}
	case "reset", "discard":
		ch.recheck = true
		ch.unset = len(words) > 1 && words[1] == "all"
	case "unlisten", "deallocate", "close", "drop":
		ch.recheck = true
	}
	return ch
}

// notePinning updates the client's pins for a message about to be sent. Call with
// c.mu held.
func (c *client) notePinning(typ byte, msg []byte, unfollowedSet bool) {
	if c.cfg == nil || c.cfg.mode != PoolTransaction || c.pl.settings().DisableSessionPinning {
		return
	}
	ch := sessionStateChange(typ, msg)
	was := c.sessionPin || c.setPin
	if ch.pin {
		c.sessionPin = true
	}
	if unfollowedSet {
		c.setPin = true
	}
	if ch.unset {
		c.setPin = false
	}
	if ch.recheck && c.sessionPin {
		c.pinCheck = true
	}
	c.countPin(was)
}

// countPin keeps SHOW STATS' count of pinned clients. Call with c.mu held.
func (c *client) countPin(was bool) {
	now := c.sessionPin || c.setPin
	switch {
	case now && !was:
		c.pool.stats.pinned.Add(1)
		c.pl.log.Debug("client pinned to its server connection", "client", c.id, "user", c.user, "database", c.database)
	case was && !now:
		c.pool.stats.pinned.Add(-1)
		c.pl.log.Debug("client unpinned", "client", c.id)
	}
}

// recheckPin asks the bound server connection whether anything still pins the client,
// when the client may have released its session state and nothing is in flight. It
// runs on the client's goroutine before the client's next request is forwarded.
func (c *client) recheckPin(s *server) error {
	c.mu.Lock()
	due := c.pinCheck && c.sessionPin && c.inflight.len() == 0 && !c.unsynced && s.txIdle() && c.out == nil
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
			was := c.sessionPin || c.setPin
			c.sessionPin = false
			c.countPin(was)
			c.mu.Unlock()
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

// leadingWords returns up to n leading SQL words of a statement, lower case. A
// leading comment hides them (the statement then reads as no words).
func leadingWords(sql []byte, n int) []string {
	var words []string
	i := 0
	for len(words) < n {
		for i < len(sql) && (sql[i] == ' ' || sql[i] == '\t' || sql[i] == '\n' || sql[i] == '\r') {
			i++
		}
		j := i
		for j < len(sql) && j-i < 64 && (sql[j]|0x20 >= 'a' && sql[j]|0x20 <= 'z' || sql[j] == '_' || (j > i && sql[j] >= '0' && sql[j] <= '9')) {
			j++
		}
		if j == i {
			break
		}
		w := make([]byte, j-i)
		for k := range w {
			w[k] = sql[i+k] | 0x20
			if sql[i+k] == '_' || (sql[i+k] >= '0' && sql[i+k] <= '9') {
				w[k] = sql[i+k]
			}
		}
		words = append(words, string(w))
		i = j
	}
	return words
}

// pinReason says why the client keeps its server connection, "" when it does not
// (SHOW CLIENTS' pinned column). Call with c.mu held.
func (c *client) pinReason() string {
	switch {
	case c.sessionPin:
		return "session state"
	case c.setPin:
		return "set"
	case c.pinned:
		return "pipeline"
	}
	return ""
}

// firstWordLower writes the first SQL word of sql, lower case, into buf and returns
// it; a word longer than buf, or none, gives an empty result. It does not allocate.
func firstWordLower(sql, buf []byte) []byte {
	i := 0
	for i < len(sql) && (sql[i] == ' ' || sql[i] == '\t' || sql[i] == '\n' || sql[i] == '\r') {
		i++
	}
	n := 0
	for ; i < len(sql); i++ {
		b := sql[i] | 0x20
		if b < 'a' || b > 'z' {
			break
		}
		if n == len(buf) {
			return nil
		}
		buf[n] = b
		n++
	}
	return buf[:n]
}
