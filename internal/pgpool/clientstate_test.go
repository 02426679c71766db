package pgpool

import "testing"

// TestClientTransitions: the named transitions move a client only along the table;
// nothing takes a closing client back, and a late release after a pin check or a
// server's death leaves a closing client closing.
func TestClientTransitions(t *testing.T) {
	c := &client{}
	c.state.Store(int32(clientLogin))
	steps := []struct {
		do   func()
		want clientState
	}{
		{c.loggedIn, clientIdle},
		{c.startWait, clientWaiting},
		{c.bound, clientActive},
		{c.pinnedNow, clientPinned},
		{c.startWait, clientPinned}, // a pinned client does not wait for a server
		{c.unpinnedNow, clientActive},
		{c.unboundIdle, clientIdle},
		{c.pinnedNow, clientIdle}, // pins are taken only while bound
		{c.startWait, clientWaiting},
		{c.unboundIdle, clientIdle}, // the wait failed
		{c.startClosing, clientClosing},
		{c.unboundIdle, clientClosing}, // a late release
		{c.bound, clientClosing},
		{c.closedNow, clientClosed},
		{c.loggedIn, clientClosed},
	}
	for i, st := range steps {
		st.do()
		if got := c.getState(); got != st.want {
			t.Fatalf("step %d: state %v, want %v", i, got, st.want)
		}
	}
	if !c.isClosing() {
		t.Fatal("a closed client is not closing")
	}
	for s := clientLogin; s < numClientStates; s++ {
		if s.may(s) {
			t.Errorf("%v may move to itself", s)
		}
		if s.String() == "invalid" {
			t.Errorf("state %d has no name", s)
		}
		if s != clientClosed && !s.may(clientClosing) && s != clientClosing {
			t.Errorf("%v cannot start closing", s)
		}
	}
	if clientClosed.may(clientIdle) || clientClosing.may(clientActive) {
		t.Error("a closing client can come back")
	}
}

// TestStreamTransitions: the stream state follows a client's messages through the
// cases pgpool must tell apart (a batch waiting for its Sync, COPY from a simple
// Query, COPY inside a batch, a batch whose server died), and the table has an entry
// for every state and event, each reaching a state that exists.
func TestStreamTransitions(t *testing.T) {
	c := &client{}
	steps := []struct {
		name string
		do   func()
		want streamState
	}{
		{"bound", c.streamBound, streamSynced},
		{"Parse", c.sentBatchMsg, streamBatch},
		{"Execute", c.sentBatchMsg, streamBatch},
		{"CopyInResponse", c.copyInStarted, streamCopyBatch},
		{"Sync during COPY", c.sentSyncPoint, streamCopy}, // forward ignores it; shown here as if sent
		{"Bind during COPY", c.sentBatchMsg, streamCopyBatch},
		{"CopyDone", c.sentCopyEnd, streamBatch}, // the batch still waits for its Sync
		{"Sync", c.sentSyncPoint, streamSynced},
		{"Query", c.sentSyncPoint, streamSynced},
		{"CopyInResponse of the Query", c.copyInStarted, streamCopy},
		{"CopyFail", c.sentCopyEnd, streamSynced},
		{"server lost, synced", c.streamLost, streamSynced},
		{"Bind", c.sentBatchMsg, streamBatch},
		{"server lost in a batch", c.streamLost, streamDiscard},
		{"message dropped", c.sentBatchMsg, streamDiscard},
		{"Sync answered by pgpool", c.discardSynced, streamSynced},
		{"no server for a Parse", c.streamBindFailed, streamDiscard},
		{"a late bind does not end discarding", c.streamBound, streamDiscard},
		{"Sync answered by pgpool", c.discardSynced, streamSynced},
	}
	for i, st := range steps {
		st.do()
		if c.stream != st.want {
			t.Fatalf("step %d (%s): %v, want %v", i, st.name, c.stream, st.want)
		}
	}
	for s := streamSynced; s < numStreamStates; s++ {
		if s.String() == "invalid" {
			t.Errorf("state %d has no name", s)
		}
		for ev := streamEvent(0); ev < numStreamEvents; ev++ {
			if next := s.on(ev); next >= numStreamStates {
				t.Errorf("%v on %d: %d", s, ev, next)
			}
		}
		// Whatever the state, a bound client whose server dies leaves no batch or
		// COPY behind, and a bind leaves nothing pending unless discarding.
		if lost := s.on(evServerLost); lost.inCopy() || lost.unsynced() {
			t.Errorf("%v: after the server is lost: %v", s, lost)
		}
		if b := s.on(evBound); b != streamSynced && s != streamDiscard {
			t.Errorf("%v: after bind: %v", s, b)
		}
	}
	if streamSynced.unsynced() || !streamCopyBatch.unsynced() || !streamCopyBatch.inCopy() || streamBatch.inCopy() {
		t.Error("predicates do not match the states")
	}

	// A long message being streamed defers a release to its end.
	var l longInState
	if l.releaseDue() || l.ended() {
		t.Fatal("a release deferred with nothing streamed")
	}
	l = longInStreaming
	if l.ended() || l != longInNone {
		t.Fatal("a release came due by itself")
	}
	l = longInStreaming
	if !l.releaseDue() || !l.ended() || l != longInNone {
		t.Fatal("a deferred release was lost")
	}
}

// TestReleasable: a server connection goes back to the pool only when the transaction
// is over, nothing is in flight or waiting for a Sync, nothing in the session pins the
// client, the mode allows it and the client is not going away.
func TestReleasable(t *testing.T) {
	fresh := func() *client {
		c := &client{cfg: &poolConfig{mode: PoolTransaction}}
		c.state.Store(int32(clientActive))
		return c
	}
	if !fresh().releasable('I') {
		t.Fatal("an idle client is not releasable")
	}
	cases := []struct {
		name   string
		change func(c *client)
		status byte
	}{
		{"in a transaction", func(*client) {}, 'T'},
		{"in a failed transaction", func(*client) {}, 'E'},
		{"a request in flight", func(c *client) { c.inflight.pushRequest('Q') }, 'I'},
		{"a batch without its Sync", func(c *client) { c.sentBatchMsg() }, 'I'},
		{"COPY in a batch", func(c *client) { c.sentBatchMsg(); c.copyInStarted() }, 'I'},
		{"pinned by an advisory lock", func(c *client) { c.sess.pins = pinAdvisoryLock }, 'I'},
		{"pinned by a long unnamed Parse", func(c *client) { c.sess.pins = pinUnnamed }, 'I'},
		{"pinned by an untracked pipeline", func(c *client) { c.sess.pin(pinPipeline) }, 'I'},
		{"session mode", func(c *client) { c.cfg.mode = PoolSession }, 'I'},
		{"closing", func(c *client) { c.startClosing() }, 'I'},
	}
	for _, tc := range cases {
		c := fresh()
		tc.change(c)
		if c.releasable(tc.status) {
			t.Errorf("%s: releasable", tc.name)
		}
	}
	c := fresh()
	c.inflight.pushRequest('S')
	c.inflight.drop()
	c.sentBatchMsg()
	c.sentSyncPoint()
	if !c.releasable('I') {
		t.Error("not releasable once the batch is synced and answered")
	}
}
