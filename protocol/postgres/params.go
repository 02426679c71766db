package postgres

import (
	"bytes"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

// syncedParams are the parameters PostgreSQL reports with ParameterStatus that a client
// may set; pgpool keeps each client's values and brings a server connection in line
// before it serves the client. Keys are lower case; values are the names PostgreSQL
// reports.
var syncedParams = map[string]string{
	"application_name":            "application_name",
	"client_encoding":             "client_encoding",
	"datestyle":                   "DateStyle",
	"intervalstyle":               "IntervalStyle",
	"timezone":                    "TimeZone",
	"standard_conforming_strings": "standard_conforming_strings",
}

// canonicalParam returns the reported name of a parameter, and whether pgpool keeps it
// per client.
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
	for k, v := range c.params {
		if name, ok := canonicalParam(k); ok {
			vals[name] = v
		}
	}
	vals[searchPath] = defaultValue
	for k, v := range c.params {
		if strings.EqualFold(k, searchPath) {
			vals[searchPath] = v
		}
	}
	c.vals = vals
}

// search_path is not reported by PostgreSQL 15 (no ParameterStatus), so pgpool follows
// it from the client's SET and RESET statements, and keeps each server connection's
// value (set by pgpool or by a client) in its params under the same name. Its values
// are kept as SQL text (a list), written back verbatim; defaultValue stands for the
// server's default.
const (
	searchPath   = "search_path"
	defaultValue = "DEFAULT"
)

// noteSearchPath records a client's SET search_path (or RESET) in a simple Query or a
// Parse, both for the client and for the server connection that runs it. SET LOCAL
// lasts only for the transaction and is left alone.
func (c *client) noteSearchPath(s *server, typ byte, msg []byte) {
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
		sql = sql[:i] // the query ends at its NUL terminator
	}
	if !containsFold(sql, searchPath) && !containsFold(sql, "reset") && !containsFold(sql, "discard") {
		return
	}
	v, ok := parseSearchPathChange(string(sql))
	if !ok {
		return
	}
	c.mu.Lock()
	c.vals[searchPath] = v
	c.mu.Unlock()
	s.paramsMu.Lock()
	s.params[searchPath] = v
	s.paramsMu.Unlock()
}

// parseSearchPathChange reads `SET [SESSION] search_path {=|TO} value`, `RESET
// search_path`, `RESET ALL` and `DISCARD ALL`, returning the value the session has
// afterwards.
func parseSearchPathChange(sql string) (string, bool) {
	sql = strings.TrimSpace(strings.TrimRight(strings.TrimSpace(sql), ";"))
	f := strings.Fields(sql)
	if len(f) < 2 {
		return "", false
	}
	first := strings.ToLower(f[0])
	switch first {
	case "reset":
		w := strings.ToLower(f[1])
		if w == searchPath || w == "all" {
			return defaultValue, true
		}
		return "", false
	case "discard":
		if strings.ToLower(f[1]) == "all" {
			return defaultValue, true
		}
		return "", false
	case "set":
	default:
		return "", false
	}
	i := 1
	if w := strings.ToLower(f[i]); w == "session" {
		i++
	} else if w == "local" {
		return "", false
	}
	if i >= len(f) || !strings.HasPrefix(strings.ToLower(f[i]), searchPath) || strings.ContainsRune(sql, ';') {
		return "", false
	}
	// The value follows "=" or "TO" after the name.
	rest := sql[strings.Index(strings.ToLower(sql), searchPath)+len(searchPath):]
	rest = strings.TrimSpace(rest)
	switch {
	case strings.HasPrefix(rest, "="):
		rest = rest[1:]
	case len(rest) > 2 && strings.EqualFold(rest[:2], "to") && (rest[2] == ' ' || rest[2] == '\t' || rest[2] == '\n'):
		rest = rest[2:]
	default:
		return "", false
	}
	rest = strings.TrimSpace(rest)
	if rest == "" {
		return "", false
	}
	if strings.EqualFold(rest, "default") {
		return defaultValue, true
	}
	return rest, true
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

// syncQuery returns the SET statements that bring s in line with the client's values,
// or "" when it already is.
func (c *client) syncQuery(s *server) string {
	var b strings.Builder
	s.paramsMu.Lock()
	c.mu.Lock()
	for name, want := range c.vals {
		if name == searchPath {
			have, ok := s.params[name]
			if !ok {
				have = defaultValue
			}
			if have != want {
				b.WriteString("SET search_path TO " + want + ";")
			}
			continue
		}
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
	c.mu.Unlock()
	s.paramsMu.Unlock()
	return b.String()
}

// quoteLiteral quotes a string as a SQL literal.
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
