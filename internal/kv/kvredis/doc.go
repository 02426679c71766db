// Package kvredis adapts the Redis protocol (package protocol/redis) to the kv
// engine: it parses client requests, answers PING, ECHO, QUIT, AUTH and SELECT 0
// itself, enforces redis_auth, routes every other supported command by its key,
// splits MGET, MSET, DEL, UNLINK, EXISTS and TOUCH per server and merges their
// replies, and sets up server connections (AUTH with the server password, SELECT
// redis_db).
//
// Error replies it produces, twemproxy's texts where twemproxy has one (clients and
// runbooks match them):
//
//	-ERR unsupported command 'X'          a command the proxy does not route
//	-ERR wrong number of arguments for 'x' command
//	-NOAUTH Authentication required        before AUTH, when redis_auth is set
//	-ERR invalid password                  AUTH with the wrong password
//	-ERR Client sent AUTH, but no password is set
//	-ERR Connection timed out              the server did not answer in time
//	-ERR Connection refused                no connection could be made, or every server ejected
//	-ERR Connection reset by peer          the server reset the connection
//	-ERR Host is down                      the server's name did not resolve
//	-ERR unknown                           the server closed the connection
//	-ERR Invalid argument                  the server sent an invalid reply
//	-NOAUTH Authentication required.       the server refused the proxy's AUTH (Redis's
//	                                       text, which twemproxy's clients get from it)
//	-ERR server refused the proxy's connection setup   the server refused SELECT redis_db
//	-ERR primary down, writes unavailable  primary ejected; reads go to replicas
//	-ERR no replica available              read_policy replica and no live replica
//	-ERR EVAL keys live on different servers
//
// A split command (MGET, MSET, DEL, UNLINK, EXISTS, TOUCH) with a failed part is
// answered with that part's error alone, as twemproxy answers: never an MGET array
// holding error elements, nor a partial count. Unlike twemproxy, which then closes the
// client's connection, the connection stays open and later requests are answered.
//
// A server without a password answers the proxy's AUTH with an error saying so; the
// connection is used (as twemproxy uses it).
package kvredis
