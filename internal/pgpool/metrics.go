package pgpool

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/poolsuite/poolsuite/internal/pgpool/metrics"
)

// metricsServer serves /metrics on Config.MetricsListen.
type metricsServer struct {
	ln  net.Listener
	srv *http.Server
}

// startMetrics listens on addr and serves the metrics of pl's snapshots there until
// stopMetrics. A failure to listen is logged: the pooler runs without metrics.
func (pl *Pooler) startMetrics(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		pl.log.Error("metrics_listen: cannot listen; serving no metrics", "addr", addr, "err", err)
		return
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", metrics.Handler(pl.Snapshot))
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      30 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	pl.metrics = &metricsServer{ln: ln, srv: srv}
	pl.wg.Add(1)
	go func() {
		defer pl.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			pl.log.Error("metrics server failed", "err", err)
		}
	}()
	pl.log.Info("serving metrics", "addr", ln.Addr().String(), "path", "/metrics")
}

// stopMetrics closes the metrics listener and its connections.
func (pl *Pooler) stopMetrics() {
	if pl.metrics != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if pl.metrics.srv.Shutdown(ctx) != nil {
			pl.metrics.srv.Close()
		}
	}
}

// MetricsAddr returns the address the metrics endpoint listens on, nil if there is
// none (MetricsListen empty, or listening failed).
func (pl *Pooler) MetricsAddr() net.Addr {
	if pl.metrics == nil {
		return nil
	}
	return pl.metrics.ln.Addr()
}
