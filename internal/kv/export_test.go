package kv

import (
	"runtime"
	"time"
)

// ParkedClients returns how many client connections p's Parker holds (-1 when p
// has none).
func ParkedClients(p *Proxy) int {
	if p.parker == nil {
		return -1
	}
	return p.parker.Parked()
}

// Parks returns how many times p parked a client connection.
func Parks(p *Proxy) int64 { return p.parks.Load() }

// SweepIdle runs one idle sweep now.
func SweepIdle(p *Proxy) { p.sweepOnce() }

// SetHotGap sets how soon after a read the next one makes a reader hot.
func SetHotGap(p *Proxy, d time.Duration) { p.hotGap.Store(int64(d)) }

// PauseSweep stops p's periodic idle sweep (SweepIdle still runs one).
func PauseSweep(p *Proxy) { p.sweepPaused.Store(true) }

// CurrClients returns how many client connections p serves.
func CurrClients(p *Proxy) int64 { return p.currConns.Load() }

// CloseWhileWoken closes the connection of p's only client as the proxy closes one
// (closeConn), with the Parker's wake-up of that parked client falling between the
// close's kick and its Wake: send makes the client send a request, which wakes it;
// once the watcher has woken it (its reader is held back meanwhile), the close
// kicks and wakes it; replied waits for the reply; the connection is closed once the
// woken reader waits for the next request. It reports false if the client was not
// woken within 10 s.
func CloseWhileWoken(p *Proxy, send, replied func()) bool {
	var c *client
	for _, pl := range p.pools {
		pl.mu.Lock()
		for cl := range pl.clients {
			c = cl
		}
		pl.mu.Unlock()
	}
	deadline := time.Now().Add(10 * time.Second)
	c.mu.Lock() // the woken reader waits for it as it starts (resumed)
	send()
	for p.parker.Parked() != 0 {
		if time.Now().After(deadline) {
			c.mu.Unlock()
			return false
		}
		runtime.Gosched()
	}
	c.mu.Unlock()
	c.unpark(c.closeKick())
	replied()
	for {
		c.mu.Lock()
		reading := c.reading
		c.mu.Unlock()
		if reading || time.Now().After(deadline) {
			break
		}
		runtime.Gosched()
	}
	c.nc.Close()
	return true
}
