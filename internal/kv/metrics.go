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

	// twemproxy's other stats, under kvproxy's names.
	clientEOF, clientErr, forwardError, fragments                     *prometheus.Desc
	serverEOF, serverErr, serverTimedOut, requestBytes, responseBytes *prometheus.Desc
	inQueueBytes, outQueueBytes, ejectedAt                            *prometheus.Desc
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

		clientEOF:      prometheus.NewDesc("kvproxy_pool_client_eof_total", "Client connections the client closed (twemproxy's client_eof).", []string{"pool"}, nil),
		clientErr:      prometheus.NewDesc("kvproxy_pool_client_err_total", "Client connections closed on an error (client_err).", []string{"pool"}, nil),
		forwardError:   prometheus.NewDesc("kvproxy_pool_forward_error_total", "Requests that could not be forwarded to a server (forward_error).", []string{"pool"}, nil),
		fragments:      prometheus.NewDesc("kvproxy_pool_fragments_total", "Fragments made by splitting multi-key requests (fragments).", []string{"pool"}, nil),
		serverEOF:      prometheus.NewDesc("kvproxy_server_eof_total", "Server connections closed by the server or broken (server_eof).", labels, nil),
		serverErr:      prometheus.NewDesc("kvproxy_server_err_total", "Server connections that failed to open (server_err).", labels, nil),
		serverTimedOut: prometheus.NewDesc("kvproxy_server_timedout_total", "Server connections closed by a timeout (server_timedout).", labels, nil),
		requestBytes:   prometheus.NewDesc("kvproxy_server_request_bytes_total", "Bytes of requests written to the server (request_bytes).", labels, nil),
		responseBytes:  prometheus.NewDesc("kvproxy_server_response_bytes_total", "Bytes of replies read from the server (response_bytes).", labels, nil),
		inQueueBytes:   prometheus.NewDesc("kvproxy_server_in_queue_bytes", "Bytes of requests waiting to be written (in_queue_bytes).", labels, nil),
		outQueueBytes:  prometheus.NewDesc("kvproxy_server_out_queue_bytes", "Bytes of requests written and waiting for a reply (out_queue_bytes).", labels, nil),
		ejectedAt:      prometheus.NewDesc("kvproxy_server_ejected_at_seconds", "Unix time of the server's last ejection, 0 for never (server_ejected_at).", labels, nil),
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
	for _, d := range []*prometheus.Desc{m.requests, m.responses, m.errors, m.timeouts, m.ejections, m.connections, m.inQueue, m.outQueue, m.clients, m.poolEjects,
		m.clientEOF, m.clientErr, m.forwardError, m.fragments, m.serverEOF, m.serverErr, m.serverTimedOut, m.requestBytes, m.responseBytes,
		m.inQueueBytes, m.outQueueBytes, m.ejectedAt} {
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
		c(m.clientEOF, pl.stats.clientEOF.Load(), pl.name)
		c(m.clientErr, pl.stats.clientErr.Load(), pl.name)
		c(m.forwardError, pl.stats.forwardError.Load(), pl.name)
		c(m.fragments, pl.stats.fragments.Load(), pl.name)
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
			c(m.serverEOF, st.serverEOF.Load(), pl.name, s.name)
			c(m.serverErr, st.serverErr.Load(), pl.name, s.name)
			c(m.serverTimedOut, st.timedOut.Load(), pl.name, s.name)
			c(m.requestBytes, st.requestBytes.Load(), pl.name, s.name)
			c(m.responseBytes, st.responseBytes.Load(), pl.name, s.name)
			g(m.inQueueBytes, st.inQueueBytes.Load(), pl.name, s.name)
			g(m.outQueueBytes, st.outQueueBytes.Load(), pl.name, s.name)
			ch <- prometheus.MustNewConstMetric(m.ejectedAt, prometheus.GaugeValue, float64(st.ejectedAt.Load())/1e6, pl.name, s.name)
		}
	}
}
