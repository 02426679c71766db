// Package kvbench holds kvproxy's benchmark against nutcracker (twemproxy), run on
// demand rather than as a timed test:
//
//	go test ./bench/kvbench -run '^$' -bench . -benchtime 1x -v -timeout 30m
//
// BenchmarkNutcrackerCompare starts 4 redis-servers and, in front of them, nutcracker
// and kvproxy reading the same nutcracker.yml (one pool: ketama, fnv1a_64, hash_tag
// "{}", timeout 1000; only the listen address differs). kvproxy is built from
// cmd/kvproxy and run as a process, as a user runs it, with its twemproxy stats on a
// free port of 127.0.0.1 as nutcracker's are. It is run twice: with GOMAXPROCS=1, one
// core like nutcracker's single thread, and with Go's default GOMAXPROCS, every core
// of the machine.
//
// redis-benchmark then sends SET and GET, 100 clients, pipeline 1 and 16, over a
// keyspace of 100,000 random keys (spread over all four servers), to each proxy in
// turn, in alternating rounds (the order of the proxies rotates each round). For each
// proxy it prints throughput (requests/s), average and p99 latency (redis-benchmark's
// --csv), and the CPU the proxy process used during the run in cores (user plus system
// time over wall time, from /proc), then the mean of the rounds and each kvproxy's
// ratio to nutcracker. At the end it reads each proxy's stats JSON and fails if any
// request was lost, timed out or met a server error.
//
// Everything runs on loopback on one machine: redis-server, redis-benchmark and
// nutcracker from Debian's packages (scripts/setup.sh), started by internal/testenv.
// The load generator and the servers share the machine's cores with the proxy, so
// absolute figures drift with the machine; the ratios are what to compare.
//
// Environment: KVBENCH_ROUNDS (3), KVBENCH_N1 (requests per run at pipeline 1,
// 200000), KVBENCH_N16 (requests per run at pipeline 16, 2000000).
package kvbench
