package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"regexp"
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
		kvPipelines: []int{1, 16, 128}, kvBaseClients: 50, kvSeconds: 0.5,
		mcTests: []string{"get", "set"}, mcClients: []int{1, 10, 50, 200, 500}, mcShards: 4,
		idleClients: 2000, overloadClients: 200, overloadSeconds: 4, frozenClients: 50, frozenSeconds: 3,
	},
	"full": {
		name: "full", rounds: 3, pgScale: 10, pgSeconds: 5, pgClients: []int{1, 10, 100, 1000}, pgManyClients: []int{5000},
		pgModes: []string{"simple", "extended", "prepared"}, pgTPCB: true, pgLatency: true, pgLogin: true,
		poolSize: 20, kvShards: []int{4, 16, 64, 256}, kvSweepShards: []int{16}, kvShardPipeline: 16,
		kvTests: []string{"GET", "SET", "MGET"}, kvClients: []int{1, 50, 500},
		kvPipelines: []int{1, 16, 128}, kvBaseClients: 50, kvSeconds: 2,
		mcTests: []string{"get", "set"}, mcClients: []int{1, 10, 50, 200, 500, 1000}, mcShards: 4,
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
	rounds  int
	stderr  io.Writer
	results []Result
	byKey   map[string][]Result
	setup   []Phase
	// The estimate of the time left: planned is the planned seconds of every run and
	// setup step, doneEst the planned seconds of those done, doneWall their wall time.
	planned  float64
	doneEst  float64
	doneWall float64
	started  time.Time
	runCount int
	names    []string // the scenarios planned, in order
	now      func() time.Time
}

func newRunner(rounds int, stderr io.Writer) *runner {
	return &runner{rounds: rounds, stderr: stderr, byKey: map[string][]Result{}, started: time.Now(), now: time.Now}
}

// plan adds the planned time of scs against targets (their names) to the estimate:
// only the runs that will happen (a target a scenario skips, rounds after the first of
// a one-round scenario and the runs a scenario shares with another are left out).
func (r *runner) plan(scs []*scenario, targets []string) {
	seen := map[string]bool{}
	for _, sc := range scs {
		r.names = append(r.names, sc.tmpl.Scenario)
		if sc.key != "" && seen[sc.key] {
			continue
		}
		seen[sc.key] = true
		r.planned += sc.est * float64(plannedRuns(sc, targets, r.rounds))
	}
}

// plannedRuns is the number of runs of sc against targets over rounds.
func plannedRuns(sc *scenario, targets []string, rounds int) int {
	if sc.once {
		rounds = 1
	}
	n := 0
	for _, name := range targets {
		if sc.skip == nil || sc.skip(&target{name: name}) == "" {
			n += rounds
		}
	}
	return n
}

// planSetup adds a setup step of about est seconds to the estimate.
func (r *runner) planSetup(est float64) { r.planned += est }

// phase runs a setup step planned at est seconds, records its wall time and tells it
// on standard error.
func (r *runner) phase(what string, est float64, f func() error) error {
	fmt.Fprintf(r.stderr, "poolbench: %s  ~%v left\n", what, r.left())
	t0 := r.now()
	err := f()
	d := r.now().Sub(t0).Seconds()
	r.setup = append(r.setup, Phase{What: what, DurationS: d})
	r.doneEst += est
	r.doneWall += d
	return err
}

// estimatePrior is the weight, in planned seconds, of the plan's own pace in left: the
// first steps done say little of the machine's pace, the later ones more.
const estimatePrior = 60

// left estimates the time still to run: the plan left, scaled by how long the plan
// done so far actually took, weighed against estimatePrior seconds at the plan's pace.
func (r *runner) left() time.Duration {
	rest := r.planned - r.doneEst
	rest *= min(max((r.doneWall+estimatePrior)/(r.doneEst+estimatePrior), 0.5), 4)
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
				c.DurationS = 0
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
				if rs.Note != "" || (sc.once && round > 0) {
					continue
				}
				r.runCount++
				fmt.Fprintf(r.stderr, "poolbench: %-34s %-10s round %d/%d  ~%v left\n", sc.tmpl.Scenario, t.name, round+1, r.rounds, r.left())
				t0 := r.now()
				s, err := measure(ctx, t, sc.run)
				d := r.now().Sub(t0).Seconds()
				rs.DurationS += d
				r.doneEst += sc.est
				r.doneWall += d
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

// selectScenarios returns the scenarios of scs whose name re matches (all if re is nil).
func selectScenarios(scs []*scenario, re *regexp.Regexp) []*scenario {
	if re == nil {
		return scs
	}
	var out []*scenario
	for _, sc := range scs {
		if re.MatchString(sc.tmpl.Scenario) {
			out = append(out, sc)
		}
	}
	return out
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

// scramSettings are the pooler settings of the scenarios that measure logins (the
// login storm and the idle clients): clients log in with SCRAM, as the poolers' own
// figures would otherwise leave the cost of logging in out. The other scenarios'
// clients log in with trust (poolerSettings), so that thousands of clients do not
// spend the run computing SCRAM proofs.
var scramSettings = map[string]string{"auth_type": "scram-sha-256"}

// pgScenarios returns the PostgreSQL scenarios of su.
func pgScenarios(su suite, e *pgEnv, b *bins, work string) []*scenario {
	var scs []*scenario
	// Idle clients first, on fresh proxies: memory a load freed would be reused. The
	// login storm follows on the same poolers (both log in with SCRAM).
	if su.idleClients > 0 {
		sc := idleScenario("pg", su.idleClients, openPG(e))
		sc.settings = scramSettings
		sc.tmpl.Settings = sc.settings
		scs = append(scs, sc)
	}
	add := func(group, title string, clients int, r pgRun) *scenario {
		r.clients, r.poolSize = clients, e.poolSize
		if r.seconds == 0 {
			r.seconds = su.pgSeconds
		}
		sc := &scenario{
			tmpl: Result{Scenario: fmt.Sprintf("%s-c%d", group, clients), Group: group, Title: title, Protocol: "pg",
				XName: "clients", X: clients, Clients: clients, PoolSize: e.poolSize, Unit: "tx/s"},
			est: pgbenchEstimate(r),
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
		return sc
	}
	if su.pgLogin {
		sc := add("pg-login", "login storm: pgbench -S -C (a new connection per transaction, SCRAM)", 10, pgRun{script: "select", mode: "simple", connect: true})
		sc.settings = scramSettings
		sc.tmpl.Settings = sc.settings
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
	add := func(test, sweep string, clients, pipeline int) {
		sizes := map[string]int{} // target -> requests of its next round
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
			est: kvEstimate(su, clients, pipeline),
		}
		sc.run = func(ctx context.Context, t *target) (Sample, error) {
			n, ok := sizes[t.name]
			if !ok {
				n = calibrate(ctx, b, t, test, clients, pipeline, su.kvSeconds)
			}
			s, err := runRedisBenchmark(ctx, b, t, kvRun{test: test, clients: clients, pipeline: pipeline, requests: n})
			if err == nil {
				sizes[t.name] = resize(n, s, su.kvSeconds, calibrationRequests(clients, pipeline))
			}
			return s, err
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

// calibrate sizes a redis-benchmark run against t to last about seconds, from a
// short run against t: each target runs for about as long, whatever its throughput.
func calibrate(ctx context.Context, b *bins, t *target, test string, clients, pipeline int, seconds float64) int {
	n0 := calibrationRequests(clients, pipeline)
	s, err := runRedisBenchmark(ctx, b, t, kvRun{test: test, clients: clients, pipeline: pipeline, requests: n0})
	if err != nil || s.Failure != "" || s.Throughput <= 0 {
		return n0 * 4
	}
	return sizeFor(s.Throughput, seconds, n0)
}

// calibrationRequests is the size of a calibration run: a few requests per client and
// pipeline slot.
func calibrationRequests(clients, pipeline int) int { return max(1000, clients*pipeline*2) }

// sizeFor returns the requests that last about seconds at throughput, at least floor.
func sizeFor(throughput, seconds float64, floor int) int {
	return min(max(int(throughput*seconds), floor), 20_000_000)
}

// resize returns the size of a target's next round from its last one (n requests,
// figures s): the next lasts about seconds at the throughput this one had.
func resize(n int, s Sample, seconds float64, floor int) int {
	if s.Failure != "" || s.Throughput <= 0 {
		return n
	}
	return sizeFor(s.Throughput, seconds, floor)
}

// kvEstimate is the planned seconds of one redis-benchmark round: the run, its share
// of the target's calibration, and redis-benchmark opening its connections.
func kvEstimate(su suite, clients, pipeline int) float64 {
	return su.kvSeconds + 0.1 + float64(clients)/5000 + 0.2/float64(max(su.rounds, 1))
}

// pgbenchEstimate is the planned seconds of one pgbench round of r: -T and the clients'
// logins (trust, or SCRAM for -C) beyond it.
func pgbenchEstimate(r pgRun) float64 {
	if r.connect {
		return float64(r.seconds) + 0.1
	}
	return float64(r.seconds) + float64(loginAllowance(0, r.clients)) + 0.15 + float64(r.clients)/2000
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
				est: su.kvSeconds + 0.05,
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
