package pgpool

import (
	"net"
	"time"
)

// writeDeadline bounds every write to a socket without a timer update per write: the
// deadline moves forward only when less than 7/8 of the timeout is left, so a write
// that blocks fails after between 7/8 of the timeout and all of it. The caller
// serialises its use (it is guarded by the same lock as the writes).
type writeDeadline struct {
	at time.Time
}

// arm makes sure the next write on conn fails if it blocks for about timeout; a zero
// timeout leaves writes unbounded.
func (d *writeDeadline) arm(conn net.Conn, timeout time.Duration) {
	if timeout <= 0 {
		return
	}
	now := time.Now()
	if d.at.Sub(now) > timeout-timeout/8 {
		return
	}
	d.at = now.Add(timeout)
	conn.SetWriteDeadline(d.at)
}
