package postgres

import "github.com/poolsuite/poolsuite/protocol/postgres/wire"

// Statements that take or release session state a pooler cannot move.

// SessionState is a set of kinds of session state that stay with one server
// connection: a pooler cannot move them to another.
type SessionState uint8

// The kinds of session state, in the order a pooler reports them.
const (
	StateAdvisoryLock SessionState = 1 << iota // a session-level advisory lock
	StateListen                                // LISTEN
	StatePrepare                               // SQL-level PREPARE
	StateCursor                                // a WITH HOLD cursor
	StateTempTable                             // a temporary table
)

// StateChange is what a statement does to session state that pins.
type StateChange struct {
	Takes   SessionState // state it takes
	Recheck bool         // it may release such state, or may not have taken what it asked for
	Unset   bool         // RESET ALL or DISCARD ALL: unfollowed SETs are gone
}

// SessionStateChange reads a Query or Parse for statements that take or release
// session state.
func SessionStateChange(typ byte, msg []byte) StateChange {
	if typ != wire.Query && typ != wire.Parse {
		return StateChange{}
	}
	sql := StatementText(typ, msg)
	var ch StateChange
	if ContainsFold(sql, "advisory") { // one scan for the common case of no lock at all
		if ContainsFold(sql, "pg_advisory_lock") {
			ch.Takes = StateAdvisoryLock
		}
		if ContainsFold(sql, "pg_try_advisory_lock") {
			// It may return false: ask the server whether a lock was taken.
			ch.Takes = StateAdvisoryLock
			ch.Recheck = true
		}
		if ContainsFold(sql, "pg_advisory_unlock") {
			ch.Recheck = true
		}
	}
	// Most statements (SELECT, INSERT, UPDATE, ...) are none of the keywords below:
	// decide on the first word before splitting words, which allocates.
	var first [12]byte
	switch string(FirstWordLower(sql, first[:])) {
	case "listen", "prepare", "declare", "create", "reset", "discard", "unlisten", "deallocate", "close", "drop":
	default:
		return ch
	}
	words := LeadingWords(sql, 4)
	if len(words) == 0 {
		return ch
	}
	switch words[0] {
	case "listen":
		ch.Takes |= StateListen
	case "prepare":
		if len(words) < 2 || words[1] != "transaction" {
			ch.Takes |= StatePrepare
		}
	case "declare":
		if ContainsFold(sql, "with hold") {
			ch.Takes |= StateCursor
		}
	case "create":
		for _, w := range words[1:] {
			if w == "temp" || w == "temporary" {
				ch.Takes |= StateTempTable
			}
		}
	case "reset", "discard":
		ch.Recheck = true
		ch.Unset = len(words) > 1 && words[1] == "all"
	case "unlisten", "deallocate", "close", "drop":
		ch.Recheck = true
	}
	return ch
}

// StartsSet reports whether a Query or Parse starts with SET or RESET.
func StartsSet(msg []byte) bool {
	var first [8]byte
	w := string(FirstWordLower(StatementText(msg[0], msg), first[:]))
	return w == "set" || w == "reset"
}

// ContainsFold reports whether b contains needle, ignoring ASCII case; needle is lower
// case.
func ContainsFold(b []byte, needle string) bool {
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

// LeadingWords returns up to n leading SQL words of a statement, lower case; a dotted
// name (myapp.tenant) is one word. A leading comment hides them (the statement then
// reads as no words).
func LeadingWords(sql []byte, n int) []string {
	var words []string
	i := 0
	for len(words) < n {
		for i < len(sql) && (sql[i] == ' ' || sql[i] == '\t' || sql[i] == '\n' || sql[i] == '\r') {
			i++
		}
		j := i
		for j < len(sql) && j-i < 64 && (sql[j]|0x20 >= 'a' && sql[j]|0x20 <= 'z' || sql[j] == '_' || (j > i && (sql[j] >= '0' && sql[j] <= '9' || sql[j] == '.'))) {
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

// FirstWordLower writes the first SQL word of sql, lower case, into buf and returns
// it; a word longer than buf, or none, gives an empty result. It does not allocate.
func FirstWordLower(sql, buf []byte) []byte {
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
