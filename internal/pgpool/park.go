package pgpool

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/poolsuite/poolsuite/internal/netpark"
)

// A logged-in client that waits for its next message with nothing bound, in flight
// or buffered holds no goroutine: its connection is parked on the Pooler's Parker
// (internal/netpark) and its goroutine ends; the Parker starts a new one when the
// client sends or closes, or when pgpool wakes it: before closing it (c.close), for
// an online restart (wakeForHandover), and at client_idle_timeout (a timer: the
// Parker does not see the read deadline).
//
// A client parks as soon as it is idle, unless it is hot: a client whose last
// request started within netpark.HotGap of the one before (it would otherwise pay a
// park and a wake-up on each request whose reply, and the server's release, came
// before its goroutine went back to read) waits in Read when idle, as does a client
// whose read began while a server served it (its release came while it waited in
// Read). The idle sweep (sweepIdle), run by the janitor about once a second, parks
// both: it wakes the reads of clients idle since the sweep before, which then park
// (a client the sweep woke is hot no more).

// errParked ends the goroutine of a client whose connection is parked.
var errParked = errors.New("pgpool: client parked")

// parking is a client's parking state, guarded by its own mutex (not c.mu: close
// takes it, and close is called with c.mu held).
type parking struct {
	mu     sync.Mutex
	pk     netpark.Conn
	rc     syscall.RawConn // the connection's descriptor; nil: none (TLS)
	rcOK   bool            // rc was looked for
	parked bool            // the goroutine ended with the connection on the Parker
	// kicked: a close or a deadline is on its way to the next read, which must then
	// wait in Read, not parked, to see it.
	kicked bool
	// closing: the connection is closed or about to be (c.close); the client never
	// parks again, so that no close meets a parked descriptor.
	closing bool
	idleT   *time.Timer // wakes a parked client at client_idle_timeout
	// woke: the client's goroutine is one the Parker started (owned by it).
	woke   bool
	wakeFn func()
	// idleAt: when client_idle_timeout ends for the parked client (zero: never);
	// owned by the client's goroutine.
	idleAt time.Time
	// readAt: when the client's last request started (its idle read returned); hot:
	// the one before started within Pooler.hotGap of it, so the client waits in Read
	// when idle until the idle sweep wakes it. Both owned by the client's goroutine.
	readAt time.Time
	hot    bool

	// rdl is the read deadline setReadDeadlineLocked set last (zero: none); guarded
	// by the client's mu.
	rdl time.Time
	// For the idle sweep: reading, the client's goroutine waits in Read with
	// nothing buffered; active, such a read returned since the last sweep;
	// sweepKick, the sweep set the read deadline in the past to wake it.
	reading, active, sweepKick atomic.Bool
}

// park parks the client's connection if the client is idle with nothing buffered,
// and not hot: the goroutine must then return errParked at once. A goroutine the
// Parker just started reads first (what woke it is for the read).
func (c *client) park() bool {
	pk := c.pl.parker
	if pk == nil || c.tls || c.admin || c.rd.Buffered() > 0 || c.rd.Remaining() > 0 {
		return false
	}
	p := &c.parking
	if p.woke {
		p.woke = false
		if !p.idleAt.IsZero() && !time.Now().Before(p.idleAt) {
			// client_idle_timeout passed while parked: the deadline loop just
			// moved is the one that passed.
			c.conn.SetReadDeadline(aLongTimeAgo)
		}
		return false
	}
	c.mu.Lock()
	idle := clientState(c.state.Load()) == clientIdle && c.atHandoverPointLocked()
	rdl := p.rdl
	c.mu.Unlock()
	if !idle {
		return false
	}
	var d time.Duration
	if !rdl.IsZero() {
		if d = time.Until(rdl); d <= 0 {
			return false // the read times out at once
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.kicked || p.closing || p.hot {
		p.kicked = false // a hot client's read sees the kick's close or deadline in Read
		return false
	}
	if !p.rcOK {
		p.rcOK = true
		if sc, ok := c.conn.(syscall.Conn); ok {
			p.rc, _ = sc.SyscallConn()
		}
	}
	if p.rc == nil {
		return false
	}
	if p.wakeFn == nil {
		p.wakeFn = c.resume
	}
	c.rd.Release()
	// The callback may run before Park returns: what its goroutine reads is
	// written before.
	p.idleAt = rdl
	p.woke = true
	// Counted before Park: once the Parker holds the connection, a test that sees
	// it parked sees it counted.
	c.pl.parks.Add(1)
	if pk.Park(&p.pk, p.rc, p.wakeFn) != nil {
		c.pl.parks.Add(-1)
		p.woke = false
		return false
	}
	p.parked = true
	if d > 0 {
		if p.idleT == nil {
			p.idleT = time.AfterFunc(d, c.idleWake)
		} else {
			p.idleT.Reset(d)
		}
	}
	return true
}

// resume is the Parker's callback: a new goroutine serves the woken client.
func (c *client) resume() {
	// The parked goroutine left its count in pl.wg to this one.
	go c.pl.runClient(c, c.pl.settings(), true)
}

// resumed is called by a goroutine the Parker started, as it starts.
func (c *client) resumed() {
	p := &c.parking
	p.mu.Lock()
	p.parked = false
	if p.idleT != nil {
		p.idleT.Stop()
	}
	p.mu.Unlock()
}

// idleWake wakes a parked client at client_idle_timeout: its read then fails with the
// deadline passed, as if it had waited in Read.
func (c *client) idleWake() {
	p := &c.parking
	p.mu.Lock()
	parked := p.parked
	p.parked = false
	p.mu.Unlock()
	if parked {
		p.pk.Wake()
	}
}

// kickParked tells the client's next read that a close or a deadline is on its way,
// and wakes the client if it is parked: a parked descriptor is deregistered before
// the connection is closed.
func (c *client) kickParked() {
	p := &c.parking
	p.mu.Lock()
	p.kicked = true
	parked := p.parked
	p.parked = false
	p.mu.Unlock()
	if parked {
		p.pk.Wake()
	}
}

// closeKick is the first half of c.close: kickParked, and the client never parks
// again. A goroutine the Parker woke just before the kick (too late for its Wake)
// would otherwise read on, and might park once more before the close, on a
// descriptor nothing would then wake.
func (c *client) closeKick() {
	c.parking.mu.Lock()
	c.parking.closing = true
	c.parking.mu.Unlock()
	c.kickParked()
}

// idleRead reports whether the read the client's goroutine is about to do starts
// with nothing buffered, and if so marks it for the idle sweep and for an online
// restart's wake-up (handoverKick).
func (c *client) idleRead() bool {
	if c.rd.Buffered() > 0 || c.rd.Remaining() > 0 {
		return false
	}
	c.parking.reading.Store(true)
	return true
}

// requestRead is called when an idle read (idleRead) returned the start of a
// request: the client is hot if the one before started within the Pooler's hot gap.
func (c *client) requestRead() {
	p := &c.parking
	now := time.Now()
	p.hot = now.Sub(p.readAt) < time.Duration(c.pl.hotGap.Load())
	p.readAt = now
}

// idleReadDone marks the end of an idle read (err is what it returned), and reports
// whether the idle sweep woke it (set the read deadline in the past) meanwhile: the
// deadline in force before the sweep's is then set again, whether or not the read
// failed, so that neither the reads that follow (the rest of a long message) nor the
// client's own timeouts meet the sweep's. So is it when an online restart's wake-up
// (handoverKick) came too late to fail the read. Both wake a read under p.mu while
// reading holds, so none lands once reading is cleared here.
func (c *client) idleReadDone(err error) (swept bool) {
	p := &c.parking
	p.mu.Lock()
	p.reading.Store(false)
	swept = p.sweepKick.Swap(false)
	late := err == nil && c.hoWoken.Swap(false)
	p.mu.Unlock()
	if !p.active.Load() {
		p.active.Store(true)
	}
	if swept || late {
		c.mu.Lock()
		c.conn.SetReadDeadline(p.rdl)
		c.mu.Unlock()
	}
	return swept
}

// handoverKick wakes the client for an online restart (wakeForHandover): a parked
// one is woken, and a read waiting for the next message fails at once (hoWoken).
// Only such a read: a client reading the rest of a long message finishes it, and
// meets the handover point after it.
func (c *client) handoverKick() {
	p := &c.parking
	p.mu.Lock()
	if p.reading.Load() {
		c.hoWoken.Store(true)
		c.conn.SetReadDeadline(aLongTimeAgo)
	}
	p.mu.Unlock()
	c.kickParked()
}

// sweepWoke reports whether a failed read was the idle sweep waking it (swept, from
// idleReadDone): the read is then retried, parked if the client is still idle (a
// hot client is hot no more).
func (c *client) sweepWoke(err error, swept bool) bool {
	var ne net.Error
	if !swept || !errors.As(err, &ne) || !ne.Timeout() {
		return false
	}
	c.mu.Lock()
	rdl := c.parking.rdl
	c.mu.Unlock()
	if !rdl.IsZero() && !time.Now().Before(rdl) {
		return false // the client's own deadline passed as well
	}
	c.parking.hot = false
	return true
}

// sweepIdle wakes the reads of clients that wait in Read while idle (nothing bound,
// in flight or buffered) and read nothing since the sweep before, hot ones too, so
// that they park.
// Called by the janitor.
func (pl *Pooler) sweepIdle() {
	if pl.parker == nil {
		return
	}
	for _, c := range pl.clientList() {
		p := &c.parking
		// reading first: the client's own goroutine sets it in loop, after login has
		// set admin and tls, so reading them is ordered after their writes.
		if !p.reading.Load() {
			p.active.Store(false)
			continue
		}
		if c.admin || c.tls || p.active.Swap(false) {
			continue
		}
		c.mu.Lock()
		idle := clientState(c.state.Load()) == clientIdle && c.atHandoverPointLocked()
		c.mu.Unlock()
		if !idle {
			continue
		}
		// Under p.mu, with reading looked at again: a read that returned since is
		// not woken (idleReadDone).
		p.mu.Lock()
		if p.reading.Load() && !p.parked && !p.kicked {
			p.sweepKick.Store(true)
			c.conn.SetReadDeadline(aLongTimeAgo)
		}
		p.mu.Unlock()
	}
}

// newParker opens the Pooler's Parker; without one (no epoll on this system), idle
// clients wait in Read.
func newParker() *netpark.Parker {
	pk, err := netpark.New()
	if err != nil {
		return nil
	}
	return pk
}
