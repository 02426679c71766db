// Command poolbench benchmarks pgpool and kvproxy against their peers on this
// machine and reports how they compare.
//
//	poolbench run [--suite smoke|quick|full] [--only pg|kv|memcache] [--scenario REGEXP] [--out DIR] [--rounds N] [--seconds N]
//	poolbench report DIR
//
// run checks that the programs it needs are installed (scripts/setup.sh installs
// them), builds pgpool and kvproxy from this tree, and starts everything itself on
// free loopback ports with its files in a temporary directory, through
// internal/testenv: PostgreSQL 15 (pgbench's tables filled), PgBouncer and pgpool
// in transaction mode with a pool of 20 (and a database "overload" with a pool of 10),
// clients let in with auth_type trust, every other setting at PgBouncer's default; a
// scenario that needs other settings (the idle clients and the login storm: SCRAM
// logins; the overload scenario: query_wait_timeout 2 s) runs on a PgBouncer and a
// pgpool started with them for it, the same for both; redis-servers (--hz 1) with nutcracker and kvproxy
// on the same nutcracker.yml (ketama, fnv1a_64); memcached servers with nutcracker,
// and kvproxy if `kvproxy -t` accepts a memcached pool. Everything is stopped when
// the run ends, also on Ctrl-C or SIGTERM. A line on standard error tells what runs
// and about how long is left.
//
// odyssey (Yandex's pooler), when an `odyssey` binary is on PATH, is a PostgreSQL
// target beside PgBouncer and pgpool, started wherever they are with an odyssey.conf
// that says the same in its terms: a route per database for the benchmark's user
// (pool "transaction", pool_size 20, 10 for "overload"; authentication "none" for
// trust, "scram-sha-256" with its password for SCRAM; pool_timeout in milliseconds
// for query_wait_timeout, PgBouncer's 120 s when a scenario sets none; client_max for
// max_client_conn), PgBouncer's defaults where odyssey's differ (no reset query in
// transaction pooling: pool_discard no; protocol-level prepared statements kept, as
// pgpool's max_prepared_statements 200 does: pool_reserve_prepared_statement yes;
// pool_ttl 600, server_lifetime 3600, client_login_timeout 60 s, backlog 128, session
// and stats logging), workers = the number of CPUs, listening on a free port of
// 127.0.0.1 with its unix sockets, locks and log (its standard output) in the run's
// temporary directory. It is a target once it has answered SELECT 1 through each
// database; one that does not start is listed in skipped and the run goes on without
// it. Its CPU and RSS are read from its process as PgBouncer's are. odyssey is not
// packaged in Debian: without it on PATH it is listed in skipped as not found. pgcat
// and pgdog are detected on PATH and listed as not run: neither is packaged in Debian
// and both are Rust programs whose crates cannot be fetched here, so no configuration
// of theirs could be checked.
//
// Each scenario runs against every target of its protocol in alternating rounds (the
// order of the targets rotates each round); "direct" is the server without a proxy.
// --scenario runs only the scenarios whose name matches a regular expression (and
// starts only the servers they need). Scenarios:
//
//   - pg-select-{simple,extended,prepared}-cN: pgbench -S -M mode, N clients;
//     pg-tpcb-cN: pgbench's TPC-B script; pg-latency-c1: one client, SELECT 1;
//     pg-login-c10: pgbench -S -C, a login (SCRAM) per transaction. Latencies come
//     from pgbench's per-transaction logs (-l). pgbench counts its clients' logins in
//     -T: poolbench adds to it the time the target's clients took to log in on its
//     previous run, beyond a quarter of a second. Direct is not run with more clients
//     than PostgreSQL's max_connections allows.
//   - kv-TEST-sS-clients-cN-P1 and kv-TEST-sS-pipeline-c50-PN: redis-benchmark GET,
//     SET and MGET of 10 keys over S shards, swept by clients and by pipeline depth.
//     Each target's rounds are sized to last about 0.5 s (quick; full 2 s): the first from a
//     short calibration run against that target, the next from the round before.
//     Percentiles are interpolated in redis-benchmark's latency distribution.
//     kv-TEST-shards-sS-c50-P16 (full): each test at 50 clients, pipeline 16, over
//     4, 16, 64 and 256 redis-servers, charted by shards (over 16 shards, the runs of
//     the pipeline sweep).
//   - pg-overload-c200: 200 pgbench clients running SELECT pg_sleep(0.05) (-f) over
//     a pool of 10 with query_wait_timeout 2 s: throughput, p99, and errors (failed
//     transactions plus the clients pgbench reports aborted). Poolers only.
//   - pg-idle-cN and kv-idle-cN: poolbench's own client opens N connections (quick
//     2,000, full 10,000; four at a time) and holds them open idle: logged in
//     (SCRAM) for PostgreSQL, a GET answered for Redis. rss_per_client_bytes is the
//     proxy's RSS once all are open minus its RSS before, over the clients opened;
//     throughput is logins per second and the latencies are the logins'. All are
//     closed at the end. Proxies only. They run first, on proxies that carried no
//     load yet, and one round only (memory freed before would be reused by the idle
//     clients). poolbench raises its RLIMIT_NOFILE to the hard
//     limit at start (the proxies inherit it).
//   - kv-frozen-s4-c50: a separate set of 4 redis-servers with nutcracker and kvproxy
//     at a server timeout of 500 ms; poolbench's own client sends GETs of random keys
//     (10,000 keys, set beforehand) on 50 connections, one request at a time each, for
//     a bounded time (quick 3 s, full 9 s), while the second redis-server is
//     SIGSTOPped for the middle third (and always SIGCONTed after). p50..p99.9 are
//     those of the keys on the healthy shards (which keys the frozen server holds is
//     asked of it beforehand); errors count every error reply or unanswered request
//     (2 s) of any key; throughput counts the successful requests. Proxies only.
//   - memcache-{get,set}-cN: poolbench's own text-protocol client, N connections (1,
//     10, 50, 200 and 500; 1,000 too in full) each sending get or set (32-byte values)
//     of random keys of 10,000 (set beforehand) one at a time for as long as a Redis
//     round (quick 0.5 s, full 2 s), every latency recorded.
//
// Suites: smoke (one scenario per protocol plus small idle, overload, frozen-shard
// runs, one round, under a minute), quick (the
// above with 1, 10 and 100 PostgreSQL clients, 4 Redis shards, 3 rounds) and full (3
// rounds of pgbench runs of 5 s with 1 to 1,000 PostgreSQL clients and 5,000 for -S -M
// simple, 10,000 idle clients, the Redis clients and pipeline sweeps over 16 shards,
// the shards sweep up to 256 redis-servers, 2 s Redis and memcached runs). README.md
// says how long each took here. The progress line's estimate of the time left is the
// plan's (every run and setup step) scaled by how long the part done so far took.
//
// A run that stops early (Ctrl-C, SIGTERM, a failure) still writes what it measured,
// with a warning naming the scenarios that did not run; a set of Redis shards that
// cannot be started is listed in skipped and the others run.
//
// The output directory receives results.json, report.md (a summary, where the time
// went with the slowest scenarios, then one table per scenario, ratios first) and SVG charts GROUP-throughput.svg and GROUP-p99.svg
// (one line per target against clients or pipeline depth), and for the idle-clients
// groups GROUP-rss-per-client.svg. report rewrites
// report.md and the charts from results.json.
//
// # results.json
//
// One object (schema 1):
//
//	schema     1
//	suite      "smoke", "quick" or "full"
//	command    the command line
//	started, finished   RFC 3339 times (UTC)
//	machine    {hostname, kernel, cpu_model, cores, load_average: [1, 5, 15 min] at start,
//	           load_average_end: the same when the run ended, go_version}
//	tools      program -> version line
//	targets    [{name, protocol ("pg", "kv" for Redis, "memcache"), desc}]
//	detected   [{name, path, status}]: other poolers found but not run
//	skipped    [reason]: what did not run and why
//	warnings   [text]: e.g. the load average exceeded the cores at start, the run
//	           stopped early, figures missing (see CheckMetrics)
//	pooler_settings  pgbouncer.ini settings every PostgreSQL scenario's poolers share
//	           (odyssey gets their equivalents)
//	setup      [{what, duration_s}]: the steps outside the scenarios (building, starting
//	           and stopping servers and proxies, setting keys) and their wall time, s
//	results    [result]
//
// Each result is one scenario against one target:
//
//	scenario, group, title, protocol   group is the chart the scenario belongs to
//	x_name, x                          the chart's axis ("clients" or "pipeline") and value
//	clients, pipeline, shards, pool_size
//	target, unit                       unit: "tx/s" or "req/s"
//	settings                           pooler settings of this scenario over the shared
//	                                   ones (pooler_settings), e.g. {"query_wait_timeout":
//	                                   "2"}; absent: the shared ones
//	throughput                         median over rounds, per second
//	p50_ms, p90_ms, p99_ms, p999_ms    median latency percentiles; null if the tool gives none
//	cpu_us_per_request                 the proxy's user+system CPU (/proc/PID/stat, before and
//	                                   after the run) over the requests; null for direct
//	rss_bytes                          the proxy's resident set size after the run; null for direct
//	rss_per_client_bytes               idle-clients scenarios only (absent otherwise): the
//	                                   proxy's RSS growth per idle client held open, median
//	errors                             failed transactions or error replies, summed over rounds
//	load_average_1m                    median of the machine's 1-minute load average as
//	                                   each round started (other work competing)
//	rounds                             rounds run (0: not run, see note)
//	duration_s                         wall time in seconds of the rounds against this
//	                                   target (runs, sizing runs, reading logs); 0 when
//	                                   it shares another scenario's runs or did not run.
//	                                   A scenario's time is the sum over its targets;
//	                                   report.md lists the slowest
//	spread                             {"throughput": {min, max}, "p99_ms": {...}, ...} over rounds
//	throughput_ratio, throughput_peer  throughput over the best peer's (and its name)
//	p99_ratio, p99_peer                p99 over the lowest peer p99 (and its name)
//	note                               why it did not run, or which scenario's runs it shares
//	samples                            each round's figures, plus requests, seconds, failure
//
// The peers of a proxy are the other proxies of the scenario; the peers of direct are
// all the proxies. Ratios compare programs measured in the same run on the same
// machine, so they carry over to other machines; absolute figures do not.
package main
