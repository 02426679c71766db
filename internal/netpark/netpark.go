package netpark

import (
	"errors"
	"time"
)

// Errors returned by New and Park.
var (
	// ErrUnsupported: this system has no epoll; the caller waits in Read instead.
	ErrUnsupported = errors.New("netpark: not supported on this system")
	// ErrClosed: the Parker was closed.
	ErrClosed = errors.New("netpark: parker closed")
	// ErrParked: the Conn is parked already.
	ErrParked = errors.New("netpark: connection parked already")
)

// HotGap is the policy both proxies park by: a connection whose last request came
// within HotGap of the one before (hot) waits for the next in Read instead of being
// parked, since a park and its wake-up (a registration, the watcher's wake-up and a
// new goroutine) would be paid again on each request; an idle sweep parks it once it
// stays idle. HotGap is long enough for a pool of many busy clients: at 500
// connections a client's requests come 5 to 20 ms apart (its share of the proxy's
// throughput), and parking between them cost kvproxy a fifth of its throughput when
// the gap was 10 ms. A connection that sent one request, or comes back after more
// than HotGap, parks at once.
const HotGap = 250 * time.Millisecond

// batch is how many events the watcher takes from the kernel at a time.
const batch = 128
