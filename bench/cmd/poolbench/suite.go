package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"time"
)

// suite sizes a run.
type suite struct {
	name      string
	rounds    int
	pgScale   int
	pgSeconds int
	pgClients []int
	// pgManyClients are further client counts of the simple-protocol select sweep
	// only: their logins (SCRAM) take longer than the run itself.
	pgManyClients []int
	pgModes       []string // select-only protocols
	pgTPCB        bool
	pgLatency     bool
	pgLogin       bool
	poolSize      int
	kvShards      []int
	kvTests       []string
	kvClients     []int // swept at pipeline 1
	kvPipelines   []int // swept at kvBaseClients
	kvBaseClients int
	kvSeconds     float64
	// kvSweepShards are the shard counts of kvShards swept by clients and pipeline
	// (nil: every one); every shard count runs the shards sweep, if kvShardPipeline is
	// set: each test at kvBaseClients clients and that pipeline depth.
	kvSweepShards   []int
	kvShardPipeline int
	mcTests         []string
	mcClients       []int
	mcShards        int

	idleClients     int // idle-clients scenarios (0: none)
	overloadClients int // overloaded-pool scenario (0: none)
	overloadSeconds int
	frozenClients   int     // frozen-shard scenario (0: none)
	frozenSeconds   float64 // the shard is frozen for the middle third
}

// suites are the sizes poolbench knows.
var suites = map[string]suite{
	"smoke": {
		name: "smoke", rounds: 1, pgScale: 1, pgSeconds: 2, pgClients: []int{10}, pgModes: []string{"simple"},
		poolSize: 20, kvShards: []int{2}, kvTests: []string{"GET"}, kvPipelines: []int{16}, kvBaseClients: 50,
		kvSeconds: 1, mcTests: []string{"get"}, mcClients: []int{10}, mcShards: 2,
		idleClients: 100, overloadClients: 30, overloadSeconds: 2, frozenClients: 10, frozenSeconds: 3,
	},
	"quick": {
		name: "quick", rounds: 3, pgScale: 10, pgSeconds: 2, pgClients: []int{1, 10, 100},
		pgModes: []string{"simple", "extended", "prepared"}, pgTPCB: true, pgLatency: true, pgLogin: true,
		poolSize: 20, kvShards: []int{4}, kvTests: []string{"GET", "SET", "MGET"}, kvClients: []int{1, 50, 500},
		kvPipelines: []int{1, 16, 128}, kvBaseClients: 50, kvSeconds: 1,
		mcTests: []string{"get", "set"}, mcClients: []int{1, 10, 50}, mcShards: 4,
		idleClients: 2000, overloadClients: 200, overloadSeconds: 4, frozenClients: 50, frozenSeconds: 4.5,
	},
	"full": {
		name: "full", rounds: 3, pgScale: 10, pgSeconds: 5, pgClients: []int{1, 10, 100, 1000}, pgManyClients: []int{5000},
		pgModes: []string{"simple", "extended", "prepared"}, pgTPCB: true, pgLatency: true, pgLogin: true,
		poolSize: 20, kvShards: []int{4, 16, 64, 256}, kvSweepShards: []int{16}, kvShardPipeline: 16,
		kvTests: []string{"GET", "SET", "MGET"}, kvClients: []int{1, 50, 500},
		kvPipelines: []int{1, 16, 128}, kvBaseClients: 50, kvSeconds: 2,
		mcTests: []string{"get", "set"}, mcClients: []int{1, 10, 50}, mcShards: 4,
		idleClients: 10000, overloadClients: 200, overloadSeconds: 10, frozenClients: 50, frozenSeconds: 9,
	},
}

// directMaxClients is the most pgbench clients run straight against PostgreSQL (its
// max_connections is 250, shared with the pools).
const directMaxClients = 200

// scenario is one workload, run against every target of its protocol.
type scenario struct {
	tmpl Result  // Scenario, Group, Title, ... set; figures empty
	key  string  // identical workloads share their runs
	est  float64 // planned seconds of one run
	skip func(*target) string
	once bool // one round only: later rounds would measure what the first left behind
	// settings are pooler settings this scenario needs over the defaults (PostgreSQL
	// only): it runs on poolers started with them, the other scenarios on poolers with
	// PgBouncer's defaults. They are recorded in its results.
	settings map[string]string
	run      func(ctx context.Context, t *target) (Sample, error)
}

// runner runs scenarios and collects their results.
type runner struct {
	rounds   int
	stderr   io.Writer
	results  []Result
	byKey    map[string][]Result
	planned  float64 // seconds of all runs planned
	done     float64 // planned seconds of the runs done
	started  time.Time
	runCount int
	names    []string // the scenarios planned, in order
}

func newRunner(rounds int, stderr io.Writer) *runner {
	return &runner{rounds: rounds, stderr: stderr, byKey: map[string][]Result{}, started: time.Now()}
}

// plan adds the planned time of scs over targets to the estimate.
func (r *runner) plan(scs []*scenario, targets int) {
	seen := map[string]bool{}
	for _, sc := range scs {
		r.names = append(r.names, sc.tmpl.Scenario)
		if sc.key != "" && seen[sc.key] {
			continue
		}
		seen[sc.key] = true
		r.planned += sc.est * float64(targets*r.rounds)
	}
}

// left estimates the time still to run, scaling the plan by how long runs took so far.
func (r *runner) left() time.Duration {
	rest := r.planned - r.done
	if r.done > 0 {
		rest *= time.Since(r.started).Seconds() / r.done
	}
	return time.Duration(math.Max(rest, 0) * float64(time.Second)).Round(time.Second)
}

// missing returns the scenarios planned that have no results (yet).
func (r *runner) missing() []string {
	have := map[string]bool{}
	for _, x := range r.results {
		have[x.Scenario] = true
	}
	var out []string
	for _, n := range r.names {
		if !have[n] {
			out = append(out, n)
		}
	}
	return out
}

// runAll runs each scenario against every target in alternating rounds: the order of
// the targets rotates each round.
func (r *runner) runAll(ctx context.Context, scs []*scenario, targets []*target) error {
	for _, sc := range scs {
		if prev, ok := r.byKey[sc.key]; ok && sc.key != "" {
			for _, p := range prev {
				c := p
				c.Scenario, c.Group, c.Title, c.XName, c.X = sc.tmpl.Scenario, sc.tmpl.Group, sc.tmpl.Title, sc.tmpl.XName, sc.tmpl.X
				c.Note = "same runs as " + p.Scenario
				r.results = append(r.results, c)
			}
			continue
		}
		res := map[string]*Result{}
		var order []string
		for _, t := range targets {
			c := sc.tmpl
			c.Target = t.name
			if sc.skip != nil {
				c.Note = sc.skip(t)
			}
			res[t.name] = &c
			order = append(order, t.name)
		}
		for round := range r.rounds {
			for i := range targets {
				t := targets[(i+round)%len(targets)]
				rs := res[t.name]
				r.done += sc.est
				if rs.Note != "" || (sc.once && round > 0) {
					continue
				}
				r.runCount++
				fmt.Fprintf(r.stderr, "poolbench: %-34s %-10s round %d/%d  ~%v left\n", sc.tmpl.Scenario, t.name, round+1, r.rounds, r.left())
				s, err := measure(ctx, t, sc.run)
				if err != nil {
					return err
				}
				if s.Failure != "" {
					fmt.Fprintf(r.stderr, "poolbench:   failed: %s\n", s.Failure)
				}
				rs.Samples = append(rs.Samples, s)
			}
		}
		var out []Result
		for _, name := range order {
			Aggregate(res[name])
			out = append(out, *res[name])
		}
		r.byKey[sc.key] = out
		r.results = append(r.results, out...)
	}
	return nil
}

// measure runs one round against t and adds the proxy's CPU time per request and its
// resident set size afterwards.
func measure(ctx context.Context, t *target, run func(context.Context, *target) (Sample, error)) (Sample, error) {
	var cpu0 time.Duration
	load, hasLoad := loadAvg1m()
	if t.pid != 0 {
		cpu0, _ = cpuTime(t.pid)
	}
	s, err := run(ctx, t)
	if err != nil {
		return s, err
	}
	if hasLoad {
		s.LoadAvg1m = &load
	}
	if t.pid != 0 && s.Failure == "" {
		if cpu1, err := cpuTime(t.pid); err == nil && s.Requests > 0 {
			v := float64((cpu1 - cpu0).Microseconds()) / float64(s.Requests)
			s.CPUUsPerRequest = &v
		}
		if rss, ok := rssBytes(t.pid); ok {
			v := float64(rss)
			s.RSSBytes = &v
		}
	}
	return s, nil
}

// pgScenarios returns the PostgreSQL scenarios of su.
func pgScenarios(su suite, e *pgEnv, b *bins, work string) []*scenario {
	var scs []*scenario
	// Idle clients first, on fresh proxies: memory a load freed would be reused.
	if su.idleClients > 0 {
		scs = append(scs, idleScenario("pg", su.idleClients, openPG(e)))
	}
	add := func(group, title string, clients int, r pgRun) {
		r.clients, r.poolSize = clients, e.poolSize
		if r.seconds == 0 {
			r.seconds = su.pgSeconds
		}
		sc := &scenario{
			tmpl: Result{Scenario: fmt.Sprintf("%s-c%d", group, clients), Group: group, Title: title, Protocol: "pg",
				XName: "clients", X: clients, Clients: clients, PoolSize: e.poolSize, Unit: "tx/s"},
			est: float64(r.seconds) + 0.5,
			run: func(ctx context.Context, t *target) (Sample, error) { return runPgbench(ctx, e, b, t, r, work) },
		}
		sc.key = sc.tmpl.Scenario
		sc.skip = func(t *target) string {
			if t.name == DirectTarget && clients > directMaxClients {
				return fmt.Sprintf("not run: %d clients exceed PostgreSQL's max_connections", clients)
			}
			return ""
		}
		scs = append(scs, sc)
	}
	for _, mode := range su.pgModes {
		cs := su.pgClients
		if mode == "simple" {
			cs = append(slices.Clone(cs), su.pgManyClients...)
		}
		for _, c := range cs {
			add("pg-select-"+mode, "pgbench -S -M "+mode, c, pgRun{script: "select", mode: mode})
		}
	}
	if su.pgTPCB {
		for _, c := range su.pgClients {
			add("pg-tpcb", "pgbench TPC-B (default script), -M simple", c, pgRun{script: "tpcb", mode: "simple"})
		}
	}
	if su.pgLatency {
		add("pg-latency", "one client, SELECT 1 round trip, -M extended", 1, pgRun{script: "select1", mode: "extended"})
	}
	if su.pgLogin {
		add("pg-login", "login storm: pgbench -S -C (a new connection per transaction)", 10, pgRun{script: "select", mode: "simple", connect: true})
	}
	if su.overloadClients > 0 {
		scs = append(scs, overloadScenario(su, e, b, work))
	}
	return scs
}

// kvScenarios returns the Redis scenarios of su for one set of shards.
func kvScenarios(su suite, e *kvEnv, b *bins) []*scenario {
	var scs []*scenario
	// Idle clients first, on fresh proxies: memory a load freed would be reused.
	if su.idleClients > 0 && e.shards == su.kvShards[0] {
		scs = append(scs, idleScenario("kv", su.idleClients, openRedis))
	}
	sizes := map[string]int{} // run key -> requests, calibrated once
	add := func(test, sweep string, clients, pipeline int) {
		group := fmt.Sprintf("kv-%s-s%d-%s", test, e.shards, sweep)
		x := clients
		switch sweep {
		case "pipeline":
			x = pipeline
		case "shards":
			// One chart over every shard count: the group does not name them.
			group = fmt.Sprintf("kv-%s-shards-c%d-P%d", test, clients, pipeline)
			x = e.shards
		}
		key := fmt.Sprintf("kv-%s-s%d-c%d-P%d", test, e.shards, clients, pipeline)
		title := fmt.Sprintf("redis-benchmark %s, %d shards, by %s", test, e.shards, sweep)
		if test == "MGET" {
			title = fmt.Sprintf("redis-benchmark MGET of 10 keys, %d shards, by %s", e.shards, sweep)
		}
		name := fmt.Sprintf("%s-c%d-P%d", group, clients, pipeline)
		if sweep == "shards" {
			name = fmt.Sprintf("kv-%s-shards-s%d-c%d-P%d", test, e.shards, clients, pipeline)
			title = fmt.Sprintf("redis-benchmark %s, %d clients, pipeline %d, by shards", test, clients, pipeline)
			if test == "MGET" {
				title = fmt.Sprintf("redis-benchmark MGET of 10 keys, %d clients, pipeline %d, by shards", clients, pipeline)
			}
		}
		sc := &scenario{
			tmpl: Result{Scenario: name, Group: group, Title: title, Protocol: "kv",
				XName: sweep, X: x, Clients: clients, Pipeline: pipeline, Shards: e.shards, Unit: "req/s"},
			key: key,
			est: su.kvSeconds + 0.3,
		}
		sc.run = func(ctx context.Context, t *target) (Sample, error) {
			n, ok := sizes[key]
			if !ok {
				n = calibrate(ctx, b, e.targets[0], test, clients, pipeline, su.kvSeconds)
				sizes[key] = n
			}
			return runRedisBenchmark(ctx, b, t, kvRun{test: test, clients: clients, pipeline: pipeline, requests: n})
		}
		scs = append(scs, sc)
	}
	sweep := su.kvSweepShards == nil || slices.Contains(su.kvSweepShards, e.shards)
	for _, test := range su.kvTests {
		if !sweep {
			break
		}
		for _, c := range su.kvClients {
			add(test, "clients", c, 1)
		}
		for _, p := range su.kvPipelines {
			add(test, "pipeline", su.kvBaseClients, p)
		}
	}
	if su.kvShardPipeline > 0 {
		for _, test := range su.kvTests {
			add(test, "shards", su.kvBaseClients, su.kvShardPipeline)
		}
	}
	return scs
}

// calibrate sizes a redis-benchmark run to last about seconds, from a short run
// against t (direct).
func calibrate(ctx context.Context, b *bins, t *target, test string, clients, pipeline int, seconds float64) int {
	n0 := max(2000, clients*pipeline*4)
	s, err := runRedisBenchmark(ctx, b, t, kvRun{test: test, clients: clients, pipeline: pipeline, requests: n0})
	if err != nil || s.Failure != "" || s.Throughput <= 0 {
		return n0 * 4
	}
	return min(max(int(s.Throughput*seconds), n0), 20_000_000)
}

// mcScenarios returns the memcached scenarios of su: poolbench's own text-protocol
// client, one request at a time per connection, every latency recorded.
func mcScenarios(su suite, e *kvEnv) []*scenario {
	var scs []*scenario
	for _, test := range su.mcTests {
		for _, c := range su.mcClients {
			group := "memcache-" + test
			sc := &scenario{
				tmpl: Result{Scenario: fmt.Sprintf("%s-c%d", group, c), Group: group, Protocol: "memcache",
					Title: fmt.Sprintf("memcached text protocol %s of random keys (poolbench's client), %d shards, by connections", test, e.shards),
					XName: "clients", X: c, Clients: c, Shards: e.shards, Unit: "req/s"},
				est: su.kvSeconds + 0.3,
			}
			sc.key = sc.tmpl.Scenario
			sc.run = func(ctx context.Context, t *target) (Sample, error) {
				return runMemcache(ctx, t, test, c, su.kvSeconds)
			}
			scs = append(scs, sc)
		}
	}
	return scs
}

// onlyProtocols returns the protocols selected by --only ("" for all).
func onlyProtocols(only string) ([]string, error) {
	all := []string{"pg", "kv", "memcache"}
	if only == "" {
		return all, nil
	}
	if !slices.Contains(all, only) {
		return nil, fmt.Errorf("poolbench: --only %q: want pg, kv or memcache", only)
	}
	return []string{only}, nil
}

// warmKV sets every key once through each target, so GET and MGET find values.
func warmKV(ctx context.Context, b *bins, e *kvEnv) error {
	for _, t := range e.targets {
		if _, err := runRedisBenchmark(ctx, b, t, kvRun{test: "SET", clients: 50, pipeline: 16, requests: kvKeyspace}); err != nil {
			return err
		}
	}
	return nil
}
