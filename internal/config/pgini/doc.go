// Package pgini reads PgBouncer's configuration files, pgbouncer.ini and
// userlist.txt (auth_file), with PgBouncer's syntax, defaults and meaning, so
// that pgpool runs unchanged from an existing PgBouncer setup.
//
// # The ini file
//
// The reader follows PgBouncer's own loader (libusual cfparser) line by
// line:
//
//   - Lines starting with ';' or '#' (after leading white space) are
//     comments. There are no trailing comments: "listen_port = 6432 ; x" has
//     the value "6432 ; x", which is not a number, exactly as in PgBouncer.
//   - "[section]" starts a section: pgbouncer, databases, users, and peers
//     (accepted and ignored with a warning). Other sections are errors.
//   - "key = value": the key is letters, digits and "_.-*", or any text in
//     single quotes; the value is the rest of the line with surrounding white
//     space removed. No quoting is applied to [pgbouncer] values.
//   - "%include FILE" reads another file in place, at most 10 levels deep.
//     The current section carries into and out of the included file, as in
//     PgBouncer.
//
// Where pgpool deliberately differs from PgBouncer 1.18:
//
//   - Section and setting names are matched without regard to case
//     (PgBouncer compares them exactly). Database and user names, which are
//     the keys of [databases] and [users], stay case-sensitive.
//   - An unknown [pgbouncer] setting is a Warning of kind WarnUnknownSetting
//     naming the key and line; PgBouncer refuses to start. Callers that want
//     PgBouncer's strictness can treat that kind as an error.
//   - A relative %include path is taken relative to the directory of the
//     including file; PgBouncer opens it relative to its working directory.
//   - Numbers are checked strictly: out-of-range integers, negative sizes and
//     non-numeric pool sizes in connection strings are errors, where
//     PgBouncer would truncate them or read them as 0.
//   - Every problem in the file is reported (see Problems), not only the
//     first one, so that "pgpool check-config" can list them all.
//   - Defaults are those of PgBouncer 1.18 except max_prepared_statements
//     (200, the default since PgBouncer 1.24, because pgpool implements
//     protocol-level prepared statements) and server_tls_sslmode ("prefer",
//     the default since PgBouncer 1.20; 1.18 used "disable").
//   - session_pinning is pgpool's own setting (default 1): clients holding
//     session state keep their server connection in transaction mode until
//     they release it; 0 gives PgBouncer's behaviour.
//   - log_format is pgpool's own setting: "text" (default) for PgBouncer's
//     log lines, "json" for one JSON object a line.
//   - metrics_listen is pgpool's own setting (default empty: off): the
//     host:port where Prometheus metrics are served at /metrics.
//
// As in PgBouncer, a second [pgbouncer] section header resets every
// [pgbouncer] setting to its default before the lines that follow it; the
// reader reports this with a Warning of kind WarnSectionReset.
//
// Settings that PgBouncer has but pgpool does not implement (for example
// sbuf_loopcnt, job_name) are recognised, their values are checked, and
// each occurrence yields a Warning of kind WarnUnsupported; the raw values are
// kept in Config.Ignored.
//
// # The auth file
//
// ParseUserlist and LoadUserlist read userlist.txt: lines of the form
// "user" "secret", where a doubled quote stands for one quote. Secrets are
// plain text, "md5" followed by 32 hex digits (md5(password + user)), or a
// SCRAM-SHA-256 secret, which ParseSCRAMSecret splits into its parts.
//
// Nothing in this package is safe for concurrent modification; a loaded
// Config may be read from many goroutines once no one writes to it.
package pgini
