package main

import (
	"math"
	"strings"
	"testing"
	"time"
)

const redisBenchmarkOut = "GET: rps=0.0 (overall: -nan) avg_msec=-nan (overall: -nan)\r" + `
====== GET ======
  2000 requests completed in 0.03 seconds
  5 parallel clients

Latency by percentile distribution:
0.000% <= 0.015 milliseconds (cumulative count 346)
50.000% <= 0.063 milliseconds (cumulative count 1070)
75.000% <= 0.071 milliseconds (cumulative count 1502)
87.500% <= 0.095 milliseconds (cumulative count 1885)
96.875% <= 0.111 milliseconds (cumulative count 1941)
99.219% <= 0.199 milliseconds (cumulative count 1986)
99.951% <= 3.295 milliseconds (cumulative count 2000)
100.000% <= 3.295 milliseconds (cumulative count 2000)

Cumulative distribution of latencies:
96.100% <= 0.103 milliseconds (cumulative count 1922)
100.000% <= 4.103 milliseconds (cumulative count 2000)

Summary:
  throughput summary: 60606.06 requests per second
  latency summary (msec):
          avg       min       p50       p95       p99       max
        0.063     0.008     0.063     0.103     0.191     3.295
`

func TestParseRedisBenchmark(t *testing.T) {
	s, err := parseRedisBenchmark([]byte(redisBenchmarkOut))
	if err != nil {
		t.Fatal(err)
	}
	if s.Throughput != 60606.06 {
		t.Errorf("throughput %v", s.Throughput)
	}
	want := map[string]struct {
		got  *float64
		want float64
	}{
		"p50": {s.P50Ms, 0.063},
		"p90": {s.P90Ms, 0.095 + (0.111-0.095)*(90-87.5)/(96.875-87.5)},
		"p99": {s.P99Ms, 0.111 + (0.199-0.111)*(99-96.875)/(99.219-96.875)},
	}
	for name, w := range want {
		if w.got == nil || math.Abs(*w.got-w.want) > 1e-9 {
			t.Errorf("%s = %v, want %v (from the percentile block, not the cumulative one)", name, w.got, w.want)
		}
	}
	if _, err := parseRedisBenchmark([]byte("Could not connect to Redis at 127.0.0.1:1")); err == nil {
		t.Error("output without a summary parsed")
	}
}

func TestRedisBenchmarkArgsMGET(t *testing.T) {
	args := strings.Join(redisBenchmarkArgs(6379, kvRun{test: "MGET", clients: 5, pipeline: 16, requests: 100}), " ")
	if strings.Count(args, "key:__rand_int__") != 10 || !strings.Contains(args, "MGET key:") || strings.Contains(args, "-t ") {
		t.Errorf("MGET args: %s", args)
	}
	args = strings.Join(redisBenchmarkArgs(6379, kvRun{test: "SET", clients: 5, pipeline: 1, requests: 100}), " ")
	if !strings.Contains(args, "-t set") || !strings.Contains(args, "-P 1") {
		t.Errorf("SET args: %s", args)
	}
}

func TestParsePgbench(t *testing.T) {
	out := `transaction type: <builtin: select only>
number of transactions actually processed: 51234
number of failed transactions: 7 (0.014%)
latency average = 0.195 ms
tps = 25612.345678 (without initial connection time)
`
	s, err := parsePgbench([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if s.Throughput != 25612.345678 || s.Errors != 7 || s.Requests != 51234 {
		t.Errorf("%+v", s)
	}
	if _, err := parsePgbench([]byte("pgbench: error: connection to server failed")); err == nil {
		t.Error("a failed pgbench parsed")
	}
	lat, err := appendPgbenchLog(nil, strings.NewReader("0 1 1500 0 1700000000 123\n1 1 250 0 1700000000 124\n2 1 failed 0 1700000000 125\n"))
	if err != nil || len(lat) != 2 || lat[0] != 1.5 || lat[1] != 0.25 {
		t.Errorf("log latencies %v %v, want [1.5 0.25] ms", lat, err)
	}
}

func TestProcParsers(t *testing.T) {
	stat := []byte("1234 (my (odd) proc) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 100 1000000 500 18446744073709551615")
	d, err := parseCPUTime(stat)
	if err != nil || d != 3*time.Second {
		t.Errorf("cpu %v %v, want 3s (300 ticks)", d, err)
	}
	if _, err := parseCPUTime([]byte("garbage")); err == nil {
		t.Error("garbage parsed")
	}
	rss, ok := parseRSS([]byte("Name:\tx\nVmPeak:\t 9000 kB\nVmRSS:\t    2048 kB\n"))
	if !ok || rss != 2048*1024 {
		t.Errorf("rss %v %v", rss, ok)
	}
	la, ok := parseLoadAvg([]byte("0.54 2.42 4.43 1/89 17651\n"))
	if !ok || la != [3]float64{0.54, 2.42, 4.43} {
		t.Errorf("load %v %v", la, ok)
	}
}

func TestPgbenchLoginsOf(t *testing.T) {
	ran := pgbenchLoginsOf([]byte("number of transactions actually processed: 83224\nnumber of failed transactions: 0 (0.000%)\n" +
		"initial connection time = 640.315 ms\ntps = 23551.204996 (without initial connection time)\n"))
	if ran.noneProcessed || math.Abs(ran.connSec-0.640315) > 1e-9 {
		t.Errorf("a run that processed transactions: %+v", ran)
	}
	// Clients still logging in when -T ran out: pgbench prints neither tps nor the
	// connection time.
	none := pgbenchLoginsOf([]byte("duration: 1 s\nnumber of transactions actually processed: 0\nnumber of failed transactions: 0 (NaN%)\n"))
	if !none.noneProcessed || none.connSec != 0 {
		t.Errorf("a run that processed nothing: %+v", none)
	}
	if l := pgbenchLoginsOf([]byte("pgbench: error: connection to server failed")); l.noneProcessed {
		t.Errorf("a refused run is taken for slow logins: %+v", l)
	}
	if got := loginAllowance(0, 1000); got != int(math.Ceil(defaultLoginSeconds*1000*1.5-loginSlackSeconds)) {
		t.Errorf("allowance without a previous run: %d", got)
	}
	if got := loginAllowance(0.01, 5000); got != 75 {
		t.Errorf("allowance for 5000 clients at 10 ms each: %d, want 75", got)
	}
	// Clients that log in at once (one client, or trust) cost the run no second more.
	for _, c := range []struct {
		perClient float64
		clients   int
	}{{0, 1}, {0.005, 1}, {0.0001, 100}, {0.001, 100}} {
		if got := loginAllowance(c.perClient, c.clients); got != 0 {
			t.Errorf("allowance for %d clients at %g s each: %d, want 0", c.clients, c.perClient, got)
		}
	}
	if got := loginAllowance(0.001, 1000); got != 2 {
		t.Errorf("allowance for 1000 clients at 1 ms each: %d, want 2", got)
	}
	if got := loginAllowance(1, 5000); got != maxLoginAllowance {
		t.Errorf("allowance not bounded: %d", got)
	}
}
