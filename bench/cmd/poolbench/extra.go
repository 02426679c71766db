package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Scenarios run by poolbench's own clients: idle connections, an overloaded pool, a
// frozen shard and memcached latencies.

// skipDirect leaves direct out of scenarios that measure a proxy only.
func skipDirect(why string) func(*target) string {
	return func(t *target) string {
		if t.name == DirectTarget {
			return "not run: " + why
		}
		return ""
	}
}

// idleScenario returns the idle-clients scenario of protocol ("pg" or "kv"): n
// logged-in connections held open, the proxy's RSS growth divided by n.
func idleScenario(proto string, n int, open func(ctx context.Context, t *target) (net.Conn, error)) *scenario {
	group := proto + "-idle"
	what := "PostgreSQL logins (SCRAM)"
	if proto == "kv" {
		what = "Redis connections, a GET answered"
	}
	sc := &scenario{
		tmpl: Result{Scenario: fmt.Sprintf("%s-c%d", group, n), Group: group, Protocol: proto,
			Title: fmt.Sprintf("%d idle clients held open (%s): proxy RSS per client", n, what),
			XName: "clients", X: n, Clients: n, Unit: "logins/s"},
		est:  idleEstimate(proto, n),
		skip: skipDirect("no proxy to measure"),
		once: true, // a second round would reuse the memory the first one freed
	}
	sc.key = sc.tmpl.Scenario + "-" + proto
	sc.run = func(ctx context.Context, t *target) (Sample, error) { return runIdle(ctx, t, n, open) }
	return sc
}

// idleEstimate is the planned seconds of one idle-clients round: n logins (SCRAM for
// PostgreSQL) or n GETs answered.
func idleEstimate(proto string, n int) float64 {
	if proto == "pg" {
		return float64(n)/250 + 0.5
	}
	return float64(n)/5000 + 0.2
}

// idleOpeners is the number of connections runIdle opens at once. More do not open
// them faster on two cores: SCRAM logins are bound by the CPU of the client and of a
// single-threaded PgBouncer (16 at once logged in fewer per second than 4).
const idleOpeners = 4

// runIdle opens n connections to t with open (idleOpeners at a time), measures t's RSS before
// and after, and closes them all. Throughput is logins per second; latencies are the
// logins'.
func runIdle(ctx context.Context, t *target, n int, open func(ctx context.Context, t *target) (net.Conn, error)) (Sample, error) {
	before, ok := rssBytes(t.pid)
	if !ok {
		return Sample{Failure: "no RSS for the proxy"}, nil
	}
	conns := make([]net.Conn, n)
	lat := make([]float64, n)
	var errs int64
	var firstErr error
	var mu sync.Mutex
	start := time.Now()
	var wg sync.WaitGroup
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	for range idleOpeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				c, err := open(ctx, t)
				lat[i] = float64(time.Since(t0).Microseconds()) / 1000
				if err != nil {
					mu.Lock()
					errs++
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					continue
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	after, ok2 := rssBytes(t.pid)
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
	if ctx.Err() != nil {
		return Sample{}, ctx.Err()
	}
	s := Sample{Requests: int64(n), Errors: errs, Seconds: secs}
	if errs == int64(n) {
		s.Failure = fmt.Sprintf("no client logged in: %v", firstErr)
		return s, nil
	}
	s.Throughput = float64(int64(n)-errs) / secs
	slices.Sort(lat)
	fillLatencies(&s, lat)
	if ok2 {
		v := float64(after-before) / float64(int64(n)-errs)
		s.RSSPerClientBytes = &v
	}
	return s, nil
}

// openPG returns an opener of logged-in PostgreSQL connections to t's database.
func openPG(e *pgEnv) func(ctx context.Context, t *target) (net.Conn, error) {
	return func(ctx context.Context, t *target) (net.Conn, error) {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		c, err := pgconn.Connect(cctx, fmt.Sprintf("host=127.0.0.1 port=%d user=%s password=%s dbname=%s sslmode=disable",
			t.port, e.user, e.password, t.db))
		if err != nil {
			return nil, err
		}
		return c.Conn(), nil
	}
}

// openRedis opens a connection to t and waits for the answer to a GET (nutcracker
// answers no PING).
func openRedis(ctx context.Context, t *target) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	c, err := d.DialContext(ctx, "tcp", t.addr())
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	lc := &loadConn{c: c, r: bufio.NewReaderSize(c, 512), w: bufio.NewWriterSize(c, 64)}
	if err := roundTripOn(lc, "*2\r\n$3\r\nGET\r\n$4\r\nidle\r\n", readRESP); err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// overloadDB is the database whose pool is smaller than its clients.
const (
	overloadDB       = "overload"
	overloadPoolSize = 10
	queryWaitTimeout = 2 // seconds, for the overload scenario's poolers only
)

var abortedRE = regexp.MustCompile(`(?m)client \d+ aborted`)

// pgAborted counts the clients pgbench reports aborted (their connection was closed or
// failed): each is a client that gave up.
func pgAborted(out []byte) int64 { return int64(len(abortedRE.FindAll(out, -1))) }

// overloadScenario returns the overloaded-pool scenario: clients pgbench clients, each
// running SELECT pg_sleep(0.05), over a pool of overloadPoolSize.
func overloadScenario(su suite, e *pgEnv, b *bins, work string) *scenario {
	c := su.overloadClients
	r := pgRun{script: "sleep", mode: "simple", clients: c, seconds: su.overloadSeconds, poolSize: overloadPoolSize, db: overloadDB}
	sc := &scenario{
		tmpl: Result{Scenario: fmt.Sprintf("pg-overload-c%d", c), Group: "pg-overload", Protocol: "pg",
			Title: fmt.Sprintf("overload: pgbench -f SELECT pg_sleep(0.05), %d clients over a pool of %d, query_wait_timeout %d s", c, overloadPoolSize, queryWaitTimeout),
			XName: "clients", X: c, Clients: c, PoolSize: overloadPoolSize, Unit: "tx/s"},
		est:      float64(su.overloadSeconds) + queryWaitTimeout + 0.5, // clients queued at -T's end wait up to query_wait_timeout
		skip:     skipDirect("no pool to overload"),
		settings: map[string]string{"query_wait_timeout": strconv.Itoa(queryWaitTimeout)},
	}
	sc.tmpl.Settings = sc.settings
	sc.key = sc.tmpl.Scenario
	sc.run = func(ctx context.Context, t *target) (Sample, error) { return runPgbench(ctx, e, b, t, r, work) }
	return sc
}

// frozenKeys is the keyspace of the frozen-shard scenario.
const frozenKeys = 10000

// frozenScenario returns the frozen-shard scenario over e (Redis, server timeout
// 500 ms): GETs of random keys by su.frozenClients connections for su.frozenSeconds,
// with the second server frozen (SIGSTOP) for the middle third. Latencies are those of
// the keys on the other shards.
func frozenScenario(su suite, e *kvEnv) *scenario {
	c := su.frozenClients
	sc := &scenario{
		tmpl: Result{Scenario: fmt.Sprintf("kv-frozen-s%d-c%d", e.shards, c), Group: fmt.Sprintf("kv-frozen-s%d", e.shards), Protocol: "kv",
			Title: fmt.Sprintf("GET of random keys, %d shards, one redis-server SIGSTOPped for the middle third of %g s, server timeout %d ms; p50/p99 of the healthy keys",
				e.shards, su.frozenSeconds, frozenTimeoutMs),
			XName: "clients", X: c, Clients: c, Shards: e.shards, Unit: "req/s"},
		est:  su.frozenSeconds + 0.2,
		skip: skipDirect("no proxy in front of the shards"),
	}
	sc.key = sc.tmpl.Scenario
	var keys []string
	var frozen map[string]bool
	sc.run = func(ctx context.Context, t *target) (Sample, error) {
		if keys == nil {
			var err error
			if keys, frozen, err = seedFrozen(e); err != nil {
				return Sample{}, err
			}
		}
		shard := e.redis[1]
		d := time.Duration(su.frozenSeconds * float64(time.Second))
		res, err := runLoad(ctx, loadRun{addr: t.addr(), conns: c, duration: d, reqTimeout: 2 * time.Second,
			op: redisGet(keys, frozen),
			during: func(ctx context.Context) {
				select {
				case <-ctx.Done():
					return
				case <-time.After(d / 3):
				}
				shard.Freeze()
				defer shard.Thaw()
				select {
				case <-ctx.Done():
				case <-time.After(d / 3):
				}
			}})
		if err != nil {
			return Sample{}, err
		}
		s := loadSample(res)
		return s, nil
	}
	return sc
}

// frozenTimeoutMs is the server timeout of the proxies in the frozen-shard scenario.
const frozenTimeoutMs = 500

// seedFrozen sets the scenario's keys through the first proxy and asks the second
// server which of them it holds.
func seedFrozen(e *kvEnv) ([]string, map[string]bool, error) {
	keys := make([]string, frozenKeys)
	var set, exists []string
	for i := range keys {
		keys[i] = "frz:" + strconv.Itoa(i)
		set = append(set, fmt.Sprintf("*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$1\r\nv\r\n", len(keys[i]), keys[i]))
		exists = append(exists, fmt.Sprintf("*2\r\n$6\r\nEXISTS\r\n$%d\r\n%s\r\n", len(keys[i]), keys[i]))
	}
	if _, err := pipeline(e.targets[1].addr(), set); err != nil {
		return nil, nil, fmt.Errorf("poolbench: seeding the frozen-shard keys: %w", err)
	}
	replies, err := pipeline(e.redis[1].Addr(), exists)
	if err != nil {
		return nil, nil, fmt.Errorf("poolbench: locating the frozen-shard keys: %w", err)
	}
	frozen := map[string]bool{}
	for i, r := range replies {
		if r == ":1" {
			frozen[keys[i]] = true
		}
	}
	if len(frozen) == 0 || len(frozen) == len(keys) {
		return nil, nil, fmt.Errorf("poolbench: %d of %d keys on the shard to freeze", len(frozen), len(keys))
	}
	return keys, frozen, nil
}

// pipeline sends reqs to addr in batches of 500 and returns each one-line reply.
func pipeline(addr string, reqs []string) ([]string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	r, w := bufio.NewReader(c), bufio.NewWriter(c)
	var out []string
	for len(reqs) > 0 {
		n := min(len(reqs), 500)
		for _, q := range reqs[:n] {
			w.WriteString(q)
		}
		if err := w.Flush(); err != nil {
			return nil, err
		}
		for range n {
			line, err := readLine(r)
			if err != nil {
				return nil, err
			}
			if len(line) > 0 && line[0] == '-' {
				return nil, fmt.Errorf("%w: %s", errReply, line)
			}
			out = append(out, string(line))
		}
		reqs = reqs[n:]
	}
	return out, nil
}

// mcKeyspace is the number of keys the memcached load generator uses.
const mcKeyspace = 10000

// runMemcache runs the memcached load generator: clients connections sending test
// for seconds.
func runMemcache(ctx context.Context, t *target, test string, clients int, seconds float64) (Sample, error) {
	res, err := runLoad(ctx, loadRun{addr: t.addr(), conns: clients, duration: time.Duration(seconds * float64(time.Second)),
		reqTimeout: 2 * time.Second, op: memcacheOp(test, mcKeyspace)})
	if err != nil {
		return Sample{}, err
	}
	if ctx.Err() != nil {
		return Sample{}, ctx.Err()
	}
	return loadSample(res), nil
}

// warmMemcache sets every key of the memcached keyspace through t.
func warmMemcache(ctx context.Context, t *target) error {
	c, err := net.DialTimeout("tcp", t.addr(), 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	lc := &loadConn{c: c, r: bufio.NewReader(c), w: bufio.NewWriter(c)}
	for i := range mcKeyspace {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		k := "mc:" + strconv.Itoa(i)
		req := fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", k, len(mcValue), mcValue)
		if err := roundTripOn(lc, req, readMemcacheStored); err != nil {
			if errors.Is(err, errReply) {
				continue
			}
			return err
		}
	}
	return nil
}

// defaultTimeoutMs is the proxies' server timeout in the other Redis and memcached
// scenarios; frozenShards is the number of shards of the frozen-shard scenario.
const (
	defaultTimeoutMs = 2000
	frozenShards     = 4
)
