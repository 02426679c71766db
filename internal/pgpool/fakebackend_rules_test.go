package pgpool

import (
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// Rules of the session model pinned with the fake backend (fakebackend_test.go), through
// the real pooler: each is hard to force on a real PostgreSQL.

var (
	fakeSelect = []string{"RowDescription", "DataRow", "CommandComplete", "ReadyForQuery"}
	fakeSet    = []string{"CommandComplete", "ReadyForQuery"}
)

func isQuery(sql string) func(fakeMsg) bool {
	return func(m fakeMsg) bool { return m.Type == "Query" && m.SQL == sql }
}

// queries lists the texts of the Query messages among msgs, the pin check as "CHECK".
func queries(msgs []fakeMsg) []string {
	var q []string
	for _, m := range msgs {
		if m.Type == "Query" {
			if m.SQL == pinCheckQuery {
				q = append(q, "CHECK")
			} else {
				q = append(q, m.SQL)
			}
		}
	}
	return q
}

func expectReplies(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: client got %v, want %v", what, got, want)
	}
}

func expectQueries(t *testing.T, fc *fakeConn, want ...string) {
	t.Helper()
	if got := queries(fc.messages()); !slices.Equal(got, want) {
		t.Fatalf("server connection %d received queries %q, want %q", fc.id, got, want)
	}
}

// pinCheckAnswer is a script answering the pin check with counts (nil: no answer).
func pinCheckAnswer(counts func(n int) []string) fakeScript {
	var n atomic.Int32
	return func(fc *fakeConn, m fakeMsg) ([]pgproto3.BackendMessage, bool) {
		if m.Type != "Query" || m.SQL != pinCheckQuery {
			return nil, false
		}
		c := counts(int(n.Add(1)))
		switch {
		case c == nil:
			return nil, true // never answers
		case len(c) == 1:
			return []pgproto3.BackendMessage{fakeError("XX000", c[0]), &pgproto3.ReadyForQuery{TxStatus: 'I'}}, true
		}
		return append(fakeRows("SELECT 1", c...), &pgproto3.ReadyForQuery{TxStatus: 'I'}), true
	}
}

// lockThenUnlock pins client a with an advisory lock and runs an unlock, returning
// once the fake received the pin check that follows.
func lockThenUnlock(t *testing.T, fb *fakeBackend, a *fakeClient) *fakeConn {
	t.Helper()
	expectReplies(t, "lock", a.query("select pg_advisory_lock(1)"), fakeSelect)
	s0 := fb.conn(0)
	checked := s0.when(isQuery(pinCheckQuery))
	expectReplies(t, "unlock", a.query("select pg_advisory_unlock(1)"), fakeSelect)
	waitClosed(t, checked, "the pin check")
	return s0
}

// TestFakePinCheckReleases: after a transaction that called pg_advisory_unlock, pgpool
// asks the server which session state is left; when the counts are all zero the
// connection goes back to the pool at once: with a pool of one, a second client gets
// it while the first stays idle.
func TestFakePinCheckReleases(t *testing.T) {
	fb := startFake(t, nil)
	cfg := fb.config()
	cfg.DefaultPoolSize = 1
	_, addr := startPooler(t, cfg)
	a := dialFake(t, addr)
	s0 := lockThenUnlock(t, fb, a)
	b := dialFake(t, addr)
	expectReplies(t, "second client", b.query("select 3"), fakeSelect)
	if n := fb.opened(); n != 1 {
		t.Fatalf("%d server connections opened, want 1", n)
	}
	expectQueries(t, s0, "select pg_advisory_lock(1)", "select pg_advisory_unlock(1)", "CHECK", "select 3")
}

// TestFakePinCheckKeepsPinned: when the pin check counts a lock still held, the client
// keeps its connection: another client waits for one until query_wait_timeout, and
// the pinned client's next query runs on the same connection.
func TestFakePinCheckKeepsPinned(t *testing.T) {
	fb := startFake(t, pinCheckAnswer(func(int) []string { return []string{"1", "0", "0", "0", "0"} }))
	cfg := fb.config()
	cfg.DefaultPoolSize = 1
	cfg.QueryWaitTimeout = time.Second
	_, addr := startPooler(t, cfg)
	a := dialFake(t, addr)
	s0 := lockThenUnlock(t, fb, a)
	b := dialFake(t, addr)
	if got := b.query("select 3"); len(got) == 0 || !strings.HasPrefix(got[0], "Error ") {
		t.Fatalf("a second client got %v while the connection was pinned, want an error", got)
	}
	expectReplies(t, "pinned client", a.query("select 4"), fakeSelect)
	if n := fb.opened(); n != 1 {
		t.Fatalf("%d server connections opened, want 1", n)
	}
	expectQueries(t, s0, "select pg_advisory_lock(1)", "select pg_advisory_unlock(1)", "CHECK", "select 4")
}

// TestFakePinCheckErrorRetries: a pin check that fails with an error leaves the client
// pinned (its next query runs on the same connection), and the check runs again when
// the next transaction ends; when that one finds nothing the connection is shared.
func TestFakePinCheckErrorRetries(t *testing.T) {
	fb := startFake(t, pinCheckAnswer(func(n int) []string {
		if n == 1 {
			return []string{"canceling statement due to user request"}
		}
		return []string{"0", "0", "0", "0", "0"}
	}))
	cfg := fb.config()
	cfg.DefaultPoolSize = 1
	_, addr := startPooler(t, cfg)
	a := dialFake(t, addr)
	s0 := lockThenUnlock(t, fb, a)
	second := s0.whenNth(isQuery(pinCheckQuery), 2)
	expectReplies(t, "pinned client", a.query("select 4"), fakeSelect)
	waitClosed(t, second, "a second pin check")
	b := dialFake(t, addr)
	expectReplies(t, "second client", b.query("select 5"), fakeSelect)
	if n := fb.opened(); n != 1 {
		t.Fatalf("%d server connections opened, want 1", n)
	}
	expectQueries(t, s0, "select pg_advisory_lock(1)", "select pg_advisory_unlock(1)", "CHECK", "select 4", "CHECK", "select 5")
}

// TestFakePinCheckTimeout: a pin check the server never answers, within
// server_connect_timeout, closes the server connection, and the session state with
// it: the client is told the connection was lost, and its next query runs on a new
// connection, which it does not keep (the state that pinned it is gone), so another
// client gets that connection.
func TestFakePinCheckTimeout(t *testing.T) {
	fb := startFake(t, pinCheckAnswer(func(int) []string { return nil }))
	cfg := fb.config()
	cfg.DefaultPoolSize = 1
	cfg.ServerConnectTimeout = 500 * time.Millisecond
	cfg.QueryWaitTimeout = 10 * time.Second // a client left waiting fails instead of hanging
	_, addr := startPooler(t, cfg)
	a := dialFake(t, addr)
	s0 := lockThenUnlock(t, fb, a)
	waitClosed(t, s0.done, "the end of the connection whose pin check timed out")
	expectReplies(t, "after the timeout", a.query("select 4"), append([]string{"Error " + CodeConnectionFailure}, fakeSelect...))
	b := dialFake(t, addr)
	expectReplies(t, "second client", b.query("select 5"), fakeSelect)
	s1 := fb.conn(1)
	if n := fb.opened(); n != 2 || s1 == nil {
		t.Fatalf("%d server connections opened, want 2", n)
	}
	expectQueries(t, s1, "select 4", "select 5")
}

// failFirstBind is a script answering the first Bind of a statement pgpool named with
// an error of code.
func failFirstBind(code, message string) fakeScript {
	var n atomic.Int32
	return func(fc *fakeConn, m fakeMsg) ([]pgproto3.BackendMessage, bool) {
		if m.Type == "Bind" && strings.HasPrefix(m.Name, serverStmtPrefix) && n.Add(1) == 1 {
			return []pgproto3.BackendMessage{fakeError(code, message)}, true
		}
		return nil, false
	}
}

// bindExec sends Bind, Execute and Sync of statement name and returns the replies.
func (fc *fakeClient) bindExec(name string) []string {
	fc.t.Helper()
	fc.send(&pgproto3.Bind{PreparedStatement: name}, &pgproto3.Execute{}, &pgproto3.Sync{})
	return fc.untilReady()
}

// serverMsgs lists msgs from the ith on, as strings.
func serverMsgs(msgs []fakeMsg, from int) []string {
	var out []string
	for _, m := range msgs[from:] {
		out = append(out, m.String())
	}
	return out
}

// TestFakeStaleAfterResultTypeChange: a Bind PostgreSQL answers with 0A000 "cached
// plan must not change result type" marks the shared statement stale: the client that
// prepared it gets the error again, from pgpool, without its Bind reaching the server
// under the stale name, and another client's fresh Parse of the same text gets a new
// server-side name.
func TestFakeStaleAfterResultTypeChange(t *testing.T) {
	fb := startFake(t, failFirstBind(CodeFeatureNotSupported, "cached plan must not change result type"))
	cfg := fb.config()
	cfg.DefaultPoolSize = 1
	_, addr := startPooler(t, cfg)
	a := dialFake(t, addr)
	a.send(&pgproto3.Parse{Name: "s1", Query: "select 1"})
	expectReplies(t, "first use", a.bindExec("s1"), []string{"ParseComplete", "Error 0A000", "ReadyForQuery"})
	s0 := fb.conn(0)
	first := s0.messages()
	if len(first) == 0 || first[0].Type != "Parse" || !strings.HasPrefix(first[0].Name, serverStmtPrefix) {
		t.Fatalf("server received %v, want a Parse under a pgpool name first", serverMsgs(first, 0))
	}
	stale := first[0].Name
	expectReplies(t, "use after the error", a.bindExec("s1"), []string{"Error 0A000", "ReadyForQuery"})
	for _, m := range serverMsgs(s0.messages(), len(first)) {
		if strings.HasPrefix(m, "Bind") || strings.HasPrefix(m, "Parse") {
			t.Fatalf("the outdated statement's use reached the server: %s", m)
		}
	}
	mark := len(s0.messages())
	b := dialFake(t, addr)
	b.send(&pgproto3.Parse{Name: "s1", Query: "select 1"})
	expectReplies(t, "fresh Parse", b.bindExec("s1"), []string{"ParseComplete", "BindComplete", "DataRow", "CommandComplete", "ReadyForQuery"})
	after := s0.messages()[mark:]
	if len(after) < 2 || after[0].Type != "Parse" || after[0].Name == stale || !strings.HasPrefix(after[0].Name, serverStmtPrefix) ||
		after[1].Type != "Bind" || after[1].Name != after[0].Name {
		t.Fatalf("a fresh Parse sent %v to the server, want Parse and Bind under a new name (not %s)", serverMsgs(after, 0), stale)
	}
}

// TestFakeStaleAfterCacheLookupFailure: a Bind answered with XX000 ("cache lookup
// failed for type") marks the statement stale on that connection: its next use closes
// it and prepares it again under the same name before the Bind, and the client sees
// only the Bind's own replies.
func TestFakeStaleAfterCacheLookupFailure(t *testing.T) {
	fb := startFake(t, failFirstBind(CodeInternalError, "cache lookup failed for type 16384"))
	cfg := fb.config()
	cfg.DefaultPoolSize = 1
	_, addr := startPooler(t, cfg)
	a := dialFake(t, addr)
	a.send(&pgproto3.Parse{Name: "s1", Query: "select 1"})
	expectReplies(t, "first use", a.bindExec("s1"), []string{"ParseComplete", "Error XX000", "ReadyForQuery"})
	s0 := fb.conn(0)
	first := s0.messages()
	srv := first[0].Name
	expectReplies(t, "next use", a.bindExec("s1"), []string{"BindComplete", "DataRow", "CommandComplete", "ReadyForQuery"})
	want := []string{fakeMsg{Type: "Close", Kind: 'S', Name: srv}.String(), fakeMsg{Type: "Parse", Name: srv, SQL: "select 1"}.String(),
		fakeMsg{Type: "Bind", Name: srv}.String(), "Execute", "Sync"}
	if got := serverMsgs(s0.messages(), len(first)); !slices.Equal(got, want) {
		t.Fatalf("the next use sent %v, want %v", got, want)
	}
}

// parseErrorScript fails every Parse of "selec 1" with a syntax error, and hangs up
// at a Parse of "select die".
func parseErrorScript(fc *fakeConn, m fakeMsg) ([]pgproto3.BackendMessage, bool) {
	switch {
	case m.Type == "Parse" && m.SQL == "selec 1":
		return []pgproto3.BackendMessage{fakeError("42601", `syntax error at or near "selec"`)}, true
	case m.Type == "Parse" && m.SQL == "select die":
		fc.hangUp()
		return nil, true
	}
	return nil, false
}

// TestFakeParseError: a Parse PostgreSQL rejects gives the client its error and no
// ParseComplete, the Bind, Describe and Execute after it give nothing until Sync's
// ReadyForQuery, and the statement is forgotten: its name reaches the server as the
// client's own (pgpool no longer knows it), and preparing it again is no duplicate.
func TestFakeParseError(t *testing.T) {
	fb := startFake(t, parseErrorScript)
	cfg := fb.config()
	cfg.DefaultPoolSize = 1
	_, addr := startPooler(t, cfg)
	a := dialFake(t, addr)
	a.send(&pgproto3.Parse{Name: "s2", Query: "selec 1"}, &pgproto3.Bind{PreparedStatement: "s2"}, &pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, &pgproto3.Sync{})
	expectReplies(t, "named Parse error", a.untilReady(), []string{"Error 42601", "ReadyForQuery"})
	s0 := fb.conn(0)
	mark := len(s0.messages())
	a.bindExec("s2")
	if got := serverMsgs(s0.messages(), mark); len(got) == 0 || got[0] != `Bind("s2")` {
		t.Fatalf("a Bind of the failed statement sent %v, want the client's own name", got)
	}
	a.send(&pgproto3.Parse{Name: "s2", Query: "select 1"})
	expectReplies(t, "Parse again", a.bindExec("s2"), []string{"ParseComplete", "BindComplete", "DataRow", "CommandComplete", "ReadyForQuery"})
	a.send(&pgproto3.Parse{Query: "selec 1"}, &pgproto3.Bind{}, &pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, &pgproto3.Sync{})
	expectReplies(t, "unnamed Parse error", a.untilReady(), []string{"Error 42601", "ReadyForQuery"})
	expectReplies(t, "query after the errors", a.query("select 2"), fakeSelect)
}

// TestFakeServerDiesMidBatch: a server that closes its socket after a Parse gives the
// client a connection failure error and ReadyForQuery, and nothing else; the next
// client, and the same client's next queries, get exactly their own replies from a
// new connection, where the client's named statement is prepared again when used.
func TestFakeServerDiesMidBatch(t *testing.T) {
	fb := startFake(t, parseErrorScript)
	cfg := fb.config()
	cfg.DefaultPoolSize = 1
	_, addr := startPooler(t, cfg)
	a := dialFake(t, addr)
	a.send(&pgproto3.Parse{Name: "s3", Query: "select 3"})
	expectReplies(t, "prepare", a.bindExec("s3"), []string{"ParseComplete", "BindComplete", "DataRow", "CommandComplete", "ReadyForQuery"})
	srv := fb.conn(0).messages()[0].Name
	a.send(&pgproto3.Parse{Query: "select die"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{})
	expectReplies(t, "server died", a.untilReady(), []string{"Error " + CodeConnectionFailure, "ReadyForQuery"})
	b := dialFake(t, addr)
	expectReplies(t, "next client", b.query("select 7"), fakeSelect)
	expectReplies(t, "same client", a.query("select 8"), fakeSelect)
	expectReplies(t, "statement after the loss", a.bindExec("s3"), []string{"BindComplete", "DataRow", "CommandComplete", "ReadyForQuery"})
	s1 := fb.conn(1)
	if s1 == nil {
		t.Fatal("no second server connection")
	}
	want := []string{"Query(select 7)", "Query(select 8)", fakeMsg{Type: "Parse", Name: srv, SQL: "select 3"}.String(), fakeMsg{Type: "Bind", Name: srv}.String(), "Execute", "Sync"}
	if got := serverMsgs(s1.messages(), 0); !slices.Equal(got, want) {
		t.Fatalf("the new connection received %v, want %v", got, want)
	}
}

// TestFakeSetFollowsClient: a client's SET is replayed on the other server connection
// when the client moves to it, before its query, and the connection it left is brought
// back to the default before another client's transaction uses it.
func TestFakeSetFollowsClient(t *testing.T) {
	fb := startFake(t, nil)
	cfg := fb.config()
	cfg.DefaultPoolSize = 2
	pl, addr := startPooler(t, cfg)
	a := dialFake(t, addr)
	b := dialFake(t, addr)
	expectReplies(t, "set", a.query("set search_path = s1"), fakeSet)
	// The client hears its reply before its connection is back in the pool: b must
	// find it idle, or it would open a second one.
	waitFor(t, "the first client's server connection to be idle", 10*time.Second, func() bool {
		for _, p := range pl.poolList() {
			p.mu.Lock()
			idle := len(p.idle)
			p.mu.Unlock()
			if idle == 1 {
				return true
			}
		}
		return false
	})
	expectReplies(t, "other client's begin", b.query("begin"), fakeSet)
	expectReplies(t, "moved client", a.query("select 1"), fakeSelect)
	expectReplies(t, "commit", b.query("commit"), fakeSet)
	s0, s1 := fb.conn(0), fb.conn(1)
	if s1 == nil {
		t.Fatal("no second server connection")
	}
	q0, q1 := queries(s0.messages()), queries(s1.messages())
	if len(q1) != 2 || !strings.Contains(q1[0], "search_path") || !strings.Contains(q1[0], "s1") || q1[1] != "select 1" {
		t.Fatalf("the connection the client moved to received %q, want its SET replayed, then its query", q1)
	}
	if len(q0) != 4 || q0[0] != "set search_path = s1" || !strings.Contains(q0[1], "search_path") || !strings.Contains(strings.ToUpper(q0[1]), "DEFAULT") || q0[2] != "begin" {
		t.Fatalf("the connection the client left received %q, want the SET undone before the other client's begin", q0)
	}
}
