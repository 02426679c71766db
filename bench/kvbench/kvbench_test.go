package kvbench

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"testing"

	"github.com/poolsuite/poolsuite/internal/testenv"
)

const (
	shards   = 4      // redis-servers behind the proxies
	clients  = 100    // redis-benchmark -c
	keyspace = 100000 // redis-benchmark -r: random keys spread over all shards
)

// BenchmarkNutcrackerCompare: redis-benchmark SET and GET, 100 clients, pipeline 1
// and 16, through nutcracker and kvproxy (GOMAXPROCS=1 and default) over the same 4
// redis-servers, in alternating rounds. b.N is ignored: run with -benchtime 1x.
func BenchmarkNutcrackerCompare(b *testing.B) {
	rounds := testenv.EnvInt("KVBENCH_ROUNDS", 3)
	requests := map[int]int{1: testenv.EnvInt("KVBENCH_N1", 200000), 16: testenv.EnvInt("KVBENCH_N16", 2000000)}
	cases := []benchCase{{"SET", 1}, {"GET", 1}, {"SET", 16}, {"GET", 16}}
	dir := b.TempDir()

	servers := make([]string, shards)
	for i := range servers {
		servers[i] = testenv.StartRedis(b, testenv.RedisOptions{}).Addr()
	}
	ncPort := testenv.FreePort(b)
	nc := testenv.StartNutcracker(b, poolYAML(ncPort, servers), net.JoinHostPort("127.0.0.1", strconv.Itoa(ncPort)))
	bin := testenv.GoBuild(b, "github.com/poolsuite/poolsuite/cmd/kvproxy", dir)
	procs := defaultProcs()
	proxies := []*proxy{
		{name: "nutcracker", port: ncPort, statsAddr: nc.StatsAddr(), pid: nc.PID()},
		startKvproxy(b, bin, dir, "kvproxy-1", servers, "1"),
		startKvproxy(b, bin, dir, "kvproxy-"+strconv.Itoa(procs), servers, ""),
	}
	var sent int64 // requests per proxy, to check against its stats
	for _, p := range proxies {
		p.results = map[benchCase][]runResult{}
		// A warm-up, not counted: connections made, every key set once.
		runRedisBenchmark(b, p, benchCase{"SET", 16}, clients, 2*keyspace, keyspace)
	}
	sent += 2 * keyspace

	for r := range rounds {
		for _, c := range cases {
			for i := range proxies {
				p := proxies[(i+r)%len(proxies)] // rotate which goes first
				res := runRedisBenchmark(b, p, c, clients, requests[c.pipeline], keyspace)
				p.results[c] = append(p.results[c], res)
				b.Logf("round %d  %-9s %-11s %9.0f req/s  avg %6.3f ms  p99 %6.3f ms  proxy CPU %.2f cores",
					r+1, c, p.name, res.rps, res.avg, res.p99, res.cores)
			}
			sent += int64(requests[c.pipeline])
		}
	}

	fmt.Printf("\nredis-benchmark -c %d -r %d through each proxy to %d redis-servers (ketama, fnv1a_64), %d rounds, mean of rounds;\n",
		clients, keyspace, shards, rounds)
	fmt.Printf("-n %d at -P 1, -n %d at -P 16; kvproxy-1 runs with GOMAXPROCS=1, kvproxy-%d with the default (%d CPUs)\n",
		requests[1], requests[16], procs, runtime.NumCPU())
	for _, c := range cases {
		fmt.Printf("  %s\n", c)
		base := mean(proxies[0].results[c])
		for _, p := range proxies {
			m := mean(p.results[c])
			fmt.Printf("    %-11s %9.0f req/s  avg %6.3f ms  p99 %6.3f ms  proxy CPU %.2f cores\n",
				p.name, m.rps, m.avg, m.p99, m.cores)
		}
		for _, p := range proxies[1:] {
			m := mean(p.results[c])
			fmt.Printf("    %s/nutcracker: req/s x%.2f, avg latency x%.2f, p99 latency x%.2f\n",
				p.name, m.rps/base.rps, m.avg/base.avg, m.p99/base.p99)
			if c.pipeline == 16 {
				b.ReportMetric(m.rps/base.rps, fmt.Sprintf("%s/nc-%s-P16-x", p.name, c.test))
			}
		}
	}
	checkStats(b, proxies, sent)
}

// checkStats prints each proxy's requests per server from its stats JSON and fails if
// fewer than sent requests reached the servers or any server error was counted.
func checkStats(b *testing.B, proxies []*proxy, sent int64) {
	b.Helper()
	fmt.Printf("  stats JSON, requests per server (%d sent through each proxy)\n", sent)
	for _, p := range proxies {
		s, err := waitStats(p.statsAddr, sent)
		if err != nil {
			b.Fatalf("%s stats: %v", p.name, err)
		}
		fmt.Printf("    %-11s %s; server errors and timeouts %d\n", p.name, s.perServer(), s.serverErrors)
		if s.total < sent || s.serverErrors != 0 {
			b.Errorf("%s: %d requests reached the servers (want %d), %d server errors", p.name, s.total, sent, s.serverErrors)
		}
	}
}

// mean averages the rounds of one case.
func mean(rs []runResult) runResult {
	var m runResult
	for _, r := range rs {
		m.rps += r.rps
		m.avg += r.avg
		m.p99 += r.p99
		m.cores += r.cores
	}
	n := float64(len(rs))
	return runResult{rps: m.rps / n, avg: m.avg / n, p99: m.p99 / n, cores: m.cores / n}
}

// defaultProcs is the GOMAXPROCS a Go program started without GOMAXPROCS in its
// environment gets here: this process's, unless GOMAXPROCS is set for it.
func defaultProcs() int {
	if os.Getenv("GOMAXPROCS") == "" {
		return runtime.GOMAXPROCS(0)
	}
	return runtime.NumCPU()
}
