// Package kv is the protocol-independent engine under kvproxy: one listener per pool
// (TCP or unix socket), one goroutine per client reading a pipeline of requests,
// routing each by key (package sharding), splitting multi-key requests, and queueing
// the pieces on pipelined server connections shared by all clients; replies are matched
// in order and written back to each client in request order, flushed once per batch.
//
// The wire protocol is a Codec (see codec.go), chosen per pool by Options.NewCodec;
// internal/kv/kvredis is the Redis one. The engine never looks inside requests or
// replies beyond what a Codec tells it.
//
// # Timeouts and failures
//
// A request's timeout starts when it is written to a server, not when it is queued.
// When the oldest request on a server connection has waited the pool's timeout, the
// connection is closed and exactly the requests written on it fail with ErrTimeout;
// requests still queued go out on a new connection. A broken connection fails its
// written requests with ErrServerClosed. Dial failures, timeouts and breaks count as
// failures for twemproxy's auto_eject_hosts / server_failure_limit /
// server_retry_timeout (tracked by sharding.Pool). A pool without timeout: in its file
// uses DefaultTimeout (1 s); "timeout: 0" means none, as in twemproxy.
//
// # Replicas
//
// Read-only requests (as the Codec marks them) go to a shard's primary or replicas by
// the pool's read policy. While a shard's primary is down (ejected after failures) and
// the shard has replicas, writes to it fail at once with ErrPrimaryDown.
//
// # Reload
//
// Proxy.Reload swaps a new configuration in without dropping clients: unchanged
// servers keep their connections, pools keep their listeners when the listen address
// is the same, and servers that left are retired after a grace period in which requests
// already routed to them complete.
//
// # Ownership
//
// Every goroutine is owned: client goroutines by their pool, server connection
// goroutines by their server, listeners and stats servers by the Proxy. Shutdown ends
// them all; client sockets, server sockets and listeners are closed by their owners,
// which unblocks any I/O without a deadline.
package kv
