package main

import (
	"errors"
	"math"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func fp(v float64) *float64 { return &v }

func TestMedianSpread(t *testing.T) {
	for _, c := range []struct {
		in       []float64
		med      float64
		min, max float64
	}{
		{[]float64{3}, 3, 3, 3},
		{[]float64{5, 1, 3}, 3, 1, 5},
		{[]float64{4, 1, 3, 2}, 2.5, 1, 4},
	} {
		m, r, ok := MedianSpread(c.in)
		if !ok || m != c.med || r.Min != c.min || r.Max != c.max {
			t.Errorf("MedianSpread(%v) = %v %+v %v, want %v [%v %v]", c.in, m, r, ok, c.med, c.min, c.max)
		}
	}
	if _, _, ok := MedianSpread(nil); ok {
		t.Error("MedianSpread(nil) has a median")
	}
	in := []float64{5, 1, 3}
	MedianSpread(in)
	if in[0] != 5 {
		t.Error("MedianSpread sorted its argument in place")
	}
}

func TestPercentile(t *testing.T) {
	s := make([]float64, 1000)
	for i := range s {
		s[i] = float64(i + 1)
	}
	for q, want := range map[float64]float64{50: 500, 90: 900, 99: 990, 99.9: 999, 100: 1000, 0.01: 1} {
		if got := Percentile(s, q); got != want {
			t.Errorf("Percentile(1..1000, %v) = %v, want %v", q, got, want)
		}
	}
	if got := Percentile([]float64{7}, 99.9); got != 7 {
		t.Errorf("one value: %v", got)
	}
	if got := Percentile(nil, 50); got != 0 {
		t.Errorf("no values: %v", got)
	}
}

func TestPercentileCDF(t *testing.T) {
	pts := []CDFPoint{{0, 0.1}, {50, 1}, {75, 2}, {87.5, 3}, {93.75, 4}, {100, 10}}
	for q, want := range map[float64]float64{50: 1, 62.5: 1.5, 90: 3.4, 99: 9.04, 100: 10} {
		got, ok := PercentileCDF(pts, q)
		if !ok || math.Abs(got-want) > 1e-9 {
			t.Errorf("PercentileCDF(%v) = %v %v, want %v", q, got, ok, want)
		}
	}
	if _, ok := PercentileCDF(nil, 50); ok {
		t.Error("no points gave a percentile")
	}
}

func TestComputeRatios(t *testing.T) {
	rs := []Result{
		{Scenario: "a", Target: "direct", Throughput: 300, P99Ms: fp(1), Rounds: 1},
		{Scenario: "a", Target: "pgpool", Throughput: 200, P99Ms: fp(2), Rounds: 1},
		{Scenario: "a", Target: "pgbouncer", Throughput: 100, P99Ms: fp(4), Rounds: 1},
		{Scenario: "a", Target: "odd", Throughput: 50, Rounds: 0}, // did not run
		{Scenario: "b", Target: "pgpool", Throughput: 10, P99Ms: fp(1), Rounds: 1},
	}
	ComputeRatios(rs)
	check := func(i int, tp float64, tpPeer string, p99 float64, p99Peer string) {
		t.Helper()
		r := rs[i]
		if r.ThroughputRatio == nil || math.Abs(*r.ThroughputRatio-tp) > 1e-9 || r.ThroughputPeer != tpPeer {
			t.Errorf("%s/%s throughput ratio %v vs %q, want %v vs %q", r.Scenario, r.Target, r.ThroughputRatio, r.ThroughputPeer, tp, tpPeer)
		}
		if r.P99Ratio == nil || math.Abs(*r.P99Ratio-p99) > 1e-9 || r.P99Peer != p99Peer {
			t.Errorf("%s/%s p99 ratio %v vs %q, want %v vs %q", r.Scenario, r.Target, r.P99Ratio, r.P99Peer, p99, p99Peer)
		}
	}
	check(0, 1.5, "pgpool", 0.5, "pgpool") // direct against the best proxy
	check(1, 2, "pgbouncer", 0.5, "pgbouncer")
	check(2, 0.5, "pgpool", 2, "pgpool") // a proxy's peers exclude direct
	if rs[4].ThroughputRatio != nil || rs[4].P99Ratio != nil {
		t.Error("a scenario with one target has ratios")
	}
}

func TestAggregate(t *testing.T) {
	r := Result{Samples: []Sample{
		{Throughput: 100, P99Ms: fp(3), CPUUsPerRequest: fp(10), Errors: 1},
		{Throughput: 300, P99Ms: fp(1)},
		{Throughput: 200, P99Ms: fp(2), CPUUsPerRequest: fp(20)},
		{Failure: "pgbench: exit status 1"},
	}}
	Aggregate(&r)
	if r.Throughput != 200 || *r.P99Ms != 2 || r.Rounds != 4 || r.Errors != 2 {
		t.Errorf("throughput %v p99 %v rounds %d errors %d, want 200 2 4 2", r.Throughput, *r.P99Ms, r.Rounds, r.Errors)
	}
	if got := r.Spread["throughput"]; got != (Range{100, 300}) {
		t.Errorf("throughput spread %+v", got)
	}
	if *r.CPUUsPerRequest != 15 || r.Spread["cpu_us_per_request"] != (Range{10, 20}) {
		t.Errorf("cpu %v spread %+v: want the median of the rounds that have it", *r.CPUUsPerRequest, r.Spread["cpu_us_per_request"])
	}
	if r.P50Ms != nil || r.RSSBytes != nil {
		t.Error("figures no round had are set")
	}
}

func TestResultsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	in := &Results{Schema: SchemaVersion, Suite: "quick", Command: "poolbench run",
		Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Finished: time.Date(2026, 1, 2, 3, 9, 5, 0, time.UTC),
		Machine:  Machine{Hostname: "h", Cores: 2, LoadAvg: [3]float64{0.5, 1, 1.5}},
		Tools:    map[string]string{"pgbench": "pgbench 15"},
		Targets:  []TargetInfo{{Name: "pgpool", Protocol: "pg", Desc: "x"}},
		Detected: []DetectedTool{{Name: "pgcat", Path: "/usr/bin/pgcat", Status: "detected"}},
		Results: []Result{{Scenario: "s", Group: "g", Target: "pgpool", Throughput: 1.5, P50Ms: fp(0.1), P99Ms: fp(2),
			CPUUsPerRequest: fp(3), RSSBytes: fp(1 << 20), Errors: 2, Rounds: 3, Spread: map[string]Range{"throughput": {1, 2}},
			ThroughputRatio: fp(1.1), ThroughputPeer: "pgbouncer", DurationS: 12.5,
			Samples: []Sample{{Throughput: 1.5, P99Ms: fp(2), Requests: 10}}}},
		PoolerSettings: map[string]string{"auth_type": "trust"},
		Setup:          []Phase{{What: "starting PostgreSQL", DurationS: 7.25}},
	}
	if err := SaveResults(dir, in); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(dir + "/results.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"scenario"`, `"target"`, `"throughput"`, `"p50_ms"`, `"p99_ms"`, `"cpu_us_per_request"`, `"rss_bytes"`, `"errors"`, `"rounds"`, `"duration_s": 12.5`, `"setup"`, `"pooler_settings"`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("results.json has no %s", key)
		}
	}
	out, err := LoadResults(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip changed the results:\n%+v\n%+v", in, out)
	}
	in.Schema = 99
	if err := SaveResults(dir, in); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadResults(dir); !errors.Is(err, ErrSchema) {
		t.Errorf("schema 99: %v, want ErrSchema", err)
	}
}

// TestAggregateLoadAverage checks that a result carries the median of its rounds' load
// averages, with its spread.
func TestAggregateLoadAverage(t *testing.T) {
	r := Result{Samples: []Sample{{Throughput: 1, LoadAvg1m: fp(3)}, {Throughput: 1, LoadAvg1m: fp(1)}, {Throughput: 1, LoadAvg1m: fp(2)}}}
	Aggregate(&r)
	if r.LoadAvg1m == nil || *r.LoadAvg1m != 2 || r.Spread["load_average_1m"] != (Range{1, 3}) {
		t.Errorf("load average %v spread %+v, want 2 (1–3)", r.LoadAvg1m, r.Spread["load_average_1m"])
	}
}

// completeResult is a result with every figure a target that ran reports.
func completeResult(scenario, target string) Result {
	x := Result{Scenario: scenario, Group: "g", Target: target, Throughput: 10, P50Ms: fp(1), P90Ms: fp(2), P99Ms: fp(3), P999Ms: fp(4),
		LoadAvg1m: fp(0.5), Rounds: 3, Samples: []Sample{{Throughput: 10}}}
	if target != DirectTarget {
		x.CPUUsPerRequest, x.RSSBytes = fp(5), fp(1<<20)
	}
	return x
}

func TestCheckMetrics(t *testing.T) {
	build := func() *Results {
		r := &Results{Machine: Machine{Cores: 2}, Results: []Result{
			completeResult("s", DirectTarget), completeResult("s", "pgpool"), completeResult("s", "pgbouncer"),
			{Scenario: "s", Target: "odd", Rounds: 0, Note: "not run"},
		}}
		ComputeRatios(r.Results)
		return r
	}
	if got := CheckMetrics(build()); got != nil {
		t.Fatalf("complete results: %v", got)
	}
	for name, c := range map[string]struct {
		change func(r *Results)
		want   string
	}{
		"p90":        {func(r *Results) { r.Results[1].P90Ms = nil }, "s/pgpool: no p90_ms"},
		"p99.9":      {func(r *Results) { r.Results[2].P999Ms = nil }, "s/pgbouncer: no p999_ms"},
		"cpu":        {func(r *Results) { r.Results[1].CPUUsPerRequest = nil }, "s/pgpool: no cpu_us_per_request"},
		"rss":        {func(r *Results) { r.Results[2].RSSBytes = nil }, "s/pgbouncer: no rss_bytes"},
		"load":       {func(r *Results) { r.Results[0].LoadAvg1m = nil }, "s/direct: no load_average_1m"},
		"ratio":      {func(r *Results) { r.Results[0].ThroughputRatio = nil }, "s/direct: no throughput_ratio"},
		"p99 ratio":  {func(r *Results) { r.Results[1].P99Ratio = nil }, "s/pgpool: no p99_ratio"},
		"throughput": {func(r *Results) { r.Results[1].Throughput = 0; r.Results[1].ThroughputRatio = nil }, "s/pgpool: no throughput"},
		"cores":      {func(r *Results) { r.Machine.Cores = 0 }, "machine: no core count"},
		"idle rss": {func(r *Results) {
			for i := range r.Results {
				r.Results[i].Group = "pg-idle"
			}
		}, "s/pgpool: no rss_per_client_bytes"},
	} {
		r := build()
		c.change(r)
		got := CheckMetrics(r)
		if !slices.ContainsFunc(got, func(s string) bool { return s == c.want }) {
			t.Errorf("%s missing: CheckMetrics = %q, want %q among them", name, got, c.want)
		}
	}
	// Direct has no CPU or RSS of a proxy; a target whose every round failed has only errors.
	r := build()
	r.Results[1].Samples = []Sample{{Failure: "pgbench: exit status 1"}}
	r.Results[1].Throughput, r.Results[1].P99Ms = 0, nil
	ComputeRatios(r.Results)
	if got := CheckMetrics(r); got != nil {
		t.Errorf("failed rounds reported as missing figures: %v", got)
	}
}
