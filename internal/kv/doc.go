// Package kv is the protocol-independent engine under kvproxy: one listener per pool
// (TCP or unix socket), and per client a reader goroutine that reads a pipeline of
// requests, routes each by key (package sharding), splits multi-key requests and queues
// the pieces on pipelined server connections shared by all clients, and a writer
// goroutine; replies are matched in order per server connection and written back to
// each client in request order, flushed whenever the next reply is not ready yet.
//
// The wire protocol is a Codec (see codec.go), chosen per pool by Options.NewCodec;
// internal/kv/kvredis is the Redis one, internal/kv/kvmemcache the memcached one. The
// engine never looks inside requests or replies beyond what a Codec tells it. A
// session may ask for a one-fragment reply to go through Merge (AlwaysMerge: it drops
// or rewrites it), answer a request with nothing (an empty Local), and have the client
// closed after a reply (CloseAfterReply). A ClassCodec gives each server connections
// of several protocol classes (memcached's text and binary), each fragment naming its
// class. A client's read buffer grows as a request needs (up to 80 MB), so a whole
// request with its value is parsed at once.
//
// # Server connections
//
// With server_connections: N a server gets up to N pipelined connections, opened when
// first needed (at once with preconnect). Each client is given one of them per server
// (clients in turn), so all its requests to a server travel on one connection and run
// there in the order it sent them, while different clients spread over the N; replies
// are matched per connection, oldest first. When one connection breaks, only the
// requests in flight on it fail; the other connections carry on.
//
// # Timeouts and failures
//
// A request's deadline is fixed when the proxy reads it from its client: the pool's
// timeout later, whatever is queued ahead of it on the client or on its server
// connection. A request whose deadline passes while it is still queued fails with
// ErrTimeout without being sent. When the oldest request written on a server
// connection reaches its deadline, the connection is closed (so that reply matching
// stays right) and exactly the requests written on it fail with ErrTimeout; requests
// still queued go out on a new connection, each keeping its deadline. A broken
// connection fails its written requests with ErrServerClosed. A pool without timeout:
// in its file uses DefaultTimeout (1 s); "timeout: 0" means none, as in twemproxy.
//
// For that deadline to be (nearly) when the client sent the request, a client's reader
// goes on reading and dispatching while its earlier requests wait for their servers;
// the writer writes the replies in request order as they complete. The rule: every
// request of a pipeline that fits the client's bounds is answered within the timeout
// (plus scheduling) of when it reached the proxy, and a reply from a healthy server
// waits behind a frozen server's earlier request only until that request's deadline,
// since replies go out in request order. The bounds, per client: 8192 requests read
// and not yet answered, 8 MB of their request bytes, 8 MB of replies received and not
// yet written, and 8 MB of replies expected (pending requests times the mean reply
// size the client, or else its pool, has seen; with none seen yet, 512 requests).
// At a bound the reader stops reading until replies are written, so a pipeline
// deeper than the bounds behind a frozen server waits one more timeout per bound's
// worth of requests.
//
// Dial failures, timeouts and broken connections count as failures for twemproxy's
// auto_eject_hosts / server_failure_limit / server_retry_timeout (tracked by
// sharding.Pool); only a reply clears the count. A connection made (or a handshake)
// does not, so a frozen server, which accepts connections and answers nothing, is
// ejected after server_failure_limit timeouts. A request failed unsent at its deadline
// counts no failure: the connection that kept it waiting did. Ejections are counted
// (server_ejects, server_ejected_at, the metrics) and logged only where they change
// routing: a primary with auto_eject_hosts, or a server of a shard with replicas (see
// Replicas); without auto_eject_hosts a primary without replicas is never ejected.
//
// # Slow and idle clients
//
// A client that does not read its replies blocks its writer; its pending requests
// then reach the bounds above and its reader stops reading, so it holds at most those
// bounds (about 8 MB of requests and 8 MB of replies, plus one request's worth) in the
// proxy's memory, and server connections never wait for it (replies are copied off
// the server connection as they arrive). A client whose
// replies cannot be written for client_write_timeout (default 30 s; 0 means never, as
// in twemproxy) is closed; requests of it still in flight complete on their server
// connection as usual and their replies are dropped, so the connection's reply matching
// is unaffected. With client_timeout (default off, as twemproxy has none) a client that
// sends no request for that long, with none pending, is closed. Both deadlines sit on
// the socket and are
// moved lazily, so a busy client costs no timer update per request: a blocked write
// gives up after between 7/8 of client_write_timeout and all of it.
//
// # Sockets
//
// backlog: is applied by calling listen(2) again on the bound listener, which Linux
// allows; the kernel caps it at net.core.somaxconn, as it does twemproxy's.
// tcpkeepalive: true turns TCP keepalive on for client and server connections (Go's
// timing: 15 s idle, 15 s between probes, 9 probes); without it they have none, as in
// twemproxy. Both follow a reload; a changed tcpkeepalive reconnects the pool's servers.
//
// # Server writes
//
// Each server connection has one writer goroutine. When a request wakes it, it yields
// the processor while the queue grows (a few times at most) before it writes, so one
// write carries the requests of every client that was ready to run: at pipeline 1 this
// turns one write(2) per request into one per batch of clients, as twemproxy's event
// loop does.
//
// # Client writes
//
// A server connection's reader stores the replies of what it read, then writes each
// client's answered replies to it itself, in request order, with non-blocking writes
// only: no hand-off to the client's writer goroutine per reply. Whoever writes a
// client's replies holds its output lock, which a delivering goroutine only tries
// (another one holding it is told to look again); the writer goroutine takes over,
// with blocking writes under client_write_timeout, when the socket does not take
// everything (a client that does not read), a session closes the connection after a
// reply, or the client's last reply is out while it drains or is handed over. So a
// client that never reads holds up neither server connections nor other clients.
// The writer goroutine runs only while it has such work (it is started when woken
// and ends when nothing is left), and a reader waiting for a request with nothing
// buffered gives its read buffer back to a shared pool until bytes arrive, and on
// Linux its goroutine ends too, the connection parked on the proxy's epoll instance
// (internal/netpark) until bytes, the client's close or the proxy's own close,
// handover or client_timeout wake it (park.go): an idle client holds no goroutine and
// no buffer. A client sending request after request keeps its reader waiting in Read
// (a wake-up costs a registration and a new goroutine) until an idle sweep, once a
// second, finds it idle since the sweep before.
//
// # Replicas
//
// Read-only requests (as the Codec marks them) go to a shard's primary or replicas by
// the pool's read policy. While a shard's primary is down (ejected after failures) and
// the shard has replicas, writes to it fail at once with ErrPrimaryDown (Redis: the
// replicas follow the primary by themselves and refuse writes).
//
// # Replicated writes
//
// A fragment with Replicate set (memcached, whose servers do not replicate) is sent
// to every live server of its shard; one reply answers the client and the others are
// consumed (counted in the servers' stats, never written anywhere). The answer comes
// from the primary, or while it is down from the first live replica in the file's
// order; a fragment also ReadOnly (a read that changes the item, such as gat) is
// answered by the server the read policy picks (the primary's choice when that one is
// down). With no live server the fragment fails with ErrNoServer. The client does not
// wait for the copies: each has its own copy of the payload and the client's lane and
// read time, so on each server it runs in the client's order (a later read by the
// same client of that server sees it) and expires with the request's deadline. A
// server that is down gets no copy and misses the write. Nothing more is promised:
// no atomicity across servers, and a server that failed a copy (or answered it
// differently, such as NOT_STORED or another cas or incr value) stays as it is. The
// copies are bounded as any request is, by their server's queue and the timeout.
//
// # Reload
//
// Proxy.Reload swaps a new configuration in without dropping clients: unchanged
// servers keep their connections, pools keep their listeners when the listen address
// is the same. A server that left gets no new requests from the moment Reload returns;
// the requests already queued or written on it complete (each bounded by the timeout),
// and each of its connections closes as soon as nothing is in flight on it. A client
// that routed a batch by the previous configuration just before the swap is still
// served there (on a new connection if need be, closed again once drained). The server
// is stopped after Options.ReloadGrace (default timeout + 2 s), which bounds that
// window; a pool that left closes its listener at once, its idle clients at once and
// its active clients once their pending requests are answered, or at the end of
// the grace period.
//
// # Upgrade
//
// A running Proxy hands its work to a new process without dropping a client
// (upgrade.go; the control messages are in upgrademsg.go). ServeUpgrades listens on a
// unix SOCK_SEQPACKET socket (mode 0600; a peer of another user, root excepted, is
// refused). The new process reads its file, then DialTakeover connects and says hello;
// the old Proxy sends each pool's listening socket with its listen key, and the stats
// and metrics listeners with their addresses, by SCM_RIGHTS, and refuses Reload
// (ErrUpgrading) while the takeover is under way. Start with Options.Takeover serves
// on the received sockets whose key or address matches, and opens the rest itself; on
// any failure before Takeover.Ready the new process closes its copies and exits, and
// the old one, seeing the control connection end, goes on as if nothing happened.
//
// After Ready both processes accept on the same sockets for a moment; the old one
// then closes its copies (a unix socket file is left to the new process), so no
// connection is refused: a connection in the kernel's backlog is accepted by the new
// one. It then hands its clients over: a client's reader that waits for a request with
// nothing pending and no unparsed bytes is woken (a read deadline in the past), and a
// busy client's writer wakes it once its last reply is written; the reader stops
// between requests, the writer flushes, and the connection's descriptor goes over with
// its pool's name and its Session's state (SessionExporter: for Redis, whether AUTH
// was done; for memcached, the protocol detected, text or binary, and the bytes of an
// oversized value still to skip; nothing else of a connection lives in the proxy
// between requests, a binary group of quiet gets or a meta quiet run included, since
// each is answered before the reader stops), after which the old process closes its
// own descriptor. The client's TCP connection is never closed and what it sends next
// is read by the new process, which resumes the session (SessionImporter) and serves
// it as its own. A client whose Session cannot be exported is closed between
// requests. Clients still busy (a request half-sent, replies not read) when the wait
// given to ServeUpgrades ends are closed.
// The old Proxy then sends done and TakenOver is closed; kvproxy shuts it down and
// exits 0, and the new one opens the upgrade socket for the next upgrade. Server
// connections are never passed: the new process dials its own.
//
// # Ownership
//
// Every goroutine is owned: a client's reader by its pool, its writer (while it
// runs) by its reader (which returns once the last writer has ended), server connection
// goroutines by their server, listeners and stats servers by the Proxy. Shutdown ends
// them all; client sockets, server sockets and listeners are closed by their owners,
// which unblocks any I/O without a deadline.
package kv
