// Package redis is the Redis wire protocol (RESP) as a proxy needs it: a request
// parser with limits (multi-bulk and inline), a scanner that finds where one server
// reply ends (nested arrays and RESP3 types included), encoders that append to a
// caller's buffer, and the command table: which argument of each command is the key,
// which commands are read-only, and how multi-key commands (MGET, MSET, DEL, UNLINK,
// EXISTS, TOUCH) split per server and how their replies merge back in request order.
//
// The package knows nothing of sockets, pools or sharding: routing is asked of a
// Sharder supplied by the caller. Parsers never retain the input buffer; the slices
// they return point into it and stay valid until the caller changes that buffer.
package redis
