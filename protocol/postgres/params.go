package postgres

import (
	"bytes"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

// Session parameters follow the client, not the server connection.
//
// Parameters PostgreSQL reports with ParameterStatus (syncedParams) are learnt from
// those messages. The others (search_path, statement_timeout, client_min_messages,
// custom ones such as myapp.tenant, ...) start from the client's startup parameters
// (checked by the server at login, startup.go) and are learnt from the client's own SET,
// RESET, DISCARD ALL and set_config(name, value, false) statements: each is queued when
// sent and applied when PostgreSQL confirms it with its CommandComplete, so a SET that
// fails changes nothing. Before a server connection serves a client whose values differ
// from the connection's, pgpool brings the connection in line with the statement that
// set each value (or SET ... TO DEFAULT). A SET that pgpool cannot follow (several
// statements in one Query, inside a transaction block, where ROLLBACK may undo it, or
// set_config with parameters) pins the client instead (pinning.go).

// syncedParams are the parameters PostgreSQL reports with ParameterStatus that a client
// may set. Keys are lower case; values are the names PostgreSQL reports.
var syncedParams = map[string]string{
	"application_name":            "application_name",
	"client_encoding":             "client_encoding",
	"datestyle":                   "DateStyle",
	"intervalstyle":               "IntervalStyle",
	"timezone":                    "TimeZone",
	"standard_conforming_strings": "standard_conforming_strings",
}

// defaultValue stands for a parameter's server default among followed SET values.
const defaultValue = "DEFAULT"

// canonicalParam returns the reported name of a parameter, and whether PostgreSQL
// reports it.
func canonicalParam(name string) (string, bool) {
	n, ok := syncedParams[strings.ToLower(name)]
	return n, ok
}

// initParams sets the client's parameter values: the pool's defaults overlaid with
// what the client sent at startup.
func (c *client) initParams(welcome map[string]string) {
	vals := make(map[string]string, len(syncedParams))
	for _, name := range syncedParams {
		if v, ok := welcome[name]; ok {
			vals[name] = v
		}
	}
	c.base = make(map[string]string, len(c.startupSets))
	c.sets = make(map[string]string, len(c.startupSets))
	for k, v := range c.startupSets {
		c.base[k] = setOp{name: k, value: v, raw: true}.statement()
		c.sets[k] = c.base[k]
	}
	for k, v := range c.params {
		if name, ok := canonicalParam(k); ok {
			vals[name] = v
		}
	}
	c.vals = vals
}

// recordParam notes a ParameterStatus the client's server sent (after a SET), so the
// value follows the client to its next server connection.
func (c *client) recordParam(msg []byte) {
	var ps pgproto3.ParameterStatus
	if ps.Decode(wire.Body(msg)) != nil {
		return
	}
	if _, ok := canonicalParam(ps.Name); ok {
		c.mu.Lock()
		c.vals[ps.Name] = ps.Value
		c.mu.Unlock()
	}
}

// setOp is a client statement that changes unreported parameters, waiting for its
// CommandComplete.
type setOp struct {
	tag   string // the CommandComplete tag that confirms it: SET, RESET, DISCARD ALL, SELECT 1
	name  string // lower-case parameter name; "" with all
	value string // SQL text of the value, or defaultValue; with raw, the value's own text
	raw   bool   // set by set_config or at startup: value is what set_config takes
	all   bool   // RESET ALL or DISCARD ALL
}

// statement returns the statement that gives a server connection the value op sets.
func (op setOp) statement() string {
	if op.raw {
		return "SELECT pg_catalog.set_config(" + quoteString(op.name) + ", " + quoteString(op.value) + ", false)"
	}
	return "SET " + op.name + " TO " + op.value
}

// parseSetOp reads a statement for changes to unreported parameters. followable is
// false for a SET pgpool cannot follow (several statements, SET ROLE, SESSION
// AUTHORIZATION).
func parseSetOp(sql string) (op setOp, isSet, followable bool) {
	trimmed := strings.TrimSpace(sql)
	for strings.HasSuffix(trimmed, ";") {
		trimmed = strings.TrimSpace(strings.TrimSuffix(trimmed, ";"))
	}
	words := leadingWords([]byte(trimmed), 3)
	if len(words) < 2 {
		return setOp{}, false, false
	}
	multi := strings.ContainsRune(trimmed, ';')
	switch words[0] {
	case "discard":
		if words[1] != "all" {
			return setOp{}, false, false
		}
		return setOp{tag: "DISCARD ALL", all: true}, true, !multi
	case "reset":
		if words[1] == "all" {
			return setOp{tag: "RESET", all: true}, true, !multi
		}
		if _, reported := canonicalParam(words[1]); reported || words[1] == "role" || words[1] == "session" {
			return setOp{}, words[1] == "role" || words[1] == "session", false
		}
		return setOp{tag: "RESET", name: words[1], value: defaultValue}, true, !multi
	case "set":
	default:
		return setOp{}, false, false
	}
	args := words[1:]
	if args[0] == "session" {
		if len(args) > 1 && args[1] == "authorization" {
			return setOp{}, true, false
		}
		args = args[1:]
	}
	if len(args) == 0 {
		return setOp{}, true, false
	}
	switch args[0] {
	case "local", "transaction", "constraints":
		return setOp{}, false, false // lasts only for the transaction
	case "time", "names":
		return setOp{}, false, false // SET TIME ZONE, SET NAMES: reported parameters
	case "role":
		return setOp{}, true, false
	}
	name := args[0]
	if _, reported := canonicalParam(name); reported {
		return setOp{}, false, false // followed through ParameterStatus
	}
	if multi {
		return setOp{}, true, false
	}
	// The value follows "=" or "TO" after the name.
	lower := strings.ToLower(trimmed)
	i := strings.Index(lower, name)
	if i < 0 {
		return setOp{}, true, false
	}
	rest := strings.TrimSpace(trimmed[i+len(name):])
	switch {
	case strings.HasPrefix(rest, "="):
		rest = rest[1:]
	case len(rest) > 2 && strings.EqualFold(rest[:2], "to") && (rest[2] == ' ' || rest[2] == '\t' || rest[2] == '\n'):
		rest = rest[2:]
	default:
		return setOp{}, true, false
	}
	rest = strings.TrimSpace(rest)
	if rest == "" {
		return setOp{}, true, false
	}
	if strings.EqualFold(rest, "default") {
		rest = defaultValue
	}
	return setOp{tag: "SET", name: name, value: rest}, true, true
}

// noteSet queues a client's change to unreported parameters, to be applied when
// PostgreSQL confirms it. It reports whether the statement is a SET pgpool cannot
// follow. Call with c.mu held.
func (c *client) noteSet(s *server, typ byte, msg []byte) (unfollowable bool) {
	sql := statementText(typ, msg)
	var first [8]byte
	var op setOp
	var isSet, followable bool
	switch string(firstWordLower(sql, first[:])) {
	case "set", "reset", "discard":
		op, isSet, followable = parseSetOp(string(sql))
	case "select":
		if !containsFold(sql, "set_config") {
			return false
		}
		op, isSet, followable = parseSetConfig(string(sql))
	default:
		return false // most statements: decided without allocating
	}
	if !isSet {
		return false
	}
	if !followable || !s.txIdle() || c.inflight.len() > 0 {
		return op.tag != "DISCARD ALL" && op.tag != "RESET"
	}
	if len(c.setOps) < maxPendingSetOps {
		c.setOps = append(c.setOps, op)
	}
	return false
}

// maxPendingSetOps bounds the SET statements waiting for confirmation per client.
const maxPendingSetOps = 64

// confirmSet applies the oldest queued change when PostgreSQL's CommandComplete
// confirms it, to the client and to the server connection that ran it. Called by the
// server's reader.
func (c *client) confirmSet(s *server, msg []byte) {
	body := wire.Body(msg)
	if len(body) == 0 {
		return
	}
	tag := string(bytes.TrimRight(body, "\x00"))
	c.mu.Lock()
	if len(c.setOps) == 0 || c.setOps[0].tag != tag {
		c.mu.Unlock()
		return
	}
	op := c.setOps[0]
	c.setOps = c.setOps[1:]
	// RESET goes back to the client's startup value, as in PostgreSQL.
	switch {
	case op.all:
		clear(c.sets)
		for k, v := range c.base {
			c.sets[k] = v
		}
	case op.value == defaultValue && !op.raw:
		if v, ok := c.base[op.name]; ok {
			c.sets[op.name] = v
		} else {
			delete(c.sets, op.name)
		}
	default:
		c.sets[op.name] = op.statement()
	}
	c.mu.Unlock()
	s.paramsMu.Lock()
	switch {
	case op.all:
		clear(s.sets)
	case op.value == defaultValue && !op.raw:
		delete(s.sets, op.name)
	default:
		s.sets[op.name] = op.statement()
	}
	s.paramsMu.Unlock()
}

// statementText returns the SQL of a Query or Parse message, without its terminator.
func statementText(typ byte, msg []byte) []byte {
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

// syncQuery returns the SET statements that bring s in line with the client's values,
// or "" when it already is.
func (c *client) syncQuery(s *server) string {
	var b strings.Builder
	s.paramsMu.Lock()
	c.mu.Lock()
	for name, want := range c.vals {
		if have, ok := s.params[name]; ok && have == want {
			continue
		}
		if name == "client_encoding" && strings.EqualFold(s.params[name], want) {
			continue
		}
		b.WriteString("SET ")
		b.WriteString(name)
		b.WriteString(" = ")
		b.WriteString(quoteLiteral(want))
		b.WriteString(";")
	}
	for name, want := range c.sets {
		if s.sets[name] != want {
			b.WriteString(want + ";")
		}
	}
	for name := range s.sets {
		if _, ok := c.sets[name]; !ok {
			b.WriteString("SET " + name + " TO DEFAULT;")
		}
	}
	c.mu.Unlock()
	s.paramsMu.Unlock()
	return b.String()
}

// syncedSets records on s the unreported values just set for the client.
func (c *client) syncedSets(s *server) {
	c.mu.Lock()
	sets := make(map[string]string, len(c.sets))
	for k, v := range c.sets {
		sets[k] = v
	}
	c.mu.Unlock()
	s.paramsMu.Lock()
	s.sets = sets
	s.paramsMu.Unlock()
}

// quoteLiteral quotes a string as a SQL literal.
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// quoteString quotes a string as a SQL literal that reads the same whatever
// standard_conforming_strings is.
func quoteString(s string) string {
	if !strings.ContainsRune(s, '\\') {
		return quoteLiteral(s)
	}
	return "E'" + strings.ReplaceAll(strings.ReplaceAll(s, "\\", "\\\\"), "'", "''") + "'"
}

// plainName reports whether a parameter name is made of letters, digits, underscores,
// dollars and dots, as every name PostgreSQL accepts is, so it may be written into
// SQL as it is.
func plainName(name string) bool {
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
