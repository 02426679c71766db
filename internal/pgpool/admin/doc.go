// Package admin is pgpool's admin console: the virtual database "pgbouncer" (or
// "pgpool") that speaks PgBouncer 1.18's console dialect, with the same commands,
// column names, column types and error texts, so dashboards and exporters written for
// PgBouncer read pgpool unchanged.
//
// The package does no I/O and takes no lock of the pooler. It parses statements
// (Parse), builds the result sets of SHOW from a Snapshot, an immutable copy of the
// pooler's state that the pooler takes for each statement, and runs the commands that
// change something (PAUSE, KILL, SET, ...) through the Control interface the pooler
// implements. The pooler keeps the connection: it logs the client in, reads its Query
// messages, hands each to Console.Exec and writes the Reply or Error it gets back.
package admin
