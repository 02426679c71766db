// Package sysio makes single read and write system calls on a non-blocking descriptor
// without the Go runtime's system-call bookkeeping (syscall.RawSyscall): such a call
// returns at once (EAGAIN when it cannot go on), so the scheduler need not hand the
// goroutine's P to another thread for it nor wake its monitor thread. The caller owns
// the descriptor's readiness (syscall.RawConn's Read and Write) and EINTR/EAGAIN. Read and
// Write are small enough to be inlined into the caller.
package sysio
