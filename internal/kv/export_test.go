package kv

import "time"

// ParkedClients returns how many client connections p's Parker holds (-1 when p
// has none).
func ParkedClients(p *Proxy) int {
	if p.parker == nil {
		return -1
	}
	return p.parker.Parked()
}

// SweepIdle runs one idle sweep now.
func SweepIdle(p *Proxy) { p.sweepOnce() }

// SetHotGap sets how soon after a read the next one makes a reader hot.
func SetHotGap(p *Proxy, d time.Duration) { p.hotGap.Store(int64(d)) }

// PauseSweep stops p's periodic idle sweep (SweepIdle still runs one).
func PauseSweep(p *Proxy) { p.sweepPaused.Store(true) }

// CurrClients returns how many client connections p serves.
func CurrClients(p *Proxy) int64 { return p.currConns.Load() }
