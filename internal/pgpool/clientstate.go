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

// streamState is where the client's stream of messages stands against the protocol
// state of its server connection. The states exclude each other; they change only by
// the events streamNext lists, each with a named transition below. Guarded by c.mu.
//
// Kept apart, as facts independent of it: c.aborted (the server connection died
// inside the client's transaction: it lasts across Syncs, until the client ends the
// transaction, and may hold with streamDiscard), c.longIn (a message too long to
// buffer is being streamed to the server: any message, in any of these states) and
// c.gotFatal (a FATAL error was passed on).
type streamState uint8

const (
	// streamSynced: every message sent is followed by its sync point (Query, Sync,
	// FunctionCall); the binding may end once what is in flight is answered.
	streamSynced streamState = iota
	// streamBatch: extended-protocol messages were sent since the last Sync.
	streamBatch
	// streamCopy: the server is in COPY FROM STDIN, started by a simple Query (or
	// after the Sync of the batch that started it): CopyDone or CopyFail ends it.
	streamCopy
	// streamCopyBatch: COPY FROM STDIN inside an extended-protocol batch: after
	// CopyDone or CopyFail the batch still waits for its Sync (PostgreSQL ignores the
	// Syncs sent during COPY).
	streamCopyBatch
	// streamDiscard: the server connection died inside a batch, or none could be had
	// for it: messages are dropped until Sync, which pgpool answers, as PostgreSQL
	// skips to Sync after an error. No server connection is bound.
	streamDiscard
	numStreamStates
)

var streamStateNames = [numStreamStates]string{"synced", "batch", "copy", "copy_batch", "discard"}

func (s streamState) String() string {
	if s < numStreamStates {
		return streamStateNames[s]
	}
	return "invalid"
}

// unsynced reports whether extended-protocol messages wait for a Sync.
func (s streamState) unsynced() bool { return s == streamBatch || s == streamCopyBatch }

// inCopy reports whether the server is in COPY FROM STDIN.
func (s streamState) inCopy() bool { return s == streamCopy || s == streamCopyBatch }

// streamEvent is what changes a streamState.
type streamEvent uint8

const (
	evSyncPoint   streamEvent = iota // a Query, Sync or FunctionCall sent (not a Sync ignored during COPY)
	evBatchMsg                       // another extended-protocol message sent (Parse, Bind, Execute, ...)
	evCopyIn                         // the server answered CopyInResponse
	evCopyEnd                        // CopyDone or CopyFail sent
	evBound                          // a server connection was bound
	evServerLost                     // the server connection died
	evBindFailed                     // no server connection for a message of a batch
	evDiscardSync                    // the Sync that ends streamDiscard arrived
	numStreamEvents
)

// streamNext gives, for each state and event, the next state. An event that cannot
// happen in a state (forward answers a discarding client before anything is sent)
// leaves it unchanged.
var streamNext = [numStreamStates][numStreamEvents]streamState{
	streamSynced: {
		evSyncPoint: streamSynced, evBatchMsg: streamBatch, evCopyIn: streamCopy, evCopyEnd: streamSynced,
		evBound: streamSynced, evServerLost: streamSynced, evBindFailed: streamDiscard, evDiscardSync: streamSynced,
	},
	streamBatch: {
		evSyncPoint: streamSynced, evBatchMsg: streamBatch, evCopyIn: streamCopyBatch, evCopyEnd: streamBatch,
		evBound: streamSynced, evServerLost: streamDiscard, evBindFailed: streamDiscard, evDiscardSync: streamBatch,
	},
	streamCopy: {
		evSyncPoint: streamCopy, evBatchMsg: streamCopyBatch, evCopyIn: streamCopy, evCopyEnd: streamSynced,
		evBound: streamSynced, evServerLost: streamSynced, evBindFailed: streamDiscard, evDiscardSync: streamCopy,
	},
	streamCopyBatch: {
		evSyncPoint: streamCopy, evBatchMsg: streamCopyBatch, evCopyIn: streamCopyBatch, evCopyEnd: streamBatch,
		evBound: streamSynced, evServerLost: streamDiscard, evBindFailed: streamDiscard, evDiscardSync: streamCopyBatch,
	},
	streamDiscard: {
		evSyncPoint: streamDiscard, evBatchMsg: streamDiscard, evCopyIn: streamDiscard, evCopyEnd: streamDiscard,
		evBound: streamDiscard, evServerLost: streamDiscard, evBindFailed: streamDiscard, evDiscardSync: streamSynced,
	},
}

// on returns the state after ev.
func (s streamState) on(ev streamEvent) streamState {
	if s >= numStreamStates || ev >= numStreamEvents {
		return s
	}
	return streamNext[s][ev]
}

// The named transitions of the stream. Call with c.mu held.

// sentSyncPoint: a Query, Sync or FunctionCall went to the server.
func (c *client) sentSyncPoint() { c.stream = c.stream.on(evSyncPoint) }

// sentBatchMsg: another extended-protocol message went to the server.
func (c *client) sentBatchMsg() { c.stream = c.stream.on(evBatchMsg) }

// copyInStarted: the server entered COPY FROM STDIN.
func (c *client) copyInStarted() { c.stream = c.stream.on(evCopyIn) }

// sentCopyEnd: CopyDone or CopyFail went to the server.
func (c *client) sentCopyEnd() { c.stream = c.stream.on(evCopyEnd) }

// streamBound: a server connection was bound; nothing is pending on it.
func (c *client) streamBound() { c.stream = c.stream.on(evBound) }

// streamLost: the bound server connection died; a batch it was in is discarded up to
// its Sync.
func (c *client) streamLost() { c.stream = c.stream.on(evServerLost) }

// streamBindFailed: no server connection could be had for a message of a batch.
func (c *client) streamBindFailed() { c.stream = c.stream.on(evBindFailed) }

// discardSynced: the Sync that ends a discarded batch arrived.
func (c *client) discardSynced() { c.stream = c.stream.on(evDiscardSync) }

// longInState says whether a message too long to buffer is being streamed to the
// server: the binding stays until it has gone, and a release that came due meanwhile
// happens then. Guarded by c.mu.
type longInState uint8

const (
	longInNone       longInState = iota
	longInStreaming              // a long message is being streamed to the server
	longInReleaseDue             // ... and the server connection is to be released after it
)

// releaseDue: the server connection may be released once the long message has gone
// (only while one is streamed); it reports whether the release was deferred.
func (l *longInState) releaseDue() bool {
	if *l == longInNone {
		return false
	}
	*l = longInReleaseDue
	return true
}

// ended: the long message has gone; it reports whether a release came due meanwhile.
func (l *longInState) ended() bool {
	due := *l == longInReleaseDue
	*l = longInNone
	return due
}
