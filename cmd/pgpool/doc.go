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
// Flags of the run command: -v (more log detail, repeatable), -q (only
// warnings and errors), --shutdown-timeout (how long SIGINT/SIGTERM wait for
// transactions, default 30s), --debug-addr (serve net/http/pprof and expvar
// on this address; off by default).
//
// Logs are structured (log/slog, text format) and go to the ini's logfile if
// set, else to standard error. The pidfile, if set, is written at start and
// removed at exit; a pidfile naming a live process stops pgpool from starting.
//
// Signals:
//
//   - SIGHUP re-reads pgbouncer.ini and auth_file. If either has errors, they
//     are logged and the running configuration stays; otherwise pool sizes,
//     modes, databases and users change without dropping clients. Listening
//     settings (listen_addr, listen_port, unix_socket_dir, TLS files read at
//     start excepted) need a restart; a change to them is logged as a warning.
//   - SIGINT and SIGTERM shut down gracefully: pgpool stops accepting, lets
//     every client finish its transaction (clients idle between transactions
//     are disconnected at once), and exits when all are done or when
//     --shutdown-timeout has passed, whichever comes first. This is
//     PgBouncer's "safe shutdown" (its SIGINT) with a bound, for both
//     signals, so that a service manager's SIGTERM does not cut transactions.
//   - A second SIGINT or SIGTERM during that wait exits at once.
//
// The mapping from pgbouncer.ini to the pooler's configuration lives in
// config.go; settings PgBouncer has and pgpool does not honour are reported as
// warnings by check-config and at startup.
package main
