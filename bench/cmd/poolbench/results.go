package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// SchemaVersion is the version of results.json this program writes and reads.
const SchemaVersion = 1

// ErrSchema is returned by LoadResults for a results.json of another schema version.
var ErrSchema = errors.New("poolbench: unsupported results.json schema")

// Results is the whole of results.json: one run of a suite.
type Results struct {
	Schema   int       `json:"schema"`
	Suite    string    `json:"suite"`
	Command  string    `json:"command"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Machine  Machine   `json:"machine"`

	// Tools maps each program used to its version line.
	Tools map[string]string `json:"tools"`

	// Targets lists every target that ran, per protocol.
	Targets []TargetInfo `json:"targets"`

	// Detected lists other poolers found on PATH that poolbench does not run.
	Detected []DetectedTool `json:"detected,omitempty"`

	// Skipped lists what did not run and why (a missing tool, a refused configuration).
	Skipped []string `json:"skipped,omitempty"`

	// Warnings are conditions that make figures less trustworthy (a loaded machine).
	Warnings []string `json:"warnings,omitempty"`

	// PoolerSettings are the pgbouncer.ini [pgbouncer] settings every PostgreSQL
	// scenario's poolers share (a scenario's own settings are in its results).
	PoolerSettings map[string]string `json:"pooler_settings,omitempty"`

	// Setup lists the steps of the run outside the scenarios (building, starting
	// servers and proxies, filling tables and keys), in order, with their wall time.
	Setup []Phase `json:"setup,omitempty"`

	Results []Result `json:"results"`
}

// Machine describes where the run happened.
type Machine struct {
	Hostname string     `json:"hostname"`
	Kernel   string     `json:"kernel"`
	CPUModel string     `json:"cpu_model"`
	Cores    int        `json:"cores"`
	LoadAvg  [3]float64 `json:"load_average"` // 1, 5 and 15 minutes, at start
	// LoadAvgEnd is the load average when the run ended (zero if it was not read).
	LoadAvgEnd [3]float64 `json:"load_average_end"`
	GoVersion  string     `json:"go_version"`
}

// TargetInfo is one target of one protocol.
type TargetInfo struct {
	Name     string `json:"name"`
	Protocol string `json:"protocol"` // "pg", "kv" (Redis) or "memcache"
	Desc     string `json:"desc"`
}

// DetectedTool is a pooler found on PATH that poolbench knows of but does not run.
type DetectedTool struct {
	Name   string `json:"name"`
	Path   string `json:"path"`
	Status string `json:"status"`
}

// Phase is one step of a run outside the scenarios and its wall time.
type Phase struct {
	What      string  `json:"what"`
	DurationS float64 `json:"duration_s"`
}

// Range is the spread of a figure over the rounds.
type Range struct {
	Min float64 `json:"min"`
	Max float64 `json:"max"`
}

// Sample is one round of one scenario against one target.
type Sample struct {
	Throughput      float64  `json:"throughput"`
	P50Ms           *float64 `json:"p50_ms"`
	P90Ms           *float64 `json:"p90_ms"`
	P99Ms           *float64 `json:"p99_ms"`
	P999Ms          *float64 `json:"p999_ms"`
	CPUUsPerRequest *float64 `json:"cpu_us_per_request"`
	RSSBytes        *float64 `json:"rss_bytes"`
	// RSSPerClientBytes is the idle-clients scenarios' growth of the proxy's RSS per
	// client held open.
	RSSPerClientBytes *float64 `json:"rss_per_client_bytes,omitempty"`
	Errors            int64    `json:"errors"`
	// LoadAvg1m is the machine's 1-minute load average when the round started.
	LoadAvg1m *float64 `json:"load_average_1m"`
	Requests  int64    `json:"requests"`
	Seconds   float64  `json:"seconds"`
	Failure   string   `json:"failure,omitempty"`
}

// Result is the figures of one scenario against one target: each the median of the
// rounds, with its spread.
type Result struct {
	Scenario string `json:"scenario"`
	Group    string `json:"group"`
	Title    string `json:"title"`
	Protocol string `json:"protocol"`
	XName    string `json:"x_name"`
	X        int    `json:"x"`
	Clients  int    `json:"clients"`
	Pipeline int    `json:"pipeline,omitempty"`
	Shards   int    `json:"shards,omitempty"`
	PoolSize int    `json:"pool_size,omitempty"`
	Target   string `json:"target"`
	Unit     string `json:"unit"`
	// Settings are the pooler settings of this scenario other than those every
	// scenario shares (pool_mode, default_pool_size, max_client_conn, auth_type);
	// every other setting is PgBouncer's default. Absent for none.
	Settings map[string]string `json:"settings,omitempty"`

	Throughput      float64  `json:"throughput"`
	P50Ms           *float64 `json:"p50_ms"`
	P90Ms           *float64 `json:"p90_ms"`
	P99Ms           *float64 `json:"p99_ms"`
	P999Ms          *float64 `json:"p999_ms"`
	CPUUsPerRequest *float64 `json:"cpu_us_per_request"`
	RSSBytes        *float64 `json:"rss_bytes"`
	// RSSPerClientBytes is the median growth of the proxy's RSS per idle client
	// (idle-clients scenarios only).
	RSSPerClientBytes *float64 `json:"rss_per_client_bytes,omitempty"`
	Errors            int64    `json:"errors"`
	// LoadAvg1m is the median over the rounds of the machine's 1-minute load average
	// when each started: how much other work competed with this scenario.
	LoadAvg1m *float64 `json:"load_average_1m"`
	Rounds    int      `json:"rounds"`
	// DurationS is the wall time, in seconds, of this scenario's rounds against this
	// target: the runs themselves and what each needs (sizing runs, reading logs). 0
	// for a result that shares another scenario's runs (see note) or did not run.
	DurationS float64 `json:"duration_s"`

	// Spread maps "throughput", "p50_ms", ... to the minimum and maximum over rounds.
	Spread map[string]Range `json:"spread"`

	// ThroughputRatio is Throughput over the best peer's; P99Ratio is P99Ms over the
	// best (lowest) peer's. Peers are the other targets of the scenario, direct
	// excepted (direct's own ratios are against the best proxy). Nil without peers.
	ThroughputRatio *float64 `json:"throughput_ratio"`
	ThroughputPeer  string   `json:"throughput_peer,omitempty"`
	P99Ratio        *float64 `json:"p99_ratio"`
	P99Peer         string   `json:"p99_peer,omitempty"`

	Note    string   `json:"note,omitempty"`
	Samples []Sample `json:"samples"`
}

// SaveResults writes r to dir/results.json.
func SaveResults(dir string, r *Results) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "results.json"), append(b, '\n'), 0o644)
}

// LoadResults reads dir/results.json.
func LoadResults(dir string) (*Results, error) {
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		return nil, err
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("poolbench: results.json: %w", err)
	}
	if r.Schema != SchemaVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrSchema, r.Schema, SchemaVersion)
	}
	return &r, nil
}

// Aggregate fills res's figures from its samples: the median of each, with its spread;
// errors are summed. Failed samples count in errors only.
func Aggregate(res *Result) {
	var ok []Sample
	res.Errors = 0
	for _, s := range res.Samples {
		res.Errors += s.Errors
		if s.Failure == "" {
			ok = append(ok, s)
		} else if s.Errors == 0 {
			res.Errors++
		}
	}
	res.Rounds = len(res.Samples)
	res.Spread = map[string]Range{}
	tp := make([]float64, len(ok))
	for i, s := range ok {
		tp[i] = s.Throughput
	}
	if m, r, has := MedianSpread(tp); has {
		res.Throughput = m
		res.Spread["throughput"] = r
	}
	opt := func(name string, get func(Sample) *float64) *float64 {
		var xs []float64
		for _, s := range ok {
			if v := get(s); v != nil {
				xs = append(xs, *v)
			}
		}
		m, r, has := MedianSpread(xs)
		if !has {
			return nil
		}
		res.Spread[name] = r
		return &m
	}
	res.P50Ms = opt("p50_ms", func(s Sample) *float64 { return s.P50Ms })
	res.P90Ms = opt("p90_ms", func(s Sample) *float64 { return s.P90Ms })
	res.P99Ms = opt("p99_ms", func(s Sample) *float64 { return s.P99Ms })
	res.P999Ms = opt("p999_ms", func(s Sample) *float64 { return s.P999Ms })
	res.CPUUsPerRequest = opt("cpu_us_per_request", func(s Sample) *float64 { return s.CPUUsPerRequest })
	res.RSSBytes = opt("rss_bytes", func(s Sample) *float64 { return s.RSSBytes })
	res.RSSPerClientBytes = opt("rss_per_client_bytes", func(s Sample) *float64 { return s.RSSPerClientBytes })
	res.LoadAvg1m = opt("load_average_1m", func(s Sample) *float64 { return s.LoadAvg1m })
}

// Scenarios returns the scenario names of rs in first-seen order.
func Scenarios(rs []Result) []string {
	var names []string
	seen := map[string]bool{}
	for _, r := range rs {
		if !seen[r.Scenario] {
			seen[r.Scenario] = true
			names = append(names, r.Scenario)
		}
	}
	return names
}

// TargetNames returns the distinct targets of rs, sorted.
func TargetNames(rs []Result) []string {
	seen := map[string]bool{}
	var names []string
	for _, r := range rs {
		if !seen[r.Target] {
			seen[r.Target] = true
			names = append(names, r.Target)
		}
	}
	sort.Strings(names)
	return names
}

// CheckMetrics returns what results.json lacks of the figures every scenario reports
// for every target that ran: throughput, p50/p90/p99/p99.9, the machine's load
// average as its rounds started, the proxy's CPU per request and RSS (proxies), RSS
// per idle client (idle-clients scenarios), and the ratios to the best peer when the
// scenario has one; and the machine's core count. Errors are always present. Nil when
// nothing is missing.
func CheckMetrics(r *Results) []string {
	var out []string
	if r.Machine.Cores <= 0 {
		out = append(out, "machine: no core count")
	}
	for _, x := range r.Results {
		ok := 0
		for _, s := range x.Samples {
			if s.Failure == "" {
				ok++
			}
		}
		if x.Rounds == 0 || ok == 0 {
			continue // not run (see note) or every round failed (counted in errors)
		}
		var miss []string
		need := func(name string, has bool) {
			if !has {
				miss = append(miss, name)
			}
		}
		need("throughput", x.Throughput > 0)
		need("p50_ms", x.P50Ms != nil)
		need("p90_ms", x.P90Ms != nil)
		need("p99_ms", x.P99Ms != nil)
		need("p999_ms", x.P999Ms != nil)
		need("load_average_1m", x.LoadAvg1m != nil)
		if x.Target != DirectTarget {
			need("cpu_us_per_request", x.CPUUsPerRequest != nil)
			need("rss_bytes", x.RSSBytes != nil)
		}
		if strings.HasSuffix(x.Group, "-idle") && x.Target != DirectTarget {
			need("rss_per_client_bytes", x.RSSPerClientBytes != nil)
		}
		peerTP, peerP99 := false, false
		for _, p := range r.Results {
			if p.Scenario != x.Scenario || p.Target == x.Target || p.Target == DirectTarget || p.Rounds == 0 {
				continue
			}
			peerTP = peerTP || p.Throughput > 0
			peerP99 = peerP99 || (p.P99Ms != nil && *p.P99Ms > 0)
		}
		if peerTP && x.Throughput > 0 {
			need("throughput_ratio", x.ThroughputRatio != nil)
		}
		if peerP99 && x.P99Ms != nil {
			need("p99_ratio", x.P99Ratio != nil)
		}
		if len(miss) > 0 {
			out = append(out, fmt.Sprintf("%s/%s: no %s", x.Scenario, x.Target, strings.Join(miss, ", ")))
		}
	}
	return out
}
