// Command pgpool is a PostgreSQL connection pooler that runs from an existing
// PgBouncer configuration: point it at a pgbouncer.ini (and the userlist.txt
// it names in auth_file) and it listens where PgBouncer would, sharing a few
// server connections per (database, user) pool among many clients.
//
// Usage:
//
//	pgpool [flags] FILE               run with the pgbouncer.ini FILE (as pgbouncer is run)
//	pgpool --config FILE [flags]      the same
//	pgpool check-config FILE          print every problem (with its line) and warning; exit 1 on errors
//	pgpool version                    print the version
//
// Flags of the run command are PgBouncer 1.18's: -d (detach; needs a pidfile),
// -R (online restart: take over the listeners and clients of the pgpool running
// with the same ini, see reboot.go), -q (nothing on standard error), -v (more log
// detail, repeatable), -u USER (the user to switch to when started as root), -V,
// -h; and --shutdown-timeout (how long SIGINT waits for transactions, default
// 30s), --debug-addr (serve net/http/pprof and expvar on this address; off by
// default), --procs N (threads running Go code: by default 1 on a machine of up
// to 2 CPUs, else every CPU; see cli.Procs).
//
// Logs are structured (log/slog, text format) and go to the ini's logfile if
// set and to standard error unless -q or -d. The pidfile, if set, is written at
// start and removed at exit; a pidfile naming a live process stops pgpool from
// starting. Started as root, pgpool switches to the ini's user (or -u) once its
// sockets are bound, and refuses to go on as root without one. Under systemd
// (NOTIFY_SOCKET) it sends READY=1, RELOADING=1/READY=1 around reloads,
// STOPPING=1 and watchdog pings.
//
// Signals, as PgBouncer 1.18:
//
//   - SIGHUP reopens the logfile and re-reads pgbouncer.ini and auth_file. If
//     either has errors, they are logged and the running configuration stays;
//     otherwise pool sizes, modes, databases and users change without dropping
//     clients. Listening settings (listen_addr, listen_port, unix_socket_dir,
//     TLS files read at start excepted) need a restart; a change to them is
//     logged as a warning.
//   - SIGUSR1 pauses as the console's PAUSE; SIGUSR2 resumes.
//   - SIGINT shuts down gracefully: pgpool stops accepting, lets every client
//     finish its transaction (clients idle between transactions are
//     disconnected at once), and exits 0 when all are done or when
//     --shutdown-timeout has passed. A second SIGINT during that wait exits at
//     once.
//   - SIGTERM is 1.18's fast exit: every connection is closed at once and the
//     exit status is 1.
//
// The mapping from pgbouncer.ini to the pooler's configuration lives in
// config.go; settings PgBouncer has and pgpool does not honour are reported as
// warnings by check-config and at startup.
package main
