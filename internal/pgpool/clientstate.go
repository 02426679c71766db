package pgpool

// clientState is where a client connection is in its life. It changes only by the
// transitions clientTransitions lists; any other change is refused, so that a late
// report from a server's reader (a transaction's end arriving after the client began
// to close, say) cannot take a closing client back to idle. SHOW CLIENTS reports it
// (pinned clients as active, with their reasons in the pinned column).
type clientState int32

const (
	clientLogin   clientState = iota // in startup or authentication
	clientIdle                       // logged in, no server connection
	clientWaiting                    // waiting for a server connection
	clientActive                     // linked to a server connection
	clientPinned                     // linked, and session state keeps it so (sess.pins)
	clientClosing                    // going away: nothing more is sent to a server
	clientClosed                     // gone
	numClientStates
)

var clientStateNames = [numClientStates]string{"login", "idle", "waiting", "active", "pinned", "closing", "closed"}

func (s clientState) String() string {
	if s >= 0 && s < numClientStates {
		return clientStateNames[s]
	}
	return "invalid"
}

// clientTransitions lists, for each state, the states it may move to.
var clientTransitions = [numClientStates][]clientState{
	clientLogin:   {clientIdle, clientActive, clientClosing, clientClosed}, // active: the admin console
	clientIdle:    {clientWaiting, clientActive, clientClosing},
	clientWaiting: {clientActive, clientIdle, clientClosing},
	clientActive:  {clientIdle, clientPinned, clientClosing},
	clientPinned:  {clientActive, clientIdle, clientClosing},
	clientClosing: {clientClosed},
	clientClosed:  nil,
}

// may reports whether a client in state s may move to next.
func (s clientState) may(next clientState) bool {
	if s < 0 || s >= numClientStates {
		return false
	}
	for _, t := range clientTransitions[s] {
		if t == next {
			return true
		}
	}
	return false
}

// closing reports whether the client is going away (or gone).
func (s clientState) closing() bool { return s == clientClosing || s == clientClosed }

// to moves the client to state next if the transition is allowed, and reports whether
// the client is in next afterwards. Safe for concurrent use.
func (c *client) to(next clientState) bool {
	for {
		cur := clientState(c.state.Load())
		if cur == next {
			return true
		}
		if !cur.may(next) {
			return false
		}
		if c.state.CompareAndSwap(int32(cur), int32(next)) {
			return true
		}
	}
}

// getState returns the client's state.
func (c *client) getState() clientState { return clientState(c.state.Load()) }

// isClosing reports whether the client is going away: nothing more may be sent on its
// behalf, and a server connection it leaves is cleaned up on its own.
func (c *client) isClosing() bool { return c.getState().closing() }

// The named transitions.

// loggedIn: login is over; the client has no server connection yet.
func (c *client) loggedIn() { c.to(clientIdle) }

// startWait: the client waits for a server connection.
func (c *client) startWait() { c.to(clientWaiting) }

// bound: a server connection serves the client.
func (c *client) bound() { c.to(clientActive) }

// unboundIdle: the client gave its server connection back (or got none).
func (c *client) unboundIdle() { c.to(clientIdle) }

// pinnedNow and unpinnedNow follow the client's pins while it is bound.
func (c *client) pinnedNow()   { c.to(clientPinned) }
func (c *client) unpinnedNow() { c.to(clientActive) }

// startClosing: the client is going away.
func (c *client) startClosing() { c.to(clientClosing) }

// closedNow: the client's connection is gone.
func (c *client) closedNow() {
	c.to(clientClosing)
	c.to(clientClosed)
}
