package postgres

import (
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
	c.mu.Unlock()
	s.paramsMu.Unlock()
	return b.String()
}

// quoteLiteral quotes a string as a SQL literal.
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
