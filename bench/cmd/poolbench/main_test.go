package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/poolsuite/poolsuite/internal/testenv"
)

// TestRunSmoke runs `poolbench run --suite smoke` end to end: every server and proxy
// started and stopped by poolbench itself, one scenario per protocol, one round. It
// skips when a program is missing, and fails instead under CI=true.
func TestRunSmoke(t *testing.T) {
	for _, names := range required {
		for _, name := range names {
			testenv.LookPath(t, name)
		}
	}
	out := filepath.Join(t.TempDir(), "results")
	var stdout, stderr bytes.Buffer
	root := newRoot(&stdout, &stderr)
	root.SetArgs([]string{"run", "--suite", "smoke", "--out", out})
	if err := root.ExecuteContext(t.Context()); err != nil {
		t.Fatalf("poolbench run: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "left") {
		t.Errorf("no progress on stderr:\n%s", stderr.String())
	}
	r, err := LoadResults(out)
	if err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	if miss := CheckMetrics(r); miss != nil {
		t.Errorf("results.json lacks figures: %v", miss)
	}
	protocols := map[string]bool{}
	for _, x := range r.Results {
		protocols[x.Protocol] = true
		// query_wait_timeout for the overload scenario only, SCRAM for the idle clients;
		// the shared settings elsewhere.
		if x.Protocol == "pg" {
			switch x.Group {
			case "pg-overload":
				if x.Settings["query_wait_timeout"] != "2" {
					t.Errorf("%s/%s: settings %v, want query_wait_timeout 2", x.Scenario, x.Target, x.Settings)
				}
			case "pg-idle":
				if x.Settings["auth_type"] != "scram-sha-256" {
					t.Errorf("%s/%s: settings %v, want auth_type scram-sha-256", x.Scenario, x.Target, x.Settings)
				}
			default:
				if len(x.Settings) != 0 {
					t.Errorf("%s/%s: settings %v, want the shared ones", x.Scenario, x.Target, x.Settings)
				}
			}
		}
		if x.Rounds > 0 && x.DurationS <= 0 {
			t.Errorf("%s/%s: ran %d rounds in duration_s %v", x.Scenario, x.Target, x.Rounds, x.DurationS)
		}
		if x.Rounds == 1 && x.Errors == 0 && x.Throughput <= 0 {
			t.Errorf("%s/%s: no throughput", x.Scenario, x.Target)
		}
		if x.Target != DirectTarget && x.Rounds > 0 && x.CPUUsPerRequest == nil {
			t.Errorf("%s/%s: no proxy CPU per request", x.Scenario, x.Target)
		}
	}
	// poolbench's own clients: idle connections, the overloaded pool, the frozen shard
	// and memcached latencies.
	ran := map[string]int{}
	for _, x := range r.Results {
		if x.Rounds == 0 || x.Target == DirectTarget {
			continue
		}
		switch x.Group {
		case "pg-idle", "kv-idle":
			if x.RSSPerClientBytes == nil || x.Errors != 0 {
				t.Errorf("%s/%s: rss_per_client_bytes %v, errors %d", x.Scenario, x.Target, x.RSSPerClientBytes, x.Errors)
			}
		case "pg-overload", "kv-frozen-s4", "memcache-get":
			if x.P99Ms == nil || x.Throughput <= 0 {
				t.Errorf("%s/%s: no p99 or throughput", x.Scenario, x.Target)
			}
		}
		ran[x.Group]++
	}
	for _, g := range []string{"pg-idle", "kv-idle", "pg-overload", "kv-frozen-s4", "memcache-get"} {
		if ran[g] < 2 {
			t.Errorf("%s ran against %d proxies, want 2 or more", g, ran[g])
		}
	}
	if r.PoolerSettings["auth_type"] != "trust" {
		t.Errorf("pooler_settings %v, want auth_type trust", r.PoolerSettings)
	}
	if len(r.Setup) == 0 || !strings.Contains(string(md), "## Time\n") || !strings.Contains(string(md), "Slowest scenarios") {
		t.Errorf("no setup steps (%v) or no time section in report.md", r.Setup)
	}
	if !strings.Contains(string(md), "Proxy RSS per idle client") {
		t.Error("report.md does not show the RSS per idle client")
	}
	for _, p := range []string{"pg", "kv", "memcache"} {
		if !protocols[p] {
			t.Errorf("no %s scenario ran", p)
		}
	}
	names := TargetNames(r.Results)
	checkOdyssey(t, r, string(md))
	for _, want := range []string{"direct", "pgpool", "pgbouncer", "kvproxy", "nutcracker"} {
		found := false
		for _, n := range names {
			found = found || n == want
		}
		if !found {
			t.Errorf("results.json does not name target %s (has %v)", want, names)
		}
		if !strings.Contains(string(md), "| "+want+" |") {
			t.Errorf("report.md does not name target %s", want)
		}
	}
	svgs, _ := filepath.Glob(filepath.Join(out, "*.svg"))
	if len(svgs) == 0 {
		t.Fatal("no SVG chart written")
	}
	checkSVG(t, filepath.Join(out, "pg-select-simple-throughput.svg"), []string{"direct", "pgpool", "pgbouncer"})
	checkSVG(t, filepath.Join(out, "kv-GET-s2-pipeline-throughput.svg"), []string{"direct", "kvproxy", "nutcracker"})
	checkSVG(t, filepath.Join(out, "pg-idle-rss-per-client.svg"), []string{"pgpool", "pgbouncer"})
	checkSVG(t, filepath.Join(out, "kv-frozen-s4-p99.svg"), []string{"kvproxy", "nutcracker"})
	checkSVG(t, filepath.Join(out, "memcache-get-p99.svg"), []string{"direct", "nutcracker"})
}

// checkOdyssey checks a smoke run's results for odyssey: with it on PATH, it ran every
// PostgreSQL proxy scenario with CPU and RSS figures, its settings those of the others;
// without it, it is listed as skipped, not found, and the run succeeded all the same.
func checkOdyssey(t *testing.T, r *Results, md string) {
	t.Helper()
	for _, d := range r.Detected {
		if d.Name == odysseyName {
			t.Errorf("odyssey listed as detected but not run: %+v", d)
		}
	}
	if _, err := exec.LookPath(odysseyName); err != nil {
		if !slices.Contains(r.Skipped, odysseyMissing) {
			t.Errorf("odyssey is not on PATH, skipped %q does not say so", r.Skipped)
		}
		if slices.Contains(TargetNames(r.Results), odysseyName) {
			t.Error("odyssey is not on PATH, yet a result names it")
		}
		return
	}
	for _, s := range r.Skipped {
		if strings.HasPrefix(s, odysseyName) {
			t.Errorf("odyssey is on PATH, yet skipped: %s", s)
		}
	}
	ran := map[string]bool{}
	for _, x := range r.Results {
		if x.Target != odysseyName {
			continue
		}
		if x.Rounds == 0 || x.CPUUsPerRequest == nil || x.RSSBytes == nil || x.Throughput <= 0 {
			t.Errorf("%s/odyssey: rounds %d, cpu %v, rss %v, throughput %v", x.Scenario, x.Rounds, x.CPUUsPerRequest, x.RSSBytes, x.Throughput)
		}
		ran[x.Group] = true
	}
	for _, g := range []string{"pg-idle", "pg-select-simple", "pg-overload"} {
		if !ran[g] {
			t.Errorf("odyssey did not run %s", g)
		}
	}
	if !strings.Contains(md, "| odyssey |") {
		t.Error("report.md does not name target odyssey")
	}
}
