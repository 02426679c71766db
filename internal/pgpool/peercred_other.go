//go:build !linux

package pgpool

import "net"

// sameOSUser reports whether conn's peer runs as pgpool's OS user; only Linux's
// SO_PEERCRED is supported, elsewhere it is always false.
func sameOSUser(net.Conn) bool { return false }
