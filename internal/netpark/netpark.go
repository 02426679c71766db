package netpark

import "errors"

// Errors returned by New and Park.
var (
	// ErrUnsupported: this system has no epoll; the caller waits in Read instead.
	ErrUnsupported = errors.New("netpark: not supported on this system")
	// ErrClosed: the Parker was closed.
	ErrClosed = errors.New("netpark: parker closed")
	// ErrParked: the Conn is parked already.
	ErrParked = errors.New("netpark: connection parked already")
)

// batch is how many events the watcher takes from the kernel at a time.
const batch = 128
