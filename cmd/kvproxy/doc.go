// Command kvproxy is a sharding proxy for Redis that reads twemproxy's nutcracker.yml
// and places every key on the same server as twemproxy does, adding what twemproxy
// lacks: a finite default timeout that starts when a request is sent, replicas with a
// read policy, separate client and server passwords, live reload on SIGHUP, and
// Prometheus metrics.
//
// Usage:
//
//	kvproxy --config FILE           (or -c FILE, as nutcracker is run)
//	kvproxy check-config FILE       (or -t -c FILE) print every problem with its line
//	kvproxy version
//
// Flags: -s/--stats-port (default 22222) and -a/--stats-addr (default 0.0.0.0) for
// twemproxy's JSON stats; --metrics-addr for Prometheus (else the file's
// metrics_listen); --log-level debug|info|warn|error; --log-format text|json;
// --shutdown-timeout. SIGHUP re-reads the file (a bad file is refused and the running
// configuration stays); SIGINT or SIGTERM stop accepting, let requests in flight
// finish, and exit; a second one exits at once.
//
// Upgrade: a running kvproxy listens on --upgrade-socket PATH (default PIDFILE.upgrade
// with -p; "off" for none). A new kvproxy started with the same flags and --takeover
// PATH reads the file, receives the listening sockets and serves on them, and the old
// one hands its clients over on their open connections between requests, then exits 0
// (see internal/kv, Upgrade). If the new one cannot start, the old one goes on serving.
package main
