// Package sharding places keys on servers exactly as twemproxy (nutcracker 0.5) does, so
// that kvproxy and nutcracker, given the same nutcracker.yml, send every key to the same
// server. It is pure code: no sockets, no goroutines, no clocks except the one a Pool is
// given.
//
// The pieces, in the order a request uses them:
//
//   - HashKey cuts the part of a key that is hashed when the pool has a hash_tag.
//   - LookupHash returns one of twemproxy's twelve key hash functions by its config name
//     (one_at_a_time, md5, crc16, crc32, crc32a, fnv1_64, fnv1a_64, fnv1_32, fnv1a_32,
//     hsieh, murmur, jenkins), bit for bit including twemproxy's quirks, plus "xxhash".
//   - A Ring maps a hash to a server for one distribution (ketama, modula, random) over a
//     fixed set of live servers. Rings are immutable and answer Pick without allocating.
//   - A Pool holds the servers of one pool with their health (failure counts, ejection
//     until a retry time, as twemproxy's auto_eject_hosts, server_failure_limit and
//     server_retry_timeout), rebuilds its Ring when the set of live primaries changes, and
//     picks replicas for reads by a ReadPolicy. Picking is lock-free.
//
// ParseServer reads one line of a servers list ("host:port:weight [name]" or
// "/path/to/socket:weight [name]") and derives the name twemproxy hashes; SortServers
// puts servers in twemproxy's order (by length of name, then name), which modula indices
// and ketama tie-breaks depend on.
package sharding
