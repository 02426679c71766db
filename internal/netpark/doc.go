// Package netpark parks idle connections: a connection with nothing to read holds no
// goroutine while it waits, only a small registration.
//
// A Go server that serves each connection with a goroutine blocked in Read pays for
// that goroutine's stack (grown to whatever serving a request needed) for as long
// as the connection stays idle. A Parker owns one epoll instance and one watcher
// goroutine: a connection is parked by registering its descriptor (EPOLLIN,
// EPOLLRDHUP, EPOLLONESHOT; the descriptor is taken through syscall.RawConn.Control,
// not duplicated) together with a callback, and the goroutine that served it
// returns. When the descriptor becomes readable, or the peer closes or resets the
// connection, the watcher deregisters it and calls the callback, which starts a
// fresh goroutine for the connection (the callback must not block). Go's own network
// poller keeps the descriptor registered too; a second epoll instance watching the
// same descriptor is fine on Linux.
//
// The owner of a connection that closes it while it is parked (an idle timeout, a
// shutdown) first calls Conn.Wake, which deregisters the descriptor and calls the
// callback in the caller's goroutine: a descriptor is never closed while registered,
// so that its number, reused by a new connection, cannot reach a stale
// registration. Every callback is called exactly once per successful Park: by the
// watcher, by Wake, or by Parker.Close, which wakes whatever is still parked.
//
// Nothing queues: the watcher reads a bounded batch of events at a time, takes their
// registrations under one hold of its lock, and then, the lock released, calls each
// callback directly. A Parker holds one registration per parked connection.
//
// Where epoll is not available (any system but Linux), New returns ErrUnsupported,
// every Park fails with it, and the caller keeps its goroutine blocked in Read.
package netpark
