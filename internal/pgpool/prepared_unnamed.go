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
	p := c.prep
	g.unnamed, g.own = true, own
	g.prevParse = p.unnamed
	g.prevSrvClient, g.prevSrvSeq = s.unnamedClient, s.unnamedSeq
	if own {
		p.unnamedSeq++
		p.unnamed = parse
	}
	s.unnamedClient, s.unnamedSeq = c.id, p.unnamedSeq
	g.useq = p.unnamedSeq
}

// unnamedReady runs before a Bind or Describe of the unnamed statement: when the
// server connection holds another client's unnamed statement (a client's unnamed
// statement outlives its Sync, and the connection may have served others since),
// pgpool sends the client's last unnamed Parse first, its ParseComplete dropped; a
// client without one gets PostgreSQL's 26000 from pgpool. It reports whether the
// message may be sent. Call with c.mu held.
func (c *client) unnamedReady(s *server, push func(respGroup)) bool {
	p := c.prep
	if s.unnamedClient == c.id && s.unnamedSeq == p.unnamedSeq {
		return true
	}
	if p.unnamed == nil {
		push(respGroup{kind: groupSynthError, err: errorf(CodeInvalidStatementName, "unnamed prepared statement does not exist").response()})
		p.dropToSync = true
		return false
	}
	g := respGroup{kind: groupParseInternal}
	c.setUnnamed(s, &g, nil, false)
	s.w.Raw(p.unnamed)
	push(g)
	return true
}
