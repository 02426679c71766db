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
