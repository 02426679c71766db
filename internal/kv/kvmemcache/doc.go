// Package kvmemcache adapts memcached's protocols (package protocol/memcache) to the
// kv engine: a pool without redis: true speaks memcached, as in twemproxy.
//
// Each client connection speaks the ASCII protocol (meta commands included) or the
// binary one, detected from its first byte as memcached does. Requests are parsed,
// routed by key and split per server by protocol/memcache's Conn; the engine sends the
// parts and hands the replies back to Conn.Reply, which rebuilds the client's answer
// (merged multi-gets, noreply and quiet replies dropped, binary opaques restored).
//
// # Servers speak the client's protocol
//
// Requests go to memcached in the client's own protocol, never translated: a text
// client's requests travel on text connections, a binary client's on binary ones.
// The codec is a kv.ClassCodec with two classes (ClassText, ClassBinary), so every
// server keeps server_connections connections of each, the binary ones dialed only
// when a binary client first needs one. Translating binary to text would lose what
// the text protocol cannot say (keys with spaces, binary incr's initial value and
// expiry, CAS on every reply); translating text to binary would lose meta commands.
// Both kinds share the server's stats, timeout and failure count.
//
// # Replicas
//
// A memcached pool's replicas (the replicas: key) receive every write: Parse marks
// each fragment that is not read-only as kv.Frag.Replicate, and the engine sends it
// to the primary and every live replica (see "Replicated writes" in package kv). The
// fragments whose replies carry items (the get family, gat and mg with T or N
// included) are ReadOnly for the engine, so the read policy picks the server whose
// reply answers them; gat and touching mg are also replicated, so every copy's expiry
// moves. A cas carries the cas value the client read, from whichever server answered
// its gets: a server whose value differs refuses it and keeps its item.
//
// # Errors
//
// A failed request is answered "SERVER_ERROR <text>" with twemproxy's texts:
//
//	SERVER_ERROR Connection timed out      the server did not answer within timeout
//	SERVER_ERROR Connection refused        no connection could be made, or every server ejected
//	SERVER_ERROR Host is down              the server's name did not resolve
//	SERVER_ERROR unknown                   the server closed the connection
//	SERVER_ERROR Connection reset by peer  the server reset the connection
//	SERVER_ERROR Invalid argument          the server sent an invalid reply
//
// and, for what twemproxy has no counterpart for, "server removed" (a reload removed
// the server while the request was pending), "primary down, writes unavailable" and
// "no replica available" (replicas). A binary client gets the same text in a response
// with status 0x84 (internal error), its opcode and opaque restored. As in twemproxy,
// a multi-key get with a failed part is answered with that part's one SERVER_ERROR
// (no miss, no partial hits); twemproxy then closes the client connection, kvproxy
// keeps it, so pipelined requests after it are answered. A binary client's quiet gets
// are requests of their own: the failed server's keys each get an error response,
// the others their hits. Requests that break the protocol close the connection without
// a reply (twemproxy's rule).
package kvmemcache
