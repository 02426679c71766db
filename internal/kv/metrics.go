package kv

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Prometheus metrics of a Proxy, registered on a registry of its own.
// Counters are read from the servers' atomic stats when scraped; latencies are
// histograms per server.
type metrics struct {
	p       *Proxy
	latency *prometheus.HistogramVec

	requests, responses, errors, timeouts, ejections, connections, inQueue, outQueue *prometheus.Desc
	clients, poolEjects                                                              *prometheus.Desc
}

// serverMetrics are the per-server metric handles kept on a server.
type serverMetrics struct {
	latency prometheus.Observer
}

func newMetrics(p *Proxy, reg prometheus.Registerer) (*metrics, error) {
	labels := []string{"pool", "server"}
	m := &metrics{
		p: p,
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "kvproxy",
			Name:      "request_duration_seconds",
			Help:      "Time from writing a request to a server to reading its reply.",
			Buckets:   []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, labels),
		requests:    prometheus.NewDesc("kvproxy_server_requests_total", "Requests written to the server.", labels, nil),
		responses:   prometheus.NewDesc("kvproxy_server_responses_total", "Replies read from the server.", labels, nil),
		errors:      prometheus.NewDesc("kvproxy_server_errors_total", "Requests failed by a broken connection or a timeout.", labels, nil),
		timeouts:    prometheus.NewDesc("kvproxy_server_timeouts_total", "Requests failed by a timeout.", labels, nil),
		ejections:   prometheus.NewDesc("kvproxy_server_ejections_total", "Times the server was ejected.", labels, nil),
		connections: prometheus.NewDesc("kvproxy_server_connections", "Open connections to the server.", labels, nil),
		inQueue:     prometheus.NewDesc("kvproxy_server_in_queue", "Requests waiting to be written.", labels, nil),
		outQueue:    prometheus.NewDesc("kvproxy_server_out_queue", "Requests written and waiting for a reply.", labels, nil),
		clients:     prometheus.NewDesc("kvproxy_client_connections", "Open client connections.", []string{"pool"}, nil),
		poolEjects:  prometheus.NewDesc("kvproxy_pool_server_ejects_total", "Server ejections in the pool.", []string{"pool"}, nil),
	}
	if err := reg.Register(m.latency); err != nil {
		return nil, err
	}
	if err := reg.Register(m); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *metrics) forServer(pool, server string) *serverMetrics {
	return &serverMetrics{latency: m.latency.WithLabelValues(pool, server)}
}

func (m *metrics) forget(pool, server string) {
	m.latency.DeleteLabelValues(pool, server)
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.requests, m.responses, m.errors, m.timeouts, m.ejections, m.connections, m.inQueue, m.outQueue, m.clients, m.poolEjects} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.p.mu.Lock()
	pools := make([]*pool, 0, len(m.p.pools))
	for _, pl := range m.p.pools {
		pools = append(pools, pl)
	}
	m.p.mu.Unlock()
	c := func(d *prometheus.Desc, v int64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), lv...)
	}
	g := func(d *prometheus.Desc, v int64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), lv...)
	}
	for _, pl := range pools {
		g(m.clients, pl.stats.clientConnections.Load(), pl.name)
		c(m.poolEjects, pl.stats.serverEjects.Load(), pl.name)
		for _, s := range pl.state.Load().servers() {
			st := &s.stats
			c(m.requests, st.requests.Load(), pl.name, s.name)
			c(m.responses, st.responses.Load(), pl.name, s.name)
			c(m.errors, st.errors.Load(), pl.name, s.name)
			c(m.timeouts, st.timeouts.Load(), pl.name, s.name)
			c(m.ejections, st.ejects.Load(), pl.name, s.name)
			g(m.connections, st.connections.Load(), pl.name, s.name)
			g(m.inQueue, st.inQueue.Load(), pl.name, s.name)
			g(m.outQueue, st.outQueue.Load(), pl.name, s.name)
		}
	}
}
