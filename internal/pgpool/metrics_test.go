package pgpool

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/poolsuite/poolsuite/internal/testenv"
)

// scrape fetches the pooler's /metrics and parses it.
func scrape(t *testing.T, pl *Pooler) ([]byte, map[string]*dto.MetricFamily) {
	t.Helper()
	a := pl.MetricsAddr()
	if a == nil {
		t.Fatal("no metrics endpoint")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.String()+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, body)
	}
	return body, fams
}

// sample returns the value of the metric with exactly these labels among those
// labels name; for a histogram its sample count. ok is false if there is none.
func sample(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		for k, v := range labels {
			found := false
			for _, lp := range m.Label {
				if lp.GetName() == k {
					found = lp.GetValue() == v
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

func TestMetricsEndpoint(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.MetricsListen = "127.0.0.1:0"
	pl, addr := startPooler(t, cfg)
	ctx := context.Background()
	app := connect(t, f.connString(addr))
	if _, err := app.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	_, before := scrape(t, pl)
	pool := map[string]string{"database": f.db, "user": f.user}
	db := map[string]string{"database": f.db}
	q0, _ := sample(before, "pgbouncer_stats_queries_pooled_total", db)

	const n = 20
	for i := 0; i < n; i++ {
		if _, err := app.Exec(ctx, "select pg_sleep(0.001)"); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := app.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	// During the transaction the client holds a server connection.
	body, fams := scrape(t, pl)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	// pgbouncer_exporter's names, with its labels.
	for _, m := range []struct {
		name   string
		labels map[string]string
	}{
		{"pgbouncer_up", nil},
		{"pgbouncer_version_info", map[string]string{"version": VersionString}},
		{"pgbouncer_pools_client_waiting_connections", pool},
		{"pgbouncer_pools_server_idle_connections", pool},
		{"pgbouncer_pools_server_used_connections", pool},
		{"pgbouncer_pools_server_login_connections", pool},
		{"pgbouncer_pools_client_maxwait_seconds", pool},
		{"pgbouncer_pools_client_active_connections", map[string]string{"database": "pgbouncer", "user": "pgbouncer"}},
		{"pgbouncer_stats_totals_queries_pooled_total", db},
		{"pgbouncer_stats_totals_sql_transactions_pooled_total", db},
		{"pgbouncer_stats_totals_client_wait_seconds_total", db},
		{"pgbouncer_stats_received_bytes_total", db},
		{"pgbouncer_stats_sent_bytes_total", db},
		{"pgbouncer_stats_client_wait_seconds_total", db},
		{"pgbouncer_databases_pool_size", map[string]string{"name": f.db, "database": f.db, "host": cfg.Databases[f.db].Host, "force_user": "", "pool_mode": ""}},
		{"pgbouncer_databases_reserve_pool", map[string]string{"name": f.db}},
		{"pgbouncer_databases_max_connections", map[string]string{"name": f.db}},
		{"pgbouncer_databases_paused", map[string]string{"name": f.db}},
		{"pgbouncer_databases_disabled", map[string]string{"name": f.db}},
		{"pgbouncer_used_servers", nil},
		{"pgbouncer_login_clients", nil},
		{"pgbouncer_cached_dns_names", nil},
		{"pgbouncer_config_max_user_connections", nil},
		{"go_goroutines", nil},
		{"process_cpu_seconds_total", nil},
		{"process_open_fds", nil},
	} {
		if _, ok := sample(fams, m.name, m.labels); !ok {
			t.Errorf("no %s%v", m.name, m.labels)
		}
	}
	want := map[string]struct {
		labels map[string]string
		value  float64
	}{
		"pgbouncer_up": {nil, 1},
		"pgbouncer_pools_client_active_connections": {pool, 1},
		"pgbouncer_pools_server_active_connections": {pool, 1},
		"pgbouncer_config_max_client_connections":   {nil, float64(cfg.MaxClientConn)},
		"pgbouncer_pools":                           {nil, 2},
	}
	for name, w := range want {
		if v, ok := sample(fams, name, w.labels); !ok || v != w.value {
			t.Errorf("%s%v = %v (%v), want %v", name, w.labels, v, ok, w.value)
		}
	}
	// At least the connection the transaction holds (the pool may have opened
	// another while one was being released).
	if v, _ := sample(fams, "pgbouncer_databases_current_connections", map[string]string{"name": f.db}); v < 1 {
		t.Errorf("pgbouncer_databases_current_connections = %v during a transaction", v)
	}
	// The counters moved by the queries run between the scrapes.
	if q, _ := sample(fams, "pgbouncer_stats_queries_pooled_total", db); q < q0+n {
		t.Errorf("pgbouncer_stats_queries_pooled_total went from %v to %v over %d queries", q0, q, n)
	}
	if s, _ := sample(fams, "pgbouncer_stats_queries_duration_seconds_total", db); s < n*0.001 {
		t.Errorf("pgbouncer_stats_queries_duration_seconds_total = %v after %d queries of 1 ms", s, n)
	}
	if s, _ := sample(fams, "pgbouncer_stats_server_in_transaction_seconds_total", db); s <= 0 {
		t.Errorf("pgbouncer_stats_server_in_transaction_seconds_total = %v", s)
	}
	// pgpool's histograms, per pool.
	if c, _ := sample(fams, "pgpool_pool_query_duration_seconds", pool); c < n {
		t.Errorf("pgpool_pool_query_duration_seconds count %v, want at least %d", c, n)
	}
	if c, _ := sample(fams, "pgpool_pool_transaction_duration_seconds", pool); c < n {
		t.Errorf("pgpool_pool_transaction_duration_seconds count %v, want at least %d", c, n)
	}
	if c, ok := sample(fams, "pgpool_pool_client_wait_seconds", pool); !ok || c < 1 {
		t.Errorf("pgpool_pool_client_wait_seconds count %v (%v)", c, ok)
	}
	h := fams["pgpool_pool_query_duration_seconds"].Metric[0].Histogram
	if b := h.Bucket[0]; b.GetUpperBound() != 0.0001 || len(h.Bucket) < len(histBounds) {
		t.Errorf("query histogram buckets %v", h.Bucket)
	}

	promtool := testenv.LookPath(t, "promtool")
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	} else if s := strings.TrimSpace(string(out)); s != "" {
		t.Logf("promtool: %s", s)
	}
}

func TestMetricsListenRefused(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.MetricsListen = "127.0.0.1:99999"
	pl, _ := startPooler(t, cfg)
	if a := pl.MetricsAddr(); a != nil {
		t.Errorf("metrics on %v with a bad address", a)
	}
}
