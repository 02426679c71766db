package main

import (
	"context"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestPoolerSettingsPerScenario checks that only the overload scenario runs with
// query_wait_timeout set: the poolers of the other PostgreSQL scenarios keep
// PgBouncer's defaults.
func TestPoolerSettingsPerScenario(t *testing.T) {
	def := poolerSettings(20, 100, nil)
	if _, ok := def["query_wait_timeout"]; ok {
		t.Errorf("default pooler settings set query_wait_timeout: %v", def)
	}
	want := map[string]string{"pool_mode": "transaction", "default_pool_size": "20", "max_client_conn": "200", "auth_type": "scram-sha-256"}
	if !reflect.DeepEqual(def, want) {
		t.Errorf("default pooler settings %v, want %v", def, want)
	}
	if got := poolerSettings(20, 100, map[string]string{"query_wait_timeout": "2"}); got["query_wait_timeout"] != "2" || got["pool_mode"] != "transaction" {
		t.Errorf("settings with query_wait_timeout: %v", got)
	}

	for _, name := range []string{"smoke", "quick", "full"} {
		scs := pgScenarios(suites[name], &pgEnv{poolSize: 20}, &bins{}, "")
		overloads := 0
		for _, sc := range scs {
			if sc.tmpl.Group == "pg-overload" {
				overloads++
				if sc.settings["query_wait_timeout"] != "2" || !reflect.DeepEqual(sc.tmpl.Settings, sc.settings) {
					t.Errorf("%s %s: settings %v, recorded %v", name, sc.tmpl.Scenario, sc.settings, sc.tmpl.Settings)
				}
			} else if len(sc.settings) != 0 || len(sc.tmpl.Settings) != 0 {
				t.Errorf("%s %s: settings %v, want PgBouncer's defaults", name, sc.tmpl.Scenario, sc.settings)
			}
		}
		if overloads != 1 {
			t.Errorf("%s: %d overload scenarios", name, overloads)
		}
		batches := settingsBatches(scs)
		if len(batches) != 2 || len(batches[1]) != 1 || batches[1][0].tmpl.Group != "pg-overload" {
			t.Errorf("%s: batches by settings %d, want the defaults then the overload alone", name, len(batches))
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
	r.plan(scs, 1)
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
