package wire

import (
	"syscall"

	"github.com/poolsuite/poolsuite/internal/sysio"
)

// A read or write on a socket in non-blocking mode returns at once (EAGAIN when it
// cannot go on), so Reader and Writer make it as a raw system call: the Go scheduler
// then neither hands the goroutine's P to another thread for the call nor wakes its
// monitor thread, which sleeps whenever the process is idle. A pooler relaying one
// small request and its answer at a time would otherwise pay for that at nearly
// every call: a futex wake, and another thread's context switches, per transaction.
// A descriptor in blocking mode keeps the ordinary system call, which may block.

// nonBlocking reports whether the descriptor behind raw is in non-blocking mode.
func nonBlocking(raw syscall.RawConn) bool {
	nb := false
	err := raw.Control(func(fd uintptr) {
		fl, _, e := syscall.RawSyscall(syscall.SYS_FCNTL, fd, syscall.F_GETFL, 0)
		nb = e == 0 && fl&syscall.O_NONBLOCK != 0
	})
	return err == nil && nb
}

// sysRead reads from fd once; raw says fd is non-blocking (nonBlocking).
func sysRead(fd uintptr, b []byte, raw bool) (int, error) {
	if !raw {
		return syscall.Read(int(fd), b)
	}
	if len(b) == 0 {
		return 0, nil
	}
	n, e := sysio.Read(fd, b)
	if e != 0 {
		return -1, e
	}
	return n, nil
}

// sysWrite writes to fd once; raw as for sysRead.
func sysWrite(fd uintptr, b []byte, raw bool) (int, error) {
	if !raw {
		return syscall.Write(int(fd), b)
	}
	if len(b) == 0 {
		return 0, nil
	}
	n, e := sysio.Write(fd, b)
	if e != 0 {
		return -1, e
	}
	return n, nil
}
