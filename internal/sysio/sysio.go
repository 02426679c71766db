package sysio

import (
	"syscall"
	"unsafe"
)

// Read reads from the non-blocking descriptor fd into b once. It returns the count
// read (0 at end of file) or, when errno is not 0, -1. b must not be empty.
func Read(fd uintptr, b []byte) (n int, errno syscall.Errno) {
	r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	return int(r), e
}

// Write writes b to the non-blocking descriptor fd once. It returns the count written
// or, when errno is not 0, -1. b must not be empty.
func Write(fd uintptr, b []byte) (n int, errno syscall.Errno) {
	r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	return int(r), e
}
