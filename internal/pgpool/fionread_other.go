//go:build !linux

package pgpool

import "syscall"

// queuedIn reports how many bytes wait in the receive queue of rc's socket; where
// that is not asked (any system but Linux), it reports none.
func queuedIn(rc syscall.RawConn) (int, bool) { return 0, false }
