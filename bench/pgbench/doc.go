// Package pgbench holds pgpool's benchmarks, run on demand rather than as
// timed tests:
//
//	go test ./bench/pgbench -run '^$' -bench . -benchtime 1x -timeout 30m
//
// BenchmarkPgBouncerCompare runs pgbench -S (select-only), 100 clients, over a
// pool of 20 in transaction mode, through pgpool and through PgBouncer against
// the same PostgreSQL, in alternating rounds, and prints tps, average and p99
// latency (from pgbench's per-transaction logs) for each, and pgpool's ratio to
// PgBouncer. BenchmarkIdleClientMemory opens 10,000 idle client connections to
// pgpool, each logged in, and prints pgpool's memory per idle client: resident
// set size (VmRSS of the process, minus the figure before the clients came),
// Go heap and goroutine stacks.
//
// Everything runs on loopback on one machine: PostgreSQL 15, PgBouncer and
// pgbench from Debian's packages (scripts/setup.sh), started by
// internal/testenv; pgpool is built from cmd/pgpool and run as a process.
// Absolute figures drift with the machine; the ratios are what to compare.
// Every pgbench run is bounded by transactions per client (-t), not by time:
// pgbench counts its clients' logins in -T, and on a loaded machine 100 SCRAM
// logins can use up a short run; the tps it reports with -t leaves them out.
// Environment: PGBENCH_ROUNDS (3), PGBENCH_TRANSACTIONS (500 per client and
// round), IDLE_CLIENTS (10000).
package pgbench
