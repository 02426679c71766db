// Package metrics serves pgpool's state to Prometheus. Its collector reads one
// admin.Snapshot per scrape and turns the admin console's result sets into the metrics
// prometheus-community's pgbouncer_exporter makes of PgBouncer's (same names, labels
// and units), so dashboards built for that exporter read pgpool unchanged, and adds
// what PgBouncer cannot give: per-pool histograms of client wait, transaction and
// query times (pgpool_pool_*_seconds).
package metrics
