package postgres

import (
	"bytes"
	"strings"

	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

// SET, RESET and DISCARD statements, and the parameters PostgreSQL reports.

// ReportedParams are the parameters PostgreSQL reports with ParameterStatus that a client
// may set. Keys are lower case; values are the names PostgreSQL reports.
var ReportedParams = map[string]string{
	"application_name":            "application_name",
	"client_encoding":             "client_encoding",
	"datestyle":                   "DateStyle",
	"intervalstyle":               "IntervalStyle",
	"timezone":                    "TimeZone",
	"standard_conforming_strings": "standard_conforming_strings",
}

// DefaultValue stands for a parameter's server default among followed SET values.
const DefaultValue = "DEFAULT"

// ReportedParam returns the reported name of a parameter, and whether PostgreSQL
// reports it.
func ReportedParam(name string) (string, bool) {
	n, ok := ReportedParams[strings.ToLower(name)]
	return n, ok
}

// SetOp is a client statement that changes unreported parameters, waiting for its
// CommandComplete.
type SetOp struct {
	Tag   string // the CommandComplete tag that confirms it: SET, RESET, DISCARD ALL, SELECT 1
	Name  string // lower-case parameter name; "" with all
	Value string // SQL text of the value, or DefaultValue; with raw, the value's own text
	Raw   bool   // set by set_config or at startup: value is what set_config takes
	All   bool   // RESET ALL or DISCARD ALL
}

// Statement returns the statement that gives a server connection the value op sets.
func (op SetOp) Statement() string {
	if op.Raw {
		return "SELECT pg_catalog.set_config(" + QuoteString(op.Name) + ", " + QuoteString(op.Value) + ", false)"
	}
	return "SET " + op.Name + " TO " + op.Value
}

// ParseSet reads a statement for changes to unreported parameters. followable is
// false for a SET pgpool cannot follow (several statements, SET ROLE, SESSION
// AUTHORIZATION).
func ParseSet(sql string) (op SetOp, isSet, followable bool) {
	trimmed := strings.TrimSpace(sql)
	for strings.HasSuffix(trimmed, ";") {
		trimmed = strings.TrimSpace(strings.TrimSuffix(trimmed, ";"))
	}
	words := LeadingWords([]byte(trimmed), 3)
	if len(words) < 2 {
		return SetOp{}, false, false
	}
	multi := strings.ContainsRune(trimmed, ';')
	switch words[0] {
	case "discard":
		if words[1] != "all" {
			return SetOp{}, false, false
		}
		return SetOp{Tag: "DISCARD ALL", All: true}, true, !multi
	case "reset":
		if words[1] == "all" {
			return SetOp{Tag: "RESET", All: true}, true, !multi
		}
		if _, reported := ReportedParam(words[1]); reported || words[1] == "role" || words[1] == "session" {
			return SetOp{}, words[1] == "role" || words[1] == "session", false
		}
		return SetOp{Tag: "RESET", Name: words[1], Value: DefaultValue}, true, !multi
	case "set":
	default:
		return SetOp{}, false, false
	}
	args := words[1:]
	if args[0] == "session" {
		if len(args) > 1 && args[1] == "authorization" {
			return SetOp{}, true, false
		}
		args = args[1:]
	}
	if len(args) == 0 {
		return SetOp{}, true, false
	}
	switch args[0] {
	case "local", "transaction", "constraints":
		return SetOp{}, false, false // lasts only for the transaction
	case "time", "names":
		return SetOp{}, false, false // SET TIME ZONE, SET NAMES: reported parameters
	case "role":
		return SetOp{}, true, false
	}
	name := args[0]
	if _, reported := ReportedParam(name); reported {
		return SetOp{}, false, false // followed through ParameterStatus
	}
	if multi {
		return SetOp{}, true, false
	}
	// The value follows "=" or "TO" after the name.
	lower := strings.ToLower(trimmed)
	i := strings.Index(lower, name)
	if i < 0 {
		return SetOp{}, true, false
	}
	rest := strings.TrimSpace(trimmed[i+len(name):])
	switch {
	case strings.HasPrefix(rest, "="):
		rest = rest[1:]
	case len(rest) > 2 && strings.EqualFold(rest[:2], "to") && (rest[2] == ' ' || rest[2] == '\t' || rest[2] == '\n'):
		rest = rest[2:]
	default:
		return SetOp{}, true, false
	}
	rest = strings.TrimSpace(rest)
	if rest == "" {
		return SetOp{}, true, false
	}
	if strings.EqualFold(rest, "default") {
		rest = DefaultValue
	}
	return SetOp{Tag: "SET", Name: name, Value: rest}, true, true
}

// StatementText returns the SQL of a Query or Parse message, without its terminator.
func StatementText(typ byte, msg []byte) []byte {
	var sql []byte
	body := wire.Body(msg)
	switch typ {
	case wire.Query:
		sql = body
	case wire.Parse:
		for i, b := range body {
			if b == 0 {
				sql = body[i+1:]
				break
			}
		}
	}
	if i := bytes.IndexByte(sql, 0); i >= 0 {
		sql = sql[:i]
	}
	return sql
}

// QuoteLiteral quotes a string as a SQL literal.
func QuoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// QuoteString quotes a string as a SQL literal that reads the same whatever
// standard_conforming_strings is.
func QuoteString(s string) string {
	if !strings.ContainsRune(s, '\\') {
		return QuoteLiteral(s)
	}
	return "E'" + strings.ReplaceAll(strings.ReplaceAll(s, "\\", "\\\\"), "'", "''") + "'"
}

// PlainName reports whether a parameter name is made of letters, digits, underscores,
// dollars and dots, as every name PostgreSQL accepts is, so it may be written into
// SQL as it is.
func PlainName(name string) bool {
	if name == "" || name[0] == '.' || name[0] >= '0' && name[0] <= '9' {
		return false
	}
	for i := 0; i < len(name); i++ {
		b := name[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_' || b == '$' || b == '.') {
			return false
		}
	}
	return true
}
