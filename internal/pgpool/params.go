package pgpool

import (
	"bytes"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/poolsuite/poolsuite/protocol/postgres"
	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

// Session parameters follow the client, not the server connection.
//
// Parameters PostgreSQL reports with ParameterStatus (postgres.ReportedParams) are learnt from
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

// initParams sets the client's parameter values: the pool's defaults overlaid with
// what the client sent at startup.
func (c *client) initParams(welcome map[string]string) {
	vals := make(map[string]string, len(postgres.ReportedParams))
	for _, name := range postgres.ReportedParams {
		if v, ok := welcome[name]; ok {
			vals[name] = v
		}
	}
	c.base = make(map[string]string, len(c.startupSets))
	c.sets = make(map[string]string, len(c.startupSets))
	for k, v := range c.startupSets {
		c.base[k] = postgres.SetOp{Name: k, Value: v, Raw: true}.Statement()
		c.sets[k] = c.base[k]
	}
	for k, v := range c.params {
		if name, ok := postgres.ReportedParam(k); ok {
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
	if _, ok := postgres.ReportedParam(ps.Name); ok {
		c.mu.Lock()
		c.vals[ps.Name] = ps.Value
		c.mu.Unlock()
	}
}

// noteSet queues a client's change to unreported parameters, to be applied when
// PostgreSQL confirms it. It reports whether the statement is a SET pgpool cannot
// follow. Call with c.mu held.
func (c *client) noteSet(s *server, typ byte, msg []byte) (unfollowable bool) {
	sql := postgres.StatementText(typ, msg)
	var first [8]byte
	var op postgres.SetOp
	var isSet, followable bool
	switch string(postgres.FirstWordLower(sql, first[:])) {
	case "set", "reset", "discard":
		op, isSet, followable = postgres.ParseSet(string(sql))
	case "select":
		if !postgres.ContainsFold(sql, "set_config") {
			return false
		}
		op, isSet, followable = postgres.ParseSetConfig(string(sql))
	default:
		return false // most statements: decided without allocating
	}
	if !isSet {
		return false
	}
	if !followable || !s.txIdle() || c.inflight.len() > 0 {
		return op.Tag != "DISCARD ALL" && op.Tag != "RESET"
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
	if len(c.setOps) == 0 || c.setOps[0].Tag != tag {
		c.mu.Unlock()
		return
	}
	op := c.setOps[0]
	c.setOps = c.setOps[1:]
	// RESET goes back to the client's startup value, as in PostgreSQL.
	switch {
	case op.All:
		clear(c.sets)
		for k, v := range c.base {
			c.sets[k] = v
		}
	case op.Value == postgres.DefaultValue && !op.Raw:
		if v, ok := c.base[op.Name]; ok {
			c.sets[op.Name] = v
		} else {
			delete(c.sets, op.Name)
		}
	default:
		c.sets[op.Name] = op.Statement()
	}
	c.mu.Unlock()
	s.paramsMu.Lock()
	switch {
	case op.All:
		clear(s.sets)
	case op.Value == postgres.DefaultValue && !op.Raw:
		delete(s.sets, op.Name)
	default:
		s.sets[op.Name] = op.Statement()
	}
	s.paramsMu.Unlock()
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
		b.WriteString(postgres.QuoteLiteral(want))
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
