package pgpool

import (
	"crypto/tls"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// sameOSUser reports whether conn is a unix socket whose peer runs as the same OS user
// as pgpool (SO_PEERCRED), as PgBouncer checks with getpeereid.
func sameOSUser(conn net.Conn) bool {
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn()
	}
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return false
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return false
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || cerr != nil {
		return false
	}
	return int(cred.Uid) == os.Getuid()
}
