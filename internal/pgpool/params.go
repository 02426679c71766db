package pgpool

import (
	"bytes"

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

// initParams sets the client's parameter values: the pool's defaults (welcome)
// overlaid with what the client sent at startup.
func (c *client) initParams(welcome map[string]string) {
	c.sess.init(welcome, c.params)
}

// recordParam notes a ParameterStatus the client's server sent (after a SET), so the
// value follows the client to its next server connection.
func (c *client) recordParam(msg []byte) {
	var ps pgproto3.ParameterStatus
	if ps.Decode(wire.Body(msg)) != nil {
		return
	}
	c.mu.Lock()
	c.sess.reported(ps.Name, ps.Value)
	c.mu.Unlock()
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
	if !followable || !s.txIdle() || c.inflight.requests() > 0 {
		return op.Tag != "DISCARD ALL" && op.Tag != "RESET"
	}
	c.sess.queue(op)
	c.setsWaiting.Store(int32(c.sess.waitingSets()))
	return false
}

// confirmSet applies the oldest queued change when PostgreSQL's CommandComplete
// confirms it, to the client and to the server connection that ran it. Called by the
// server's reader.
func (c *client) confirmSet(s *server, msg []byte) {
	body := wire.Body(msg)
	if len(body) == 0 || c.setsWaiting.Load() == 0 {
		// Nothing waits for confirmation (the common case): no lock. A change is
		// queued before its statement is sent, so its CommandComplete finds it.
		return
	}
	c.mu.Lock()
	op, ok := c.sess.confirm(string(bytes.TrimRight(body, "\x00")))
	c.setsWaiting.Store(int32(c.sess.waitingSets()))
	c.mu.Unlock()
	if !ok {
		return
	}
	s.paramsMu.Lock()
	applyToServer(s.sets, op)
	s.paramsMu.Unlock()
}

// syncQuery returns the statements that bring s in line with the client's values, or
// "" when it already is.
func (c *client) syncQuery(s *server) string {
	s.paramsMu.Lock()
	c.mu.Lock()
	q := c.sess.replay(s.params, s.sets)
	c.mu.Unlock()
	s.paramsMu.Unlock()
	return q
}

// syncedSets records on s the unreported values just set for the client.
func (c *client) syncedSets(s *server) {
	c.mu.Lock()
	sets := c.sess.followedSets()
	c.mu.Unlock()
	s.paramsMu.Lock()
	s.sets = sets
	s.paramsMu.Unlock()
}
