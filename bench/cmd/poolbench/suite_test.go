package main

import (
	"context"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestPoolerSettingsPerScenario checks that only the overload scenario runs with
// query_wait_timeout set and only the scenarios that measure logins (idle clients, the
// login storm) with SCRAM: the poolers of the other PostgreSQL scenarios let clients in
// with trust and keep PgBouncer's defaults otherwise.
func TestPoolerSettingsPerScenario(t *testing.T) {
	def := poolerSettings(20, 100, nil)
	if _, ok := def["query_wait_timeout"]; ok {
		t.Errorf("default pooler settings set query_wait_timeout: %v", def)
	}
	want := map[string]string{"pool_mode": "transaction", "default_pool_size": "20", "max_client_conn": "200", "auth_type": "trust"}
	if !reflect.DeepEqual(def, want) {
		t.Errorf("default pooler settings %v, want %v", def, want)
	}
	if got := poolerSettings(20, 100, map[string]string{"query_wait_timeout": "2"}); got["query_wait_timeout"] != "2" || got["pool_mode"] != "transaction" {
		t.Errorf("settings with query_wait_timeout: %v", got)
	}
	if got := poolerSettings(20, 100, scramSettings); got["auth_type"] != "scram-sha-256" {
		t.Errorf("settings of the login scenarios: %v", got)
	}

	for _, name := range []string{"smoke", "quick", "full"} {
		scs := pgScenarios(suites[name], &pgEnv{poolSize: 20}, &bins{}, "")
		overloads, logins := 0, 0
		for _, sc := range scs {
			switch sc.tmpl.Group {
			case "pg-overload":
				overloads++
				if sc.settings["query_wait_timeout"] != "2" || !reflect.DeepEqual(sc.tmpl.Settings, sc.settings) {
					t.Errorf("%s %s: settings %v, recorded %v", name, sc.tmpl.Scenario, sc.settings, sc.tmpl.Settings)
				}
			case "pg-idle", "pg-login":
				logins++
				if !reflect.DeepEqual(sc.settings, scramSettings) || !reflect.DeepEqual(sc.tmpl.Settings, sc.settings) {
					t.Errorf("%s %s: settings %v, recorded %v, want SCRAM", name, sc.tmpl.Scenario, sc.settings, sc.tmpl.Settings)
				}
			default:
				if len(sc.settings) != 0 || len(sc.tmpl.Settings) != 0 {
					t.Errorf("%s %s: settings %v, want the shared ones", name, sc.tmpl.Scenario, sc.settings)
				}
			}
		}
		if overloads != 1 || logins == 0 {
			t.Errorf("%s: %d overload scenarios, %d login scenarios", name, overloads, logins)
		}
		// One set of poolers per setting: the login scenarios together first (the idle
		// clients on fresh poolers), the shared settings, then the overload alone.
		batches := settingsBatches(scs)
		if len(batches) != 3 || len(batches[0]) != logins || batches[0][0].tmpl.Group != "pg-idle" ||
			len(batches[2]) != 1 || batches[2][0].tmpl.Group != "pg-overload" || len(batches[1][0].settings) != 0 {
			t.Errorf("%s: %d batches by settings, want the SCRAM ones, the shared ones, then the overload alone", name, len(batches))
		}
		n := 0
		for _, b := range batches {
			n += len(b)
		}
		if n != len(scs) {
			t.Errorf("%s: batches hold %d scenarios of %d", name, n, len(scs))
		}
	}
	if got := settingsKey(map[string]string{"b": "2", "a": "1"}); got != "a=1,b=2" {
		t.Errorf("settingsKey = %q", got)
	}
}

// TestSuiteRounds checks that each figure of the quick and full suites is the median of
// three rounds or more.
func TestSuiteRounds(t *testing.T) {
	for _, name := range []string{"quick", "full"} {
		if r := suites[name].rounds; r < 3 {
			t.Errorf("%s suite: %d rounds, want 3 or more", name, r)
		}
	}
}

// TestKVShardsSweep checks the full suite's Redis plan: the clients and pipeline sweeps
// over 16 shards only, and a shards sweep (up to 256) at every shard count that shares
// its runs with the pipeline sweep where both exist.
func TestKVShardsSweep(t *testing.T) {
	su := suites["full"]
	if slices.Max(su.kvShards) != 256 {
		t.Errorf("full suite's shard counts %v, want up to 256", su.kvShards)
	}
	for _, n := range su.kvShards {
		scs := kvScenarios(su, &kvEnv{shards: n}, &bins{})
		shards := 0
		for _, sc := range scs {
			x := sc.tmpl
			if strings.Contains(x.Group, "-shards-") {
				shards++
				if x.XName != "shards" || x.X != n || x.Shards != n || x.Clients != 50 || x.Pipeline != 16 {
					t.Errorf("%s: x %s=%d, shards %d, clients %d, pipeline %d", x.Scenario, x.XName, x.X, x.Shards, x.Clients, x.Pipeline)
				}
				if strings.Contains(x.Group, "-s"+strconv.Itoa(n)+"-") {
					t.Errorf("%s: group %s names the shard count (one chart over all of them)", x.Scenario, x.Group)
				}
			} else if n != 16 && x.Group != "kv-idle" {
				t.Errorf("%d shards: %s is swept, want the sweeps over 16 shards only", n, x.Scenario)
			}
		}
		if shards != len(su.kvTests) {
			t.Errorf("%d shards: %d shards-sweep scenarios, want %d", n, shards, len(su.kvTests))
		}
		if n == 16 {
			keys := map[string]int{}
			for _, sc := range scs {
				keys[sc.key]++
			}
			if keys["kv-GET-s16-c50-P16"] != 2 {
				t.Errorf("16 shards: the shards sweep does not share kv-GET-s16-c50-P16's runs (%v)", keys)
			}
		}
	}
}

// TestRunnerMissing checks that a run stopped early names the scenarios it did not run.
func TestRunnerMissing(t *testing.T) {
	sc := func(name string) *scenario {
		return &scenario{tmpl: Result{Scenario: name}, key: name,
			run: func(context.Context, *target) (Sample, error) { return Sample{Throughput: 1, Requests: 1}, nil }}
	}
	r := newRunner(1, io.Discard)
	scs := []*scenario{sc("a"), sc("b"), sc("c")}
	r.plan(scs, []string{"x"})
	if err := r.runAll(t.Context(), scs[:1], []*target{{name: "x"}}); err != nil {
		t.Fatal(err)
	}
	if got := r.missing(); !reflect.DeepEqual(got, []string{"b", "c"}) {
		t.Errorf("missing %v, want [b c]", got)
	}
}

// TestMeasureLoadAverage checks that each round records the machine's load average.
func TestMeasureLoadAverage(t *testing.T) {
	if _, ok := loadAvg1m(); !ok {
		t.Skip("no /proc/loadavg")
	}
	s, err := measure(t.Context(), &target{name: DirectTarget}, func(context.Context, *target) (Sample, error) {
		return Sample{Throughput: 1, Requests: 1}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.LoadAvg1m == nil || *s.LoadAvg1m < 0 {
		t.Errorf("round without its load average: %v", s.LoadAvg1m)
	}
}

// TestRunnerDurations checks that each result records the wall time of its rounds
// against its target, that a target skipped or a scenario sharing another's runs
// records none, and that the estimate of the time left follows what the runs took.
func TestRunnerDurations(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	took := map[string]time.Duration{"a": 2 * time.Second, "b": 3 * time.Second}
	sc := func(name, key string) *scenario {
		return &scenario{tmpl: Result{Scenario: name}, key: key, est: 1,
			skip: func(t *target) string {
				if t.name == DirectTarget {
					return "not run"
				}
				return ""
			},
			run: func(_ context.Context, t *target) (Sample, error) {
				now = now.Add(took[t.name])
				return Sample{Throughput: 1, Requests: 1}, nil
			}}
	}
	r := newRunner(3, io.Discard)
	r.now = func() time.Time { return now }
	scs := []*scenario{sc("s", "k"), sc("shared", "k")}
	names := []string{DirectTarget, "a", "b"}
	r.plan(scs, names)
	if r.planned != 6 { // two targets, three rounds, the shared scenario not again
		t.Errorf("planned %v s, want 6", r.planned)
	}
	if got := r.left(); got != 6*time.Second {
		t.Errorf("left before any run: %v, want 6s", got)
	}
	if err := r.runAll(t.Context(), scs, []*target{{name: DirectTarget}, {name: "a"}, {name: "b"}}); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"s/direct": 0, "s/a": 6, "s/b": 9, "shared/direct": 0, "shared/a": 0, "shared/b": 0}
	for _, x := range r.results {
		if w := want[x.Scenario+"/"+x.Target]; x.DurationS != w {
			t.Errorf("%s/%s: duration_s %v, want %v", x.Scenario, x.Target, x.DurationS, w)
		}
	}
	if r.doneWall != 15 || r.doneEst != 6 {
		t.Errorf("done %v s of %v planned, want 15 of 6", r.doneWall, r.doneEst)
	}
	if err := r.phase("starting", 2, func() error { now = now.Add(5 * time.Second); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(r.setup) != 1 || r.setup[0] != (Phase{What: "starting", DurationS: 5}) {
		t.Errorf("setup %+v", r.setup)
	}
	// What is left is scaled by the pace so far, weighed against a minute at the plan's:
	// 250 s for 100 s planned makes (250+60)/(100+60) times the 100 s left.
	r.planned, r.doneEst, r.doneWall = 200, 100, 250
	if got := r.left(); got != 194*time.Second {
		t.Errorf("left %v, want 194s", got)
	}
	r.planned, r.doneEst, r.doneWall = 2000, 1000, 1000
	if got := r.left(); got != 1000*time.Second {
		t.Errorf("left at the plan's pace: %v, want 1000s", got)
	}
}

// TestSelectScenarios checks --scenario's filter.
func TestSelectScenarios(t *testing.T) {
	scs := pgScenarios(suites["full"], &pgEnv{poolSize: 20}, &bins{}, "")
	got := selectScenarios(scs, regexp.MustCompile(`^pg-select-.*-c(1000|5000)$`))
	var names []string
	for _, sc := range got {
		names = append(names, sc.tmpl.Scenario)
	}
	want := []string{"pg-select-simple-c1000", "pg-select-simple-c5000", "pg-select-extended-c1000", "pg-select-prepared-c1000"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("selected %v, want %v", names, want)
	}
	if len(selectScenarios(scs, nil)) != len(scs) {
		t.Error("no filter dropped scenarios")
	}
}

// TestKVSizing checks that each target's redis-benchmark rounds are sized to last about
// the suite's seconds at that target's own throughput, within bounds.
func TestKVSizing(t *testing.T) {
	if got := sizeFor(20000, 1, 1000); got != 20000 {
		t.Errorf("sizeFor 20,000 req/s for 1 s: %d", got)
	}
	if got := sizeFor(100, 1, 1000); got != 1000 {
		t.Errorf("sizeFor below the floor: %d", got)
	}
	if got := sizeFor(1e9, 2, 1000); got != 20_000_000 {
		t.Errorf("sizeFor not bounded: %d", got)
	}
	if got := resize(5000, Sample{Throughput: 8000}, 0.5, 1000); got != 4000 {
		t.Errorf("resize to 0.5 s at 8,000 req/s: %d, want 4000", got)
	}
	if got := resize(5000, Sample{Failure: "x"}, 1, 1000); got != 5000 {
		t.Errorf("resize after a failed round: %d, want the same size", got)
	}
	if got := calibrationRequests(50, 128); got != 12800 {
		t.Errorf("calibration of 50 clients at pipeline 128: %d", got)
	}
}

// TestStopTogether checks that the servers of a set stop at once: every stop has begun
// before any returns, and all have returned when stopTogether does.
func TestStopTogether(t *testing.T) {
	const n = 8
	var begun sync.WaitGroup
	begun.Add(n)
	allBegun := make(chan struct{})
	go func() { begun.Wait(); close(allBegun) }()
	var waited, done atomic.Int32
	stops := make([]func(), n)
	for i := range stops {
		stops[i] = func() {
			begun.Done()
			select {
			case <-allBegun:
				waited.Add(1)
			case <-time.After(10 * time.Second): // one after another: the others never begin
			}
			done.Add(1)
		}
	}
	stopTogether(stops)
	if done.Load() != n || waited.Load() != n {
		t.Errorf("%d stops returned, %d of them after every one had begun; want %d and %d", done.Load(), waited.Load(), n, n)
	}
}
