// Package kvredis adapts the Redis protocol (package protocol/redis) to the kv
// engine: it parses client requests, answers PING, ECHO, QUIT, AUTH and SELECT 0
// itself, enforces redis_auth, routes every other supported command by its key,
// splits MGET, MSET, DEL, UNLINK, EXISTS and TOUCH per server and merges their
// replies, and sets up server connections (AUTH with the server password, SELECT
// redis_db).
//
// Error replies it produces:
//
//	-ERR unsupported command 'X'          a command the proxy does not route
//	-ERR wrong number of arguments for 'x' command
//	-NOAUTH Authentication required.       before AUTH, when redis_auth is set
//	-ERR invalid password                  AUTH with the wrong password
//	-ERR Client sent AUTH, but no password is set
//	-ERR timeout                           the server did not answer in time
//	-ERR server connection closed          the connection broke with the request in flight
//	-ERR server unavailable                no connection could be made
//	-ERR no server available               every server ejected
//	-ERR primary down, writes unavailable  primary ejected; reads go to replicas
//	-ERR no replica available              read_policy replica and no live replica
//	-ERR EVAL keys live on different servers
package kvredis
