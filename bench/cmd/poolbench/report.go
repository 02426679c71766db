package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// WriteReport writes dir/report.md and, for every scenario group, the charts
// GROUP-throughput.svg and GROUP-p99.svg (one line per target).
func WriteReport(dir string, r *Results) error {
	charts, err := writeCharts(dir, r.Results)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "report.md"), []byte(Markdown(r, charts)), 0o644)
}

// protocolNames names the protocols in reports.
var protocolNames = map[string]string{"pg": "PostgreSQL", "kv": "Redis", "memcache": "memcached"}

// Markdown renders the report; charts maps a group to its chart files.
func Markdown(r *Results, charts map[string][]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# poolbench: %s suite\n\n", r.Suite)
	fmt.Fprintf(&b, "- Command: `%s`\n", r.Command)
	fmt.Fprintf(&b, "- Date: %s (UTC), %v\n", r.Started.Format("2006-01-02 15:04"), r.Finished.Sub(r.Started).Round(1e9))
	m := r.Machine
	fmt.Fprintf(&b, "- Machine: %s, %s, %d cores, %s, load average at start %.2f %.2f %.2f",
		m.Hostname, m.CPUModel, m.Cores, m.Kernel, m.LoadAvg[0], m.LoadAvg[1], m.LoadAvg[2])
	if m.LoadAvgEnd != [3]float64{} {
		fmt.Fprintf(&b, ", at end %.2f %.2f %.2f", m.LoadAvgEnd[0], m.LoadAvgEnd[1], m.LoadAvgEnd[2])
	}
	b.WriteString(" (each table's \"load\" column is the 1-minute load average as its rounds started)\n")
	fmt.Fprintf(&b, "- Each figure is the median of %s alternating rounds (the order of the targets rotates each round), with its spread (min–max).\n",
		roundsText(r.Results))
	b.WriteString("- Ratios compare peers measured in the same run on the same machine: they carry over to other machines, the absolute numbers do not.\n\n")
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, "> **Warning:** %s\n\n", w)
	}
	b.WriteString("| target | protocol | what |\n|---|---|---|\n")
	for _, t := range r.Targets {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", t.Name, protocolNames[t.Protocol], t.Desc)
	}
	b.WriteString("\n")
	for _, d := range r.Detected {
		fmt.Fprintf(&b, "- %s (%s): %s\n", d.Name, d.Path, d.Status)
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(&b, "- Skipped: %s\n", s)
	}
	if len(r.Detected)+len(r.Skipped) > 0 {
		b.WriteString("\n")
	}
	if len(r.PoolerSettings) > 0 {
		fmt.Fprintf(&b, "PostgreSQL poolers' shared settings (every other at PgBouncer's default; a scenario's own are named in its table): %s.\n\n",
			settingsKey(r.PoolerSettings))
	}
	b.WriteString("## Summary\n\n")
	b.WriteString(Summary(r.Results))
	b.WriteString(Timing(r))
	seenGroup := map[string]bool{}
	for _, sc := range Scenarios(r.Results) {
		rows := scenarioRows(r.Results, sc)
		first := rows[0]
		fmt.Fprintf(&b, "## %s\n\n%s; %s.\n\n", sc, first.Title, params(first))
		if !seenGroup[first.Group] {
			seenGroup[first.Group] = true
			for _, c := range charts[first.Group] {
				fmt.Fprintf(&b, "![%s](%s)\n", strings.TrimSuffix(c, ".svg"), c)
			}
			if len(charts[first.Group]) > 0 {
				b.WriteString("\n")
			}
		}
		unit := first.Unit
		fmt.Fprintf(&b, "| target | throughput ratio | p99 ratio | %s | p50 ms | p90 ms | p99 ms | p99.9 ms | proxy CPU µs/req | proxy RSS MiB | errors | rounds | load |\n", unit)
		b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, x := range rows {
			if x.Rounds == 0 {
				fmt.Fprintf(&b, "| %s | %s ||||||||||||\n", x.Target, x.Note)
				continue
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d | %d | %s |\n", x.Target,
				ratio(x.ThroughputRatio, x.ThroughputPeer), ratio(x.P99Ratio, x.P99Peer),
				withSpread(x.Throughput, x.Spread["throughput"], 0),
				optMs(x.P50Ms), optMs(x.P90Ms), withSpreadOpt(x.P99Ms, x.Spread["p99_ms"], 2), optMs(x.P999Ms),
				optNum(x.CPUUsPerRequest, 1, 1), optNum(x.RSSBytes, 1.0/(1<<20), 1), x.Errors, x.Rounds,
				optNum(x.LoadAvg1m, 1, 2))
		}
		if perClient := rssPerClient(rows); perClient != "" {
			b.WriteString("\nProxy RSS per idle client (RSS after opening the clients minus before, over the clients): " + perClient)
		}
		for _, x := range rows {
			if x.Note != "" && x.Rounds > 0 {
				fmt.Fprintf(&b, "\n%s: %s", x.Target, x.Note)
			}
		}
		b.WriteString("\n\n")
	}
	return b.String()
}

// Summary renders one table per protocol: a row per scenario, a column per target,
// each cell the throughput and its ratio to the best peer.
func Summary(rs []Result) string {
	var b strings.Builder
	for _, proto := range []string{"pg", "kv", "memcache"} {
		var sub []Result
		for _, x := range rs {
			if x.Protocol == proto {
				sub = append(sub, x)
			}
		}
		if len(sub) == 0 {
			continue
		}
		targets := TargetNames(sub)
		fmt.Fprintf(&b, "%s, throughput (ratio to the best peer; p99 ratio):\n\n| scenario |", protocolNames[proto])
		for _, t := range targets {
			fmt.Fprintf(&b, " %s |", t)
		}
		b.WriteString("\n|---|" + strings.Repeat("---|", len(targets)) + "\n")
		for _, sc := range Scenarios(sub) {
			if strings.HasPrefix(scenarioRows(sub, sc)[0].Note, "same runs as ") {
				continue
			}
			fmt.Fprintf(&b, "| %s |", sc)
			for _, t := range targets {
				cell := ""
				for _, x := range sub {
					if x.Scenario == sc && x.Target == t && x.Rounds > 0 {
						cell = fmt.Sprintf("%s %s (%s; %s)", thousands(x.Throughput), x.Unit, ratio(x.ThroughputRatio, ""), ratio(x.P99Ratio, ""))
						if x.RSSPerClientBytes != nil {
							cell += fmt.Sprintf(", %s B RSS/client", thousands(*x.RSSPerClientBytes))
						}
					}
				}
				fmt.Fprintf(&b, " %s |", cell)
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	return b.String()
}

// slowestShown is the number of scenarios Timing lists.
const slowestShown = 12

// Timing renders where the run's time went: the run's wall time against the scenarios'
// and the setup's, the groups by time, the slowest scenarios with each target's time,
// and the setup steps. "" for results that recorded no durations.
func Timing(r *Results) string {
	type sc struct {
		name    string
		total   float64
		targets []string
	}
	var scs []sc
	groups := map[string]float64{}
	groupN := map[string]int{}
	var groupOrder []string
	var inScenarios float64
	for _, name := range Scenarios(r.Results) {
		x := sc{name: name}
		for _, res := range scenarioRows(r.Results, name) {
			if res.DurationS <= 0 {
				continue
			}
			x.total += res.DurationS
			x.targets = append(x.targets, fmt.Sprintf("%s %.1f", res.Target, res.DurationS))
			if _, ok := groups[res.Group]; !ok {
				groupOrder = append(groupOrder, res.Group)
			}
			groups[res.Group] += res.DurationS
		}
		if x.total > 0 {
			groupN[scenarioRows(r.Results, name)[0].Group]++
			scs = append(scs, x)
			inScenarios += x.total
		}
	}
	if len(scs) == 0 {
		return ""
	}
	var setup float64
	for _, p := range r.Setup {
		setup += p.DurationS
	}
	var b strings.Builder
	b.WriteString("## Time\n\n")
	wall := r.Finished.Sub(r.Started).Seconds()
	fmt.Fprintf(&b, "The run took %s: %s in the scenarios' rounds (`duration_s` in results.json), %s in setup steps",
		seconds(wall), seconds(inScenarios), seconds(setup))
	if rest := wall - inScenarios - setup; rest >= 1 {
		fmt.Fprintf(&b, ", %s in between", seconds(rest))
	}
	b.WriteString(".\n\n| group | scenarios | seconds | share of the run |\n|---|---|---|---|\n")
	slices.SortStableFunc(groupOrder, func(a, b string) int { return cmpDesc(groups[a], groups[b]) })
	for _, g := range groupOrder {
		fmt.Fprintf(&b, "| %s | %d | %.0f | %s |\n", g, groupN[g], groups[g], share(groups[g], wall))
	}
	slices.SortStableFunc(scs, func(a, b sc) int { return cmpDesc(a.total, b.total) })
	fmt.Fprintf(&b, "\nSlowest scenarios (every round against every target):\n\n| scenario | seconds | share of the run | seconds per target |\n|---|---|---|---|\n")
	for _, x := range scs[:min(len(scs), slowestShown)] {
		fmt.Fprintf(&b, "| %s | %.1f | %s | %s |\n", x.name, x.total, share(x.total, wall), strings.Join(x.targets, ", "))
	}
	if len(r.Setup) > 0 {
		b.WriteString("\nSetup steps:\n\n| step | seconds |\n|---|---|\n")
		for _, p := range r.Setup {
			fmt.Fprintf(&b, "| %s | %.1f |\n", p.What, p.DurationS)
		}
	}
	b.WriteString("\n")
	return b.String()
}

// cmpDesc orders larger values first.
func cmpDesc(a, b float64) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}

// share renders part as a percentage of whole ("" without a whole).
func share(part, whole float64) string {
	if whole <= 0 {
		return ""
	}
	return fmt.Sprintf("%.0f%%", 100*part/whole)
}

// seconds renders a wall time in seconds as minutes and seconds.
func seconds(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(time.Second).String()
}

// rssPerClient renders the RSS per idle client of rows ("" if none has it).
func rssPerClient(rows []Result) string {
	var parts []string
	for _, x := range rows {
		if x.RSSPerClientBytes != nil {
			parts = append(parts, fmt.Sprintf("%s %s bytes (%s–%s)", x.Target, thousands(*x.RSSPerClientBytes),
				thousands(x.Spread["rss_per_client_bytes"].Min), thousands(x.Spread["rss_per_client_bytes"].Max)))
		}
	}
	return strings.Join(parts, "; ")
}

func scenarioRows(rs []Result, sc string) []Result {
	var out []Result
	for _, x := range rs {
		if x.Scenario == sc {
			out = append(out, x)
		}
	}
	return out
}

func params(x Result) string {
	s := fmt.Sprintf("%d clients", x.Clients)
	if x.Pipeline > 0 {
		s += fmt.Sprintf(", pipeline %d", x.Pipeline)
	}
	if x.PoolSize > 0 {
		s += fmt.Sprintf(", pool of %d (transaction mode)", x.PoolSize)
	}
	if x.Shards > 0 {
		s += fmt.Sprintf(", %d shards", x.Shards)
	}
	if x.Protocol == "pg" {
		if len(x.Settings) == 0 {
			s += ", poolers otherwise at PgBouncer's defaults"
		} else {
			s += ", poolers at PgBouncer's defaults but " + settingsKey(x.Settings)
		}
	}
	return s
}

func roundsText(rs []Result) string {
	n := 0
	for _, x := range rs {
		n = max(n, x.Rounds)
	}
	return fmt.Sprint(n)
}

func ratio(v *float64, peer string) string {
	if v == nil {
		return "–"
	}
	if peer == "" {
		return fmt.Sprintf("×%.2f", *v)
	}
	return fmt.Sprintf("×%.2f vs %s", *v, peer)
}

func withSpread(v float64, r Range, prec int) string {
	if r.Min == r.Max {
		return num(v, prec)
	}
	return fmt.Sprintf("%s (%s–%s)", num(v, prec), num(r.Min, prec), num(r.Max, prec))
}

func withSpreadOpt(v *float64, r Range, prec int) string {
	if v == nil {
		return "–"
	}
	return withSpread(*v, r, prec)
}

func optMs(v *float64) string { return optNum(v, 1, 2) }

func optNum(v *float64, scale float64, prec int) string {
	if v == nil {
		return "–"
	}
	return num(*v*scale, prec)
}

func num(v float64, prec int) string {
	if prec == 0 {
		return thousands(v)
	}
	return fmt.Sprintf("%.*f", prec, v)
}

// thousands formats v rounded to an integer with commas between thousands.
func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", math.Round(v))
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

// writeCharts draws, for each group, throughput and p99 against the group's x (clients
// or pipeline), one line per target, and returns the files per group.
func writeCharts(dir string, rs []Result) (map[string][]string, error) {
	files := map[string][]string{}
	var groups []string
	byGroup := map[string][]Result{}
	for _, x := range rs {
		if x.Rounds == 0 {
			continue
		}
		if _, ok := byGroup[x.Group]; !ok {
			groups = append(groups, x.Group)
		}
		byGroup[x.Group] = append(byGroup[x.Group], x)
	}
	for _, g := range groups {
		sub := byGroup[g]
		metrics := []struct {
			file, label string
			get         func(Result) (float64, bool)
		}{
			{"throughput", sub[0].Unit, func(x Result) (float64, bool) { return x.Throughput, x.Throughput > 0 }},
			{"p99", "p99 latency, ms", func(x Result) (float64, bool) {
				if x.P99Ms == nil {
					return 0, false
				}
				return *x.P99Ms, *x.P99Ms > 0
			}},
			{"rss-per-client", "proxy RSS per idle client, bytes", func(x Result) (float64, bool) {
				if x.RSSPerClientBytes == nil {
					return 0, false
				}
				return *x.RSSPerClientBytes, true
			}},
		}
		for _, m := range metrics {
			name := g + "-" + m.file + ".svg"
			ok, err := drawChart(filepath.Join(dir, name), sub[0].Title, sub[0].XName, m.label, sub, m.get)
			if err != nil {
				return nil, err
			}
			if ok {
				files[g] = append(files[g], name)
			}
		}
	}
	return files, nil
}

// drawChart draws one line per target of get against x; ok is false (no file) when no
// result has the figure.
func drawChart(path, title, xname, ylabel string, rs []Result, get func(Result) (float64, bool)) (bool, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xname
	p.Y.Label.Text = ylabel
	p.Legend.Top = true
	var xs []float64
	var lines []any
	for _, t := range TargetNames(rs) {
		var pts plotter.XYs
		for _, x := range rs {
			if v, ok := get(x); ok && x.Target == t {
				pts = append(pts, plotter.XY{X: float64(x.X), Y: v})
				xs = append(xs, float64(x.X))
			}
		}
		if len(pts) == 0 {
			continue
		}
		slices.SortFunc(pts, func(a, b plotter.XY) int { return int(a.X - b.X) })
		lines = append(lines, t, pts)
	}
	if len(lines) == 0 {
		return false, nil
	}
	if err := plotutil.AddLinePoints(p, lines...); err != nil {
		return false, err
	}
	if lo, hi := slices.Min(xs), slices.Max(xs); lo > 0 && hi/lo >= 10 {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	p.Y.Min = 0
	if err := p.Save(7*vg.Inch, 4*vg.Inch, path); err != nil {
		return false, err
	}
	return true, nil
}
