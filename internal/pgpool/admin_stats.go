package pgpool

import (
	"slices"
	"time"
)

// statsPeriod is how often the averages of SHOW STATS move on to a new interval
// (PgBouncer's stats_period default).
const statsPeriod = 60 * time.Second

// statTotals are the counters SHOW STATS reports for one database.
type statTotals struct {
	xacts, queries  int64
	received, sent  int64 // bytes from clients, bytes to clients
	xactUS, queryUS int64
	waitUS          int64
}

func (t *statTotals) add(st *poolStats) {
	t.xacts += st.xactCount.Load()
	t.queries += st.queryCount.Load()
	t.received += st.received.Load()
	t.sent += st.sent.Load()
	t.xactUS += st.xactTime.Load()
	t.queryUS += st.queryTime.Load()
	t.waitUS += st.waitTimeUS.Load()
}

func (t *statTotals) plus(u statTotals) {
	t.xacts += u.xacts
	t.queries += u.queries
	t.received += u.received
	t.sent += u.sent
	t.xactUS += u.xactUS
	t.queryUS += u.queryUS
	t.waitUS += u.waitUS
}

// statSample is the counters of every database at one moment.
type statSample struct {
	at   time.Time
	byDB map[string]statTotals
}

// statSamples keeps the two latest samples; averages run from the older one to now.
type statSamples struct {
	older, newer statSample
}

// collectStats sums the counters of the pools per database, the console's own under
// "pgbouncer".
func (pl *Pooler) collectStats() map[string]statTotals {
	by := make(map[string]statTotals)
	var console statTotals
	console.add(&pl.admin.console)
	by[adminDatabase] = console
	for _, p := range pl.poolList() {
		t := by[p.database]
		t.add(&p.stats)
		by[p.database] = t
	}
	return by
}

// statsNow returns the current counters per database and the start of the interval
// the averages cover, with the counters then.
func (pl *Pooler) statsNow() (now time.Time, cur map[string]statTotals, since statSample) {
	now = time.Now()
	cur = pl.collectStats()
	a := &pl.admin
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.stats.newer.at.IsZero():
		a.stats.older = statSample{at: pl.startedAt, byDB: map[string]statTotals{}}
		a.stats.newer = statSample{at: now, byDB: cur}
	case now.Sub(a.stats.newer.at) >= statsPeriod:
		a.stats.older = a.stats.newer
		a.stats.newer = statSample{at: now, byDB: cur}
	}
	return now, cur, a.stats.older
}

// average computes PgBouncer's averages from old to cur over d: counts and bytes per
// second, transaction and query times per transaction and query, wait time per second.
func average(cur, old statTotals, d time.Duration) statTotals {
	us := d.Microseconds()
	if us <= 0 {
		return statTotals{}
	}
	delta := func(a, b int64) int64 { return max(a-b, 0) }
	dx, dq := delta(cur.xacts, old.xacts), delta(cur.queries, old.queries)
	avg := statTotals{
		xacts:    1e6 * dx / us,
		queries:  1e6 * dq / us,
		received: 1e6 * delta(cur.received, old.received) / us,
		sent:     1e6 * delta(cur.sent, old.sent) / us,
		waitUS:   1e6 * delta(cur.waitUS, old.waitUS) / us,
	}
	if dx > 0 {
		avg.xactUS = delta(cur.xactUS, old.xactUS) / dx
	}
	if dq > 0 {
		avg.queryUS = delta(cur.queryUS, old.queryUS) / dq
	}
	return avg
}

// statRows returns the databases in order with their totals and averages.
func (pl *Pooler) statRows() (names []string, totals, avgs map[string]statTotals) {
	now, cur, since := pl.statsNow()
	avgs = make(map[string]statTotals, len(cur))
	for name, t := range cur {
		names = append(names, name)
		avgs[name] = average(t, since.byDB[name], now.Sub(since.at))
	}
	slices.Sort(names)
	return names, cur, avgs
}

func (t statTotals) values() []any {
	return []any{t.xacts, t.queries, t.received, t.sent, t.xactUS, t.queryUS, t.waitUS}
}

// statCols are the seven numeric columns of SHOW STATS_TOTALS and STATS_AVERAGES.
func statCols() *adminResult {
	return newResult(textCol("database"),
		numericCol("xact_count"), numericCol("query_count"),
		numericCol("bytes_received"), numericCol("bytes_sent"),
		numericCol("xact_time"), numericCol("query_time"), numericCol("wait_time"))
}

func (c *client) showStats() (*adminResult, error) {
	names, totals, avgs := c.pl.statRows()
	r := newResult(textCol("database"),
		numericCol("total_xact_count"), numericCol("total_query_count"),
		numericCol("total_received"), numericCol("total_sent"),
		numericCol("total_xact_time"), numericCol("total_query_time"), numericCol("total_wait_time"),
		numericCol("avg_xact_count"), numericCol("avg_query_count"),
		numericCol("avg_recv"), numericCol("avg_sent"),
		numericCol("avg_xact_time"), numericCol("avg_query_time"), numericCol("avg_wait_time"),
		numericCol("pinned_clients")) // pgpool's addition: clients pinned to their server connection now
	pinned := make(map[string]int64)
	for _, p := range c.pl.poolList() {
		pinned[p.database] += p.stats.pinned.Load()
	}
	for _, name := range names {
		row := append([]any{name}, totals[name].values()...)
		row = append(row, avgs[name].values()...)
		r.add(append(row, pinned[name])...)
	}
	return r, nil
}

func (c *client) showStatsTotals() (*adminResult, error) {
	names, totals, _ := c.pl.statRows()
	r := statCols()
	for _, name := range names {
		r.add(append([]any{name}, totals[name].values()...)...)
	}
	return r, nil
}

func (c *client) showStatsAverages() (*adminResult, error) {
	names, _, avgs := c.pl.statRows()
	r := statCols()
	for _, name := range names {
		r.add(append([]any{name}, avgs[name].values()...)...)
	}
	return r, nil
}

// showTotals is SHOW TOTALS: the sums over all databases, one row per counter, with
// PgBouncer 1.18's names.
func (c *client) showTotals() (*adminResult, error) {
	now, cur, since := c.pl.statsNow()
	var total, old statTotals
	for name, t := range cur {
		total.plus(t)
		old.plus(since.byDB[name])
	}
	avg := average(total, old, now.Sub(since.at))
	r := newResult(textCol("name"), numericCol("value"))
	names := []string{"xact_count", "query_count", "client_bytes", "server_bytes", "xact_time", "query_time", "wait_time"}
	for i, v := range total.values() {
		r.add("total_"+names[i], v)
	}
	for i, v := range avg.values() {
		r.add("avg_"+names[i], v)
	}
	return r, nil
}
