package postgres

import (
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

// Statements and replies a pooler must recognise.

// EndsTransaction reports whether a statement ends a transaction block: ROLLBACK,
// ABORT, COMMIT or END, but not ROLLBACK TO SAVEPOINT (the savepoint died with the
// server connection).
func EndsTransaction(sql string) bool {
	f := strings.Fields(strings.ToLower(strings.TrimRight(strings.TrimSpace(sql), "; \t\n")))
	if len(f) == 0 {
		return false
	}
	switch f[0] {
	case "rollback", "abort", "commit", "end":
	default:
		return false
	}
	for _, w := range f[1:] {
		if w == "to" || w == "prepared" {
			return false
		}
	}
	return true
}

// SchemaChangeTag reports whether a CommandComplete body (tag and NUL) reports a
// command that can change how a statement's text is analysed: CREATE, ALTER or DROP
// of any object (column types, result columns, name and overload resolution) and
// IMPORT FOREIGN SCHEMA. COMMENT, GRANT, REVOKE and data changes do not count.
func SchemaChangeTag(body []byte) bool {
	if len(body) == 0 {
		return false
	}
	switch body[0] {
	case 'C', 'A', 'D', 'I':
	default:
		return false
	}
	tag, _, ok := CString(body)
	if !ok {
		tag = body
	}
	word, _, _ := strings.Cut(string(tag), " ")
	switch word {
	case "CREATE", "ALTER", "DROP":
		return len(tag) > len(word)+1
	case "IMPORT":
		return string(tag) == "IMPORT FOREIGN SCHEMA"
	}
	return false
}

// ParseDeallocate recognises "DEALLOCATE [PREPARE] name" and "DEALLOCATE [PREPARE]
// ALL", alone in a query, and returns the statement name as PostgreSQL reads it.
func ParseDeallocate(q string) (name string, all, ok bool) {
	q = strings.TrimSpace(q)
	q = strings.TrimSpace(strings.TrimSuffix(q, ";"))
	word, rest := nextWord(q)
	if !strings.EqualFold(word, "deallocate") {
		return "", false, false
	}
	word, rest = nextWord(rest)
	if strings.EqualFold(word, "prepare") {
		word, rest = nextWord(rest)
	}
	if rest != "" || word == "" {
		return "", false, false
	}
	if strings.EqualFold(word, "all") {
		return "", true, true
	}
	if word[0] == '"' {
		if len(word) < 2 || word[len(word)-1] != '"' {
			return "", false, false
		}
		inner := word[1 : len(word)-1]
		if strings.Contains(strings.ReplaceAll(inner, `""`, ""), `"`) {
			return "", false, false
		}
		return strings.ReplaceAll(inner, `""`, `"`), false, true
	}
	for i := 0; i < len(word); i++ {
		b := word[i]
		if !(b == '_' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '$' || b >= 0x80) {
			return "", false, false
		}
	}
	return strings.ToLower(word), false, true
}

// nextWord splits off the first whitespace-separated word (a quoted identifier may
// contain spaces).
func nextWord(s string) (word, rest string) {
	s = strings.TrimLeft(s, " \t\r\n")
	if s == "" {
		return "", ""
	}
	end := 0
	if s[0] == '"' {
		end = 1
		for end < len(s) {
			if s[end] == '"' {
				if end+1 < len(s) && s[end+1] == '"' {
					end += 2
					continue
				}
				end++
				break
			}
			end++
		}
	} else {
		for end < len(s) && !strings.ContainsRune(" \t\r\n", rune(s[end])) {
			end++
		}
	}
	return s[:end], strings.TrimLeft(s[end:], " \t\r\n")
}

// CString splits b at its first NUL: the string before it and what follows the NUL.
func CString(b []byte) (s, rest []byte, ok bool) {
	for i, x := range b {
		if x == 0 {
			return b[:i], b[i+1:], true
		}
	}
	return nil, nil, false
}

// DropsAllStatements reports whether a CommandComplete reports DISCARD ALL or
// DEALLOCATE ALL.
func DropsAllStatements(msg []byte) bool {
	body := wire.Body(msg)
	if len(body) == 0 || body[0] != 'D' {
		return false
	}
	tag := string(body[:len(body)-1])
	return tag == "DISCARD ALL" || tag == "DEALLOCATE ALL"
}

// ErrorCode returns the SQLSTATE of an ErrorResponse, or "".
func ErrorCode(msg []byte) string {
	b := wire.Body(msg)
	for len(b) > 0 && b[0] != 0 {
		f := b[0]
		end := 1
		for end < len(b) && b[end] != 0 {
			end++
		}
		if f == 'C' {
			return string(b[1:end])
		}
		if end >= len(b) {
			break
		}
		b = b[end+1:]
	}
	return ""
}

// FatalResponse reports whether an ErrorResponse has severity FATAL or PANIC.
func FatalResponse(msg []byte) bool {
	var er pgproto3.ErrorResponse
	return er.Decode(wire.Body(msg)) == nil && (er.Severity == "FATAL" || er.Severity == "PANIC")
}
