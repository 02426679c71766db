package pgpool

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/poolsuite/poolsuite/internal/pgpool/admin"
)

// suspendGate is the admin console's SUSPEND: while it is on, no client or server
// message read from a socket is processed (the readers park before handling what they
// read) and new clients wait before logging in, until RESUME. The admin console is
// never held. The zero value is not suspended.
type suspendGate struct {
	on atomic.Bool
	// busy counts server readers relaying a message now; SUSPEND returns once it is 0,
	// so that nothing is left half-sent to a client.
	busy atomic.Int64

	mu      sync.Mutex
	resumed chan struct{} // closed by RESUME; nil while not suspended
}

// suspend turns the gate on; false if it was on already.
func (g *suspendGate) suspend() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.resumed != nil {
		return false
	}
	g.resumed = make(chan struct{})
	g.on.Store(true)
	return true
}

// resume turns the gate off and lets every parked reader go; false if it was off.
func (g *suspendGate) resume() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.resumed == nil {
		return false
	}
	g.on.Store(false)
	close(g.resumed)
	g.resumed = nil
	return true
}

// waitChan returns the channel RESUME closes, or nil when not suspended.
func (g *suspendGate) waitChan() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.resumed == nil {
		return nil
	}
	return g.resumed
}

// park waits while suspended (or until done is closed).
func (g *suspendGate) park(done <-chan struct{}) {
	for g.on.Load() {
		ch := g.waitChan()
		if ch == nil {
			return
		}
		select {
		case <-ch:
		case <-done:
			return
		}
	}
}

// enter marks a server reader as relaying one message, parking first while
// suspended; leave ends it.
func (g *suspendGate) enter(done <-chan struct{}) {
	for {
		g.busy.Add(1)
		if !g.on.Load() {
			return
		}
		g.busy.Add(-1)
		g.park(done)
		select {
		case <-done:
			g.busy.Add(1)
			return
		default:
		}
	}
}

func (g *suspendGate) leave() { g.busy.Add(-1) }

// Suspend is SUSPEND: it returns once no server reader is relaying a message, every
// socket's data since left unread, ErrShuttingDown if the pooler shuts down meanwhile.
func (cc consoleControl) Suspend() error {
	pl := cc.pl
	pl.susp.suspend()
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for pl.susp.busy.Load() > 0 {
		select {
		case <-pl.done:
			return admin.ErrShuttingDown
		case <-t.C:
		}
	}
	return nil
}

// Suspended reports whether SUSPEND is in force.
func (cc consoleControl) Suspended() bool { return cc.pl.susp.on.Load() }

// Unsuspend is RESUME after SUSPEND; false if not suspended.
func (cc consoleControl) Unsuspend() bool { return cc.pl.susp.resume() }
