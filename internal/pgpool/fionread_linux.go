package pgpool

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// queuedIn reports how many bytes wait in the receive queue of rc's socket (FIONREAD, SIOCINQ),
// not yet read by anyone.
func queuedIn(rc syscall.RawConn) (int, bool) {
	n, ok := 0, false
	err := rc.Control(func(fd uintptr) {
		v, e := unix.IoctlGetInt(int(fd), unix.SIOCINQ)
		n, ok = v, e == nil
	})
	return n, err == nil && ok
}
