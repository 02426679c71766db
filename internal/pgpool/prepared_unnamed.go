package pgpool

// isUnnamedStmt reports whether a Describe or Close body names the unnamed statement.
func isUnnamedStmt(body []byte) bool {
	return len(body) >= 2 && body[0] == 'S' && body[1] == 0
}

// setUnnamed records in g, a request about to be sent to s, that it changes the
// unnamed statement: the client's own to parse (own), or only the server
// connection's to the client's current one (pgpool re-sends the client's Parse).
// Call with c.mu held.
func (c *client) setUnnamed(s *server, g *respGroup, parse []byte, own bool) {
	g.unnamed = true
	g.uc = c.sess.stmts.changeUnnamed(c.id, &s.unnamed, parse, own)
	if own {
		c.countPin(c.sess.unnamedPin())
	}
}

// undoUnnamed reverts what g did to the unnamed statements (PostgreSQL skipped it).
// Call with c.mu held.
func (c *client) undoUnnamed(s *server, g *respGroup) {
	c.sess.stmts.undoUnnamed(c.id, &s.unnamed, &g.uc)
	if g.uc.own {
		c.countPin(c.sess.unnamedPin())
	}
}

// unnamedReady runs before a Bind or Describe of the unnamed statement: when the
// server connection holds another client's unnamed statement (a client's unnamed
// statement outlives its Sync, and the connection may have served others since),
// pgpool sends the client's last unnamed Parse first, its ParseComplete dropped; a
// client without one gets PostgreSQL's 26000 from pgpool. It reports whether the
// message may be sent. Call with c.mu held.
func (c *client) unnamedReady(s *server, push func(respGroup)) bool {
	need, parse := c.sess.stmts.unnamedOn(c.id, s.unnamed)
	switch need {
	case unnamedHeld:
		return true
	case unnamedMissing:
		push(respGroup{kind: groupSynthError, err: errorf(CodeInvalidStatementName, "unnamed prepared statement does not exist").response()})
		c.prep.dropToSync = true
		return false
	}
	g := respGroup{kind: groupParseInternal}
	c.setUnnamed(s, &g, nil, false)
	s.w.Raw(parse)
	push(g)
	return true
}
