package admin

import (
	"slices"
	"sync"
	"time"
)

// StatsPeriod is how often the averages of SHOW STATS move on to a new interval
// (PgBouncer's stats_period default).
const StatsPeriod = 60 * time.Second

// Sampler keeps the two latest samples of the counters; averages run from the older
// one to now. The pooler keeps one and calls Observe when it takes a snapshot. The
// zero value is ready to use; it is safe for concurrent use.
type Sampler struct {
	mu           sync.Mutex
	older, newer Sample
}

// Observe records the counters cur at now, moving on to a new interval once
// StatsPeriod has passed since the last one began, and returns the start of the
// interval the averages cover: started (with zero counters) until a period has
// passed.
func (s *Sampler) Observe(started, now time.Time, cur map[string]Totals) Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.newer.At.IsZero():
		s.older = Sample{At: started, ByDatabase: map[string]Totals{}}
		s.newer = Sample{At: now, ByDatabase: cur}
	case now.Sub(s.newer.At) >= StatsPeriod:
		s.older = s.newer
		s.newer = Sample{At: now, ByDatabase: cur}
	}
	return s.older
}

// ByDatabase sums the counters of the pools per database, the console's own under
// "pgbouncer".
func (s *Snapshot) ByDatabase() map[string]Totals {
	by := map[string]Totals{ConsoleDatabase: s.Console}
	for _, p := range s.Pools {
		by[p.Database] = by[p.Database].Plus(p.Stats)
	}
	return by
}

// average computes PgBouncer's averages from old to cur over d: counts and bytes per
// second, transaction and query times per transaction and query, wait time and
// prepared statement counts per second.
func average(cur, old Totals, d time.Duration) Totals {
	us := d.Microseconds()
	if us <= 0 {
		return Totals{}
	}
	delta := func(a, b int64) int64 { return max(a-b, 0) }
	dx, dq := delta(cur.Xacts, old.Xacts), delta(cur.Queries, old.Queries)
	avg := Totals{
		Xacts:    1e6 * dx / us,
		Queries:  1e6 * dq / us,
		Received: 1e6 * delta(cur.Received, old.Received) / us,
		Sent:     1e6 * delta(cur.Sent, old.Sent) / us,
		WaitUS:   1e6 * delta(cur.WaitUS, old.WaitUS) / us,

		ClientParses: 1e6 * delta(cur.ClientParses, old.ClientParses) / us,
		ServerParses: 1e6 * delta(cur.ServerParses, old.ServerParses) / us,
		Binds:        1e6 * delta(cur.Binds, old.Binds) / us,
	}
	if dx > 0 {
		avg.XactUS = delta(cur.XactUS, old.XactUS) / dx
	}
	if dq > 0 {
		avg.QueryUS = delta(cur.QueryUS, old.QueryUS) / dq
	}
	return avg
}

// statRows returns the databases in order with their totals and averages.
func (s *Snapshot) statRows() (names []string, totals, avgs map[string]Totals) {
	cur := s.ByDatabase()
	avgs = make(map[string]Totals, len(cur))
	for name, t := range cur {
		names = append(names, name)
		avgs[name] = average(t, s.Since.ByDatabase[name], s.Taken.Sub(s.Since.At))
	}
	slices.Sort(names)
	return names, cur, avgs
}

func (t Totals) values() []any {
	return []any{t.Xacts, t.Queries, t.Received, t.Sent, t.XactUS, t.QueryUS, t.WaitUS,
		t.ClientParses, t.ServerParses, t.Binds}
}

// statCols are the ten numeric columns of SHOW STATS_TOTALS and STATS_AVERAGES:
// PgBouncer 1.18's seven, then the prepared statement counts PgBouncer 1.24 added
// after wait_time, with an avg_ prefix in STATS_AVERAGES (as PgBouncer names them).
func statCols(psPrefix string) *Result {
	return newResult(textCol("database"),
		numericCol("xact_count"), numericCol("query_count"),
		numericCol("bytes_received"), numericCol("bytes_sent"),
		numericCol("xact_time"), numericCol("query_time"), numericCol("wait_time"),
		numericCol(psPrefix+"client_parse_count"), numericCol(psPrefix+"server_parse_count"),
		numericCol(psPrefix+"bind_count"))
}

func showStats(s *Snapshot) *Result {
	names, totals, avgs := s.statRows()
	r := newResult(textCol("database"),
		numericCol("total_xact_count"), numericCol("total_query_count"),
		numericCol("total_received"), numericCol("total_sent"),
		numericCol("total_xact_time"), numericCol("total_query_time"), numericCol("total_wait_time"),
		numericCol("total_client_parse_count"), numericCol("total_server_parse_count"), numericCol("total_bind_count"),
		numericCol("avg_xact_count"), numericCol("avg_query_count"),
		numericCol("avg_recv"), numericCol("avg_sent"),
		numericCol("avg_xact_time"), numericCol("avg_query_time"), numericCol("avg_wait_time"),
		numericCol("avg_client_parse_count"), numericCol("avg_server_parse_count"), numericCol("avg_bind_count"),
		numericCol("pinned_clients")) // pgpool's addition: clients pinned to their server connection now
	pinned := make(map[string]int64)
	for _, p := range s.Pools {
		pinned[p.Database] += p.Pinned
	}
	for _, name := range names {
		row := append([]any{name}, totals[name].values()...)
		row = append(row, avgs[name].values()...)
		r.add(append(row, pinned[name])...)
	}
	return r
}

func showStatsTotals(s *Snapshot) *Result {
	names, totals, _ := s.statRows()
	r := statCols("")
	for _, name := range names {
		r.add(append([]any{name}, totals[name].values()...)...)
	}
	return r
}

func showStatsAverages(s *Snapshot) *Result {
	names, _, avgs := s.statRows()
	r := statCols("avg_")
	for _, name := range names {
		r.add(append([]any{name}, avgs[name].values()...)...)
	}
	return r
}

// showTotals is SHOW TOTALS: the sums over all databases, one row per counter, with
// PgBouncer 1.18's names and the prepared statement counts PgBouncer 1.24 added after
// wait_time (which it names ps_...).
func showTotals(s *Snapshot) *Result {
	var total, old Totals
	for name, t := range s.ByDatabase() {
		total = total.Plus(t)
		old = old.Plus(s.Since.ByDatabase[name])
	}
	avg := average(total, old, s.Taken.Sub(s.Since.At))
	r := newResult(textCol("name"), numericCol("value"))
	names := []string{"xact_count", "query_count", "client_bytes", "server_bytes", "xact_time", "query_time", "wait_time",
		"ps_client_parse_count", "ps_server_parse_count", "ps_bind_count"}
	for i, v := range total.values() {
		r.add("total_"+names[i], v)
	}
	for i, v := range avg.values() {
		r.add("avg_"+names[i], v)
	}
	return r
}
