package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/poolsuite/poolsuite/internal/pgpool/admin"
)

func TestCollectorFromSnapshot(t *testing.T) {
	taken := time.Unix(1e9, 0)
	s := &admin.Snapshot{
		Taken:   taken,
		Version: "PgBouncer 1.18.0 (pgpool test)",
		Clients: []admin.Client{{ID: 1, PoolDatabase: "app", PoolUser: "u", Waiting: true, WaitStart: taken.Add(-1500 * time.Millisecond)}},
		Pools: []admin.Pool{{Database: "app", User: "u", Mode: "transaction",
			Stats: admin.Totals{Queries: 7, QueryUS: 2_500_000},
			Query: admin.Histogram{Bounds: []float64{0.1, 1}, Counts: []uint64{3, 2}, Count: 6, SumUS: 9_000_000}}},
		Databases: []admin.Database{{Name: "app", Host: "db", Port: 5432, ServerDatabase: "app", PoolSize: 20}},
		Config:    []admin.Setting{{Key: "max_client_conn", Value: "100"}},
		Since:     admin.Sample{At: taken.Add(-time.Minute)},
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(func() *admin.Snapshot { return s }))
	want := `
# HELP pgbouncer_pools_client_maxwait_seconds How long the longest-waiting client has waited, in seconds (maxwait)
# TYPE pgbouncer_pools_client_maxwait_seconds gauge
pgbouncer_pools_client_maxwait_seconds{database="app",user="u"} 1.5
pgbouncer_pools_client_maxwait_seconds{database="pgbouncer",user="pgbouncer"} 0
# HELP pgbouncer_stats_queries_duration_seconds_total Seconds server connections spent running clients' queries
# TYPE pgbouncer_stats_queries_duration_seconds_total counter
pgbouncer_stats_queries_duration_seconds_total{database="app"} 2.5
pgbouncer_stats_queries_duration_seconds_total{database="pgbouncer"} 0
# HELP pgbouncer_databases_pool_size Server connections the pool may open (SHOW DATABASES pool_size)
# TYPE pgbouncer_databases_pool_size gauge
pgbouncer_databases_pool_size{database="app",force_user="",host="db",name="app",pool_mode="",port="5432"} 20
pgbouncer_databases_pool_size{database="pgbouncer",force_user="pgbouncer",host="",name="pgbouncer",pool_mode="statement",port="0"} 2
# HELP pgbouncer_config_max_client_connections The max_client_conn setting
# TYPE pgbouncer_config_max_client_connections gauge
pgbouncer_config_max_client_connections 100
# HELP pgpool_pool_query_duration_seconds Time from a request to its ReadyForQuery
# TYPE pgpool_pool_query_duration_seconds histogram
pgpool_pool_query_duration_seconds_bucket{database="app",user="u",le="0.1"} 3
pgpool_pool_query_duration_seconds_bucket{database="app",user="u",le="1"} 5
pgpool_pool_query_duration_seconds_bucket{database="app",user="u",le="+Inf"} 6
pgpool_pool_query_duration_seconds_sum{database="app",user="u"} 9
pgpool_pool_query_duration_seconds_count{database="app",user="u"} 6
# HELP pgbouncer_up 1 when pgpool answered this scrape
# TYPE pgbouncer_up gauge
pgbouncer_up 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"pgbouncer_pools_client_maxwait_seconds", "pgbouncer_stats_queries_duration_seconds_total",
		"pgbouncer_databases_pool_size", "pgbouncer_config_max_client_connections",
		"pgpool_pool_query_duration_seconds", "pgbouncer_up"); err != nil {
		t.Error(err)
	}
}
