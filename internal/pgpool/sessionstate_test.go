package pgpool

import (
	"strings"
	"testing"
	"time"

	"github.com/poolsuite/poolsuite/protocol/postgres"
)

// set parses a followable SET or set_config statement for the session tests.
func set(t testing.TB, sql string) postgres.SetOp {
	t.Helper()
	op, isSet, ok := postgres.ParseSet(sql)
	if !isSet {
		op, isSet, ok = postgres.ParseSetConfig(sql)
	}
	if !isSet || !ok {
		t.Fatalf("%q: not a followable SET", sql)
	}
	return op
}

func newTestSession(startup map[string]string) *session {
	s := &session{startupSets: map[string]string{}}
	for k, v := range startup {
		if _, reported := postgres.ReportedParam(k); !reported {
			s.startupSets[k] = v
		}
	}
	s.init(map[string]string{"TimeZone": "UTC", "application_name": ""}, startup)
	return s
}

// TestSessionReplay: a server connection is brought in line with exactly what differs.
func TestSessionReplay(t *testing.T) {
	s := newTestSession(map[string]string{"application_name": "app", "statement_timeout": "5s"})
	server := map[string]string{"TimeZone": "UTC", "application_name": "other"}
	q := s.replay(server, map[string]string{"search_path": "SET search_path TO x"})
	for _, want := range []string{"SET application_name = 'app';", "set_config('statement_timeout', '5s', false)", "SET search_path TO DEFAULT;"} {
		if !strings.Contains(q, want) {
			t.Errorf("replay %q lacks %q", q, want)
		}
	}
	if strings.Contains(q, "TimeZone") {
		t.Errorf("replay %q sets what already matches", q)
	}
	server["application_name"] = "app"
	if q := s.replay(server, s.followedSets()); q != "" {
		t.Errorf("in line already, replay %q", q)
	}
}

// TestSessionConfirm: a change counts only once PostgreSQL confirms it, RESET goes back
// to the startup value, RESET ALL to all of them, and unconfirmed changes are dropped.
func TestSessionConfirm(t *testing.T) {
	s := newTestSession(map[string]string{"statement_timeout": "5s"})
	startupStmt := s.sets["statement_timeout"]
	s.queue(set(t, "SET myapp.tenant = 'a'"))
	if _, ok := s.sets["myapp.tenant"]; ok {
		t.Fatal("applied before confirmation")
	}
	if _, ok := s.confirm("RESET"); ok {
		t.Fatal("confirmed by the wrong tag")
	}
	op, ok := s.confirm("SET")
	if !ok || s.sets["myapp.tenant"] != "SET myapp.tenant TO 'a'" {
		t.Fatalf("after confirm: %v %q", ok, s.sets)
	}
	srv := map[string]string{}
	applyToServer(srv, op)
	if srv["myapp.tenant"] != s.sets["myapp.tenant"] {
		t.Fatalf("server record %q", srv)
	}

	s.queue(set(t, "SET statement_timeout = '1s'"))
	s.confirm("SET")
	s.queue(set(t, "RESET statement_timeout"))
	op, _ = s.confirm("RESET")
	if s.sets["statement_timeout"] != startupStmt {
		t.Fatalf("RESET went to %q, want the startup value %q", s.sets["statement_timeout"], startupStmt)
	}
	applyToServer(srv, op)

	s.queue(set(t, "SET work_mem = '8MB'"))
	s.unconfirmed() // the request ended without its CommandComplete: it failed
	if _, ok := s.confirm("SET"); ok {
		t.Fatal("an unconfirmed SET was applied later")
	}
	s.queue(set(t, "RESET ALL"))
	op, _ = s.confirm("RESET")
	if len(s.sets) != 1 || s.sets["statement_timeout"] != startupStmt {
		t.Fatalf("RESET ALL left %q", s.sets)
	}
	applyToServer(srv, op)
	if len(srv) != 0 {
		t.Fatalf("server after RESET ALL: %q", srv)
	}
	for i := 0; i < 2*maxPendingSetOps; i++ {
		s.queue(set(t, "SET a.b = 1"))
	}
	if len(s.setOps) != maxPendingSetOps {
		t.Fatalf("%d changes waiting, bound %d", len(s.setOps), maxPendingSetOps)
	}
}

// TestSessionPinRules: pins are taken and cleared by what statements do, and a check
// is asked for only when some state that the server counts may have gone.
func TestSessionPinRules(t *testing.T) {
	var s session
	if was := s.note(postgres.StateChange{Takes: postgres.StateAdvisoryLock | postgres.StateListen}, false); was != 0 {
		t.Fatalf("was %v", was)
	}
	if s.pins.String() != "advisory_lock,listen" || s.pinCheck {
		t.Fatalf("pins %q check %v", s.pins, s.pinCheck)
	}
	s.note(postgres.StateChange{}, true)
	if !s.pins.has(pinSet) {
		t.Fatal("an unfollowable SET did not pin")
	}
	s.note(postgres.StateChange{Recheck: true}, false)
	if !s.pinCheck {
		t.Fatal("an unlock did not ask for a check")
	}
	s.checked(pinListen) // the server still counts a LISTEN, no lock
	if s.pins.String() != "listen,set" {
		t.Fatalf("after check: %q", s.pins)
	}
	s.note(postgres.StateChange{Unset: true, Recheck: true}, false) // DISCARD ALL
	s.checked(0)
	if s.pins != 0 {
		t.Fatalf("after DISCARD ALL and check: %q", s.pins)
	}
	var idle session
	idle.note(postgres.StateChange{Recheck: true}, false)
	if idle.pinCheck {
		t.Fatal("a check asked for with nothing to release")
	}
}

// FuzzSessionReplay: whatever followable SETs a client confirms, replaying the session
// on a fresh server connection gives statements pgpool itself would follow again, and
// an in-line connection needs nothing.
func FuzzSessionReplay(f *testing.F) {
	for _, q := range []string{"SET search_path = a, b", "set myapp.tenant to 'x''y'", "select set_config('a.b', 'v', false)", "RESET ALL", "SET statement_timeout TO DEFAULT"} {
		f.Add(q, "SET work_mem = '4MB'")
	}
	f.Fuzz(func(t *testing.T, q1, q2 string) {
		s := newTestSession(nil)
		for _, q := range []string{q1, q2} {
			op, isSet, ok := postgres.ParseSet(q)
			if !isSet {
				op, isSet, ok = postgres.ParseSetConfig(q)
			}
			if !isSet || !ok {
				continue
			}
			s.queue(op)
			if _, ok := s.confirm(op.Tag); !ok {
				t.Fatalf("%q: queued change not confirmed by its own tag %q", q, op.Tag)
			}
		}
		for name, stmt := range s.sets {
			op, isSet, ok := postgres.ParseSet(stmt)
			if !isSet {
				op, isSet, ok = postgres.ParseSetConfig(stmt)
			}
			if !isSet || !ok || !strings.EqualFold(op.Name, name) {
				t.Fatalf("replayed %q for %q reads as %+v (set %v, followable %v)", stmt, name, op, isSet, ok)
			}
		}
		if q := s.replay(map[string]string{"TimeZone": "UTC", "application_name": ""}, s.followedSets()); q != "" {
			t.Fatalf("in-line connection gets %q", q)
		}
	})
}

// commandComplete returns a CommandComplete message with tag.
func commandComplete(tag string) []byte {
	return appendMessage(nil, 'C', []byte(tag), nul)
}

// TestConfirmSetWithoutLock: a CommandComplete with no followed change waiting is
// passed by without the client's lock (held here by another goroutine's stand-in);
// one that confirms a waiting change applies it to the client and to the server
// connection, and nothing is left waiting.
func TestConfirmSetWithoutLock(t *testing.T) {
	c := &client{}
	c.sess = *newTestSession(nil)
	s := &server{sets: map[string]string{}}
	c.mu.Lock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.confirmSet(s, commandComplete("SELECT 1"))
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("confirmSet waited for the client's lock with nothing to confirm")
	}
	c.mu.Unlock()

	c.mu.Lock()
	c.sess.queue(set(t, "SET search_path = a"))
	c.setsWaiting.Store(int32(c.sess.waitingSets()))
	c.mu.Unlock()
	c.confirmSet(s, commandComplete("SELECT 1")) // not its tag
	c.confirmSet(s, commandComplete("SET"))
	if c.sess.sets["search_path"] == "" || s.sets["search_path"] != c.sess.sets["search_path"] {
		t.Fatalf("not applied: client %q server %q", c.sess.sets, s.sets)
	}
	if c.setsWaiting.Load() != 0 {
		t.Fatalf("%d still waiting", c.setsWaiting.Load())
	}
}

// BenchmarkConfirmSetNothingWaiting: the cost of a CommandComplete to confirmSet in
// the common case.
func BenchmarkConfirmSetNothingWaiting(b *testing.B) {
	c := &client{}
	c.sess = *newTestSession(nil)
	msg := commandComplete("SELECT 1")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c.confirmSet(nil, msg)
	}
}
