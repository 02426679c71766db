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
