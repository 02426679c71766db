package metrics

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/poolsuite/poolsuite/internal/pgpool/admin"
)

// column maps a numeric column of a console result to a metric.
type column struct {
	col    string
	name   string // full metric name
	help   string
	kind   prometheus.ValueType
	factor float64
}

// family is the metrics made of one SHOW result: one sample per row and column,
// labelled with the label columns.
type family struct {
	show   string
	labels []string
	cols   []column
}

func gauge(col, name, help string) column {
	return column{col, name, help, prometheus.GaugeValue, 1}
}

func counter(col, name, help string, factor float64) column {
	return column{col, name, help, prometheus.CounterValue, factor}
}

// families are pgbouncer_exporter's mappings of SHOW POOLS, DATABASES, STATS_TOTALS
// and (the names of its releases up to 0.10, which most dashboards use) STATS.
var families = []family{
	{show: "pools", labels: []string{"database", "user"}, cols: []column{
		gauge("cl_active", "pgbouncer_pools_client_active_connections", "Clients served by a server connection now (SHOW POOLS cl_active)"),
		gauge("cl_active_cancel_req", "pgbouncer_pools_client_active_cancel_connections", "Clients whose cancel request was forwarded and is not yet answered (cl_active_cancel_req)"),
		gauge("cl_waiting", "pgbouncer_pools_client_waiting_connections", "Clients waiting for a server connection (cl_waiting)"),
		gauge("cl_waiting_cancel_req", "pgbouncer_pools_client_waiting_cancel_connections", "Clients whose cancel request waits to be forwarded (cl_waiting_cancel_req)"),
		gauge("sv_active", "pgbouncer_pools_server_active_connections", "Server connections serving a client now (sv_active)"),
		gauge("sv_active_cancel", "pgbouncer_pools_server_active_cancel_connections", "Server connections carrying a cancel request now (sv_active_cancel)"),
		gauge("sv_being_canceled", "pgbouncer_pools_server_being_canceled_connections", "Server connections kept from the pool until their cancel requests finish (sv_being_canceled)"),
		gauge("sv_idle", "pgbouncer_pools_server_idle_connections", "Idle server connections ready for a client (sv_idle)"),
		gauge("sv_used", "pgbouncer_pools_server_used_connections", "Server connections to be checked or reset before reuse (sv_used)"),
		gauge("sv_tested", "pgbouncer_pools_server_testing_connections", "Server connections currently running either server_reset_query or server_check_query, shown as connection"),
		gauge("sv_login", "pgbouncer_pools_server_login_connections", "Server connections logging in (sv_login)"),
		gauge("maxwait", "pgbouncer_pools_client_maxwait_seconds", "How long the longest-waiting client has waited, in seconds (maxwait)"),
	}},
	{show: "databases", labels: []string{"name", "host", "port", "database", "force_user", "pool_mode"}, cols: []column{
		gauge("pool_size", "pgbouncer_databases_pool_size", "Server connections the pool may open (SHOW DATABASES pool_size)"),
		gauge("reserve_pool", "pgbouncer_databases_reserve_pool", "Extra server connections allowed once clients have waited reserve_pool_timeout"),
		gauge("max_connections", "pgbouncer_databases_max_connections", "Server connections allowed to this database in all (max_db_connections)"),
		gauge("current_connections", "pgbouncer_databases_current_connections", "Server connections open to this database"),
		gauge("paused", "pgbouncer_databases_paused", "1 if this database is currently paused, else 0"),
		gauge("disabled", "pgbouncer_databases_disabled", "1 if this database is currently disabled, else 0"),
	}},
	{show: "stats_totals", labels: []string{"database"}, cols: []column{
		counter("query_count", "pgbouncer_stats_totals_queries_pooled_total", "Queries run through pgpool", 1),
		counter("query_time", "pgbouncer_stats_totals_queries_duration_seconds_total", "Seconds server connections spent running clients' queries", 1e-6),
		counter("bytes_received", "pgbouncer_stats_totals_received_bytes_total", "Bytes received from clients", 1),
		counter("bytes_sent", "pgbouncer_stats_totals_sent_bytes_total", "Bytes sent to clients", 1),
		counter("wait_time", "pgbouncer_stats_totals_client_wait_seconds_total", "Seconds clients spent waiting for a server connection", 1e-6),
		counter("xact_count", "pgbouncer_stats_totals_sql_transactions_pooled_total", "Transactions run through pgpool", 1),
		counter("xact_time", "pgbouncer_stats_totals_server_in_transaction_seconds_total", "Seconds server connections spent inside clients' transactions, running or idle", 1e-6),
	}},
	{show: "stats", labels: []string{"database"}, cols: []column{
		counter("total_query_count", "pgbouncer_stats_queries_pooled_total", "Queries run through pgpool", 1),
		counter("total_query_time", "pgbouncer_stats_queries_duration_seconds_total", "Seconds server connections spent running clients' queries", 1e-6),
		counter("total_received", "pgbouncer_stats_received_bytes_total", "Bytes received from clients", 1),
		counter("total_sent", "pgbouncer_stats_sent_bytes_total", "Bytes sent to clients", 1),
		counter("total_wait_time", "pgbouncer_stats_client_wait_seconds_total", "Seconds clients spent waiting for a server connection", 1e-6),
		counter("total_xact_count", "pgbouncer_stats_sql_transactions_pooled_total", "Transactions run through pgpool", 1),
		counter("total_xact_time", "pgbouncer_stats_server_in_transaction_seconds_total", "Seconds server connections spent inside clients' transactions, running or idle", 1e-6),
	}},
}

// lists maps the rows of SHOW LISTS to unlabelled gauges, as the exporter names them.
var lists = map[string]struct{ name, help string }{
	"databases":     {"pgbouncer_databases", "Entries in SHOW DATABASES"},
	"users":         {"pgbouncer_users", "Entries in SHOW USERS"},
	"pools":         {"pgbouncer_pools", "Pools, one per database and user"},
	"free_clients":  {"pgbouncer_free_clients", "Client slots free (SHOW LISTS free_clients)"},
	"used_clients":  {"pgbouncer_used_clients", "Client connections in use (SHOW LISTS used_clients)"},
	"login_clients": {"pgbouncer_login_clients", "Clients logging in"},
	"free_servers":  {"pgbouncer_free_servers", "Server slots free (SHOW LISTS free_servers)"},
	"used_servers":  {"pgbouncer_used_servers", "Server connections in use (SHOW LISTS used_servers)"},
	"dns_names":     {"pgbouncer_cached_dns_names", "Host names cached (pgpool resolves through Go; always 0)"},
	"dns_zones":     {"pgbouncer_cached_dns_zones", "DNS zones cached (always 0)"},
	"dns_queries":   {"pgbouncer_in_flight_dns_queries", "DNS queries in flight (always 0)"},
}

// configs maps settings of SHOW CONFIG to gauges.
var configs = map[string]struct{ name, help string }{
	"max_client_conn":      {"pgbouncer_config_max_client_connections", "The max_client_conn setting"},
	"max_user_connections": {"pgbouncer_config_max_user_connections", "The max_user_connections setting"},
}

var (
	upDesc      = prometheus.NewDesc("pgbouncer_up", "1 when pgpool answered this scrape", nil, nil)
	versionDesc = prometheus.NewDesc("pgbouncer_version_info", "pgpool's version, as SHOW VERSION says it", []string{"version"}, nil)
	poolLabels  = []string{"database", "user"}
	waitDesc    = prometheus.NewDesc("pgpool_pool_client_wait_seconds", "Time clients waited for a server connection", poolLabels, nil)
	xactDesc    = prometheus.NewDesc("pgpool_pool_transaction_duration_seconds", "Time from a transaction's first request to its end, or of a request outside a transaction", poolLabels, nil)
	queryDesc   = prometheus.NewDesc("pgpool_pool_query_duration_seconds", "Time from a request to its ReadyForQuery", poolLabels, nil)
)

// Collector is a prometheus.Collector that reads a snapshot at each scrape. It is
// unchecked: the metrics depend on the pools there are.
type Collector struct {
	snapshot func() *admin.Snapshot
	descs    map[string]*prometheus.Desc // by metric name
}

// NewCollector returns a Collector reading snapshots from snapshot.
func NewCollector(snapshot func() *admin.Snapshot) *Collector {
	c := &Collector{snapshot: snapshot, descs: make(map[string]*prometheus.Desc)}
	for _, f := range families {
		for _, col := range f.cols {
			c.descs[col.name] = prometheus.NewDesc(col.name, col.help, f.labels, nil)
		}
	}
	for _, m := range lists {
		c.descs[m.name] = prometheus.NewDesc(m.name, m.help, nil, nil)
	}
	for _, m := range configs {
		c.descs[m.name] = prometheus.NewDesc(m.name, m.help, nil, nil)
	}
	return c
}

// Describe sends nothing: the collector is unchecked.
func (c *Collector) Describe(chan<- *prometheus.Desc) {}

// Collect takes a snapshot and sends its metrics.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.snapshot()
	ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(versionDesc, prometheus.GaugeValue, 1, s.Version)
	for _, f := range families {
		r, _ := admin.Show(s, f.show)
		c.collectFamily(ch, f, r)
	}
	if r, ok := admin.Show(s, "lists"); ok {
		names, items := r.Column("list"), r.Column("items")
		for i, name := range names {
			if m, ok := lists[name]; ok {
				c.gauge(ch, m.name, items[i])
			}
		}
	}
	if r, ok := admin.Show(s, "config"); ok {
		keys, vals := r.Column("key"), r.Column("value")
		for i, key := range keys {
			if m, ok := configs[key]; ok {
				c.gauge(ch, m.name, vals[i])
			}
		}
	}
	for _, p := range s.Pools {
		if p.Closed {
			continue
		}
		histogram(ch, waitDesc, p.Wait, p.Database, p.User)
		histogram(ch, xactDesc, p.Xact, p.Database, p.User)
		histogram(ch, queryDesc, p.Query, p.Database, p.User)
	}
}

func (c *Collector) gauge(ch chan<- prometheus.Metric, name, val string) {
	if v, err := strconv.ParseFloat(val, 64); err == nil {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.GaugeValue, v)
	}
}

// collectFamily sends one sample per row and mapped column of r. NULL labels are
// empty, as the exporter has them.
func (c *Collector) collectFamily(ch chan<- prometheus.Metric, f family, r *admin.Result) {
	idx := make(map[string]int, len(r.Columns))
	for i, col := range r.Columns {
		idx[col.Name] = i
	}
	for _, row := range r.Rows {
		labels := make([]string, len(f.labels))
		for i, l := range f.labels {
			if j, ok := idx[l]; ok {
				labels[i] = string(row[j])
			}
		}
		for _, col := range f.cols {
			j, ok := idx[col.col]
			if !ok {
				continue
			}
			v, err := strconv.ParseFloat(string(row[j]), 64)
			if err != nil {
				continue
			}
			if col.col == "maxwait" {
				// maxwait_us adds the microseconds the exporter drops.
				if k, ok := idx["maxwait_us"]; ok {
					us, _ := strconv.ParseFloat(string(row[k]), 64)
					v += us * 1e-6
				}
			}
			ch <- prometheus.MustNewConstMetric(c.descs[col.name], col.kind, v*col.factor, labels...)
		}
	}
}

// histogram sends a snapshot's histogram as a Prometheus one (cumulative buckets).
func histogram(ch chan<- prometheus.Metric, d *prometheus.Desc, h admin.Histogram, labels ...string) {
	buckets := make(map[float64]uint64, len(h.Bounds))
	var cum uint64
	for i, b := range h.Bounds {
		if i < len(h.Counts) {
			cum += h.Counts[i]
		}
		buckets[b] = cum
	}
	ch <- prometheus.MustNewConstHistogram(d, h.Count, float64(h.SumUS)*1e-6, buckets, labels...)
}

// Handler serves the metrics of the snapshots, with the Go runtime's and the
// process's, in Prometheus' text format.
func Handler(snapshot func() *admin.Snapshot) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(snapshot),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
