package main

import (
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// checkSVG fails unless path is well-formed XML with an <svg> root that names every
// one of targets.
func checkSVG(t *testing.T, path string, targets []string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(strings.NewReader(string(b)))
	root := ""
	var text strings.Builder
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s is not XML: %v", path, err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = tok.Name.Local
			}
		case xml.CharData:
			text.Write(tok)
		}
	}
	if root != "svg" {
		t.Errorf("%s: root element %q, want svg", path, root)
	}
	for _, name := range targets {
		if !strings.Contains(text.String(), name) {
			t.Errorf("%s does not name target %s", path, name)
		}
	}
}

func TestReportFromFixture(t *testing.T) {
	fixture, err := os.ReadFile("testdata/fixture-results.json")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "results.json"), fixture, 0o644); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	root := newRoot(&out, io.Discard)
	root.SetArgs([]string{"report", dir})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	r, err := LoadResults(dir)
	if err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	report := string(md)
	for _, sc := range Scenarios(r.Results) {
		if !strings.Contains(report, "## "+sc+"\n") {
			t.Errorf("report.md has no table for %s", sc)
		}
	}
	for _, x := range r.Results {
		if !strings.Contains(report, "| "+x.Target+" | ") {
			t.Errorf("report.md does not name %s", x.Target)
		}
	}
	// Ratios come first in each scenario's table.
	if !strings.Contains(report, "| target | throughput ratio | p99 ratio |") {
		t.Error("scenario tables do not start with the ratios")
	}
	svgs, _ := filepath.Glob(filepath.Join(dir, "*.svg"))
	if len(svgs) == 0 {
		t.Fatal("no SVG written")
	}
	for _, g := range []string{"pg-select-simple", "kv-GET-s2-pipeline"} {
		var targets []string
		for _, x := range r.Results {
			if x.Group == g {
				targets = append(targets, x.Target)
			}
		}
		if len(targets) == 0 {
			t.Fatalf("fixture has no group %s", g)
		}
		for _, m := range []string{"throughput", "p99"} {
			name := g + "-" + m + ".svg"
			if !strings.Contains(report, "]("+name+")") {
				t.Errorf("report.md does not show %s", name)
			}
			checkSVG(t, filepath.Join(dir, name), targets)
		}
	}
	// memcslap gives no latencies: no p99 chart for it.
	if _, err := os.Stat(filepath.Join(dir, "memcache-get-p99.svg")); err == nil {
		t.Error("a p99 chart without p99 figures")
	}
}

func TestThousands(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1234567.6: "1,234,568", -1500: "-1,500"} {
		if got := thousands(v); got != want {
			t.Errorf("thousands(%v) = %q, want %q", v, got, want)
		}
	}
}

// TestTiming checks that report.md shows where the run's time went: the slowest
// scenarios first with each target's time, the groups, and the setup steps.
func TestTiming(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := &Results{Suite: "quick", Started: start, Finished: start.Add(100 * time.Second),
		Setup: []Phase{{What: "starting PostgreSQL", DurationS: 10}},
		Results: []Result{
			{Scenario: "fast", Group: "g1", Target: "a", Rounds: 3, DurationS: 5},
			{Scenario: "slow", Group: "g2", Target: "a", Rounds: 3, DurationS: 30},
			{Scenario: "slow", Group: "g2", Target: "b", Rounds: 3, DurationS: 40},
			{Scenario: "slow", Group: "g2", Target: DirectTarget, Note: "not run"},
			{Scenario: "shared", Group: "g3", Target: "a", Rounds: 3, Note: "same runs as slow"},
		}}
	md := Timing(r)
	for _, want := range []string{
		"The run took 1m40s: 1m15s in the scenarios' rounds",
		"10s in setup steps, 15s in between",
		"| g2 | 1 | 70 | 70% |\n| g1 | 1 | 5 | 5% |\n",
		"| slow | 70.0 | 70% | a 30.0, b 40.0 |\n| fast | 5.0 | 5% | a 5.0 |\n",
		"| starting PostgreSQL | 10.0 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("time section lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "shared") {
		t.Errorf("a scenario sharing another's runs is counted:\n%s", md)
	}
	if !strings.Contains(Markdown(r, nil), "## Time\n") {
		t.Error("report.md has no time section")
	}
	// Results of a run that recorded no durations have no time section.
	for i := range r.Results {
		r.Results[i].DurationS = 0
	}
	if got := Timing(r); got != "" {
		t.Errorf("time section without durations: %q", got)
	}
}
