// Package pgpool is pgpool's PostgreSQL connection pooler: it accepts client
// connections, authenticates them, and shares a few server connections per (database,
// user) pool among many clients in session, transaction or statement mode, as
// PgBouncer does. The protocol itself (framing, authentication, the SQL classifiers
// pooling needs) is package protocol/postgres; this package adds sockets, pools and
// the rules of pooling.
//
// What PostgreSQL would keep for a client between transactions (parameters, followed
// SETs, protocol-level prepared statements named and unnamed, state that pins the
// client to its server connection, with its reasons) is the client's session value
// (session.go, session_stmts.go), whose methods decide what a server connection must
// be given and what pins the client, without I/O. Sending and matching the responses
// (prepState, prepared.go; respqueue.go) belong to the client's binding.
//
// A client connection has one goroutine that reads the client's messages and forwards
// them to the server connection bound to it, taking one from the pool at the first
// message of a transaction. Every server connection has a reader goroutine that passes
// replies to its current owner and counts ReadyForQuery against the Query, Sync and
// FunctionCall messages sent; in transaction mode the connection goes back to the pool
// when the server reports idle and nothing sent is unanswered. Messages are forwarded
// as raw bytes (package wire); only the ones pooling needs are decoded.
//
// The admin console is the virtual database "pgbouncer" (also "pgpool"), with
// PgBouncer's SHOW commands and column names.
package pgpool
