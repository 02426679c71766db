// Package nutyml reads nutcracker.yml, twemproxy's configuration file, the way twemproxy
// 0.5 reads it, plus a few keys of kvproxy's own.
//
// # What twemproxy accepts
//
// A file is one YAML document whose top level maps pool names to pools. A pool maps keys to
// plain scalar values, except servers, which is a block sequence of scalars. Like
// twemproxy, Parse rejects flow style ([a, b], {a: b}), anchors, aliases and tags,
// document markers (--- and ...) and directives, empty values, unknown keys and keys
// given twice. Values are taken
// as written: booleans are exactly "true" or "false", numbers are plain decimal digits.
//
// The pool keys, with twemproxy's defaults:
//
//	listen                "host:port", or "/path/to/socket [permissions]" (octal); required
//	hash                  one_at_a_time, md5, crc16, crc32, crc32a, fnv1_64, fnv1a_64,
//	                      fnv1_32, fnv1a_32, hsieh, murmur, jenkins (default fnv1a_64)
//	hash_tag              two characters, such as "{}" (default none)
//	distribution          ketama, modula, random (default ketama)
//	timeout               milliseconds to wait for a server (default: none in twemproxy;
//	                      Pool.TimeoutSet is false and the proxy picks its own)
//	backlog               listen backlog (default 512)
//	client_connections    read and checked, then ignored, as twemproxy does
//	tcpkeepalive          true/false: TCP keepalive on connections (default false)
//	reuseport             true/false (default false; twemproxy after 0.5.0)
//	preconnect            true/false (default false)
//	redis                 true for Redis, false for memcached (default false)
//	redis_auth            password clients must send with AUTH, and that twemproxy also
//	                      sends to servers; only with redis: true (default none)
//	redis_db              database selected on server connections (default 0)
//	server_connections    connections per server, at least 1 (default 1)
//	auto_eject_hosts      true/false: eject failing servers (default false)
//	server_retry_timeout  milliseconds an ejected server stays out (default 30000)
//	server_failure_limit  consecutive failures that eject a server (default 2)
//	servers               "host:port:weight [name]" or "/path/to/socket:weight [name]"
//
// Servers are kept in twemproxy's order (by length of name, then name; see
// sharding.SortServers), which is the order placement depends on. Two servers with the
// same name, two pools with the same name or the same listen address are errors, as in
// twemproxy. Unlike twemproxy, Parse does not resolve host names.
//
// # kvproxy's additions
//
// nutcracker rejects a file that uses any of these; a file without them reads the same in
// both programs.
//
// Pool keys:
//
//	hash: xxhash          an extra hash: the low 32 bits of XXH64
//	server_password       password kvproxy sends (AUTH) on its connections to the servers,
//	                      separate from redis_auth, which only clients must send. When it
//	                      is absent, redis_auth is sent to servers, as twemproxy does.
//	                      Redis pools only.
//	server_passwords      a mapping from a server (its name, or "host:port") to the
//	                      password for that server and its replicas, overriding
//	                      server_password. Redis pools only.
//	replicas              a mapping from a server (its name, or "host:port") to a list of
//	                      its replicas, "host:port" or "/path/to/socket". Replicas never
//	                      change where keys are placed; they serve reads per read_policy,
//	                      and in memcached pools they also receive every write.
//	read_policy           where reads go: primary (default), prefer-primary, replica,
//	                      prefer-replica. With replica, every server must have replicas.
//	client_timeout        milliseconds a client connection may stay idle (no request
//	                      being served) before it is closed; 0 or absent: never, as in
//	                      twemproxy
//	client_write_timeout  milliseconds a client may leave its replies unread before it is
//	                      closed (default 30000); 0: never, as in twemproxy
//
// For example:
//
//	cache:
//	  listen: 127.0.0.1:22121
//	  redis: true
//	  redis_auth: client-secret
//	  server_password: server-secret
//	  read_policy: prefer-replica
//	  servers:
//	    - 10.0.0.1:6379:1 shard1
//	    - 10.0.0.2:6379:1 shard2
//	  replicas:
//	    shard1:
//	      - 10.0.1.1:6379
//	    shard2:
//	      - 10.0.1.2:6379
//	      - 10.0.1.3:6379
//	  server_passwords:
//	    shard2: other-secret
//
// Top-level key (a scalar value, where pools have mappings):
//
//	metrics_listen        "host:port" where kvproxy serves Prometheus metrics (an empty
//	                      host, ":9121", means every interface)
//
// # Errors
//
// Every problem is a *ConfigError naming the line, the pool and the key. Parse and Load
// report all the problems they find, as an Errors list, in line order; errors.Is with the
// sentinels (ErrUnknownKey, ErrInvalidValue, ...) classifies them.
package nutyml
